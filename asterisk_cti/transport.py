"""The websocket seam: how the reactor reaches Asterisk's ``/ari/events``.

The reactor sees only :class:`EventStream` (read a batch of text frames, ping, abort, close)
and a :data:`TransportFactory` that opens one. The real factory,
:func:`websocket_transport`, lets websocket-client do what it does well (TLS, proxies, the
HTTP upgrade with an ``Authorization`` header) and then reads frames itself: one large
``recv()`` from the socket yields every complete frame in it, so the reactor pays for one
system call and one hand-off per burst of events instead of three reads per frame, and no
pure-Python UTF-8 check runs (``json.loads`` decodes in C). Tests inject the fake from
:mod:`asterisk_cti.testing`.

Only the reactor thread reads; :meth:`EventStream.abort` may be called from any thread.
"""

from __future__ import annotations

import base64
import logging
import socket
import ssl
import struct
import threading
from typing import Any, Callable, FrozenSet, List, Mapping, Optional, Protocol

from .errors import ConnectError, TransportError

logger = logging.getLogger(__name__)

_READ_SIZE = 256 * 1024
_MAX_FRAME = 64 * 1024 * 1024
_TYPE_TAG = b'"type":"'


class EventStream(Protocol):
    """One open event websocket. Read by the reactor thread only, except :meth:`abort`."""

    def recv_batch(self) -> Optional[List[bytes]]:
        """Block until data arrives or the read timeout passes.

        :returns: the complete text frames read (possibly an empty list when only control
            frames such as a pong arrived), or ``None`` when the read timed out with no data.
        :raises TransportError: when the connection is closed or broken.
        """

    def ping(self) -> None:
        """Send a keep-alive ping.

        :raises TransportError: when the connection is broken.
        """

    def abort(self) -> None:
        """Wake a blocked :meth:`recv_batch` at once; safe from any thread."""

    def set_wanted(self, wanted: Optional[FrozenSet[bytes]]) -> None:
        """Drop text frames whose ARI ``type`` is not in ``wanted`` before they are copied
        out of the read buffer (``None``: keep everything); safe from any thread.

        A frame is dropped only when its ``"type":"`` tag occurs exactly once, so a nested
        object that happened to carry the tag can never hide a wanted event.
        """

    @property
    def dropped(self) -> int:
        """Frames dropped by :meth:`set_wanted`'s filter so far."""

    def close(self) -> None:
        """Close the connection (idempotent)."""


class TransportFactory(Protocol):
    """Opens an :class:`EventStream`; called by the reactor thread for every (re)connect."""

    def __call__(
        self,
        url: str,
        headers: Mapping[str, str],
        *,
        connect_timeout: float,
        read_timeout: float,
        verify_tls: bool | str,
    ) -> EventStream:
        """Connect to ``url`` with ``headers``.

        :raises ConnectError: when the connection or the handshake fails (``status`` set when
            the server answered the upgrade with an HTTP error).
        """


