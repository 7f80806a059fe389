"""A small server-side RFC 6455 websocket: handshake, text frames, ping/pong, close.

Only what the simulator needs to talk to ARI clients: it accepts masked client frames
(text, binary, ping, pong, close, continuation), answers pings, and sends unmasked text frames.
No extensions, no compression, no subprotocol negotiation.

Threads: one :class:`ServerWebSocket` is read by exactly one thread (the HTTP handler thread
that upgraded the connection) and written by one writer thread; :meth:`send_text` and
:meth:`send_close` take an internal lock so that a pong sent by the reader never interleaves with
an event sent by the writer.
"""

from __future__ import annotations

import base64
import hashlib
import io
import socket
import struct
import threading
from typing import BinaryIO, Tuple

__all__ = ["ServerWebSocket", "WebSocketClosed", "accept_key"]

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

#: Largest client frame accepted; ARI clients only send control frames and small texts.
MAX_FRAME = 1 << 20


class WebSocketClosed(Exception):
    """The peer closed the websocket (close frame or EOF) or the socket failed."""


def accept_key(key: str) -> str:
    """Compute ``Sec-WebSocket-Accept`` for a client's ``Sec-WebSocket-Key``.

    :param key: the client's key, as sent.
    :returns: the base64 SHA-1 digest RFC 6455 section 4.2.2 asks for.
    """
    digest = hashlib.sha1((key + _GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def _encode_frame(opcode: int, payload: bytes) -> bytes:
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([n])
    elif n < 1 << 16:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


class ServerWebSocket:
    """The server end of an upgraded connection.

    :param sock: the connected socket, after the 101 response was sent.
    :param rfile: a buffered reader on ``sock`` (bytes the HTTP parser may already have read).
    """

    def __init__(self, sock: socket.socket, rfile: BinaryIO | io.BufferedIOBase) -> None:
        self._sock = sock
        self._rfile = rfile
        self._send_lock = threading.Lock()
        self._closed = False

    # -- sending (any thread) -------------------------------------------------------------
    def send_text(self, text: str) -> None:
        """Send one text frame.

        :raises WebSocketClosed: the socket is closed or failed.
        """
        self._send(OP_TEXT, text.encode("utf-8"))

    def send_close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame (best effort) and mark the socket closed for sending."""
        try:
            self._send(OP_CLOSE, struct.pack("!H", code) + reason.encode("utf-8"))
        except WebSocketClosed:
            pass
        self._closed = True

    def _send(self, opcode: int, payload: bytes) -> None:
        frame = _encode_frame(opcode, payload)
        with self._send_lock:
            if self._closed:
                raise WebSocketClosed("websocket closed")
            try:
                self._sock.sendall(frame)
            except OSError as exc:
                self._closed = True
                raise WebSocketClosed(str(exc)) from exc

    # -- receiving (the reader thread only) ------------------------------------------------
    def recv_message(self) -> Tuple[int, bytes]:
        """Read the next data message, answering pings and swallowing pongs on the way.

        :returns: ``(opcode, payload)`` of a complete text or binary message.
        :raises WebSocketClosed: on a close frame (after echoing it), EOF or a protocol error.
        """
        message = b""
        message_op: int | None = None
        while True:
            fin, opcode, payload = self._read_frame()
            if opcode == OP_PING:
                self._send(OP_PONG, payload)
                continue
            if opcode == OP_PONG:
                continue
            if opcode == OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1000
                self.send_close(code)
                raise WebSocketClosed(f"close frame {code}")
            if opcode == OP_CONT:
                if message_op is None:
                    raise WebSocketClosed("continuation without a message")
            else:
                message_op = opcode
                message = b""
            message += payload
            if fin:
                assert message_op is not None
                return message_op, message

    def _read_exact(self, n: int) -> bytes:
        data = self._rfile.read(n)
        if len(data) < n:
            raise WebSocketClosed("EOF")
        return data

    def _read_frame(self) -> Tuple[bool, int, bytes]:
        try:
            b0, b1 = self._read_exact(2)
            fin = bool(b0 & 0x80)
            opcode = b0 & 0x0F
            masked = bool(b1 & 0x80)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read_exact(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read_exact(8))[0]
            if n > MAX_FRAME:
                raise WebSocketClosed("frame too large")
            mask = self._read_exact(4) if masked else b""
            payload = self._read_exact(n) if n else b""
        except (OSError, ValueError) as exc:
            raise WebSocketClosed(str(exc)) from exc
        if masked:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return fin, opcode, payload

    def abort(self) -> None:
        """Cut the connection without a close frame (what a crashing Asterisk does)."""
        self._closed = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
