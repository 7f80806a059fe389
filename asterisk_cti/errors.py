"""The exception tree of asterisk_cti: one root, layered by origin.

Every error the SDK raises derives from :class:`AsteriskCtiError`. Configuration errors are also
:class:`ValueError`; HTTP errors carry the method, the path, the status and Asterisk's own
message, and the cases callers handle (404, 409 "not in Stasis", 412 "invalid state", 403
"forbidden", 422 "unknown event source") have classes of their own. The mapping follows
Asterisk 22's own ``rest-api/api-docs`` and ``res/ari`` sources (see the error table in the
call-control guide). No exception message ever contains a credential.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple


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


class RequestTimeoutError(TransportError, CtiTimeoutError):
    """An ARI REST request did not complete within its deadline.

    The deadline is total: connecting, sending the request and reading the whole answer
    together, whatever pace the server sends at. Also a :class:`TransportError` (what a
    timed-out request raised before) and a :class:`CtiTimeoutError`.
    """


class ConnectError(TransportError):
    """Connecting (or re-connecting) to Asterisk failed.

    :ivar status: the HTTP status of a refused websocket handshake, if there was one.
    """

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.status = status


class RedirectError(ConnectError):
    """The server answered the websocket upgrade with an HTTP redirect (3xx).

    Redirects are never followed: the credentials go only to the configured server. Point
    ``url`` at the server the ``Location`` names if that is where Asterisk really is.

    :ivar location: the ``Location`` the server named (``""`` when it named none).
    """

    def __init__(self, status: int, location: str) -> None:
        shown = repr(location[:200]) if location else "no Location"
        super().__init__(
            f"websocket handshake answered HTTP {status} redirect to {shown}; not followed "
            "(credentials are sent only to the configured url)", status)
        self.location = location


class WebSocketProtocolError(TransportError):
    """The server broke the websocket protocol (RFC 6455) or one of the client's bounds
    (message size, handshake size); the connection is dropped and re-established."""


class WouldDeadlockError(AsteriskCtiError, RuntimeError):
    """A blocking call was made from a thread it would have to wait for (for example
    :meth:`CtiClient.wait_idle` from a listener, which runs on a lane it waits to drain)."""


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
    """401: the ARI user name or password was refused (403: see :class:`ForbiddenError`)."""


class ForbiddenError(AuthenticationError):
    """403: the credentials were accepted, but this user may not do this.

    Asterisk 22 answers ``403 "Write access denied"`` to a ``read_only`` ARI user for any
    request but GET, and ``403 "Access denied by ACL"`` when ``ari.conf``'s ACL refuses the
    client's address. The password is not the problem. A subclass of
    :class:`AuthenticationError` so that existing handlers still catch it.
    """


class NotFoundError(AriHttpError):
    """404: the channel, bridge, endpoint or application does not exist (often: already gone).

    Also raised for ``400 "Channel not found"``, which ``POST /bridges/{id}/addChannel`` and
    ``removeChannel`` answer for a channel that is gone (``status`` then stays 400).
    """


class ConflictError(AriHttpError):
    """409: the object exists but is in a state that does not allow the operation."""


class ChannelStateError(ConflictError):
    """412 "Channel in invalid state": the channel is in Stasis but not answered yet.

    Asterisk 22 (``channel_state_invalid()`` in ``res/ari/resource_channels.c``) refuses
    continue, redirect, answer, ring, progress, dtmf, mute/unmute, hold/unhold, moh,
    silence and play on an *outbound* channel that is still ``Down``, ``Reserved`` or
    ``Ringing``: wait for it to be answered.
    """


class UnknownSourceError(InvalidRequestError):
    """422 "Event source does not exist": a monitored endpoint or technology is unknown.

    Asterisk stops at the first unknown source of a subscription; the SDK then subscribes the
    other sources one by one, so only the ones named here are missing.

    :ivar sources: the refused sources, as given to ``monitor()`` (``PJSIP/1000``).
    """

    def __init__(self, method: str, path: str, status: int, message: str,
                 sources: Sequence[str] = ()) -> None:
        super().__init__(method, path, status, message)
        self.sources: Tuple[str, ...] = tuple(sources)
        if self.sources:
            hints = [f"{s!r} -> 'PJSIP/{s}'?" for s in self.sources if "/" not in s
                     and s.isdigit()]
            self.args = (
                f"Asterisk does not know the event source(s) {', '.join(self.sources)} "
                f"({status}: {message})"
                + (f"; an extension needs its technology: {', '.join(hints)}" if hints
                   else "; check the endpoint name (asterisk -rx 'pjsip show endpoints')"),)


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

    def __init__(self, method: str, path: str, status: int, message: str,
                 other_app: Optional[str] = None) -> None:
        super().__init__(method, path, status, message)
        #: the other Stasis application the channel is in, when the SDK knows it
        self.other_app = other_app
        hint = self.HINT if other_app is None else (
            f"the channel is in another application ({other_app!r}), not in the SDK's; "
            "that application controls it")
        self.args = (f"{method} {path} -> {status}: {message}; {hint}",)


class ServerError(AriHttpError):
    """5xx: Asterisk failed (503 "Asterisk not booted" while it starts)."""


# -- call control ----------------------------------------------------------------------------


class CallFailedError(AsteriskCtiError):
    """A call (or a leg of it) ended without being answered.

    :ivar dialstatus: ``BUSY``, ``NOANSWER``, ``CONGESTION``, ``CHANUNAVAIL``, ``CANCEL``...
    :ivar cause: the Q.850 hangup cause of the failed channel (0 when unknown).
    :ivar channel_id: the channel that failed.
    """

    def __init__(self, message: str, *, dialstatus: str = "", cause: int = 0,
                 channel_id: str = "") -> None:
        super().__init__(message)
        self.dialstatus = dialstatus
        self.cause = cause
        self.channel_id = channel_id


class CallStateError(AsteriskCtiError):
    """The call is not in a state that allows the operation (no other party to hold, a
    consultation that is not answered yet, an unknown consultation...)."""


def http_error(method: str, path: str, status: int, message: str) -> AriHttpError:
    """Map an HTTP error status to the matching :class:`AriHttpError` subclass.

    :param method: the HTTP method.
    :param path: the (encoded) request path.
    :param status: the HTTP status (>= 400).
    :param message: Asterisk's message.
    :returns: an exception instance, not raised.
    """
    cls: type[AriHttpError]
    text = message.strip().lower()
    if status == 401:
        cls = AuthenticationError
    elif status == 403:
        cls = ForbiddenError
    elif status == 404 or (status == 400 and text == "channel not found"):
        cls = NotFoundError
    elif status in (409, 422) and "not in stasis" in text:
        cls = NotInStasisError
    elif status in (409, 412):
        cls = ChannelStateError if status == 412 else ConflictError
    elif status == 422 and text == "event source does not exist":
        cls = UnknownSourceError
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


# -- connecting: failures that retrying cannot fix ----------------------------------------------


class PermanentConnectError(ConnectError):
    """Connecting failed in a way that retrying cannot fix: the configuration or the server
    must change first.

    :meth:`CtiClient.start` raises it at once (it never waits out its timeout), and a client
    started with ``wait=False`` stops trying and reports it on
    :meth:`ConnectionListener.on_disconnected` (``event.error``). Only the first connection
    of a start is judged so: once connected, the server proved to be Asterisk with these
    credentials, and every later failure (a restarting Asterisk answers 404, then 503) is
    retried with backoff. Refused credentials are reported as
    :class:`AuthenticationError` / :class:`ForbiddenError` instead, a redirect as
    :class:`RedirectError`.
    """


class TlsVerificationError(PermanentConnectError):
    """The server's TLS certificate could not be verified (unknown CA, wrong host name,
    expired). Give its CA bundle as ``verify_tls="/path/ca.pem"``; the SDK never falls back
    to an unverified connection."""


class NotAriServerError(PermanentConnectError):
    """Whatever answers at ``url`` is not Asterisk's ARI: ``/ari/events`` answered 404 or
    another status that is no websocket upgrade (an HTML page), an answer that is not HTTP,
    or a ``101`` that is no websocket. Check the host, the port and ``http.conf``'s
    ``prefix``, and that ``res_ari`` is loaded.

    :ivar status: the HTTP status, when the server sent one.
    """


class InvalidApplicationError(PermanentConnectError):
    """Asterisk refused the application name given to ``/ari/events`` (``400``: Asterisk's
    answer to a missing or invalid ``app``). Choose another ``app``."""
