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
answer and passes busy / no answer back. The Stasis state lives in
:mod:`asterisk_cti.control.state`, the switch in :mod:`asterisk_cti.control.engine` and
:mod:`asterisk_cti.control.switch`; hold and the transfers in
:mod:`asterisk_cti.control.transfers`.

Threads: the public methods run on the caller's thread. Internal state has one owner
(:class:`~asterisk_cti.control.state.StasisState`) whose lock is never held while a request or
a wait is in progress.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from functools import partial
from typing import Any, Dict, Mapping, Optional, Sequence, Union

from ..calldata import (
    INHERITED_VARIABLE,
    VARIABLE,
    decode_call_data,
    encode_call_data,
    merge_call_data,
)
from ..causes import HANGUP_REASONS
from ..errors import (
    AsteriskCtiError,
    CallFailedError,
    CallStateError,
    InvalidResponseError,
    NotFoundError,
)
from ..events.catalogue import Event
from ..model.types import ControlHint
from .base import _check_text, _check_wait_for
from .futures import CallSoon, ControlFutures
from .handles import Consultation, ControlledCall, Target
from .options import ControlOptions, channel_ids, new_id, party_of
from .predicates import DialOutcome, dial_by, entered, event_of, ringing_or_up, state_up
from .state import Leg, OriginatePlan
from .transfers import TransferOperations

logger = logging.getLogger(__name__)

__all__ = [
    "CallControl",
    "CallFailedError",
    "CallStateError",
    "Consultation",
    "ControlOptions",
    "ControlledCall",
]

_DIRECTIONS = ("both", "in", "out")
_DTMF = re.compile(r"[0-9A-Da-d*#]+\Z")


