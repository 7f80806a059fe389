"""Call control: blocking, thread-safe operations over ARI REST (``client.control``).

Every operation may be called from any thread (a UI thread, a listener callback) and blocks
the caller until the outcome is known: the event that confirms it arrived, or Asterisk
accepted a request that has no confirming event, or the timeout passed. The wait for an
event is registered *before* the request is sent, and it is fed by the processor thread,
never by a listener lane, so an operation called from inside a listener does not deadlock.

What Asterisk 22 allows (see ``docs/call-control.rst``): on a channel that is not in a Stasis
application only originate, hangup, reading variables and snoop work. Hold, transfer,
conference, mute, DTMF, answer and redirect need the channel in the SDK's own application,
where the SDK owns the bridge. Calls get there in two ways: :meth:`CallControl.originate`
puts them there, and the **switch** takes calls the dialplan sends in with
``Stasis(<app>,dial[,<destination>])``, dials the destination, gives ringback, bridges on
answer and passes busy / no answer back. The Stasis state and the switch live in
:mod:`asterisk_cti.control.engine`.

Threads: the public methods run on the caller's thread. Internal state is guarded by one lock
that is never held while a request or a wait is in progress.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ..ari.rest import ari_path
from ..causes import FAILED_DIALSTATUS, HANGUP_REASONS, dialstatus_for_cause
from ..errors import (
    AsteriskCtiError,
    CallFailedError,
    CallStateError,
    CtiTimeoutError,
    NotInStasisError,
    ServerError,
)
from ..events.catalogue import Event
from ..model.types import ControlHint
from ..pipeline.waiters import Predicate, Waiter
from .engine import StasisEngine
from .options import ControlHost, ControlOptions, channel_ids, new_id, party_of
from .state import ENGINE_EVENT_TYPES, Consult, Leg, OriginatePlan, StasisState

logger = logging.getLogger(__name__)

__all__ = [
    "CallControl",
    "CallFailedError",
    "CallStateError",
    "Consultation",
    "ControlOptions",
    "ControlledCall",
]

_WAIT_FOR = ("originated", "delivered", "established")
_DIRECTIONS = ("both", "in", "out")
_DTMF = re.compile(r"[0-9A-Da-d*#]+\Z")


def _unavailable(exc: AsteriskCtiError, endpoint: str, channel_id: str) -> AsteriskCtiError:
    """``POST /channels`` answered 500 "Allocation failed": Asterisk 22 could not create the
    channel (``ast_dial_prerun`` failed: an unknown PJSIP endpoint, or one with no registered
    contact). That is a call that failed with CHANUNAVAIL, not a server fault."""
    if (isinstance(exc, ServerError) and exc.status == 500
            and exc.message.strip().lower() == "allocation failed"):
        return CallFailedError(
            f"call to {endpoint} failed: CHANUNAVAIL (Asterisk could not create the channel: "
            "unknown endpoint, or not registered)",
            dialstatus="CHANUNAVAIL", channel_id=channel_id)
    return exc


def _raise_unavailable(exc: AsteriskCtiError, endpoint: str, channel_id: str) -> None:
    err = _unavailable(exc, endpoint, channel_id)
    if err is not exc:
        raise err from exc


@dataclass(frozen=True)
class ControlledCall:
    """A handle on a call, returned by :meth:`CallControl.originate` and by the transfer and
    conference operations. Immutable; pass it back to any operation.

    :ivar call_id: the call's id (the first channel's id, which is also the model's call id:
        the SDK originates the second leg with that channel as ``originator``).
    :ivar channel_id: the channel of the party that controls the call (the agent).
    :ivar peer_channel_id: the other party's channel, once known.
    :ivar bridge_id: the SDK's mixing bridge, for a controlled call.
    :ivar controlled: True when the call runs through the SDK's application (full control);
        False for an observed call (dialplan originate): only hangup works on it.
    :ivar channel_ids: every channel of the call the SDK knows of.
    """

    call_id: str
    channel_id: str
    peer_channel_id: Optional[str] = None
    bridge_id: Optional[str] = None
    controlled: bool = True
    channel_ids: Tuple[str, ...] = ()


@dataclass(frozen=True)
class Consultation:
    """An attended transfer in progress, returned by :meth:`CallControl.consult`.

    :ivar consult_id: the id of the consultation (the destination's channel id).
    :ivar call: the original call (held meanwhile).
    :ivar channel_id: the consulting agent's channel.
    :ivar peer_channel_id: the destination's channel.
    :ivar bridge_id: the consultation bridge (agent and destination).
    """

    consult_id: str
    call: ControlledCall
    channel_id: str
    peer_channel_id: str
    bridge_id: str


Target = Union[ControlledCall, str, Any]


class _Outcome:
    """A waiter predicate for a dial: success by ``success(event)``, failure when a watched
    channel is destroyed (with the last failed Dial status seen for it)."""

    def __init__(self, success: Any, watched: Sequence[str]) -> None:
        self._success = success
        self._watched = set(watched)
        self._status: Dict[str, str] = {}
        self.failed: Optional[CallFailedError] = None

    def __call__(self, item: Any) -> bool:
        if not isinstance(item, Event):
            return False
        if self._success(item):
            return True
        etype = item.type
        raw = item.raw
        if etype == "Dial":
            peer = raw.get("peer")
            caller = raw.get("caller")
            status = str(raw.get("dialstatus") or "")
            for party in (peer, caller):
                pid = party.get("id") if isinstance(party, dict) else None
                if pid in self._watched and status in FAILED_DIALSTATUS:
                    self._status[pid] = status
        elif etype == "ChannelDestroyed":
            chan = raw.get("channel")
            cid = chan.get("id") if isinstance(chan, dict) else None
            if cid in self._watched:
                cause = int(raw.get("cause") or 0)
                status = self._status.get(cid) or dialstatus_for_cause(cause)
                self.failed = CallFailedError(
                    f"call to {cid} failed: {status} (cause {cause}"
                    f" {raw.get('cause_txt') or ''})".replace(" )", ")"),
                    dialstatus=status, cause=cause, channel_id=cid)
                return True
        return False


def _is(etype: str, channel_id: str) -> Any:
    def pred(e: Event) -> bool:
        ch = e.raw.get("channel")
        return e.type == etype and isinstance(ch, dict) and ch.get("id") == channel_id
    return pred


def _entered(channel_id: str, bridge_id: str) -> Any:
    def pred(e: Event) -> bool:
        if e.type != "ChannelEnteredBridge":
            return False
        ch, br = e.raw.get("channel"), e.raw.get("bridge")
        return (isinstance(ch, dict) and ch.get("id") == channel_id
                and isinstance(br, dict) and br.get("id") == bridge_id)
    return pred


def _ringing_or_up(channel_id: str) -> Any:
    def pred(e: Event) -> bool:
        raw = e.raw
        if e.type == "Dial":
            peer = raw.get("peer")
            return (isinstance(peer, dict) and peer.get("id") == channel_id
                    and raw.get("dialstatus") in ("RINGING", "ANSWER", "PROGRESS"))
        ch = raw.get("channel")
        if not isinstance(ch, dict) or ch.get("id") != channel_id:
            return False
        if e.type == "ChannelStateChange":
            return ch.get("state") in ("Ringing", "Up")
        return e.type == "StasisStart"
    return pred


def _dial_by(caller_id: str, statuses: Tuple[str, ...]) -> Any:
    def pred(e: Event) -> bool:
        if e.type != "Dial":
            return False
        caller = e.raw.get("caller")
        return (isinstance(caller, dict) and caller.get("id") == caller_id
                and e.raw.get("dialstatus") in statuses)
    return pred


def _check_wait_for(wait_for: str) -> None:
    if wait_for not in _WAIT_FOR:
        raise ValueError(f"wait_for must be one of {', '.join(_WAIT_FOR)}")


def _check_text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string")
    return value


class _KeepTypes:
    """A raw listener that asks the processor for call control's event types and ignores
    the few it gets (StasisStart reaches every raw listener)."""

    def on_event(self, event: Event) -> None:
        """Lane thread; nothing to do."""


def _nothing(channel_id: str) -> bool:
    return False


class CallControl:
    """Blocking call control over ARI, reached as ``client.control``.

    Created lazily by the client; it registers a raw listener (the switch) and a permanent
    waiter (the Stasis state) on creation. Access ``client.control`` once at start-up if the
    dialplan sends calls into the application, so the switch is there when they arrive.

    Thread safety: every method may be called from any thread, including listener callbacks;
    each blocks its caller only.

    :param client: the :class:`~asterisk_cti.CtiClient` (or anything with ``config``, ``rest``,
        ``waiters``, ``model`` and ``add_raw_listener``).
    :param options: dialling and switch options (see :class:`ControlOptions`).
    """

    def __init__(self, client: ControlHost, options: Optional[ControlOptions] = None) -> None:
        self._client = client
        self._options = options or ControlOptions()
        self._lock = threading.Lock()
        self._state = StasisState()
        self._engine = StasisEngine(client, self._state, self._get_options, self._model_held)
        self._ari = self._engine.ari
        # The engine's tap feeds the state and queues the engine's actions, on the processor
        # thread before any wait sees the event; it stays installed for the client's life.
        client.waiters.tap(self._engine.tap)
        # The engine acts on its own thread (StasisEngine.tap queues it); this listener
        # only makes the processor keep the engine's event types, and takes nothing on the
        # lanes.
        self._handle = client.add_raw_listener(_KeepTypes(), ENGINE_EVENT_TYPES, _nothing)

    def wait_engine_idle(self, timeout: float) -> bool:
        """Block until the switch acted on every event it was given so far (any thread; used
        by :meth:`CtiClient.wait_idle`).

        :returns: False on timeout.
        """
        return self._engine.wait_idle(timeout)

    # -- configuration ------------------------------------------------------------------------

    @property
    def options(self) -> ControlOptions:
        """The current :class:`ControlOptions`."""
        with self._lock:
            return self._options

    def configure(self, options: Optional[ControlOptions] = None, **changes: Any) -> ControlOptions:
        """Replace the options, or change some fields (``configure(on_failure="continue")``).

        Any thread; takes effect for the next call the switch or an operation dials.

        :returns: the new options.
        """
        with self._lock:
            base = options or self._options
            self._options = replace(base, **changes) if changes else base
            return self._options

    def _get_options(self) -> ControlOptions:
        with self._lock:
            return self._options

    def _model_held(self, channel_id: str, held: bool) -> None:
        # The model is the processor thread's: prefer the client's hook, which runs set_held
        # there and delivers the held/retrieved events; a bare model is called directly.
        set_held = getattr(self._client, "set_held", None)
        if set_held is None:
            set_held = getattr(getattr(self._client, "model", None), "set_held", None)
        if set_held is None:
            return
        try:
            set_held(channel_id, held)
        except Exception:
            logger.exception("the call model refused set_held(%s, %s)", channel_id, held)

    # -- helpers ------------------------------------------------------------------------------

    @property
    def _app(self) -> str:
        return self._client.config.app

    def _timeout(self, timeout: Optional[float]) -> float:
        if timeout is None:
            return float(self._client.config.request_timeout)
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        return float(timeout)

    def _expect(self, predicate: Any) -> Waiter:
        """Wait for an ARI event matching ``predicate``. The waiters are also offered the
        call model's CTI events; call control's predicates read ARI fields, so those are
        filtered out here, once, rather than in every predicate."""
        return self._client.waiters.expect(
            lambda item: isinstance(item, Event) and bool(predicate(item)))

    def _send(self, send: Callable[[], Any], until: Optional[Predicate] = None,
              creates: Optional[Tuple[str, str]] = None) -> Optional[Waiter]:
        """The one register-wait / send / cancel step: register a wait for an ARI event
        matching ``until`` (when given) *before* the request, send it, and cancel the wait
        when the request fails.

        :param creates: ``(endpoint, channel_id)`` for a request that creates a channel: a
            500 "Allocation failed" then raises :class:`CallFailedError` (CHANUNAVAIL).
        :returns: the wait to block on (None without ``until``).
        """
        waiter = self._expect(until) if until is not None else None
        try:
            send()
        except AsteriskCtiError as exc:
            if waiter is not None:
                waiter.cancel()
            if creates is not None:
                _raise_unavailable(exc, *creates)
            raise
        return waiter

    def _channel_of(self, target: Target) -> str:
        if isinstance(target, ControlledCall):
            return target.channel_id
        if isinstance(target, Consultation):
            return target.channel_id
        if isinstance(target, str):
            if target in (".", ".."):
                # requests un-escapes %2E, so such an id would climb the URL path.
                raise ValueError(f"{target!r} is not a channel id")
            return _check_text("channel id", target)
        for attr in ("channel_id", "connection_id"):
            value = getattr(target, attr, None)
            if isinstance(value, str) and value:
                return value
        connections = getattr(target, "connections", None)
        if connections:
            value = getattr(connections[0], "connection_id", None)
            if isinstance(value, str) and value:
                return value
        raise TypeError(
            "expected a ControlledCall, a channel id, or a model Connection/Call/CallEvent")

    def _require_stasis(self, channel_id: str, method: str, *path: str) -> None:
        if self._state.known_outside(channel_id):
            other = self._state.other_app(channel_id, self._app)
            where = (f"in another application '{other}'" if other
                     else f"outside application '{self._app}'")
            raise NotInStasisError(
                method, ari_path("channels", channel_id, *path), 409,
                f"Channel not in Stasis application (the SDK saw channel {channel_id} {where}; "
                "no request was sent)", other_app=other)

    def _call_peers(self, holder: str) -> Tuple[Optional[str], Tuple[str, ...]]:
        return self._state.bridge_members(holder)

    def _handle_for(self, call_id: str, holder: str, bridge_id: Optional[str]) -> ControlledCall:
        _, peers = self._state.bridge_members(holder)
        return ControlledCall(
            call_id=call_id, channel_id=holder, peer_channel_id=peers[0] if peers else None,
            bridge_id=bridge_id, controlled=True, channel_ids=tuple(channel_ids([holder, *peers])))

    def _call_id_of(self, target: Target, channel_id: str) -> str:
        if isinstance(target, ControlledCall):
            return target.call_id
        bid = self._state.bridge_members(channel_id)[0]
        owner = self._state.call_of_bridge(bid)
        if owner is not None:
            return owner
        value = getattr(target, "call_id", None)
        return value if isinstance(value, str) and value else channel_id

    # -- originate ----------------------------------------------------------------------------

    def originate(
        self,
        endpoint: str,
        destination: str,
        *,
        context: Optional[str] = None,
        caller_id: Optional[str] = None,
        variables: Optional[Mapping[str, str]] = None,
        timeout: float = 30.0,
        wait_for: str = "delivered",
    ) -> ControlledCall:
        """Click-to-dial: ring ``endpoint`` (the agent's phone), then reach ``destination``.

        Without ``context`` the call is **controlled**: the agent's channel is originated into
        the SDK's application (``POST /channels?endpoint=..&app=..&channelId=..``); when the
        agent answers (StasisStart), the SDK plays ringback to the agent, originates the
        destination into the application with the agent as ``originator``, and when it
        answers puts both in a mixing bridge the SDK owns. A busy or unanswered destination
        hangs the agent up with the matching cause.

        With ``context`` it is the classic dialplan originate
        (``POST /channels?endpoint=..&extension=<destination>&context=..&priority=1``): an
        **observed** call (``controlled=False``); only :meth:`hangup` works on it. Its
        ``delivered``/``established`` waits need events for the agent's channel, so monitor
        the agent's line (or use ``wait_for="originated"``).

        Any thread; blocks the caller until ``wait_for``:

        * ``"originated"``: Asterisk accepted the request (the agent's phone rings);
        * ``"delivered"``: the destination rings (Dial RINGING / ChannelStateChange Ringing);
        * ``"established"``: the destination answered and is in the bridge
          (ChannelEnteredBridge; for a dialplan originate: Dial ANSWER).

        :param endpoint: the agent's endpoint, ``PJSIP/1000``.
        :param destination: what to dial: an extension (mapped by
            :attr:`ControlOptions.endpoint_for`, ``PJSIP/<destination>`` by default) or an
            endpoint; with ``context``, the extension in that context.
        :param context: dialplan context for an observed (dialplan) originate.
        :param caller_id: the caller id the destination sees (``"Kai" <1000>``).
        :param variables: channel variables for the originated channels.
        :param timeout: seconds each phone may ring.
        :param wait_for: ``"originated"``, ``"delivered"`` or ``"established"``.
        :returns: a :class:`ControlledCall`.
        :raises CallFailedError: the agent or the destination did not answer, was busy...;
            also (``dialstatus`` CHANUNAVAIL) when Asterisk cannot create the channel of an
            unknown or unregistered endpoint (it answers 500 "Allocation failed").
        :raises CtiTimeoutError: no outcome in time (the SDK then hangs up what it started).
        :raises AriHttpError: Asterisk refused the request (bad endpoint: 400/404...).
        :raises TransportError: Asterisk could not be reached.
        """
        _check_text("endpoint", endpoint)
        _check_text("destination", destination)
        _check_wait_for(wait_for)
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        agent_id = new_id("cti-c")
        if context is not None:
            return self._originate_dialplan(endpoint, destination, _check_text("context", context),
                                            agent_id, caller_id, variables, timeout, wait_for)
        options = self._get_options()
        dest_endpoint = options.endpoint_for(destination)
        dest_id, bridge_id = new_id("cti-c"), new_id("cti-b")
        leg = Leg(
            channel_id=dest_id, endpoint=dest_endpoint, purpose="originate", peer_id=agent_id,
            bridge_id=bridge_id, call_id=agent_id, create_bridge=True,
            join=(agent_id, dest_id), on_failure="hangup",
        )
        # The destination sees the agent (its configured caller id), not the number the
        # agent's phone was shown for the destination.
        plan = OriginatePlan(agent_id, leg, caller_id or self._engine.identity(endpoint),
                             variables, timeout)
        # The agent's line goes outgoing: it places the call (not an incoming screen-pop).
        self._engine.hint(agent_id, ControlHint(
            "agent", calling=party_of(plan.caller_id, endpoint),
            called=party_of(self._engine.identity(dest_endpoint), destination),
            purpose="originate"))
        handle = ControlledCall(agent_id, agent_id, dest_id, bridge_id, True, (agent_id, dest_id))
        outcome: Optional[_Outcome] = None
        if wait_for != "originated":
            success = (_ringing_or_up(dest_id) if wait_for == "delivered"
                       else _entered(dest_id, bridge_id))
            outcome = _Outcome(success, (agent_id, dest_id))
        self._state.add_plan(plan)
        params: Dict[str, Any] = {
            "endpoint": endpoint, "app": self._app, "appArgs": "cti,originate",
            "channelId": agent_id, "timeout": max(1, round(timeout)),
            # the agent's phone shows whom it is about to call
            "callerId": (self._engine.identity(dest_endpoint)
                         or f'"{destination}" <{destination}>'),
        }
        try:
            waiter = self._send(partial(self._ari.channels.originate, params, variables),
                                outcome, creates=(endpoint, agent_id))
        except AsteriskCtiError:
            self._state.take_plan(agent_id)
            raise
        logger.info("originate %s -> %s (%s): agent channel %s", endpoint, destination,
                    dest_endpoint, agent_id)
        if waiter is None or outcome is None:
            return handle
        budget = timeout * (1 if wait_for == "delivered" else 2) + self._timeout(None)
        self._await(waiter, outcome, budget, f"{destination} to be {wait_for}",
                    cleanup=(agent_id, dest_id))
        return handle

    def _originate_dialplan(
        self, endpoint: str, destination: str, context: str, agent_id: str,
        caller_id: Optional[str], variables: Optional[Mapping[str, str]], timeout: float,
        wait_for: str,
    ) -> ControlledCall:
        outcome: Optional[_Outcome] = None
        if wait_for != "originated":
            statuses = ("RINGING", "ANSWER") if wait_for == "delivered" else ("ANSWER",)
            outcome = _Outcome(_dial_by(agent_id, statuses), (agent_id,))
        params: Dict[str, Any] = {
            "endpoint": endpoint, "extension": destination, "context": context,
            "priority": 1, "channelId": agent_id, "timeout": max(1, round(timeout)),
        }
        if caller_id:
            params["callerId"] = caller_id
        waiter = self._send(partial(self._ari.channels.originate, params, variables),
                            outcome, creates=(endpoint, agent_id))
        handle = ControlledCall(agent_id, agent_id, None, None, False, (agent_id,))
        if waiter is None or outcome is None:
            return handle
        event = self._await(waiter, outcome, 2 * timeout + self._timeout(None),
                            f"{destination}@{context} to be {wait_for}", cleanup=(agent_id,))
        peer = event.raw.get("peer") if isinstance(event, Event) else None
        peer_id = peer.get("id") if isinstance(peer, dict) else None
        return replace(handle, peer_channel_id=peer_id,
                       channel_ids=tuple(channel_ids([agent_id, peer_id])))

    def _await(self, waiter: Waiter, outcome: _Outcome, timeout: float, what: str,
               cleanup: Sequence[str] = ()) -> Any:
        try:
            event = waiter.wait(timeout, what)
        except CtiTimeoutError:
            for channel_id in cleanup:
                self._engine.hangup(channel_id)
            for channel_id in cleanup:
                self._state.take_plan(channel_id)
            raise
        if outcome.failed is not None:
            raise outcome.failed
        return event

    # -- single-channel operations ------------------------------------------------------------

    def answer(self, target: Target, *, timeout: Optional[float] = None) -> None:
        """Answer a ringing channel that is in the SDK's application.

        Sends ``POST /channels/{id}/answer`` and waits for ChannelStateChange ``Up`` (returns
        at once when the channel is already up). Any thread; blocks the caller.

        :raises NotInStasisError: the channel is not in the application.
        :raises NotFoundError: the channel is gone.
        :raises CtiTimeoutError: no state change in time.
        """
        channel_id = self._channel_of(target)
        self._require_stasis(channel_id, "POST", "answer")
        up_already = self._state.state_of(channel_id) == "Up"
        waiter = self._send(partial(self._ari.channels.answer, channel_id),
                            None if up_already else self._state_up(channel_id))
        if waiter is not None:
            waiter.wait(self._timeout(timeout), f"channel {channel_id} to answer")

    @staticmethod
    def _state_up(channel_id: str) -> Any:
        def pred(e: Any) -> bool:
            if not isinstance(e, Event) or e.type != "ChannelStateChange":
                return False
            ch = e.raw.get("channel")
            return isinstance(ch, dict) and ch.get("id") == channel_id and ch.get("state") == "Up"
        return pred

    def hangup(self, target: Target, reason: str = "normal", *,
               timeout: Optional[float] = None) -> None:
        """Hang up a channel (for a :class:`ControlledCall`: the agent's channel; the SDK then
        ends a two-party call by hanging up the other party and destroying its bridge).

        Works on any channel, in Stasis or not. Sends ``DELETE /channels/{id}?reason=`` and
        waits for ChannelDestroyed when the SDK receives events for the channel (its line is
        monitored or it is in the application); otherwise returns once Asterisk accepted.
        Any thread; blocks the caller.

        :param reason: an ARI hangup reason: ``normal``, ``busy``, ``congestion``,
            ``no_answer``, ``rejected``, ``answered_elsewhere``...
        :raises NotFoundError: the channel is already gone.
        :raises CtiTimeoutError: no ChannelDestroyed in time.
        """
        channel_id = self._channel_of(target)
        if reason not in HANGUP_REASONS:
            raise ValueError(f"unknown hangup reason {reason!r}")
        waiter = self._send(partial(self._ari.channels.hangup, channel_id, reason),
                            _is("ChannelDestroyed", channel_id)
                            if self._state.visible(channel_id) else None)
        if waiter is not None:
            waiter.wait(self._timeout(timeout), f"channel {channel_id} to hang up")

    def mute(self, target: Target, direction: str = "both") -> None:
        """Mute a channel: ``in`` (what it says is not heard), ``out`` (it hears nothing) or
        ``both``. For a :class:`ControlledCall`, the agent's channel.

        ``POST /channels/{id}/mute?direction=``. ARI sends no event for it: returns when
        Asterisk accepted. Any thread; blocks the caller.

        :raises NotInStasisError: the channel is not in the application.
        """
        self._mute("POST", target, direction)

    def unmute(self, target: Target, direction: str = "both") -> None:
        """Undo :meth:`mute` (``DELETE /channels/{id}/mute?direction=``). Any thread."""
        self._mute("DELETE", target, direction)

    def _mute(self, method: str, target: Target, direction: str) -> None:
        if direction not in _DIRECTIONS:
            raise ValueError("direction must be 'both', 'in' or 'out'")
        channel_id = self._channel_of(target)
        self._require_stasis(channel_id, method, "mute")
        if method == "POST":
            self._ari.channels.mute(channel_id, direction)
        else:
            self._ari.channels.unmute(channel_id, direction)

    def send_dtmf(self, target: Target, digits: str, *, duration_ms: int = 100,
                  between_ms: int = 100) -> None:
        """Send DTMF digits to a channel (``POST /channels/{id}/dtmf?dtmf=``): for a
        :class:`ControlledCall` to the other party (an IVR the agent called), for a channel id
        to that channel. Returns when Asterisk has played the digits. Any thread; blocks.

        :param digits: ``0-9``, ``A-D``, ``*``, ``#``.
        :raises NotInStasisError: the channel is not in the application.
        """
        if not isinstance(digits, str) or not _DTMF.match(digits):
            raise ValueError("digits must be made of 0-9, A-D, * and #")
        if isinstance(target, ControlledCall):
            channel_id = target.peer_channel_id or target.channel_id
        else:
            channel_id = self._channel_of(target)
        self._require_stasis(channel_id, "POST", "dtmf")
        self._ari.channels.dtmf(channel_id, digits.upper(), int(duration_ms), int(between_ms))

    def redirect(self, target: Target, endpoint: str) -> None:
        """Redirect a channel to another endpoint (``POST /channels/{id}/redirect?endpoint=``).

        Use it where the phone *should* call the target itself: on an unanswered PJSIP channel
        Asterisk answers with a 302, on an **answered** PJSIP channel it sends a SIP REFER and
        the phone calls the target directly, bypassing Asterisk (and the SDK loses the call).
        For a transfer that stays under control use :meth:`transfer`. No confirming event:
        returns when Asterisk accepted. Any thread; blocks the caller.

        :raises NotInStasisError: the channel is not in the application.
        """
        _check_text("endpoint", endpoint)
        channel_id = self._channel_of(target)
        self._require_stasis(channel_id, "POST", "redirect")
        self._ari.channels.redirect(channel_id, endpoint)

    # -- hold -----------------------------------------------------------------------------------

    def hold(self, target: Target) -> None:
        """Put the call on hold for the party ``target`` names (the agent).

        The other parties in the SDK's bridge hear music on hold and are muted towards the
        agent: ``POST /channels/{peer}/hold`` (Asterisk 22 plays its default music class; with
        :attr:`ControlOptions.moh_class`, ``POST /channels/{peer}/moh?mohClass=``), then
        ``POST /channels/{peer}/mute?direction=in``. A channel in no SDK bridge (a caller
        waiting in the application) gets the music itself. ARI emits no ChannelHold for
        this, so the SDK marks the agent's connection held in the call model
        (``model.set_held``). Returns when Asterisk accepted. Any thread; blocks the caller.

        :raises NotInStasisError: the call does not run through the SDK's application.
        :raises NotFoundError: a channel is gone.
        """
        holder = self._channel_of(target)
        self._require_stasis(holder, "POST", "hold")
        if self._state.is_holding(holder):
            return
        _, peers = self._call_peers(holder)
        for peer in peers:
            self._require_stasis(peer, "POST", "hold")
        self._engine.hold(holder, peers)
        logger.info("hold: %s holds %s", holder, ", ".join(peers or (holder,)))

    def retrieve(self, target: Target) -> None:
        """Take the call of ``target`` (the agent) off hold: ``DELETE /channels/{peer}/hold``
        (or ``/moh``) and ``DELETE /channels/{peer}/mute?direction=in`` for every party it
        held; parties that hung up meanwhile are skipped. Marks the connection not held in the
        call model. Returns when Asterisk accepted. Any thread; blocks the caller.

        A call the SDK did not put on hold (held from the desk phone) is retrieved the same
        way; a channel in no SDK bridge gets ``DELETE /channels/{id}/hold`` itself, so an
        unknown or gone id raises instead of passing silently. Calling it twice is harmless.

        :raises NotInStasisError: the call does not run through the SDK's application.
        :raises NotFoundError: the channel is unknown or gone.
        """
        holder = self._channel_of(target)
        self._require_stasis(holder, "DELETE", "hold")
        # bridge_members takes the state lock itself: never call it with the lock held (it
        # is not reentrant; that deadlocked the whole client on a call not held by the SDK).
        known = self._state.is_holding(holder)
        if not known:
            _, peers = self._state.bridge_members(holder)
            if not peers:
                # Nothing the SDK put on hold (held from the desk phone, an unknown id, a
                # second retrieve): take the channel itself off hold, and let Asterisk say
                # if it is gone (404) or not ours (409).
                self._engine.unhold_self(holder)
                return
            self._state.note_held(holder, peers, replace=False)
        self._engine.unhold(holder)
        if not known:
            self._model_held(holder, False)

    # -- transfers ------------------------------------------------------------------------------

    def _bridge_call(self, target: Target) -> Tuple[str, str, str, Tuple[str, ...]]:
        holder = self._channel_of(target)
        self._require_stasis(holder, "POST", "transfer")
        bid, peers = self._call_peers(holder)
        if bid is None or not peers:
            raise CallStateError(
                f"channel {holder} is not talking to anybody in a bridge of the SDK; transfer "
                "and conference need a call that runs through the SDK's application")
        return holder, bid, self._call_id_of(target, holder), peers

    def transfer(self, call: Target, destination: str, *, timeout: float = 30.0,
                 wait_for: str = "delivered") -> ControlledCall:
        """Blind transfer: the agent drops out at once, the other party hears ringback while
        the SDK dials ``destination`` into its application, and is bridged with it on answer.
        If the destination fails, the other party is hung up with the matching cause.

        Sends ``DELETE /channels/{agent}``, ``POST /bridges/{id}/play?media=tone:ring``,
        ``POST /channels?endpoint=..&app=..&originator=<party>``, then (on answer)
        ``POST /bridges/{id}/addChannel``. Any thread; blocks the caller until ``wait_for``
        (``"originated"``, ``"delivered"``: the destination rings, ``"established"``: it is
        in the bridge).

        :returns: a handle on the transferred call (``channel_id`` is the transferred party).
        :raises CallStateError: the agent is not in a call the SDK controls.
        :raises CallFailedError: the destination did not answer (when waiting for it).
        """
        _check_text("destination", destination)
        _check_wait_for(wait_for)
        holder, bid, call_id, peers = self._bridge_call(call)
        dest_id = new_id("cti-c")
        leg = Leg(channel_id=dest_id, endpoint=self._get_options().endpoint_for(destination),
                  purpose="transfer", peer_id=peers[0], bridge_id=bid, call_id=call_id,
                  join=(dest_id,), on_failure="hangup")
        self._engine.protect(bid, +1)
        try:
            was_held = self._state.is_holding(holder)
            # the agent leaves by the transfer: cleared as transferred, the others told
            self._engine.hint(holder, ControlHint(
                "transfer", transferees=peers,
                called=party_of(self._engine.identity(leg.endpoint), destination)))
            if was_held:
                self._engine.unhold(holder)
            self._engine.hangup(holder)
            try:
                leg.ringback = ("playback", self._engine.play(
                    "bridges", bid, self._get_options().ringback))
            except AsteriskCtiError as exc:
                logger.info("transfer: no ringback in %s: %s", bid, exc)
            waiter, outcome = self._dial_leg(leg, wait_for, timeout)
        finally:
            self._engine.protect(bid, -1)
        logger.info("blind transfer of %s to %s (%s)", ", ".join(peers), destination, dest_id)
        if waiter is not None and outcome is not None:
            self._await(waiter, outcome, timeout + self._timeout(None), f"{destination} to be "
                        f"{wait_for}")
        return ControlledCall(call_id, peers[0], dest_id, bid, True, (*peers, dest_id))

    def _dial_leg(self, leg: Leg, wait_for: str,
                  timeout: float) -> Tuple[Optional[Waiter], Optional[_Outcome]]:
        """Dial ``leg`` into the app with a wait for ``wait_for`` registered first (none for
        ``originated``); the wait is cancelled when the dial request fails."""
        outcome: Optional[_Outcome] = None
        if wait_for != "originated":
            success = (_ringing_or_up(leg.channel_id) if wait_for == "delivered"
                       else _entered(leg.channel_id, leg.bridge_id))
            outcome = _Outcome(success, (leg.channel_id,))
        waiter = self._send(partial(self._engine.dial, leg, timeout=timeout), outcome,
                            creates=(leg.endpoint, leg.channel_id))
        return waiter, outcome

    def consult(self, call: Target, destination: str, *, timeout: float = 30.0,
                wait_for: str = "delivered") -> Consultation:
        """Attended transfer, first step: put the call on hold (see :meth:`hold`), move the
        agent into a new consultation bridge with ringback, and dial ``destination`` into it.
        Then :meth:`complete_transfer`, :meth:`cancel_transfer` or :meth:`conference`.

        If the destination fails, the agent goes back to the held call's bridge (still held:
        :meth:`retrieve` it) and :class:`CallFailedError` is raised. If the agent hangs up
        during an answered consultation, the transfer completes (as on a phone).
        Any thread; blocks the caller until ``wait_for``.

        :returns: a :class:`Consultation`.
        :raises CallStateError: the agent is not in a call the SDK controls.
        :raises CallFailedError: the destination did not answer (when waiting for it).
        """
        _check_text("destination", destination)
        _check_wait_for(wait_for)
        holder, bid, call_id, peers = self._bridge_call(call)
        self.hold(holder)
        dest_id, consult_bid = new_id("cti-c"), new_id("cti-b")
        record = Consult(dest_id, call_id, holder, dest_id, bid, consult_bid)
        self._engine.protect(bid, +1)
        self._state.add_consult(record)
        try:
            self._engine.create_bridge(consult_bid, call_id, protect=1)
            self._engine.remove_from_bridge(bid, holder)
            self._engine.add_to_bridge(consult_bid, (holder,))
        except AsteriskCtiError:
            self._engine.transfers.consult_return(record)
            raise
        leg = Leg(channel_id=dest_id, endpoint=self._get_options().endpoint_for(destination),
                  purpose="consult", peer_id=holder, bridge_id=consult_bid, call_id=call_id,
                  join=(dest_id,), on_failure="return")
        try:
            record.playback = self._engine.play("bridges", consult_bid,
                                                self._get_options().ringback)
            leg.ringback = ("playback", record.playback)
        except AsteriskCtiError as exc:
            logger.info("consult: no ringback in %s: %s", consult_bid, exc)
        waiter, outcome = self._dial_leg(leg, wait_for, timeout)
        original = ControlledCall(call_id, holder, peers[0], bid, True, (holder, *peers))
        if waiter is not None and outcome is not None:
            self._await(waiter, outcome, timeout + self._timeout(None),
                        f"{destination} to be {wait_for}")
        logger.info("consultation %s: %s -> %s", dest_id, holder, destination)
        return Consultation(dest_id, original, holder, dest_id, consult_bid)

    def _consult_record(self, consult: Consultation) -> Consult:
        if not isinstance(consult, Consultation):
            raise TypeError("expected the Consultation returned by consult()")
        record = self._state.consult(consult.consult_id)
        if record is None:
            raise CallStateError(f"consultation {consult.consult_id} is over")
        return record

    def complete_transfer(self, call: Target, consult: Consultation, *,
                          timeout: Optional[float] = None) -> ControlledCall:
        """Attended transfer, second step: the destination joins the held party, which is
        taken off hold, and the agent drops out.

        Sends ``POST /bridges/{consult}/removeChannel``, ``POST /bridges/{call}/addChannel``,
        ``DELETE /channels/{peer}/hold`` and ``/mute``, ``DELETE /channels/{agent}``,
        ``DELETE /bridges/{consult}``; waits for ChannelEnteredBridge of the destination.
        Any thread; blocks the caller.

        :raises CallStateError: the consultation is over or not answered yet.
        """
        record = self._consult_record(consult)
        if not record.answered:
            raise CallStateError("the consultation is not answered yet; cancel it or wait")
        waiter = self._send(partial(self._engine.transfers.consult_complete, record),
                            _entered(record.dest_id, record.call_bridge))
        assert waiter is not None
        waiter.wait(self._timeout(timeout), "the transfer to complete")
        peers = tuple(p for p in consult.call.channel_ids if p != record.agent_id)
        first = peers[0] if peers else record.dest_id
        return ControlledCall(record.call_id, first, record.dest_id, record.call_bridge, True,
                              tuple(channel_ids([*peers, record.dest_id])))

    def cancel_transfer(self, call: Target, consult: Consultation, *,
                        timeout: Optional[float] = None) -> ControlledCall:
        """Attended transfer, abandoned: hang up the destination, put the agent back with the
        held call and take it off hold.

        Sends ``DELETE /channels/{dest}``, ``POST /bridges/{consult}/removeChannel``,
        ``POST /bridges/{call}/addChannel``, ``DELETE /bridges/{consult}``, then
        :meth:`retrieve`; waits for ChannelEnteredBridge of the agent. Any thread; blocks.

        :raises CallStateError: the consultation is already over.
        """
        record = self._consult_record(consult)
        waiter = self._expect(_entered(record.agent_id, record.call_bridge))
        self._state.cancel_leg(record.dest_id)
        self._engine.hangup(record.dest_id)
        self._engine.transfers.consult_return(record)
        waiter.wait(self._timeout(timeout), "the agent to return to the call")
        self.retrieve(record.agent_id)
        return self._handle_for(record.call_id, record.agent_id, record.call_bridge)

    def conference(self, call: Target, *parties: Union[Consultation, ControlledCall, str],
                   timeout: float = 30.0) -> ControlledCall:
        """Bring more parties into the call's mixing bridge (three or more parties talk).

        Each party is a :class:`Consultation` (its destination and the agent join the call,
        the consultation bridge is destroyed), another :class:`ControlledCall` (its parties
        are moved over), or a destination to dial into the bridge. Parties held by the agent
        are taken off hold. Sends ``removeChannel``/``addChannel`` and ``POST /channels``;
        waits for ChannelEnteredBridge of every new party. Any thread; blocks the caller.

        :returns: a handle listing every channel of the conference.
        :raises CallStateError: the call does not run through an SDK bridge.
        :raises CallFailedError: a dialled party did not answer (the others stay).
        """
        if not parties:
            raise ValueError("conference needs at least one more party")
        holder = self._channel_of(call)
        consults = [p for p in parties if isinstance(p, Consultation)]
        record = self._consult_record(consults[0]) if consults else None
        if record is not None:
            bid, call_id = record.call_bridge, record.call_id
        else:
            holder, bid, call_id, _ = self._bridge_call(call)
        moves: List[Tuple[str, str]] = []
        dials: List[str] = []
        records: List[Consult] = []
        for party in parties:
            if isinstance(party, Consultation):
                rec = self._consult_record(party)
                records.append(rec)
                if not rec.answered:
                    raise CallStateError("the consultation is not answered yet")
                moves += [(rec.consult_bridge, rec.dest_id), (rec.consult_bridge, rec.agent_id)]
            elif isinstance(party, ControlledCall):
                other, _ = self._state.bridge_members(party.channel_id)
                if other is None:
                    raise CallStateError(f"call {party.call_id} is not in an SDK bridge")
                members = self._state.members_of(other)
                moves += [(other, m) for m in members if other != bid]
            else:
                dials.append(_check_text("destination", party))
        waiters: List[Tuple[Waiter, Optional[_Outcome], str]] = []
        for _, channel_id in moves:
            waiters.append((self._expect(_entered(channel_id, bid)), None, channel_id))
        legs: List[Leg] = []
        options = self._get_options()
        for destination in dials:
            leg = Leg(channel_id=new_id("cti-c"), endpoint=options.endpoint_for(destination),
                      purpose="conference", peer_id=holder, bridge_id=bid, call_id=call_id,
                      on_failure="none")
            leg.join = (leg.channel_id,)
            outcome = _Outcome(_entered(leg.channel_id, bid), (leg.channel_id,))
            waiters.append((self._expect(outcome), outcome, destination))
            legs.append(leg)
        self._engine.protect(bid, +1)
        try:
            sources = {src for src, _ in moves}
            for rec in records:
                self._state.end_consult(rec.consult_id)
            for rec in records:
                self._engine.stop_playback(rec.playback)
            for src in sources:
                self._engine.protect(src, +1)
            for src, channel_id in moves:
                self._engine.remove_from_bridge(src, channel_id)
                self._engine.add_to_bridge(bid, (channel_id,))
            for src in sources:
                self._engine.destroy_bridge(src)
            for _ in records:
                self._engine.protect(bid, -1)
            self._engine.unhold(holder)
            for leg in legs:
                try:
                    self._engine.dial(leg, timeout=timeout)
                except AsteriskCtiError as exc:
                    _raise_unavailable(exc, leg.endpoint, leg.channel_id)
                    raise
        except AsteriskCtiError:
            for waiter, _, _ in waiters:
                waiter.cancel()
            raise
        finally:
            self._engine.protect(bid, -1)
        failures: List[CallFailedError] = []
        for waiter, watch, what in waiters:
            try:
                if watch is not None:
                    self._await(waiter, watch, timeout + self._timeout(None), f"{what} to join")
                else:
                    waiter.wait(self._timeout(None), f"{what} to join the conference")
            except CallFailedError as exc:
                failures.append(exc)
        if failures:
            raise failures[0]
        members = self._state.members_of(bid)
        others = tuple(m for m in members if m != holder)
        return ControlledCall(call_id, holder, others[0] if others else None, bid, True,
                              tuple(channel_ids([holder, *others])))

    # -- introspection --------------------------------------------------------------------------

    def in_stasis(self, channel_id: str) -> bool:
        """True when the channel is in the SDK's application (StasisStart seen, no StasisEnd
        since), so every operation works on it. Any thread; does not block."""
        return self._state.is_in_stasis(channel_id)

    def close(self) -> None:
        """Stop the switch (remove the raw listener). Calls in progress keep running in
        Asterisk. Any thread."""
        remove = getattr(self._handle, "remove", None)
        if remove is not None:
            remove()

    def __repr__(self) -> str:
        in_stasis, bridges, legs = self._state.counts()
        return (f"CallControl(app={self._app!r}, in_stasis={in_stasis}, bridges={bridges}, "
                f"legs={legs})")

