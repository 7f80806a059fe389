"""Class 7: the websocket reader is strict and bounded (RFC 6455), and linear."""

from __future__ import annotations

import struct
import time
from typing import Callable, List

import pytest

from asterisk_cti import CtiConfig, TransportError, WebSocketProtocolError
from asterisk_cti.pipeline.frames import FrameReader
from asterisk_cti.pipeline.reactor import Reactor
from asterisk_cti.pipeline.ring import Ring
from asterisk_cti.pipeline.transport import basic_auth_header, websocket_transport

from .hostile_ws import Conn, HostileServer, frame

AUTH = {"Authorization": basic_auth_header("cti", "s3cret")}


def reader(max_message: int = 64 * 1024 * 1024) -> tuple[FrameReader, List[bytes]]:
    pongs: List[bytes] = []
    return FrameReader(pongs.append, max_message), pongs


@pytest.mark.parametrize(("data", "words"), [
    (frame(b"{}", rsv=4), "RSV"),
    (frame(b"{}", rsv=2), "RSV"),
    (frame(b"{}", rsv=1), "RSV"),
    (frame(b"x" * 126, opcode=9), "125"),
    (frame(b"x" * 200, opcode=8), "125"),
    (frame(b"p", opcode=9, fin=False), "fragmented"),
    (frame(b"p", opcode=10, fin=False), "fragmented"),
    (frame(b"tail", opcode=0), "without a start"),
    (frame(b"{", fin=False) + frame(b"{}"), "inside a fragmented"),
    (frame(b"{", fin=False) + frame(b"x", opcode=2), "inside a fragmented"),
    (frame(b"x", opcode=3), "opcode 3"),
    (frame(b"x", opcode=11), "opcode 11"),
    (frame(b"{}", mask=True), "masked"),
])
def test_protocol_violations_fail_the_connection_and_are_counted(data: bytes, words: str) -> None:
    r, _ = reader()
    with pytest.raises(WebSocketProtocolError, match=words):
        r.feed(data)
    assert r.protocol_errors == 1
    with pytest.raises(TransportError):  # a failed reader never yields frames again
        r.feed(frame(b"{}"))


def test_control_frames_of_125_bytes_between_fragments_are_fine() -> None:
    r, pongs = reader()
    out = r.feed(frame(b'{"a":', fin=False) + frame(b"p" * 125, opcode=9)
                 + frame(b"1}", opcode=0))
    assert out == [b'{"a":1}']
    assert pongs == [b"p" * 125]
    assert r.protocol_errors == 0


def test_whole_message_cap_across_fragments_is_checked_from_the_header() -> None:
    r, _ = reader(max_message=4096)
    assert r.feed(frame(b"x" * 3000, fin=False)) == []
    # Only the header of a continuation that would pass the cap: refused before its payload.
    head = frame(b"y" * 2000, opcode=0)[:4]
    with pytest.raises(WebSocketProtocolError, match="over 4096"):
        r.feed(head)


def test_endless_continuation_frames_hit_the_cap() -> None:
    r, _ = reader(max_message=64 * 1024)
    r.feed(frame(b"[", fin=False))
    with pytest.raises(WebSocketProtocolError, match="over 65536"):
        for _ in range(100_000):
            r.feed(frame(b"1," * 512, opcode=0, fin=False))
    assert r.protocol_errors == 1


def test_single_frame_over_the_cap_is_refused_from_its_header() -> None:
    r, _ = reader(max_message=1 << 20)
    with pytest.raises(WebSocketProtocolError, match="refused"):
        r.feed(struct.pack("!BBQ", 0x81, 127, 1 << 40))


def test_reassembly_of_a_63_mb_frame_in_16_kb_reads_is_linear() -> None:
    """Before: 63 MB in 16 KB segments was joined again at every read (>40 s measured for
    the first 40 MB). Now the reads are collected and joined once (~0.15 s)."""
    payload = b'{"type":"X","v":"' + b"a" * (63 * 1024 * 1024) + b'"}'
    data = frame(payload)
    r, _ = reader()
    view = memoryview(data)
    out: List[bytes] = []
    t0 = time.perf_counter()
    for i in range(0, len(data), 16 * 1024):
        out += r.feed(bytes(view[i:i + 16 * 1024]))
    elapsed = time.perf_counter() - t0
    assert len(out) == 1 and out[0] == payload
    assert elapsed < 5.0, f"reassembly took {elapsed:.1f} s"


def test_many_small_frames_split_anywhere_come_out_whole() -> None:
    frames = [frame(b'{"n":%d}' % i) for i in range(500)]
    data = b"".join(frames)
    for step in (1, 3, 7, 64, 1000):
        r, _ = reader()
        out: List[bytes] = []
        for i in range(0, len(data), step):
            out += r.feed(data[i:i + step])
        assert out == [b'{"n":%d}' % i for i in range(500)]


def _script(data: bytes, upgrade: bool = True) -> Callable[[Conn], None]:
    """A server that reads the handshake request, answers a correct ``101`` (unless not
    ``upgrade``), sends ``data`` and holds the connection until the client closes it (3 s at
    most)."""
    def script(c: Conn) -> None:
        if upgrade:
            c.upgrade()
        else:
            c.read_request()
        c.send(data)
        c.wait_closed(3.0)
    return script


def test_end_to_end_a_bad_frame_drops_the_connection_and_is_counted() -> None:
    with HostileServer(_script(frame(b'{"type":"A"}', rsv=4))) as srv:
        cfg = CtiConfig(url=srv.url, username="cti", password="s3cret", app="desk",
                        reconnect_min=0.05, reconnect_max=0.1)
        reactor = Reactor(cfg, websocket_transport, Ring(64))
        reactor.start()
        try:
            assert srv.wait_for(lambda s: reactor.protocol_errors >= 2, 5.0)
            assert reactor.stats()["protocol_errors"] >= 2
            assert srv.accepted >= 2  # it reconnects, with backoff
        finally:
            assert reactor.stop(2.0)


@pytest.mark.parametrize(("head", "words"), [
    (b"HTTP/1.1 101 Switching Protocols\r\n" + b"".join(
        b"X-H%d: v\r\n" % i for i in range(100)) + b"\r\n", "more than 64 headers"),
    (b"HTTP/1.1 101 Switching Protocols\r\nX-Big: " + b"a" * 100_000, "16384 bytes"),
])
def test_handshake_answer_heads_are_bounded(head: bytes, words: str) -> None:
    with HostileServer(_script(head, upgrade=False)) as srv:
        t0 = time.monotonic()
        with pytest.raises(TransportError, match=words):
            websocket_transport(srv.ws_url, AUTH, connect_timeout=5.0, read_timeout=1.0,
                                verify_tls=True)
        assert time.monotonic() - t0 < 2.0  # refused as soon as seen, not at the deadline
