"""``client.control`` of a desktop: the blocking call control of
:class:`~asterisk_cti.CallControl`, each operation a request to the CTI server.

Every method takes the arguments of its local counterpart and returns the same handles
(:class:`~asterisk_cti.ControlledCall`, :class:`~asterisk_cti.control.Consultation`) or
raises the same exceptions, rebuilt from the server's answer
(:mod:`asterisk_cti.remote.errors`): an application moves from direct ARI to the server by
changing how it builds its client. What a desktop may not do through the server
(``originate`` into a dialplan ``context``, with channel ``variables`` or another
``caller_id``) raises ``ValueError``.

Threads: every method may be called from any thread, listener callbacks included (the
answer is read on paho's network thread, never on a lane), and blocks its caller only.
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Union, cast

from asterisk_cti import Connection, ControlledCall
from asterisk_cti.control import Action, Actions, Consultation, ControlFutures, OperationPool
from asterisk_cti.control.futures import CallSoon
from asterisk_cti.control.handles import channel_id_of

from .errors import RemoteError

if TYPE_CHECKING:
    from asterisk_cti import CallControl

__all__ = ["RemoteControl"]

#: ``request(body, timeout) -> result``: how the control reaches the server (the client's).
Requester = Callable[[Dict[str, Any], float], Dict[str, Any]]
#: ``actions_of(connection_id) -> Actions or None``: what the server last said it allows.
ActionsOf = Callable[[str], Optional[Actions]]

_WAIT_FOR = ("originated", "delivered", "established")
_DTMF = re.compile(r"[0-9A-Da-d*#]+\Z")
_UNKNOWN = "the CTI server has not said yet what it allows on this connection"


def _target(target: Any) -> str:
    """The connection id a target names (the local control's rule, and at most 256
    characters: the server's limit)."""
    if isinstance(target, str) and len(target) > 256:
        raise ValueError("a connection id must be a non-empty string")
    return channel_id_of(target, "connection id")


def _text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string")
    return value


def _wait(wait_for: str) -> str:
    if wait_for not in _WAIT_FOR:
        raise ValueError(f"wait_for must be one of {', '.join(_WAIT_FOR)}")
    return wait_for


def _positive(timeout: Optional[float]) -> Optional[float]:
    if timeout is not None and not 0 < timeout <= 300:
        raise ValueError("timeout must be in (0, 300] seconds")
    return timeout


def _str(result: Mapping[str, Any], key: str, optional: bool = False) -> Optional[str]:
    value = result.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > 256:
        raise RemoteError("", f"the server answered a malformed handle ({key!r})")
    return value


def call_from(result: Mapping[str, Any]) -> ControlledCall:
    """A :class:`~asterisk_cti.ControlledCall` from the server's answer (strict)."""
    ids = result.get("channel_ids", [])
    if not isinstance(ids, list) or len(ids) > 64 or not all(
            isinstance(i, str) and len(i) <= 256 for i in ids):
        raise RemoteError("", "the server answered a malformed handle ('channel_ids')")
    controlled = result.get("controlled", True)
    return ControlledCall(
        call_id=cast(str, _str(result, "call_id")),
        channel_id=cast(str, _str(result, "connection_id")),
        peer_channel_id=_str(result, "peer_connection_id", True),
        bridge_id=_str(result, "bridge_id", True),
        controlled=controlled if isinstance(controlled, bool) else True,
        channel_ids=tuple(ids))


def _consult_from(result: Mapping[str, Any]) -> Consultation:
    call = result.get("call")
    if not isinstance(call, dict):
        raise RemoteError("", "the server answered a malformed consultation")
    return Consultation(consult_id=cast(str, _str(result, "consult_id")),
                        call=call_from(call),
                        channel_id=cast(str, _str(result, "connection_id")),
                        peer_channel_id=cast(str, _str(result, "peer_connection_id")),
                        bridge_id=cast(str, _str(result, "bridge_id")))


class RemoteControl:
    """The blocking call control of a :class:`~asterisk_cti.remote.RemoteClient`, reached
    as ``client.control`` (see the module docstring). Every operation waits for the
    server's answer: its own timeout (for those that take one) plus
    ``RemoteConfig.request_timeout``.

    Every method raises, besides its local counterpart's exceptions:
    :class:`~asterisk_cti.server.AccessDeniedError` (the connection or line is not the
    agent's), :class:`~asterisk_cti.server.BadRequestError`,
    :class:`~asterisk_cti.server.ServerBusyError`,
    :class:`~asterisk_cti.remote.ServerUnavailableError` (no broker or no server),
    :class:`~asterisk_cti.CtiTimeoutError` (no answer in time; the operation may still
    happen) and :class:`~asterisk_cti.remote.RemoteError` (an error it does not know).

    Threads: any thread; each call blocks its caller only.
    """

    def __init__(self, request: Requester, actions_of: ActionsOf, margin: float,
                 workers: int = 4) -> None:
        self._request = request
        self._actions_of = actions_of
        self._margin = margin
        self._workers = workers
        self._lock = threading.Lock()
        self._pool: Optional[OperationPool] = None

    def __repr__(self) -> str:
        return f"<RemoteControl workers={self._workers}>"

    def _ask(self, op: str, body: Dict[str, Any], wait: Optional[float] = None) -> Dict[str, Any]:
        body = {"op": op, **body}
        return self._request(body, (wait or 0.0) + self._margin)

    # -- non-blocking and actions -----------------------------------------------------------------

    def nonblocking(self, call_soon: Optional[CallSoon] = None) -> ControlFutures:
        """Every operation as a :class:`concurrent.futures.Future`, as
        :meth:`CallControl.nonblocking <asterisk_cti.CallControl.nonblocking>` (the same
        :class:`~asterisk_cti.control.ControlFutures`, on threads
        ``asterisk-cti-control-op-N`` ended by the client's ``stop()``). Any thread."""
        with self._lock:
            if self._pool is None:
                self._pool = OperationPool(self._workers)
            pool = self._pool
        return ControlFutures(cast("CallControl", self), pool, call_soon)

    def stop_operations(self, timeout: Optional[float]) -> bool:
        """End the threads of :meth:`nonblocking` (the client's ``stop()``). Any thread."""
        with self._lock:
            pool = self._pool
        return True if pool is None else pool.shutdown(timeout)

    def actions(self, connection: Connection) -> Actions:
        """What a phone bar may offer for ``connection``: what the server's call control
        allowed on it when the server last published its line (with each event). Before
        the server said anything about it, only hangup. Any thread; sends nothing."""
        if not isinstance(connection, Connection):
            raise TypeError("expected a call-model Connection (line.active_connection)")
        known = self._actions_of(connection.connection_id)
        if known is not None:
            return known
        return Actions(connection_id=connection.connection_id,
                       allowed=frozenset({Action.HANGUP}),
                       reasons=tuple((a, _UNKNOWN) for a in Action if a != Action.HANGUP),
                       in_stasis=False)

    # -- calls ----------------------------------------------------------------------------------

    def originate(self, endpoint: str, destination: str, *, context: Optional[str] = None,
                  caller_id: Optional[str] = None,
                  variables: Optional[Mapping[str, str]] = None, timeout: float = 30.0,
                  wait_for: str = "delivered") -> ControlledCall:
        """Click-to-dial from the agent's line ``endpoint`` (one of its lines) to
        ``destination``, through the server: :meth:`CallControl.originate
        <asterisk_cti.CallControl.originate>`. ``context``, ``caller_id`` and ``variables``
        are not available remotely (``ValueError``). Any thread; blocks until ``wait_for``.
        """
        if context is not None or caller_id is not None or variables:
            raise ValueError("context, caller_id and variables are not available through "
                             "the CTI server")
        _text("endpoint", endpoint)
        _text("destination", destination)
        if not 0 < timeout <= 300:
            raise ValueError("timeout must be in (0, 300] seconds")
        result = self._ask("originate", {
            "line": endpoint, "destination": destination, "timeout": timeout,
            "wait_for": _wait(wait_for)}, 2 * timeout)
        return call_from(result)

    def answer(self, target: Any, *, timeout: Optional[float] = None) -> None:
        """:meth:`CallControl.answer <asterisk_cti.CallControl.answer>` through the server.
        Any thread; blocks."""
        body: Dict[str, Any] = {"connection_id": _target(target)}
        if _positive(timeout) is not None:
            body["timeout"] = timeout
        self._ask("answer", body, timeout or 5.0)

    def hangup(self, target: Any, reason: str = "normal", *,
               timeout: Optional[float] = None) -> None:
        """:meth:`CallControl.hangup <asterisk_cti.CallControl.hangup>` through the server.
        Any thread; blocks."""
        body: Dict[str, Any] = {"connection_id": _target(target),
                                "reason": _text("reason", reason)}
        if _positive(timeout) is not None:
            body["timeout"] = timeout
        self._ask("hangup", body, timeout or 5.0)

    def mute(self, target: Any, direction: str = "both") -> None:
        """:meth:`CallControl.mute <asterisk_cti.CallControl.mute>` through the server.
        Any thread; blocks."""
        self._ask("mute", {"connection_id": _target(target), "direction": direction})

    def unmute(self, target: Any, direction: str = "both") -> None:
        """:meth:`CallControl.unmute <asterisk_cti.CallControl.unmute>` through the server.
        Any thread; blocks."""
        self._ask("unmute", {"connection_id": _target(target), "direction": direction})

    def send_dtmf(self, target: Any, digits: str, *, duration_ms: int = 100,
                  between_ms: int = 100) -> None:
        """:meth:`CallControl.send_dtmf <asterisk_cti.CallControl.send_dtmf>` through the
        server, to the connection ``target`` names (a connection id, a
        :class:`~asterisk_cti.Connection` or event of the agent's line). Locally a
        :class:`~asterisk_cti.ControlledCall` sends to its *other* party; that party is on
        no line of the agent, so the server cannot let the agent name it: a
        ``ControlledCall`` raises ``ValueError`` here rather than send elsewhere. Any
        thread; blocks."""
        if isinstance(target, ControlledCall):
            raise ValueError("send_dtmf through the CTI server takes the agent's connection, "
                             "not a ControlledCall (whose digits go to the other party)")
        if not isinstance(digits, str) or not _DTMF.match(digits) or len(digits) > 64:
            raise ValueError("digits must be made of 0-9, A-D, * and #")
        self._ask("send_dtmf", {"connection_id": _target(target), "digits": digits,
                                "duration_ms": int(duration_ms),
                                "between_ms": int(between_ms)},
                  len(digits) * (duration_ms + between_ms) / 1000)

    def redirect(self, target: Any, endpoint: str) -> None:
        """:meth:`CallControl.redirect <asterisk_cti.CallControl.redirect>` through the
        server. Any thread; blocks."""
        self._ask("redirect", {"connection_id": _target(target),
                               "destination": _text("endpoint", endpoint)})

    # -- hold, transfers, conference ------------------------------------------------------------

    def hold(self, target: Any) -> None:
        """:meth:`CallControl.hold <asterisk_cti.CallControl.hold>` through the server.
        Any thread; blocks."""
        self._ask("hold", {"connection_id": _target(target)})

    def retrieve(self, target: Any) -> None:
        """:meth:`CallControl.retrieve <asterisk_cti.CallControl.retrieve>` through the
        server. Any thread; blocks."""
        self._ask("retrieve", {"connection_id": _target(target)})

    def transfer(self, call: Any, destination: str, *, timeout: float = 30.0,
                 wait_for: str = "delivered") -> ControlledCall:
        """Blind transfer: :meth:`CallControl.transfer <asterisk_cti.CallControl.transfer>`
        through the server. Any thread; blocks until ``wait_for``."""
        _positive(timeout)
        return call_from(self._ask("transfer", {
            "connection_id": _target(call), "destination": _text("destination", destination),
            "timeout": timeout, "wait_for": _wait(wait_for)}, 2 * timeout))

    def consult(self, call: Any, destination: str, *, timeout: float = 30.0,
                wait_for: str = "delivered") -> Consultation:
        """Attended transfer, first step: :meth:`CallControl.consult
        <asterisk_cti.CallControl.consult>` through the server. The
        :class:`~asterisk_cti.control.Consultation` it returns is only good for this agent.
        Any thread; blocks until ``wait_for``."""
        _positive(timeout)
        return _consult_from(self._ask("consult", {
            "connection_id": _target(call), "destination": _text("destination", destination),
            "timeout": timeout, "wait_for": _wait(wait_for)}, 2 * timeout))

    def _consult_op(self, op: str, call: Any, consult: Consultation,
                    timeout: Optional[float]) -> ControlledCall:
        if not isinstance(consult, Consultation):
            raise TypeError("expected the Consultation returned by consult()")
        body: Dict[str, Any] = {"connection_id": _target(call),
                                "consult_id": consult.consult_id}
        if _positive(timeout) is not None:
            body["timeout"] = timeout
        return call_from(self._ask(op, body, timeout or 10.0))

    def complete_transfer(self, call: Any, consult: Consultation, *,
                          timeout: Optional[float] = None) -> ControlledCall:
        """Attended transfer, second step: :meth:`CallControl.complete_transfer
        <asterisk_cti.CallControl.complete_transfer>` through the server. Any thread;
        blocks."""
        return self._consult_op("complete_transfer", call, consult, timeout)

    def cancel_transfer(self, call: Any, consult: Consultation, *,
                        timeout: Optional[float] = None) -> ControlledCall:
        """Attended transfer, abandoned: :meth:`CallControl.cancel_transfer
        <asterisk_cti.CallControl.cancel_transfer>` through the server. Any thread;
        blocks."""
        return self._consult_op("cancel_transfer", call, consult, timeout)

    def conference(self, call: Any, *parties: Union[Consultation, ControlledCall, str],
                   timeout: float = 30.0) -> ControlledCall:
        """:meth:`CallControl.conference <asterisk_cti.CallControl.conference>` through the
        server: each party a :class:`~asterisk_cti.control.Consultation` of this agent,
        another call of the agent (:class:`~asterisk_cti.ControlledCall`) or a destination.
        Any thread; blocks."""
        if not parties:
            raise ValueError("conference needs at least one more party")
        _positive(timeout)
        wire: List[Dict[str, str]] = []
        for party in parties:
            if isinstance(party, Consultation):
                wire.append({"consult_id": party.consult_id})
            elif isinstance(party, ControlledCall):
                wire.append({"connection_id": party.channel_id})
            else:
                wire.append({"destination": _text("destination", party)})
        return call_from(self._ask("conference", {
            "connection_id": _target(call), "parties": wire, "timeout": timeout},
            2 * timeout))
