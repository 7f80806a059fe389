"""A scriptable hostile websocket server on 127.0.0.1 for the adversarial tests.

Each accepted connection runs ``script(conn)`` on its own thread. The script decides
everything: read the upgrade request, answer it with a proper ``101``, a redirect, garbage,
nothing at all, trickle bytes, send raw frames, close. Every request head the server read is
recorded (:attr:`HostileServer.requests`), so a test can prove what a client sent — or that it
never came back.

Threads are named ``hostile-ws-*`` and are all joined by :meth:`HostileServer.close`.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import struct
import threading
import time
from typing import Callable, Dict, List, Optional

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_key(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` value for a client's ``Sec-WebSocket-Key``."""
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def frame(payload: bytes, opcode: int = 1, *, fin: bool = True, rsv: int = 0,
          mask: bool = False, length: Optional[int] = None) -> bytes:
    """One server-to-client frame; ``rsv`` is the 3-bit RSV field, ``length`` lies about the
    payload length when given."""
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | opcode
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if mask:
        key = os.urandom(4)
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        head += key
    return head + payload


class Request:
    """One upgrade request head as the server read it."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        lines = raw.decode("latin-1").split("\r\n")
        self.request_line = lines[0] if lines else ""
        self.headers: Dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                k, _, v = line.partition(":")
                self.headers[k.strip().lower()] = v.strip()

    @property
    def authorization(self) -> Optional[str]:
        return self.headers.get("authorization")


class Conn:
    """The server side of one accepted connection, handed to the script."""

    def __init__(self, sock: socket.socket, server: HostileServer) -> None:
        self.sock = sock
        self.server = server
        self.request: Optional[Request] = None
        self.sock.settimeout(10.0)

    def read_request(self) -> Request:
        """Read the HTTP request head (up to the blank line) and record it."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            data += chunk
        req = Request(data.split(b"\r\n\r\n", 1)[0])
        self.request = req
        with self.server.lock:
            self.server.requests.append(req)
        return req

    def upgrade(self, extra: str = "") -> None:
        """Read the request and answer a correct ``101 Switching Protocols``."""
        req = self.read_request()
        key = req.headers.get("sec-websocket-key", "")
        self.send(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept_key(key)}\r\n"
                   f"{extra}\r\n").encode())

    def send(self, data: bytes) -> bool:
        """Send bytes; False when the client is gone."""
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def trickle(self, data: bytes, interval: float) -> None:
        """Send ``data`` one byte per ``interval`` seconds until done, the client leaves or
        the server closes."""
        for i in range(len(data)):
            if not self.send(data[i:i + 1]) or self.server.closing.wait(interval):
                return

    def wait_closed(self, timeout: float) -> bool:
        """Read and discard until the client closes; True when it did within ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, min(0.2, deadline - time.monotonic())))
            try:
                if not self.sock.recv(65536):
                    return True
            except socket.timeout:
                if self.server.closing.is_set():
                    return False
            except OSError:
                return True
        return False

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


Script = Callable[[Conn], None]


class HostileServer:
    """Listens on 127.0.0.1 (ephemeral port) and runs ``script`` for every connection.

    Use as a context manager; :meth:`close` wakes trickling scripts and joins every thread.
    """

    def __init__(self, script: Script) -> None:
        self.script = script
        self.lock = threading.Lock()
        self.requests: List[Request] = []
        self.accepted = 0
        #: ``time.monotonic()`` of every accepted connection.
        self.accept_times: List[float] = []
        self.closing = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self._threads: List[threading.Thread] = []
        self._conns: List[Conn] = []
        self._accept_thread = threading.Thread(target=self._accept, name="hostile-ws-accept",
                                               daemon=True)
        self._accept_thread.start()

    @property
    def url(self) -> str:
        """The ``http://`` URL to configure a client with."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ari/events?app=x"

    def _accept(self) -> None:
        while not self.closing.is_set():
            try:
                sock, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn = Conn(sock, self)
            with self.lock:
                self.accepted += 1
                self.accept_times.append(time.monotonic())
                self._conns.append(conn)
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True,
                                 name=f"hostile-ws-{self.accepted}")
            self._threads.append(t)
            t.start()

    def _serve(self, conn: Conn) -> None:
        try:
            self.script(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def wait_for(self, predicate: Callable[[HostileServer], bool], timeout: float) -> bool:
        """Poll ``predicate(self)`` every 10 ms until true or ``timeout``."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() >= deadline:
                return False
            self.closing.wait(0.01)
        return True

    def close(self) -> None:
        self.closing.set()
        self._accept_thread.join(5)
        self._listener.close()
        with self.lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            t.join(5)

    def __enter__(self) -> HostileServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
