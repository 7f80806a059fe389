"""The exception tree of asterisk_cti: one root, layered by origin.

Every error the SDK raises derives from :class:`AsteriskCtiError`. Configuration errors are also
:class:`ValueError`; HTTP errors carry the method, the path, the status and Asterisk's own
message, and the cases callers handle (404, 409 "not in Stasis") have classes of their own.
No exception message ever contains a credential.
"""

from __future__ import annotations

from typing import Optional


class AsteriskCtiError(Exception):
    """Root of every exception raised by asterisk_cti."""


class ConfigurationError(AsteriskCtiError, ValueError):
    """A configuration value is invalid.

    :ivar field: the name of the offending :class:`~asterisk_cti.CtiConfig` field.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class ClientStoppedError(AsteriskCtiError):
    """The client was stopped (or never started) and cannot do what was asked."""


class CtiTimeoutError(AsteriskCtiError, TimeoutError):
    """A blocking operation did not complete within its timeout."""


class EventParseError(AsteriskCtiError, ValueError):
    """An ARI event frame could not be parsed (bad JSON, or not an event object)."""


class TransportError(AsteriskCtiError):
    """The connection to Asterisk failed: refused, reset, timed out, TLS, or dropped."""


class ConnectError(TransportError):
    """Connecting (or re-connecting) to Asterisk failed.

    :ivar status: the HTTP status of a refused websocket handshake, if there was one.
    """

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.status = status


class AriHttpError(AsteriskCtiError):
    """Asterisk answered an ARI REST request with an error status.

    :ivar method: the HTTP method.
    :ivar path: the request path relative to the ARI root, with ids already URL-encoded.
    :ivar status: the HTTP status code.
    :ivar message: Asterisk's own message (the ``message`` or ``error`` field of the body).
    """

    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.message = message
        super().__init__(f"{method} {path} -> {status}: {message or '(no message)'}")


class InvalidRequestError(AriHttpError):
    """400 or 422: the request was malformed or refers to something in the wrong state."""


class AuthenticationError(AriHttpError):
    """401 or 403: the ARI user name or password was refused."""


class NotFoundError(AriHttpError):
    """404: the channel, bridge, endpoint or application does not exist (often: already gone)."""


class ConflictError(AriHttpError):
    """409: the object exists but is in a state that does not allow the operation."""


class NotInStasisError(ConflictError):
    """The channel or bridge is not in a Stasis application, so ARI cannot control it.

    On Asterisk 22 only originate, hangup, reading variables and snoop work on channels that
    are not in Stasis. Route the call through the SDK's application, for example with
    ``exten => _1XXX,1,Stasis(<app>,dial)`` in the dialplan (see the call-control guide), or
    originate it with :meth:`CallControl.originate`.
    """

    HINT = (
        "the channel is not in the SDK's Stasis application; route the call through it "
        "(dialplan: exten => _1XXX,1,Stasis(<app>,dial)) or originate it with the SDK"
    )

    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        super().__init__(method, path, status, message)
        self.args = (f"{method} {path} -> {status}: {message}; {self.HINT}",)


class ServerError(AriHttpError):
    """5xx: Asterisk failed (503 "Asterisk not booted" while it starts)."""


def http_error(method: str, path: str, status: int, message: str) -> AriHttpError:
    """Map an HTTP error status to the matching :class:`AriHttpError` subclass.

    :param method: the HTTP method.
    :param path: the (encoded) request path.
    :param status: the HTTP status (>= 400).
    :param message: Asterisk's message.
    :returns: an exception instance, not raised.
    """
    cls: type[AriHttpError]
    if status in (401, 403):
        cls = AuthenticationError
    elif status == 404:
        cls = NotFoundError
    elif status in (409, 422) and "not in stasis" in message.lower():
        cls = NotInStasisError
    elif status == 409:
        cls = ConflictError
    elif status in (400, 422):
        cls = InvalidRequestError
    elif status >= 500:
        cls = ServerError
    else:
        cls = AriHttpError
    return cls(method, path, status, message)


class InvalidResponseError(AsteriskCtiError):
    """Asterisk (or whatever answered in its place) sent a success status whose body is not
    what ARI defines for the request: HTML from a proxy, ``{"error": ...}``, a number where a
    list of channels belongs. The answer is not trusted: nothing is changed from it.

    :ivar method: the HTTP method.
    :ivar path: the request path relative to the ARI root (ids URL-encoded).
    :ivar reason: what was wrong with the body (never the body itself in full).
    """

    def __init__(self, method: str, path: str, reason: str) -> None:
        self.method = method
        self.path = path
        self.reason = reason
        super().__init__(f"{method} {path}: invalid answer: {reason}")