def basic_auth_header(username: str, password: str) -> str:
    """The value of an HTTP basic ``Authorization`` header."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return "Basic " + token


def unwanted(frame: bytes, wanted: FrozenSet[bytes]) -> bool:
    """Whether a raw ARI frame's ``type`` is outside ``wanted``, read without parsing.

    True only when the ``"type":"`` tag occurs exactly once (Asterisk writes compact JSON, and
    no nested ARI object has a ``type`` key), so an unusual frame is always kept and parsed.
    """
    i = frame.find(_TYPE_TAG)
    if i < 0:
        return False
    j = frame.find(b'"', i + 8)
    return frame[i + 8:j] not in wanted and frame.find(_TYPE_TAG, j) < 0


class FrameReader:
    """Parses server-to-client websocket frames (RFC 6455) out of a byte stream.

    Handles fragmentation, ping (answered through ``send_pong``), pong and close. Pure and
    single-threaded: :meth:`feed` is called by the reactor with whatever the socket returned.
    """

    __slots__ = ("_buf", "_fragments", "_send_pong", "closed", "wanted", "dropped")

    def __init__(self, send_pong: Callable[[bytes], None]) -> None:
        self._buf = b""
        self._fragments: Optional[List[bytes]] = None
        self._send_pong = send_pong
        self.closed = False
        #: ARI event types to keep (``None``: all); see :meth:`EventStream.set_wanted`.
        self.wanted: Optional[FrozenSet[bytes]] = None
        self.dropped = 0

    def feed(self, data: bytes) -> List[bytes]:
        """Add bytes read from the socket and return the complete text/binary messages.

        :raises TransportError: on a protocol violation or a close frame.
        """
        buf = self._buf + data if self._buf else data
        out: List[bytes] = []
        pos = 0
        size = len(buf)
        wanted = self.wanted
        tag = _TYPE_TAG
        while size - pos >= 2:
            b0 = buf[pos]
            b1 = buf[pos + 1]
            length = b1 & 0x7F
            head = 2
            if length == 126:
                if size - pos < 4:
                    break
                length = (buf[pos + 2] << 8) | buf[pos + 3]
                head = 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = struct.unpack_from("!Q", buf, pos + 2)[0]
                head = 10
                if length > _MAX_FRAME:
                    raise TransportError(f"websocket frame of {length} bytes refused")
            if b1 & 0x80:
                raise TransportError("masked frame from server")
            end = pos + head + length
            if end > size:
                break
            start = pos + head
            pos = end
            opcode = b0 & 0x0F
            if opcode == 1 or opcode == 2:
                if b0 & 0x80:
                    if wanted is not None:
                        # Read the type in place: an unwanted frame is never copied.
                        i = buf.find(tag, start, end)
                        if i >= 0:
                            j = buf.find(b'"', i + 8, end)
                            if buf[i + 8:j] not in wanted and buf.find(tag, j, end) < 0:
                                self.dropped += 1
                                continue
                    out.append(buf[start:end])
                else:
                    self._fragments = [buf[start:end]]
            elif opcode == 0:
                if self._fragments is None:
                    raise TransportError("continuation frame without a start")
                self._fragments.append(buf[start:end])
                if b0 & 0x80:
                    out.append(b"".join(self._fragments))
                    self._fragments = None
            elif opcode == 9:
                self._send_pong(buf[start:end])
            elif opcode == 10:
                pass
            elif opcode == 8:
                self.closed = True
                code = struct.unpack_from("!H", buf, start)[0] if end - start >= 2 else 1005
                raise TransportError(f"server closed the websocket (code {code})")
            else:
                raise TransportError(f"unknown websocket opcode {opcode}")
        self._buf = buf[pos:] if pos < size else b""
        return out


class _WebSocketClientStream:
    """:class:`EventStream` over a websocket-client connection with our own frame reader."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws
        self._sock: socket.socket = ws.sock
        self._reader = FrameReader(self._pong)
        self._closed = threading.Event()

    def _pong(self, payload: bytes) -> None:
        try:
            self._ws.pong(payload)
        except Exception as exc:  # broken pipe while answering: the next read reports it
            logger.debug("could not answer a websocket ping: %s", exc)

    def recv_batch(self) -> Optional[List[bytes]]:
        try:
            data = self._sock.recv(_READ_SIZE)
        except (socket.timeout, ssl.SSLWantReadError):
            if self._closed.is_set():
                raise TransportError("websocket aborted") from None
            return None
        except (OSError, ValueError, AttributeError) as exc:
            raise TransportError(f"websocket read failed: {exc}") from None
        if not data:
            raise TransportError("websocket connection closed by the server")
        return self._reader.feed(data)

    def set_wanted(self, wanted: Optional[FrozenSet[bytes]]) -> None:
        self._reader.wanted = wanted

    @property
    def dropped(self) -> int:
        return self._reader.dropped

    def ping(self) -> None:
        try:
            self._ws.ping()
        except Exception as exc:
            raise TransportError(f"websocket ping failed: {exc}") from None

    def abort(self) -> None:
        self._closed.set()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        self._closed.set()
        try:
            self._ws.close(timeout=0.5)
        except Exception as exc:
            logger.debug("websocket close: %s", exc)
        try:
            self._ws.shutdown()
        except Exception as exc:
            logger.debug("websocket shutdown: %s", exc)


def websocket_transport(
    url: str,
    headers: Mapping[str, str],
    *,
    connect_timeout: float,
    read_timeout: float,
    verify_tls: bool | str,
) -> EventStream:
    """The real :class:`TransportFactory`, built on websocket-client.

    :param url: ``ws://`` or ``wss://`` URL without credentials.
    :param headers: extra handshake headers (the ``Authorization`` header among them).
    :param connect_timeout: seconds for TCP connect, TLS and the HTTP upgrade.
    :param read_timeout: seconds a read may block before :meth:`EventStream.recv_batch`
        returns ``None`` (the reactor then pings).
    :param verify_tls: ``True``, ``False`` or a CA bundle path.
    :raises ConnectError: on any failure to connect; the message never contains credentials.
    """
    import websocket  # imported here so that importing asterisk_cti stays cheap

    sslopt: dict[str, Any] = {}
    if url.startswith("wss:"):
        if verify_tls is False:
            sslopt = {"cert_reqs": ssl.CERT_NONE, "check_hostname": False}
        else:
            sslopt = {"cert_reqs": ssl.CERT_REQUIRED, "check_hostname": True}
            if isinstance(verify_tls, str):
                sslopt["ca_certs"] = verify_tls
    header = [f"{k}: {v}" for k, v in headers.items()]
    try:
        ws = websocket.create_connection(
            url,
            timeout=connect_timeout,
            header=header,
            sslopt=sslopt,
            skip_utf8_validation=True,
            enable_multithread=True,
            suppress_origin=True,
        )
    except websocket.WebSocketBadStatusException as exc:
        status = getattr(exc, "status_code", None)
        raise ConnectError(f"websocket handshake refused with HTTP {status}", status) from None
    except (OSError, websocket.WebSocketException, ValueError) as exc:
        raise ConnectError(f"cannot connect to {_safe(url)}: {type(exc).__name__}: {exc}") from None
    sock = ws.sock
    if sock is None:
        raise ConnectError(f"cannot connect to {_safe(url)}: no socket after the handshake")
    sock.settimeout(read_timeout)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024 * 1024)
    except OSError:
        pass
    return _WebSocketClientStream(ws)


def _safe(url: str) -> str:
    return url.split("?", 1)[0]
