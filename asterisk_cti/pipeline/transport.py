"""The websocket seam: how the reactor reaches Asterisk's ``/ari/events``.

The reactor sees only :class:`EventStream` (read a batch of text frames, ping, abort, close)
and a :data:`TransportFactory` that opens one. The real factory,
:func:`websocket_transport`, speaks the protocol itself (RFC 6455, client side): TCP, TLS
through :mod:`ssl` (no proxy from the environment, like the REST side), the HTTP upgrade with an
``Authorization`` header, then frames. Owning the handshake is what makes it safe against a
hostile server: a redirect is an error (:class:`~asterisk_cti.RedirectError`), never a second
handshake that would carry the credentials elsewhere; the whole handshake honours one
deadline (a server trickling a byte a second cannot hold it); its headers are bounded; and a
pending connect can be cancelled from another thread (:class:`Canceller`). One large
``recv()`` from the socket yields every complete frame in it, so the reactor pays for one
system call and one hand-off per burst of events, and no pure-Python UTF-8 check runs
(``json.loads`` decodes in C); the frames themselves are read by
:class:`~asterisk_cti.pipeline.frames.FrameReader`. Tests inject the fake from
:mod:`asterisk_cti.testing`.

Only the reactor thread reads; :meth:`EventStream.abort` may be called from any thread.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import logging
import os
import re
import socket
import ssl
import struct
import threading
import time
from typing import Any, Callable, Dict, FrozenSet, List, Mapping, NamedTuple, Optional, Protocol
from urllib.parse import urlsplit

from ..config import basic_auth_header
from ..errors import (
    ConnectError,
    InvalidApplicationError,
    NotAriServerError,
    RedirectError,
    TlsVerificationError,
    TransportError,
    WebSocketProtocolError,
)
from .frames import DEFAULT_MAX_MESSAGE, FrameReader, client_frame, unwanted

__all__ = [
    "DEFAULT_MAX_HANDSHAKE_BYTES", "DEFAULT_MAX_HANDSHAKE_HEADERS", "DEFAULT_MAX_MESSAGE",
    "Canceller", "EventStream", "FrameReader", "TransportFactory", "WireLimits",
    "basic_auth_header", "factory_accepts", "unwanted", "websocket_transport",
]

logger = logging.getLogger(__name__)

_READ_SIZE = 256 * 1024
_TAG = re.compile(r"<[^>]{0,200}>")
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

#: Default bounds (see :class:`WireLimits` and the matching :class:`~asterisk_cti.CtiConfig`
#: settings).
DEFAULT_MAX_HANDSHAKE_BYTES = 16 * 1024
DEFAULT_MAX_HANDSHAKE_HEADERS = 64


class WireLimits(NamedTuple):
    """Bounds the real transport enforces on what the server sends.

    :ivar max_message: bytes of one websocket message, whole (all its fragments together).
    :ivar max_handshake_bytes: bytes of the server's HTTP upgrade answer head.
    :ivar max_handshake_headers: header lines in that answer.
    """

    max_message: int = DEFAULT_MAX_MESSAGE
    max_handshake_bytes: int = DEFAULT_MAX_HANDSHAKE_BYTES
    max_handshake_headers: int = DEFAULT_MAX_HANDSHAKE_HEADERS


_DEFAULT_LIMITS = WireLimits()


class Canceller:
    """Lets another thread abort a connect in progress (the reactor's :meth:`stop`).

    The factory registers each socket it opens with :meth:`attach`; :meth:`cancel` shuts it
    down, which wakes a blocked ``connect``/``recv`` at once, and makes every later
    :meth:`attach` fail. Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sock: Optional[socket.socket] = None
        self.cancelled = False

    def attach(self, sock: Optional[socket.socket]) -> None:
        """Register the socket being connected (``None`` to forget it).

        :raises ConnectError: when the attempt was already cancelled.
        """
        with self._lock:
            self._sock = sock
            if self.cancelled:
                raise ConnectError("connect cancelled")

    def cancel(self) -> None:
        """Abort the attempt (idempotent, any thread)."""
        with self._lock:
            self.cancelled = True
            sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


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

        A factory may also accept the keywords ``cancel`` (a :class:`Canceller`) and
        ``limits`` (:class:`WireLimits`); the reactor passes them when it does (see
        :func:`factory_accepts`).

        :raises ConnectError: when the connection or the handshake fails (``status`` set when
            the server answered the upgrade with an HTTP error).
        """


def factory_accepts(factory: Callable[..., Any], keyword: str) -> bool:
    """Whether a transport factory takes the optional ``keyword`` argument."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return keyword in params or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


class _SocketStream:
    """:class:`EventStream` over our own handshake and :class:`FrameReader`."""

    def __init__(self, sock: socket.socket, leftover: bytes, limits: WireLimits) -> None:
        self._sock = sock
        self._send_lock = threading.Lock()
        self._reader = FrameReader(self._pong, limits.max_message)
        self._leftover = leftover
        self._closed = threading.Event()

    def _send(self, opcode: int, payload: bytes) -> None:
        with self._send_lock:
            self._sock.sendall(client_frame(opcode, payload))

    def _pong(self, payload: bytes) -> None:
        try:
            self._send(10, payload)
        except OSError as exc:  # broken pipe while answering: the next read reports it
            logger.debug("could not answer a websocket ping: %s", exc)

    def recv_batch(self) -> Optional[List[bytes]]:
        if self._leftover:
            data, self._leftover = self._leftover, b""
            return self._reader.feed(data)
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
            self._send(9, b"")
        except OSError as exc:
            raise TransportError(f"websocket ping failed: {exc}") from None

    def abort(self) -> None:
        self._closed.set()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        if not self._closed.is_set() and not self._reader.closed:
            try:
                self._sock.settimeout(0.5)
                self._send(8, struct.pack("!H", 1000))
            except OSError as exc:
                logger.debug("websocket close: %s", exc)
        self._closed.set()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise socket.timeout("handshake deadline passed")
    return left


def _read_head(sock: socket.socket, deadline: float, limits: WireLimits,
               what: str) -> tuple[bytes, bytes]:
    """Read an HTTP response head within ``deadline``: ``(head, bytes after it)``."""
    data = b""
    while True:
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            head, rest = data[:end], data[end + 4:]
            break
        if len(data) > limits.max_handshake_bytes:
            raise WebSocketProtocolError(
                f"{what} answer head over {limits.max_handshake_bytes} bytes refused")
        sock.settimeout(_remaining(deadline))
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectError(f"{what}: connection closed by the server before an answer")
        data += chunk
    if len(head) > limits.max_handshake_bytes:
        raise WebSocketProtocolError(
            f"{what} answer head over {limits.max_handshake_bytes} bytes refused")
    return head, rest


def _parse_head(head: bytes, limits: WireLimits, what: str) -> tuple[int, Dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    if len(lines) - 1 > limits.max_handshake_headers:
        raise WebSocketProtocolError(
            f"{what} answer with more than {limits.max_handshake_headers} headers refused")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise NotAriServerError(f"{what}: not an HTTP answer: {lines[0][:80]!r}")
    headers: Dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise ConnectError(f"{what}: malformed header line {line[:80]!r}")
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return int(parts[1]), headers


def websocket_transport(
    url: str,
    headers: Mapping[str, str],
    *,
    connect_timeout: float,
    read_timeout: float,
    verify_tls: bool | str,
    cancel: Optional[Canceller] = None,
    limits: WireLimits = _DEFAULT_LIMITS,
) -> EventStream:
    """The real :class:`TransportFactory`.

    :param url: ``ws://`` or ``wss://`` URL without credentials.
    :param headers: extra handshake headers (the ``Authorization`` header among them).
    :param connect_timeout: total deadline, seconds, for TCP connect, TLS and the HTTP
        upgrade together (name resolution aside).
    :param read_timeout: seconds a read may block before :meth:`EventStream.recv_batch`
        returns ``None`` (the reactor then pings).
    :param verify_tls: ``True``, ``False`` or a CA bundle path.
    :param cancel: lets another thread abort the attempt.
    :param limits: bounds on the answer head and on messages.
    :raises RedirectError: when the server answers the upgrade with a redirect (never
        followed).
    :raises WebSocketProtocolError: when the answer head exceeds ``limits``.
    :raises ConnectError: on any other failure to connect; the message never contains
        credentials.
    """
    deadline = time.monotonic() + connect_timeout
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ConnectError(f"not a websocket URL: {_safe(url)}")
    host = parts.hostname
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)
    for k, v in headers.items():
        if any(c in k + v for c in "\r\n\0"):
            raise ConnectError("a handshake header holds a line break")
    sock: Optional[socket.socket] = None
    try:
        sock = socket.create_connection((host, port), timeout=_remaining(deadline))
        if cancel is not None:
            cancel.attach(sock)
        if secure:
            ctx = ssl.create_default_context(
                cafile=verify_tls if isinstance(verify_tls, str) else None)
            if verify_tls is False:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            sock.settimeout(_remaining(deadline))
            sock = ctx.wrap_socket(sock, server_hostname=host)
            if cancel is not None:
                cancel.attach(sock)
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        default_port = (secure and port == 443) or (not secure and port == 80)
        netloc = host if ":" not in host else f"[{host}]"
        if not default_port:
            netloc += f":{port}"
        target_path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        lines = [f"GET {target_path} HTTP/1.1", f"Host: {netloc}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                 "Sec-WebSocket-Version: 13"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        sock.settimeout(_remaining(deadline))
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        head, leftover = _read_head(sock, deadline, limits, "websocket handshake")
        status, answer = _parse_head(head, limits, "websocket handshake")
        if 300 <= status < 400:
            raise RedirectError(status, answer.get("location", ""))
        if status != 101:
            raise _refused(status, leftover)
        expected = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()
        if answer.get("upgrade", "").lower() != "websocket" or "upgrade" not in [
                t.strip() for t in answer.get("connection", "").lower().split(",")]:
            raise NotAriServerError("websocket handshake: the server answered 101 but did "
                                    "not upgrade to a websocket", status)
        if answer.get("sec-websocket-accept", "") != expected:
            raise ConnectError("websocket handshake: wrong Sec-WebSocket-Accept")
        if answer.get("sec-websocket-extensions"):
            raise WebSocketProtocolError(
                "websocket handshake: the server imposed an extension nobody asked for")
        if cancel is not None:
            cancel.attach(None)
            if cancel.cancelled:
                raise ConnectError("connect cancelled")
    except ConnectError:
        _close_quietly(sock)
        raise
    except WebSocketProtocolError as exc:
        _close_quietly(sock)
        raise ConnectError(str(exc)) from None
    except ssl.SSLCertVerificationError as exc:
        _close_quietly(sock)
        raise TlsVerificationError(
            f"cannot connect to {_safe(url)}: TLS certificate not verified "
            f"({exc.verify_message or exc.reason}); give the server's CA as "
            "verify_tls='/path/ca.pem'") from None
    except (OSError, ValueError, UnicodeError) as exc:
        _close_quietly(sock)
        if cancel is not None and cancel.cancelled:
            raise ConnectError("connect cancelled") from None
        if isinstance(exc, socket.timeout):
            raise ConnectError(f"cannot connect to {_safe(url)}: no complete handshake "
                               f"within {connect_timeout:g} s") from None
        raise ConnectError(f"cannot connect to {_safe(url)}: {type(exc).__name__}: {exc}") from None
    except BaseException:
        _close_quietly(sock)
        raise
    sock.settimeout(read_timeout)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024 * 1024)
    except OSError:
        pass
    return _SocketStream(sock, leftover, limits)


def _refused(status: int, body: bytes) -> ConnectError:
    """The error for an upgrade answered with another status than 101: typed when retrying
    cannot help (see :class:`~asterisk_cti.PermanentConnectError`)."""
    # Asterisk's ast_http_error() answers a small HTML page: show its text, not its tags.
    text = _TAG.sub(" ", body[:1024].decode("utf-8", "replace"))
    shown = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    detail = f": {shown[:160]!r}" if shown else ""
    if status == 400:
        return InvalidApplicationError(
            f"websocket handshake refused with HTTP 400{detail}: Asterisk refused the "
            "application name (app)", status)
    if status in (404, 405) or status < 300:
        return NotAriServerError(
            f"websocket handshake answered HTTP {status}{detail}: no ARI at this url "
            "(check host, port, http.conf prefix, res_ari loaded)", status)
    return ConnectError(f"websocket handshake refused with HTTP {status}", status)


def _close_quietly(sock: Optional[socket.socket]) -> None:
    if sock is not None:
        try:
            sock.close()
        except OSError:
            pass


def _safe(url: str) -> str:
    return url.split("?", 1)[0]