class CallControl(TransferOperations):
    """Blocking call control over ARI, reached as ``client.control``.

    Created lazily by the client; it registers a raw listener (the switch's event types) and
    a tap (the Stasis state) on creation. Access ``client.control`` once at start-up if the
    dialplan sends calls into the application, so the switch is there when they arrive.

    Thread safety: every method may be called from any thread, including listener callbacks;
    each blocks its caller only.

    :param client: the :class:`~asterisk_cti.CtiClient` (or anything with ``config``, ``rest``,
        ``waiters``, ``model``, ``add_raw_listener`` and ``set_held``).
    :param options: dialling and switch options (see :class:`ControlOptions`).
    """


    # -- non-blocking -------------------------------------------------------------------------

    def nonblocking(self, call_soon: Optional[CallSoon] = None) -> ControlFutures:
        """Every operation of this call control as a :class:`concurrent.futures.Future`.

        ``control.nonblocking(call_soon).hold(call)`` returns at once; the operation runs on
        one of call control's operation threads (``asterisk-cti-control-op-N``, at most
        :attr:`ControlOptions.operation_workers`, started on first use, ended by the client's
        ``stop()``). Its result, or the same typed exception the blocking call raises,
        completes the future. Callbacks added with ``future.add_done_callback(fn)`` are handed
        to ``call_soon`` so they run on your thread (a GUI loop); without ``call_soon`` they
        run on the operation thread. A queued operation can be cancelled
        (``future.cancel()``), a running one cannot (see
        :mod:`asterisk_cti.control.futures`).

        Any thread; cheap (a view sharing the one pool).

        :param call_soon: a function that runs the function it is given soon on your thread,
            callable from any thread (Tk: ``lambda fn: root.after(0, fn)``; asyncio:
            ``loop.call_soon_threadsafe``).
        """
        return ControlFutures(self, self._operation_pool(), call_soon)

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
        outcome: Optional[DialOutcome] = None
        if wait_for != "originated":
            success = (ringing_or_up(dest_id) if wait_for == "delivered"
                       else entered(dest_id, bridge_id))
            outcome = DialOutcome(success, (agent_id, dest_id))
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
        outcome: Optional[DialOutcome] = None
        if wait_for != "originated":
            statuses = ("RINGING", "ANSWER") if wait_for == "delivered" else ("ANSWER",)
            outcome = DialOutcome(dial_by(agent_id, statuses), (agent_id,))
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
                            None if up_already else state_up(channel_id))
        if waiter is not None:
            waiter.wait(self._timeout(timeout), f"channel {channel_id} to answer")

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
                            event_of("ChannelDestroyed", channel_id)
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

    def play(self, target: Target, media: Union[str, Sequence[str]], *,
             lang: Optional[str] = None, playback_id: Optional[str] = None) -> str:
        """Play media to a channel in the application (``POST
        /channels/{id}/play/{playbackId}?media=``): Asterisk sounds (``sound:hello-world``,
        a file of yours ``sound:/var/lib/asterisk/sounds/custom/welcome``), ``recording:``,
        ``digits:``, ``number:``, ``characters:``, ``tone:``; several play one after the other.
        Returns the playback id at once (Asterisk queued it); ``PlaybackStarted`` and
        ``PlaybackFinished`` follow (raw events; add their types to a raw listener to get
        them). Any thread; blocks the caller for the request only.

        :param lang: the language of the sounds (default: the channel's).
        :raises ValueError: empty media, or a medium with a comma.
        :raises NotInStasisError: the channel is not in the application.
        """
        items = [media] if isinstance(media, str) else list(media)
        if not items or any(not isinstance(m, str) or not m.strip() or "," in m
                            for m in items):
            raise ValueError("media must be non-empty strings without commas")
        channel_id = self._channel_of(target)
        self._require_stasis(channel_id, "POST", "play")
        pid = playback_id or new_id("cti-p")
        self._ari.channels.play(channel_id, pid, ",".join(items), lang)
        return pid

    def stop_playback(self, playback_id: str) -> bool:
        """Stop a playback (``DELETE /playbacks/{id}``); its ``PlaybackFinished`` follows.
        Any thread; blocks the caller for the request only.

        :returns: False when Asterisk no longer knows it (it had finished).
        """
        try:
            self._ari.playbacks.stop(_check_text("playback id", playback_id))
        except NotFoundError:
            return False
        return True

    def continue_in_dialplan(self, target: Target, *, context: Optional[str] = None,
                             extension: Optional[str] = None,
                             priority: Optional[int] = None,
                             variables: Optional[Mapping[str, str]] = None) -> None:
        """Let a channel leave the application and go on in the dialplan (``POST
        /channels/{id}/continue``): at the priority after its ``Stasis()``, or at
        ``context``/``extension``/``priority``. ``StasisEnd`` follows. Any thread; blocks the
        caller for the requests only.

        :param variables: channel variables to set first (``POST /channels/{id}/variable``
            each), for the dialplan to read (``IVR_STATUS``).
        :raises NotInStasisError: the channel is not in the application.
        """
        channel_id = self._channel_of(target)
        if priority is not None and (not isinstance(priority, int) or priority < 1):
            raise ValueError("priority must be a positive integer")
        for name, value in (variables or {}).items():
            _check_text("variable name", name)
            if not isinstance(value, str):
                raise TypeError(f"variable {name!r} must be a string")
        self._require_stasis(channel_id, "POST", "continue")
        for name, value in (variables or {}).items():
            self._ari.channels.set_variable(channel_id, name, value)
        self._ari.channels.continue_in_dialplan(channel_id, context, extension, priority)

    def call_data(self, target: Target) -> Dict[str, str]:
        """The call data a channel carries (``GET /channels/{id}/variable?variable=CTI_DATA``;
        works on any channel). ``{}`` when none was set. Any thread; blocks the caller.

        :raises CallDataError: the variable holds something that is not call data (written
            by another application or the dialplan).
        :raises InvalidResponseError: Asterisk's answer is not ``{"value": "..."}``.
        """
        channel_id = self._channel_of(target)
        try:
            answer = self._ari.channels.get_variable(channel_id, VARIABLE)
        except NotFoundError as exc:
            if "variable" in exc.message.lower():
                return {}  # Asterisk: "Provided variable was not found" (not the path's
                #            "/variable": a channel that is gone raises)
            raise
        value = answer.get("value") if isinstance(answer, dict) else None
        if not isinstance(value, str):
            raise InvalidResponseError("GET", f"channels/{channel_id}/variable",
                                       "no string 'value'")
        return decode_call_data(value)

    def set_call_data(self, target: Target, data: Mapping[str, Optional[str]], *,
                      replace: bool = False) -> Dict[str, str]:
        """Attach data to a call: merge ``data`` into what the channel carries (a ``None``
        value removes its key; ``replace=True`` starts from nothing) and store it in the
        inherited variable ``__CTI_DATA``, so every channel created from this one afterwards
        (the queue's agents, dialled and transferred parties) carries it too, and every
        :class:`~asterisk_cti.CallEvent` of the call shows it as ``event.data`` (rules in
        :mod:`asterisk_cti.calldata`). For a :class:`ControlledCall`, the agent's channel;
        set it on the caller's channel (an IVR does) before the call goes on.

        ``POST /channels/{id}/variable``: the channel must be in the application. Returns the
        data now on the channel. Any thread; blocks the caller.

        :raises CallDataError: a key or value breaks the rules (nothing is sent).
        :raises NotInStasisError: the channel is not in the application.
        """
        channel_id = self._channel_of(target)
        changes = dict(data)
        for key, value in changes.items():
            if value is not None and not isinstance(value, str):
                raise TypeError(f"call data value of {key!r} must be a str or None")
        merge_call_data({}, {k: v for k, v in changes.items() if v is not None})
        self._require_stasis(channel_id, "POST", "variable")
        merged = merge_call_data({} if replace else self.call_data(channel_id), changes)
        value = encode_call_data(merged)
        self._ari.channels.set_variable(channel_id, INHERITED_VARIABLE, value)
        try:  # the server-side filter keeps ChannelVarset away: tell the model directly
            self._client.set_call_data(channel_id, value)
        except Exception:
            logger.exception("the call model refused the call data of %s", channel_id)
        return merged
