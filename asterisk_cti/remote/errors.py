"""The desktop client's own errors, and the server's answers turned back into the
exceptions the local :class:`~asterisk_cti.CallControl` raises (pure; any thread).

A refused request comes back as ``{"type": "NotInStasisError", "message": ..., ...}``
(:func:`asterisk_cti.server.schema.error_payload`). :func:`error_from_payload` rebuilds the
exception of that class when the name is on a fixed allow-list (never a class looked up by
a name the network chose), otherwise a :class:`RemoteError` that carries the name.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Type

from asterisk_cti import (
    AriHttpError,
    AsteriskCtiError,
    AuthenticationError,
    CallFailedError,
    CallStateError,
    ChannelStateError,
    ClientStoppedError,
    ConflictError,
    ConnectError,
    CtiTimeoutError,
    ForbiddenError,
    InvalidRequestError,
    NotFoundError,
    NotInStasisError,
    PermanentConnectError,
    RequestTimeoutError,
    ServerError,
    TransportError,
)
from asterisk_cti.server.errors import (
    AccessDeniedError,
    BadRequestError,
    ServerBusyError,
    ServerRequestError,
)

__all__ = ["BrokerRefusedError", "RemoteError", "ServerUnavailableError",
           "error_from_payload"]

_MAX_MESSAGE = 2000


class RemoteError(AsteriskCtiError):
    """The server refused a request with an error this client does not know by name (or
    answered something malformed).

    :ivar type_name: the ``type`` the server named (``""`` for a malformed answer).
    """

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}" if type_name else message)
        self.type_name = type_name


class ServerUnavailableError(TransportError):
    """The request could not reach the CTI server: the broker connection is down, the
    client is not started, or the server said it is offline."""


class BrokerRefusedError(PermanentConnectError):
    """The MQTT broker refused this desktop's login (wrong agent name or password; MQTT 5
    reason code 0x86 or 0x87). Retrying cannot help: fix the credentials.

    :ivar reason_code: the CONNACK's reason code.
    """

    def __init__(self, message: str, reason_code: int) -> None:
        super().__init__(message)
        self.reason_code = reason_code


def _text(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key, "")
    return value[:_MAX_MESSAGE] if isinstance(value, str) else ""


def _int(body: Mapping[str, Any], key: str) -> int:
    value = body.get(key, 0)
    return value if type(value) is int and -(2 ** 31) <= value < 2 ** 31 else 0


def _ari(cls: Type[AriHttpError]) -> Callable[[Mapping[str, Any]], BaseException]:
    def build(body: Mapping[str, Any]) -> BaseException:
        method, path = _text(body, "method"), _text(body, "path")
        status, said = _int(body, "status"), _text(body, "ari_message")
        if cls is NotInStasisError:
            return NotInStasisError(method, path, status, said,
                                    _text(body, "other_app") or None)
        return cls(method, path, status, said)
    return build


def _plain(cls: Callable[[str], BaseException]) -> Callable[[Mapping[str, Any]], BaseException]:
    return lambda body: cls(_text(body, "message"))


def _failed(body: Mapping[str, Any]) -> BaseException:
    return CallFailedError(_text(body, "message"), dialstatus=_text(body, "dialstatus"),
                           cause=_int(body, "cause"), channel_id=_text(body, "channel_id"))


#: The error types the server may name, and how each is rebuilt (the allow-list).
_BUILDERS: Dict[str, Callable[[Mapping[str, Any]], BaseException]] = {
    **{cls.__name__: _ari(cls) for cls in (
        AriHttpError, InvalidRequestError, AuthenticationError, ForbiddenError, NotFoundError,
        ConflictError, ChannelStateError, NotInStasisError, ServerError)},
    **{cls.__name__: _plain(cls) for cls in (
        AccessDeniedError, BadRequestError, ServerBusyError, ServerRequestError,
        CallStateError, CtiTimeoutError, RequestTimeoutError, TransportError, ConnectError,
        ClientStoppedError, AsteriskCtiError, ValueError, TypeError)},
    "CallFailedError": _failed,
}


def error_from_payload(body: object) -> BaseException:
    """The exception a response's ``error`` object stands for (see the module docstring).
    Pure; never raises."""
    if not isinstance(body, dict):
        return RemoteError("", "the server answered a malformed error")
    name = body.get("type")
    message = _text(body, "message")
    if not isinstance(name, str):
        return RemoteError("", f"the server answered a malformed error: {message}")
    build = _BUILDERS.get(name)
    if build is None:
        return RemoteError(name[:64], message)
    try:
        return build(body)
    except Exception:  # a builder must not let a hostile field escape as another error
        return RemoteError(name, message)
