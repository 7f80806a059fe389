"""A scriptable hostile HTTP server on 127.0.0.1 for the adversarial REST tests.

Each request gets the next :class:`Reply` of the script (then the default reply): any status,
headers and body, a redirect, a delay before answering, the whole answer (status line
included) or only its body trickled a byte at a time, or the connection closed without an
answer (a lost answer). Every request is recorded with its headers and body, so a test can
prove what reached the server and what did not. Keep-alive works (``requests`` pools
connections), so a reused connection is attacked as well as a fresh one.

Threads: one accept thread and one thread per connection, all named ``hostile-http-*`` and
all ended by :meth:`HostileHttp.stop` (or the ``with`` block), which also aborts any trickle
or delay in progress.
"""

from __future__ import annotations

import queue
import select
import socket
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

_REASONS = {200: "OK", 204: "No Content", 301: "Moved Permanently", 302: "Found",
            307: "Temporary Redirect", 308: "Permanent Redirect", 400: "Bad Request",
            401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
            412: "Precondition Failed", 422: "Unprocessable Entity",
            500: "Internal Server Error", 503: "Service Unavailable"}


@dataclass
class Reply:
    """What the server does with one request.

    :ivar trickle: seconds between bytes; ``None`` sends at once.
    :ivar trickle_head: trickle the status line and headers too (else only the body).
    :ivar delay: seconds to wait before answering.
    :ivar drop: close the connection after reading the request, without an answer.
    :ivar redirect: a ``Location``; the status defaults to 302 then.
    """

    status: int = 200
    body: bytes = b""
    headers: Dict[str, str] = field(default_factory=dict)
    trickle: Optional[float] = None
    trickle_head: bool = False
    delay: float = 0.0
    drop: bool = False
    redirect: Optional[str] = None

    @classmethod
    def json(cls, status: int, text: str, headers: Optional[Dict[str, str]] = None,
             **kw: Any) -> Reply:
        """A JSON answer (``text`` is the JSON already encoded)."""
        merged = {"Content-Type": "application/json", **(headers or {})}
        return cls(status=status, body=text.encode(), headers=merged, **kw)


@dataclass
class Recorded:
    """One request as the server received it (header names lower-cased)."""

    method: str
    path: str
    headers: Dict[str, str]
    body: bytes
    connection: int


class HostileHttp:
    """The server. ``with HostileHttp() as srv: srv.script(Reply(...)); srv.url``."""

    def __init__(self, default: Optional[Reply] = None) -> None:
        self.default = default or Reply(status=204)
        self._script: queue.Queue[Reply] = queue.Queue()
        self.requests: List[Recorded] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port: int = self._listener.getsockname()[1]
        self._threads: List[threading.Thread] = []
        self._conns: List[socket.socket] = []
        self._accepted = 0
        self._accept = threading.Thread(target=self._accept_loop, name="hostile-http-accept",
                                        daemon=True)

    # -- control -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def connections(self) -> int:
        """How many connections were accepted."""
        return self._accepted

    def script(self, *replies: Reply) -> None:
        """Queue replies for the next requests, in order."""
        for reply in replies:
            self._script.put(reply)

    def start(self) -> HostileHttp:
        self._accept.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, abort every answer in progress, join every thread."""
        self._stop.set()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._accept.join(timeout)
        for thread in list(self._threads):
            thread.join(timeout)
        self._listener.close()
        alive = [t.name for t in [self._accept, *self._threads] if t.is_alive()]
        assert not alive, f"hostile server threads still running: {alive}"

    def __enter__(self) -> HostileHttp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- serving -------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._listener], [], [], 0.05)
            if not ready:
                continue
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._accepted += 1
                number = self._accepted
                self._conns.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn, number),
                                      name=f"hostile-http-{number}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        conn.settimeout(0.1)
        buf = b""
        try:
            while not self._stop.is_set():
                got = self._read_request(conn, buf)
                if got is None:
                    return
                request, buf = got
                request.connection = number
                with self._lock:
                    self.requests.append(request)
                try:
                    reply = self._script.get_nowait()
                except queue.Empty:
                    reply = self.default
                if not self._answer(conn, reply):
                    return
        finally:
            conn.close()

    def _read_request(self, conn: socket.socket,
                      buf: bytes) -> Optional[Tuple[Recorded, bytes]]:
        while b"\r\n\r\n" not in buf:
            chunk = self._recv(conn)
            if not chunk:
                return None
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers: Dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0") or 0)
        while len(rest) < length:
            chunk = self._recv(conn)
            if not chunk:
                return None
            rest += chunk
        return Recorded(method, path, headers, rest[:length], 0), rest[length:]

    def _recv(self, conn: socket.socket) -> bytes:
        while not self._stop.is_set():
            try:
                return conn.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return b""
        return b""

    def _answer(self, conn: socket.socket, reply: Reply) -> bool:
        if reply.delay and self._stop.wait(reply.delay):
            return False
        if reply.drop:
            return False
        status = reply.status
        headers = dict(reply.headers)
        if reply.redirect is not None:
            status = status if 300 <= status < 400 else 302
            headers["Location"] = reply.redirect
        headers.setdefault("Content-Length", str(len(reply.body)))
        head = f"HTTP/1.1 {status} {_REASONS.get(status, 'Whatever')}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        try:
            if reply.trickle is None:
                conn.sendall(head.encode("latin-1") + reply.body)
                return True
            if reply.trickle_head:
                return self._trickle(conn, head.encode("latin-1") + reply.body, reply.trickle)
            conn.sendall(head.encode("latin-1"))
            return self._trickle(conn, reply.body, reply.trickle)
        except OSError:
            return False

    def _trickle(self, conn: socket.socket, data: bytes, pause: float) -> bool:
        for i in range(len(data)):
            conn.sendall(data[i:i + 1])
            if self._stop.wait(pause):
                return False
        return True
