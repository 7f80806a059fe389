"""The RFC 6455 reader: server-to-client websocket frames out of a byte stream.

:class:`FrameReader` is pure and single-threaded (the reactor thread feeds it whatever the
socket returned); :func:`unwanted` is the same type sniffing for transports that do not use
it (the test fake); :func:`client_frame` builds the masked frames a client sends. The
handshake and the socket live in :mod:`asterisk_cti.pipeline.transport`.
"""

from __future__ import annotations

import os
import struct
from typing import Callable, Dict, FrozenSet, List, Optional, Tuple

from ..errors import TransportError, WebSocketProtocolError

_TYPE_TAG = b'"type":"'

#: Default bound of one websocket message (see :class:`~asterisk_cti.CtiConfig`
#: ``max_message_size``).
DEFAULT_MAX_MESSAGE = 64 * 1024 * 1024


#: Frames of a type outside the wanted set that are kept all the same when one top-level
#: field has one of the values given: the call model reads the ChannelVarset frames of the
#: call data variable (never the flood of the others) and the ChannelDialplan frames of app
#: Queue. ``type -> (the field's tag, the values kept)``; looked at only for these types.
SNIFFED: Dict[bytes, Tuple[bytes, FrozenSet[bytes]]] = {
    b"ChannelVarset": (b'"variable":"', frozenset({b"CTI_DATA", b"_CTI_DATA", b"__CTI_DATA"})),
    b"ChannelDialplan": (b'"dialplan_app":"', frozenset({b"Queue"})),
}
#: The event types of :data:`SNIFFED`, as ``str``.
SNIFFED_TYPES: FrozenSet[str] = frozenset(t.decode() for t in SNIFFED)


def sniffed(buf: bytes, etype: bytes, start: int, end: int) -> bool:
    """Whether a frame of an unwanted type is kept by :data:`SNIFFED` (``buf[start:end]``)."""
    spec = SNIFFED.get(etype)
    if spec is None:
        return False
    tag, values = spec
    k = buf.find(tag, start, end)
    if k < 0:
        return False
    k += len(tag)
    return buf[k:buf.find(b'"', k, end)] in values


def unwanted(frame: bytes, wanted: FrozenSet[bytes]) -> bool:
    """Whether a raw ARI frame's ``type`` is outside ``wanted``, read without parsing
    (:data:`SNIFFED` frames are kept).

    True only when the ``"type":"`` tag occurs exactly once (Asterisk writes compact JSON, and
    no nested ARI object has a ``type`` key), so an unusual frame is always kept and parsed.
    """
    i = frame.find(_TYPE_TAG)
    if i < 0:
        return False
    j = frame.find(b'"', i + 8)
    etype = frame[i + 8:j]
    return (etype not in wanted and frame.find(_TYPE_TAG, j) < 0
            and not sniffed(frame, etype, 0, len(frame)))


