"""The event source: a websocket server in its own process (stdlib sockets only).

It accepts ``GET /ari/events?app=<stream>.<mode>...`` (any path, no auth check), does the
RFC 6455 handshake itself and writes unmasked text frames of the stream (one of
:data:`benchmarks.stream.STREAMS`; ``traces`` when the app has no ``<stream>.`` prefix), each
with ``"bench_seq"`` (its index) and ``"bench_ts"`` (``time.time()`` when its batch was
written) appended before the closing brace. The mode is read from the ``app`` parameter:

- ``full-<N>``: N frames as fast as the socket takes them (batches of 64 frames);
- ``rate-<R>-<N>``: N frames at R frames/s, in batches every 10 ms;
- ``...-close``: after the last frame send a close frame and close; otherwise wait until the
  client disconnects (so the SDK's reactor does not reconnect into a second stream).
"""

from __future__ import annotations

import base64
import hashlib
import multiprocessing
import socket
import struct
import threading
import time
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

from . import stream

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _handshake(conn: socket.socket) -> str:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            raise ConnectionError("closed during handshake")
        data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    path = head[0].split(" ")[1]
    key = ""
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "sec-websocket-key":
            key = value.strip()
    accept = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()
    conn.sendall(
        ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode()
    )
    return parse_qs(urlsplit(path).query).get("app", ["full-1000"])[0]


def _header(n: int) -> bytes:
    if n < 126:
        return bytes((0x81, n))
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n)
    return struct.pack("!BBQ", 0x81, 127, n)


class Encoder:
    """Pre-encodes frame prefixes so that a batch costs one ``join`` plus one ``time.time``."""

    def __init__(self, frames: List[bytes]) -> None:
        self.frames = frames
        self.ts_len = len(b"%.6f" % time.time())

    def prefixes(self, start: int, count: int) -> List[bytes]:
        out = []
        frames = self.frames
        nf = len(frames)
        tl = self.ts_len + 1
        for seq in range(start, start + count):
            body = frames[seq % nf][:-1] + b',"bench_seq":%d,"bench_ts":' % seq
            out.append(_header(len(body) + tl) + body)
        return out

    @staticmethod
    def batch(prefixes: List[bytes]) -> bytes:
        tail = b"%.6f}" % time.time()
        return tail.join(prefixes) + tail


def split_app(app: str) -> Tuple[str, str]:
    """``"stasis.full-1000"`` -> ``("stasis", "full-1000")``; no prefix means ``traces``."""
    name, dot, mode = app.partition(".")
    return (name, mode) if dot else ("traces", app)


def _serve(conn: socket.socket, encoders: Dict[str, Encoder]) -> None:
    try:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        name, mode = split_app(_handshake(conn))
        enc = encoders.get(name)
        if enc is None:
            return
        parts = mode.split("-")
        close = parts[-1] == "close"
        if parts[0] == "rate":
            rate, n = int(parts[1]), int(parts[2])
            per = max(1, rate // 100)
            t0 = time.monotonic() + 0.2
            sent = 0
            while sent < n:
                k = min(per, n - sent)
                pre = enc.prefixes(sent, k)
                due = t0 + sent / rate
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                conn.sendall(enc.batch(pre))
                sent += k
        else:
            n = int(parts[1])
            sent = 0
            while sent < n:
                k = min(64, n - sent)
                conn.sendall(enc.batch(enc.prefixes(sent, k)))
                sent += k
        if close:
            conn.sendall(b"\x88\x02\x03\xe8")
        else:
            conn.settimeout(120)
            while conn.recv(65536):
                pass
    except OSError:
        pass
    finally:
        conn.close()


def _main(pipe: Any, n_frames: Dict[str, int]) -> None:
    encoders = {name: Encoder(stream.build(name, n)) for name, n in n_frames.items()}
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    pipe.send(srv.getsockname()[1])
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=_serve, args=(conn, encoders), daemon=True).start()


class EventServer:
    """Runs the server in a child process; ``port`` once started.

    :param n_frames: frames to build per stream (``{"traces": 20000, ...}``); a run asking
        for more frames than its stream holds cycles over them (sequence numbers go on).
    """

    def __init__(self, n_frames: Optional[Dict[str, int]] = None) -> None:
        self.n_frames = n_frames or {"traces": 20000}
        self.port = 0
        self._proc: Optional[multiprocessing.Process] = None

    def __enter__(self) -> EventServer:
        parent, child = multiprocessing.Pipe()
        self._proc = multiprocessing.Process(target=_main, args=(child, self.n_frames),
                                             daemon=True)
        self._proc.start()
        self.port = parent.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.join(5)

    @property
    def base(self) -> Tuple[str, str]:
        return f"http://127.0.0.1:{self.port}", f"ws://127.0.0.1:{self.port}/ari/events"


def capacity(port: int, n: int) -> float:
    """Frames/s the server writes to a socket that a trivial reader drains (bytes only)."""
    s = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(b"0123456789abcdef").decode()
    s.sendall((f"GET /ari/events?app=full-{n}-close HTTP/1.1\r\nHost: x\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    t0 = time.perf_counter()
    got = 0
    while True:
        d = s.recv(1 << 20)
        if not d:
            break
        got += len(d)
    dt = time.perf_counter() - t0
    s.close()
    return n / dt
