"""The real websocket transport against a tiny RFC 6455 server on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import socket
import struct
import threading
import time
from typing import Any, Dict, List, Optional

import pytest

from asterisk_cti.errors import ConnectError, TransportError
from asterisk_cti.pipeline.frames import FrameReader, unwanted
from asterisk_cti.pipeline.transport import basic_auth_header, websocket_transport

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(payload: bytes, opcode: int = 1, fin: bool = True) -> bytes:
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


class TinyServer:
    """Accepts one websocket, checks auth, sends scripted bytes, records client frames."""

    def __init__(self, script: List[bytes], status: int = 101) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.script = script
        self.status = status
        self.request = b""
        self.received = b""
        self.thread = threading.Thread(target=self.run, name="test-ws-server")
        self.thread.start()

    def run(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            conn.settimeout(5)
            while b"\r\n\r\n" not in self.request:
                self.request += conn.recv(4096)
            headers: Dict[str, str] = {}
            for line in self.request.decode().split("\r\n")[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            if self.status != 101:
                conn.sendall(f"HTTP/1.1 {self.status} Unauthorized\r\nContent-Length: 0\r\n\r\n"
                             .encode())
                return
            accept = base64.b64encode(hashlib.sha1(
                (headers["sec-websocket-key"] + GUID).encode()).digest()).decode()
            conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n")
                         .encode() + b"".join(self.script))
            try:
                while True:
                    data = conn.recv(4096)
                    if not data:
                        break
                    self.received += data
            except OSError:
                pass

    def close(self) -> None:
        self.sock.close()
        self.thread.join(5)


def drain(stream: Any, want: int, timeout: float = 5.0) -> List[bytes]:
    out: List[bytes] = []
    deadline = time.monotonic() + timeout
    while len(out) < want and time.monotonic() < deadline:
        got = stream.recv_batch()
        if got:
            out.extend(got)
    return out


def test_reads_all_frame_sizes_fragments_and_answers_pings() -> None:
    big = b'{"type":"X","pad":"' + b"a" * 70000 + b'"}'
    mid = b"m" * 300
    script = [frame(b'{"a":1}'), frame(mid), frame(big), frame(b"ping!", opcode=9),
              frame(b"frag-", fin=False), frame(b"mented", opcode=0), frame(b"", opcode=10)]
    server = TinyServer(script)
    stream: Optional[Any] = None
    try:
        stream = websocket_transport(
            f"ws://127.0.0.1:{server.port}/ari/events?app=x",
            {"Authorization": basic_auth_header("u", "pw")},
            connect_timeout=5, read_timeout=0.2, verify_tls=True)
        assert drain(stream, 4) == [b'{"a":1}', mid, big, b"frag-mented"]
        assert stream.recv_batch() in (None, [])  # idle: a timeout is not an error
        deadline = time.monotonic() + 5
        while len(server.received) < 11 and time.monotonic() < deadline:
            stream.recv_batch()
        # A masked pong (opcode 10) echoing the 5-byte payload came back.
        head, mask, body = server.received[:2], server.received[2:6], server.received[6:11]
        assert head == bytes([0x8A, 0x80 | 5])
        assert bytes(b ^ mask[i % 4] for i, b in enumerate(body)) == b"ping!"
    finally:
        if stream is not None:
            stream.close()
        server.close()
    req = server.request.decode()
    assert "Authorization: Basic " + base64.b64encode(b"u:pw").decode() in req
    assert "GET /ari/events?app=x " in req and "pw" not in req.split("\r\n")[0]


def _sleeping_in_kernel(t: threading.Thread, timeout: float = 5.0) -> bool:
    """Wait until thread ``t`` sleeps in the kernel (Linux: state S in /proc), i.e. is blocked
    in its recv(); elsewhere, only until it started."""
    stat = f"/proc/self/task/{t.native_id}/stat"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(stat) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            return t.is_alive()
        if state == "S":
            return True
        time.sleep(0.001)
    return False


def test_abort_wakes_a_blocked_read_at_once() -> None:
    server = TinyServer([])
    stream = websocket_transport(f"ws://127.0.0.1:{server.port}/ari/events", {},
                                 connect_timeout=5, read_timeout=30, verify_tls=True)
    errors: List[BaseException] = []

    def reader() -> None:
        try:
            stream.recv_batch()
        except TransportError as exc:
            errors.append(exc)

    t = threading.Thread(target=reader, name="test-reader")
    t.start()
    assert _sleeping_in_kernel(t), "the reader never blocked in recv"
    t0 = time.monotonic()
    stream.abort()
    t.join(5)
    assert not t.is_alive() and time.monotonic() - t0 < 2
    assert errors
    stream.close()
    server.close()


def test_refused_handshake_is_a_connect_error_with_the_status() -> None:
    server = TinyServer([], status=401)
    with pytest.raises(ConnectError) as info:
        websocket_transport(f"ws://127.0.0.1:{server.port}/ari/events", {},
                            connect_timeout=5, read_timeout=1, verify_tls=True)
    assert info.value.status == 401
    server.close()


def test_connection_refused_is_a_connect_error() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(ConnectError, match="cannot connect"):
        websocket_transport(f"ws://127.0.0.1:{port}/ari/events", {}, connect_timeout=2,
                            read_timeout=1, verify_tls=True)


def test_frame_reader_drops_unwanted_types_without_parsing() -> None:
    reader = FrameReader(lambda p: None)
    reader.wanted = frozenset({b"ChannelCreated"})
    frames = [b'{"variable":"X","type":"ChannelVarset","channel":{}}',
              b'{"type":"ChannelCreated","channel":{}}',
              b'{"type":"Odd","nested":{"type":"ChannelCreated"}}',
              b'{"no":"type at all"}']
    out = reader.feed(b"".join(frame(f) for f in frames))
    assert out == frames[1:] and reader.dropped == 1


def test_frame_reader_handles_split_input_and_close() -> None:
    pongs: List[bytes] = []
    reader = FrameReader(pongs.append)
    data = frame(b"hello") + frame(b"x" * 200) + frame(b"p", opcode=9)
    out: List[bytes] = []
    for i in range(len(data)):
        out += reader.feed(data[i:i + 1])
    assert out == [b"hello", b"x" * 200] and pongs == [b"p"]
    with pytest.raises(TransportError, match="code 1000"):
        reader.feed(frame(struct.pack("!H", 1000), opcode=8))
    with pytest.raises(TransportError, match="masked"):
        FrameReader(pongs.append).feed(bytes([0x81, 0x81]) + b"abcdx")


def test_frame_reader_keeps_only_the_sniffed_frames_the_call_model_reads() -> None:
    """ChannelVarset of CTI_DATA (with or without the inheritance prefix) and ChannelDialplan
    of app Queue pass an unwanted type; the flood of other ChannelVarset does not, nor does
    a channel object whose channelvars carry CTI_DATA."""
    reader = FrameReader(lambda p: None)
    reader.wanted = frozenset({b"ChannelCreated"})
    vars_ = b'"channel":{"channelvars":{"CTI_DATA":"a=1"}}'
    kept = [b'{"variable":"__CTI_DATA","value":"a=1","type":"ChannelVarset",' + vars_ + b'}',
            b'{"type":"ChannelVarset","variable":"CTI_DATA","value":"",' + vars_ + b'}',
            b'{"type":"ChannelVarset","variable":"_CTI_DATA","value":"b=2"}',
            b'{"type":"ChannelDialplan","dialplan_app":"Queue","dialplan_app_data":"support"}']
    dropped = [b'{"variable":"DIALSTATUS","value":"ANSWER","type":"ChannelVarset",' + vars_
               + b'}',
               b'{"variable":"XCTI_DATA","type":"ChannelVarset"}',
               b'{"type":"ChannelDialplan","dialplan_app":"Queues","dialplan_app_data":"x"}',
               b'{"type":"ChannelDialplan","dialplan_app":"Dial","dialplan_app_data":"Queue"}']
    out = reader.feed(b"".join(frame(f) for f in kept + dropped))
    assert out == kept and reader.dropped == len(dropped)
    wanted = frozenset({b"ChannelCreated"})
    assert [unwanted(f, wanted) for f in kept] == [False] * len(kept)
    assert [unwanted(f, wanted) for f in dropped] == [True] * len(dropped)