class FrameReader:
    """Parses server-to-client websocket frames (RFC 6455) out of a byte stream, strictly.

    Handles fragmentation, ping (answered through ``send_pong``), pong and close, and fails
    the connection (:class:`~asterisk_cti.WebSocketProtocolError`, counted in
    :attr:`protocol_errors`) on: a masked frame, RSV bits (no extension is ever negotiated),
    an unknown opcode, a control frame longer than 125 bytes or fragmented, a continuation
    without a start, a new data frame inside an open fragmented message, and a message
    (one frame, or all fragments together) longer than ``max_message`` — checked from the
    frame header, before its payload is buffered.

    Reassembly is linear: while a frame is incomplete, reads are only collected; they are
    joined once, when the frame is complete (a 63 MB frame in 16 KB reads is copied twice,
    not 4,000 times). Pure and single-threaded: :meth:`feed` is called by the reactor with
    whatever the socket returned.
    """

    __slots__ = ("_pending", "_pending_len", "_need", "_fragments", "_frag_len",
                 "_send_pong", "closed", "wanted", "dropped", "max_message", "protocol_errors")

    def __init__(self, send_pong: Callable[[bytes], None],
                 max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        self._pending: List[bytes] = []
        self._pending_len = 0
        self._need = 2
        self._fragments: Optional[List[bytes]] = None
        self._frag_len = 0
        self._send_pong = send_pong
        self.closed = False
        #: ARI event types to keep (``None``: all); see :meth:`EventStream.set_wanted`.
        self.wanted: Optional[FrozenSet[bytes]] = None
        self.dropped = 0
        self.max_message = max_message
        self.protocol_errors = 0

    def _violation(self, message: str) -> WebSocketProtocolError:
        self.protocol_errors += 1
        self.closed = True
        return WebSocketProtocolError(message)

    def feed(self, data: bytes) -> List[bytes]:
        """Add bytes read from the socket and return the complete text/binary messages.

        :raises WebSocketProtocolError: on a protocol violation or a bound exceeded.
        :raises TransportError: on a close frame.
        """
        if self.closed:
            raise TransportError("websocket already failed")
        if self._pending:
            self._pending.append(data)
            self._pending_len += len(data)
            if self._pending_len < self._need:
                return []
            buf = b"".join(self._pending)
            self._pending = []
            self._pending_len = 0
        else:
            buf = data
        out: List[bytes] = []
        pos = 0
        size = len(buf)
        need = 2
        wanted = self.wanted
        tag = _TYPE_TAG
        sniff = SNIFFED
        limit = self.max_message
        frag_open = self._fragments is not None
        while size - pos >= 2:
            b0 = buf[pos]
            b1 = buf[pos + 1]
            if b1 & 0x80:
                raise self._violation("masked frame from server")
            length = b1
            head = 2
            if b0 == 0x81 or b0 == 0x82:
                # The hot path: a whole text (or binary) message in one frame.
                if frag_open:
                    raise self._violation("new data frame inside a fragmented message")
                if length >= 126:
                    if length == 126:
                        if size - pos < 4:
                            need = 4
                            break
                        length = (buf[pos + 2] << 8) | buf[pos + 3]
                        head = 4
                    else:
                        if size - pos < 10:
                            need = 10
                            break
                        length = struct.unpack_from("!Q", buf, pos + 2)[0]
                        head = 10
                    if length > limit:
                        raise self._violation(f"websocket frame of {length} bytes refused "
                                              f"(limit {limit})")
                end = pos + head + length
                if end > size:
                    need = end - pos
                    break
                start = pos + head
                pos = end
                if wanted is not None:
                    # Read the type in place: an unwanted frame is never copied.
                    i = buf.find(tag, start, end)
                    if i >= 0:
                        j = buf.find(b'"', i + 8, end)
                        etype = buf[i + 8:j]
                        if etype not in wanted and buf.find(tag, j, end) < 0:
                            spec = sniff.get(etype)
                            if spec is None:
                                self.dropped += 1
                                continue
                            k = buf.find(spec[0], start, end)
                            if k < 0:
                                self.dropped += 1
                                continue
                            k += len(spec[0])
                            if buf[k:buf.find(b'"', k, end)] not in spec[1]:
                                self.dropped += 1
                                continue
                out.append(buf[start:end])
                continue
            opcode = b0 & 0x0F
            if b0 & 0x70:
                raise self._violation("websocket frame with RSV bits set (no extension "
                                      "was negotiated)")
            if opcode >= 8:
                if not b0 & 0x80:
                    raise self._violation("fragmented websocket control frame")
                if length > 125:
                    raise self._violation("websocket control frame longer than 125 bytes")
                if opcode > 10:
                    raise self._violation(f"unknown websocket opcode {opcode}")
            else:
                if opcode > 2:
                    raise self._violation(f"unknown websocket opcode {opcode}")
                if length == 126:
                    if size - pos < 4:
                        need = 4
                        break
                    length = (buf[pos + 2] << 8) | buf[pos + 3]
                    head = 4
                elif length == 127:
                    if size - pos < 10:
                        need = 10
                        break
                    length = struct.unpack_from("!Q", buf, pos + 2)[0]
                    head = 10
                if opcode == 0:
                    if not frag_open:
                        raise self._violation("continuation frame without a start")
                    if self._frag_len + length > limit:
                        raise self._violation(
                            f"fragmented websocket message over {limit} bytes refused")
                else:
                    # a text/binary frame that starts a fragmented message (FIN clear)
                    if frag_open:
                        raise self._violation("new data frame inside a fragmented message")
                    if length > limit:
                        raise self._violation(f"websocket frame of {length} bytes refused "
                                              f"(limit {limit})")
            end = pos + head + length
            if end > size:
                need = end - pos
                break
            start = pos + head
            pos = end
            if opcode == 0:
                assert self._fragments is not None
                self._fragments.append(buf[start:end])
                self._frag_len += length
                if b0 & 0x80:
                    out.append(b"".join(self._fragments))
                    self._fragments = None
                    self._frag_len = 0
                    frag_open = False
            elif opcode == 1 or opcode == 2:
                self._fragments = [buf[start:end]]
                self._frag_len = length
                frag_open = True
            elif opcode == 9:
                self._send_pong(buf[start:end])
            elif opcode == 8:
                self.closed = True
                code = struct.unpack_from("!H", buf, start)[0] if end - start >= 2 else 1005
                raise TransportError(f"server closed the websocket (code {code})")
            # opcode 10 (pong): nothing to do
        if pos < size:
            rest = buf[pos:] if pos else buf
            self._pending = [rest]
            self._pending_len = len(rest)
            self._need = need
        else:
            self._need = 2
        return out


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client-to-server frame (every client frame must be masked)."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    key = os.urandom(4)
    if n:
        k = int.from_bytes(key * ((n + 3) // 4), "big") >> (8 * (-n % 4))
        payload = (int.from_bytes(payload, "big") ^ k).to_bytes(n, "big")
    return head + key + payload
