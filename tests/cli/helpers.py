"""Helpers for the command tests: a child process on a pseudo-terminal, a webhook recorder."""

from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from tests.conftest import REPO


class PtyProcess:
    """``python -m asterisk_cti.cli ARGS`` with stdin/stdout/stderr on a pseudo-terminal
    (120x40). ``read_until`` reads the terminal on the test's thread, with a deadline."""

    def __init__(self, args: Sequence[str], env: Optional[Mapping[str, str]] = None) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        full_env = dict(os.environ)
        full_env.update(env or {})
        full_env["PYTHONPATH"] = str(REPO)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "asterisk_cti.cli", *args], stdin=slave, stdout=slave,
            stderr=slave, env=full_env, close_fds=True, cwd=str(REPO))
        os.close(slave)
        self.master = master
        self.data = b""
        self.eof = False

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")

    def _read(self, timeout: float) -> None:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: the child closed the terminal
            chunk = b""
        if chunk:
            self.data += chunk
        else:
            self.eof = True

    def read_until(self, predicate: Callable[[str], bool], timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        while not predicate(self.text):
            if self.eof or time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {timeout} s; output:\n{self.text[-3000:]}")
            self._read(min(0.1, max(0.0, deadline - time.monotonic())))
        return self.text

    def read_to_end(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while not self.eof and time.monotonic() < deadline:
            self._read(0.1)
        return self.proc.wait(max(0.1, deadline - time.monotonic()))

    def interrupt(self) -> None:
        self.proc.send_signal(signal.SIGINT)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        os.close(self.master)


class Webhook:
    """An HTTP server on 127.0.0.1 that records JSON POST bodies (its own thread, not an
    ``asterisk-cti`` one; stopped by ``close``)."""

    def __init__(self) -> None:
        self.bodies: List[Dict[str, Any]] = []
        self.paths: List[str] = []
        self.cond = threading.Condition()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length))
                with hook.cond:
                    hook.bodies.append(body)
                    hook.paths.append(self.path)
                    hook.cond.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/pop"
        self.thread = threading.Thread(target=self.server.serve_forever, name="test-webhook",
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
