"""The engine of call control: acts on the events that concern the calls the SDK controls.

:class:`StasisEngine` is fed on the **processor thread** by its tap (:meth:`StasisEngine.tap`,
installed with :meth:`~asterisk_cti.pipeline.waiters.Waiters.tap`): the event is recorded in
:class:`~asterisk_cti.control.state.StasisState` before any pending wait sees it, so when
``originate(..., wait_for="established")`` returns, the bridge membership is already known.
The engine then acts on the same events, in their order, on its own short-lived thread
(``asterisk-cti-control``, :class:`SerialRunner`): never on a dispatcher lane, so completing
an operation never needs a free lane (a listener may block its lane in ``transfer()`` with
``workers=1``), and never on the processor thread, so its requests never hold the delivery of
other lines' events. It makes the calls go on: the switch (a call the dialplan sent in with
``Stasis(app,dial[,destination])`` is dialled, given ringback, bridged on answer, and its
failure propagated), the second leg of a click-to-dial, the legs of transfers,
consultations and conferences, hold and retrieve, and the teardown of bridges when their call
ends. It only sends short REST requests (through :mod:`asterisk_cti.ari.resources`) and never
waits for an event. Before it creates a channel or ends one by a transfer it tells the call
model (``CallModel.expect``), so SDK-driven calls are reported like calls made on the phones.
The phones' own transfers (REFER) and the consultations are in
:mod:`asterisk_cti.control.transfers`.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from functools import partial
from typing import Any, Callable, Deque, Dict, Iterable, List, Mapping, Optional, Tuple

from ..ari.resources import Ari
from ..causes import FAILED_DIALSTATUS, hangup_reason_for
from ..errors import AriHttpError, AsteriskCtiError, NotFoundError
from ..events.catalogue import Event
from ..model.types import ControlHint, Party
from .options import ControlHost, ControlOptions, new_id, party_of
from .phone_transfers import PhoneTransfers
from .state import ENGINE_EVENT_TYPES, Leg, StasisState
from .switch import Switch

logger = logging.getLogger(__name__)


#: The event types :meth:`Switch.on_event <asterisk_cti.control.switch.Switch.on_event>` acts
#: on. The other :data:`ENGINE_EVENT_TYPES` only feed :class:`StasisState` (recorded on the
#: processor thread by the tap), so they never cost a hop to the control thread. A
#: StasisStart of a channel call control does not follow yet matters only to the switch.
_ACTED_ON = frozenset(
    ("StasisStart", "StasisEnd", "ChannelDestroyed", "Dial", "ChannelLeftBridge",
     "ChannelTransfer")
)
assert frozenset(ENGINE_EVENT_TYPES) >= _ACTED_ON


class SerialRunner:
    """Runs callables one after the other, in submission order, on one thread of its own.

    The thread starts with the first job and ends once it has waited ``linger`` seconds
    with nothing to do, so a burst of work costs one thread start, not one per job, and no
    thread outlives the work by more than ``linger`` (nothing needs starting or stopping).

    Thread contract: :meth:`submit` and :meth:`wait_idle` from any thread; the callables run
    on the thread named ``name``. A callable that raises is the caller's to guard.
    """

    def __init__(self, name: str, linger: float = 0.5) -> None:
        self._name = name
        self._linger = linger
        self._jobs: Deque[Callable[[], None]] = deque()
        self._cond = threading.Condition()
        self._thread_alive = False
        self._waiting = False
        self._running = False

    def submit(self, job: Callable[[], None]) -> None:
        """Queue ``job``; wake the thread if it waits, start it if there is none."""
        with self._cond:
            self._jobs.append(job)
            if self._waiting:
                self._cond.notify_all()
                return
            if self._thread_alive:
                return
            self._thread_alive = True
        threading.Thread(target=self._run, name=self._name, daemon=True).start()

    def _run(self) -> None:
        cond = self._cond
        while True:
            with cond:
                self._running = False
                if not self._jobs:
                    cond.notify_all()  # wait_idle()
                    self._waiting = True
                    cond.wait(self._linger)
                    self._waiting = False
                    if not self._jobs:
                        self._thread_alive = False
                        return
                job = self._jobs.popleft()
                self._running = True
            job()

    def wait_idle(self, timeout: float) -> bool:
        """Block until every job submitted so far has run (any thread but the runner's).

        :returns: False on timeout.
        """
        with self._cond:
            if threading.current_thread().name == self._name:
                return not self._jobs
            return self._cond.wait_for(lambda: not self._jobs and not self._running, timeout)


class StasisEngine:
    """Drives the calls the SDK controls: fed by :meth:`tap` (processor thread), acts on the
    control thread; its operations are also called by caller threads (see the module
    docstring).

    :param host: the client.
    :param state: the shared :class:`StasisState`.
    :param options: a callable returning the current :class:`ControlOptions`.
    :param model_held: ``model_held(channel_id, held)`` marks a connection held in the model.
    """

    def __init__(
        self,
        host: ControlHost,
        state: StasisState,
        options: Callable[[], ControlOptions],
        model_held: Callable[[str, bool], None],
    ) -> None:
        self._host = host
        self._state = state
        self._options = options
        self._model_held = model_held
        self.ari = Ari(host.rest)
        self.transfers = PhoneTransfers(self, state)
        self._switch = Switch(self, state, self.transfers)
        self._runner = SerialRunner("asterisk-cti-control")
        self._identities: Dict[str, Optional[str]] = {}

    def identity(self, endpoint: str) -> Optional[str]:
        """The caller id an endpoint presents (``"Kai" <1000>``), or None when unknown.

        For PJSIP it is read once from ARI's dynamic configuration
        (``GET /asterisk/config/dynamic/res_pjsip/endpoint/{id}``, the ``callerid``
        attribute) and cached; a server that refuses it gives None. Any thread; blocks on
        REST the first time.
        """
        if endpoint in self._identities:
            return self._identities[endpoint]
        tech, _, resource = endpoint.partition("/")
        value: Optional[str] = None
        if tech.upper() == "PJSIP" and resource:
            try:
                attrs = self.ari.asterisk.pjsip_endpoint_config(resource)
            except AsteriskCtiError as exc:
                logger.debug("call control: no configured caller id for %s: %s", endpoint, exc)
                attrs = []
            for attr in attrs if isinstance(attrs, list) else []:
                if isinstance(attr, dict) and attr.get("attribute") == "callerid":
                    value = str(attr.get("value") or "") or None
        self._identities[endpoint] = value
        return value

    def hint(self, channel_id: str, hint: ControlHint) -> None:
        """Tell the call model what call control is about to do with a channel (before the
        request), so SDK-driven calls are reported like calls made on the phones."""
        expect = getattr(self._host.model, "expect", None)
        if expect is not None:
            try:
                expect(channel_id, hint)
            except Exception:  # the model must never break call control
                logger.exception("the call model refused a hint for %s", channel_id)

    def party(self, endpoint: str) -> Party:
        """The party an endpoint stands for: its configured caller id, or its resource."""
        return party_of(self.identity(endpoint), endpoint)

    def present_as(self, channel_id: str, party: Optional[str]) -> None:
        """Make a channel of the app present ``party`` (``"Ping" <1002>``) as its caller id.

        A bridge hands each channel's caller id to the other side as its connected line, so
        this decides what the far phone displays and what the call model reports as the
        connected party once the channels are bridged. Best effort.
        """
        if party:
            self.quiet(f"caller id of {channel_id}", partial(
                self.ari.channels.set_variable, channel_id, "CALLERID(all)", party))

    def options(self) -> ControlOptions:
        """The current :class:`ControlOptions` (any thread)."""
        return self._options()

    @property
    def app(self) -> str:
        """The ARI application name."""
        return self._host.config.app

    def tap(self, item: object) -> None:
        """Call control's tap, on the **processor thread**, for every item offered to the
        waiters and before them: record an ARI event in :class:`StasisState`, then queue the
        engine's action on it when it concerns call control.

        The engine acts on the control thread, in event order: not on a dispatcher lane, so
        that completing a control operation never needs a free lane (a listener may block its
        lane in ``originate(..., wait_for="established")`` even with ``workers=1``), and not
        here, so that its requests never hold the processor. Never raises.
        """
        if not isinstance(item, Event):  # the call model's CTI events: not call control's
            return
        raw = item.raw
        etype = raw.get("type")
        if etype not in _ACTED_ON:  # most events: only recorded
            self._state.record(item)
            return
        try:
            # asked before recording: a channel's last event (ChannelDestroyed) still
            # concerns call control, although the state forgets the channel on it
            wanted = self._wants(etype, raw)
        except Exception:
            logger.exception("call control could not read an event")
            wanted = False
        self._state.record(item)
        if wanted:
            self._runner.submit(partial(self._act, item))

    def _wants(self, etype: str, raw: Mapping[str, Any]) -> bool:
        """Whether the switch acts on this event (processor thread, lock-free look-ups):
        what :meth:`Switch.on_event <asterisk_cti.control.switch.Switch.on_event>` would
        do nothing with stays here, and costs no hop to the control thread."""
        state = self._state
        if etype == "StasisEnd" or etype == "ChannelDestroyed":
            chan = raw.get("channel")
            cid = chan.get("id") if isinstance(chan, dict) else None
            return isinstance(cid, str) and state.end_concerns(cid)
        if etype == "StasisStart":
            chan = raw.get("channel")
            cid = chan.get("id") if isinstance(chan, dict) else None
            if not isinstance(cid, str):
                return False
            if not state.concerns(cid):
                options = self._options()
                args = raw.get("args")
                if not (options.switch and isinstance(args, list) and args
                        and str(args[0]) == options.switch_arg):
                    return False
            state.note_switched(cid)  # its end goes to the switch too
            return True
        if etype == "Dial":  # the switch notes a leg's dial status only
            peer = raw.get("peer")
            pid = peer.get("id") if isinstance(peer, dict) else None
            return isinstance(pid, str) and state.dialling_leg(pid) and bool(
                raw.get("dialstatus"))
        if etype == "ChannelLeftBridge":  # it ends SDK bridges only
            bridge = raw.get("bridge")
            bid = bridge.get("id") if isinstance(bridge, dict) else None
            if not (isinstance(bid, str) and state.owns_bridge(bid)):
                return False
        return any(state.concerns(cid) for cid in _ids_of(raw))  # and ChannelTransfer

    def wait_idle(self, timeout: float) -> bool:
        """Block until the engine acted on every event queued so far (any thread).

        :returns: False on timeout.
        """
        return self._runner.wait_idle(timeout)

    def _act(self, event: Event) -> None:
        try:
            self._switch.on_event(event)
        except Exception:  # one failed action never stops the next
            logger.exception("call control failed on %s", event.type)

    # -- small REST helpers (never under the lock) -------------------------------------------

    def quiet(self, what: str, fn: Callable[[], Any]) -> bool:
        """Run a best-effort request; a channel or bridge already gone is not an error.

        :returns: True when the request succeeded.
        """
        try:
            fn()
            return True
        except NotFoundError:
            return False
        except AsteriskCtiError as exc:
            logger.warning("call control: %s failed: %s", what, exc)
            return False

    def hangup(self, channel_id: str, reason: str = "normal") -> bool:
        """``DELETE /channels/{id}?reason=`` (best effort)."""
        return self.quiet(f"hangup {channel_id}",
                          partial(self.ari.channels.hangup, channel_id, reason))

    def add_to_bridge(self, bridge_id: str, channels: Iterable[str]) -> None:
        """``POST /bridges/{id}/addChannel?channel=a,b``."""
        self.ari.bridges.add(bridge_id, channels)

    def remove_from_bridge(self, bridge_id: str, channel_id: str) -> bool:
        """``POST /bridges/{id}/removeChannel?channel=`` (best effort)."""
        return self.quiet(f"remove {channel_id} from {bridge_id}", partial(
            self.ari.bridges.remove, bridge_id, channel_id))

    def create_bridge(self, bridge_id: str, call_id: str, protect: int = 0) -> None:
        """Record, then ``POST /bridges?type=mixing&bridgeId=`` (forgotten if it fails)."""
        self._state.add_bridge(bridge_id, call_id, protect)
        try:
            self.ari.bridges.create(bridge_id, f"{self.app}:{call_id}")
        except AsteriskCtiError:
            self._state.forget_bridge(bridge_id)
            raise

    def adopt_bridges(self) -> List[str]:
        """Take over the bridges an earlier process of this application left (named
        ``APP:CALL_ID`` as :meth:`create_bridge` names them), then end the calls already over
        (a party left while nobody watched). Two ``GET /bridges``: the second drops members
        that left meanwhile. Returns the adopted bridge ids."""
        prefix = f"{self.app}:"
        adopted: List[str] = []
        for bridge in self.ari.bridges.list():
            bid, name, chans = bridge.get("id"), bridge.get("name"), bridge.get("channels")
            if (isinstance(bid, str) and isinstance(name, str) and name.startswith(prefix)
                    and isinstance(chans, list)):
                members = [c for c in chans if isinstance(c, str)]
                if self._state.adopt_bridge(bid, name[len(prefix):], members):
                    adopted.append(bid)
        if adopted:
            now = {b.get("id"): b.get("channels") for b in self.ari.bridges.list()}
            for bid in adopted:
                chans = now.get(bid)
                self._state.keep_members(bid, [c for c in chans if isinstance(c, str)]
                                         if isinstance(chans, list) else [])
                self.teardown_if_over(bid)
            logger.info("call control: adopted %d bridges of application %s", len(adopted),
                        self.app)
        return adopted

    def destroy_bridge(self, bridge_id: str) -> None:
        """Mark an SDK bridge closing and ``DELETE /bridges/{id}`` (best effort)."""
        self._state.mark_closing(bridge_id)
        self.quiet(f"destroy bridge {bridge_id}", partial(self.ari.bridges.destroy, bridge_id))

    def play(self, target: str, target_id: str, media: str) -> str:
        """``POST /{channels|bridges}/{id}/play/{playbackId}?media=``; returns the playback id.

        :param target: ``"channels"`` or ``"bridges"``.
        """
        playback = new_id("cti-p")
        resource = self.ari.bridges if target == "bridges" else self.ari.channels
        resource.play(target_id, playback, media)
        return playback

    def stop_playback(self, playback_id: Optional[str]) -> None:
        """``DELETE /playbacks/{id}`` (best effort; the playback may have ended)."""
        if playback_id:
            self.quiet(f"stop playback {playback_id}",
                       partial(self.ari.playbacks.stop, playback_id))

    def protect(self, bridge_id: str, delta: int) -> None:
        """Change how many pending operations keep an SDK bridge from being torn down."""
        self._state.protect(bridge_id, delta)

    def hold(self, holder: str, peers: Tuple[str, ...]) -> None:
        """Put ``peers`` (or ``holder`` itself when it talks to nobody) on hold for
        ``holder``: music (``POST /channels/{id}/hold``, or ``/moh?mohClass=`` with
        :attr:`ControlOptions.moh_class`) and, for a peer,
        ``POST /channels/{id}/mute?direction=in``;
        then the model marks ``holder`` held. The parties reached are recorded even when a
        request fails, so :meth:`unhold` undoes what was done.

        :raises AsteriskCtiError: when a request fails.
        """
        moh = self._options().moh_class
        done: List[str] = []
        try:
            for peer in peers or (holder,):
                if moh is None:
                    self.ari.channels.hold(peer)
                else:
                    self.ari.channels.moh(peer, moh)
                done.append(peer)
                if peer != holder:
                    self.ari.channels.mute(peer, "in")
        finally:
            if done:
                self._state.note_held(holder, tuple(done))
        self._model_held(holder, True)

    def unhold(self, holder: str) -> None:
        """Stop the music and the mute of the parties ``holder`` put on hold (best effort)."""
        peers = self._state.take_held(holder)
        moh = self._options().moh_class
        for peer in peers:
            stop = self.ari.channels.unhold if moh is None else self.ari.channels.moh_stop
            self.quiet(f"stop {'hold' if moh is None else 'moh'} of {peer}", partial(stop, peer))
            if peer != holder:
                self.quiet(f"unmute {peer}", partial(self.ari.channels.unmute, peer, "in"))
        if peers:
            self._model_held(holder, False)

    def unhold_self(self, channel_id: str) -> None:
        """Take a channel the SDK did not put on hold off hold itself (``DELETE
        /channels/{id}/hold`` or ``/moh``); the model marks it not held.

        :raises AsteriskCtiError: when Asterisk refuses (404 gone, 409 not in the app).
        """
        if self._options().moh_class is None:
            self.ari.channels.unhold(channel_id)
        else:
            self.ari.channels.moh_stop(channel_id)
        self._model_held(channel_id, False)

    # -- dialling legs ------------------------------------------------------------------------

    def dial(self, leg: Leg, caller_id: Optional[str] = None,
             variables: Optional[Mapping[str, str]] = None,
             timeout: Optional[float] = None) -> None:
        """Register ``leg`` and originate it into the application (``POST /channels``).

        :raises AsteriskCtiError: when Asterisk refuses; the failure is then handled as a
            failed dial (the peer is hung up, continued or returned as the leg says).
        """
        self._state.add_leg(leg)
        params: Dict[str, Any] = {
            "endpoint": leg.endpoint,
            "app": self.app,
            "appArgs": f"cti,{leg.purpose}",
            "channelId": leg.channel_id,
            "originator": leg.peer_id,
            "timeout": max(1, round(timeout or self._options().dial_timeout)),
        }
        if caller_id:
            params["callerId"] = caller_id
        self.hint(leg.channel_id, ControlHint("leg", peer=leg.peer_id,
                                              called=self.party(leg.endpoint),
                                              purpose=leg.purpose))
        try:
            self.ari.channels.originate(params, variables)
        except AsteriskCtiError as exc:
            status = "CHANUNAVAIL"
            if isinstance(exc, AriHttpError) and exc.status in (400, 422):
                status = "INVALIDARGS"
            self.leg_failed(leg.channel_id, status, 0)
            raise

    def leg_failed(self, channel_id: str, dialstatus: str, cause: int) -> None:
        """A leg ended without an answer: stop its ringback, release its bridge and do what
        its ``on_failure`` says with the peer."""
        leg, consult, _ = self._state.take_leg(channel_id)
        if leg is None:
            return
        status = leg.dialstatus if leg.dialstatus in FAILED_DIALSTATUS else dialstatus
        logger.info("call control: %s leg %s to %s failed: %s (cause %s)",
                    leg.purpose, channel_id, leg.endpoint, status, cause)
        self._stop_ringback(leg)
        action = "none" if leg.cancelled else leg.on_failure
        if action == "hangup":
            self.hangup(leg.peer_id, hangup_reason_for(status))
        elif action == "continue":
            self.quiet("set DIALSTATUS", partial(
                self.ari.channels.set_variable, leg.peer_id, "DIALSTATUS", status))
            self.quiet("continue the caller", partial(
                self.ari.channels.continue_in_dialplan, leg.peer_id))
        elif action == "return" and consult is not None:
            self.transfers.consult_return(consult)
        if leg.notify is not None:
            self.transfers.progress(
                leg.notify, "channel_declined" if status == "BUSY" else "channel_unavailable")
            self.hangup(leg.notify)
        if not leg.create_bridge:
            self.protect(leg.bridge_id, -1)
            self.teardown_if_over(leg.bridge_id)

    def _stop_ringback(self, leg: Leg) -> None:
        if leg.ringback is None:
            return
        kind, ident = leg.ringback
        if kind == "playback":
            self.stop_playback(ident)
        else:
            self.quiet("stop ringing", partial(self.ari.channels.ring_stop, ident))

    def leg_answered(self, channel_id: str) -> None:
        """A leg answered (its StasisStart): stop the ringback, answer the peer if it waits
        unanswered, create the bridge if needed and put the channels in it."""
        leg, consult, peer_alive = self._state.take_leg(channel_id)
        if leg is None:
            return
        if leg.cancelled or not peer_alive:
            logger.info("call control: %s answered but its peer %s is gone", channel_id,
                        leg.peer_id)
            self.hangup(channel_id)
            if not leg.create_bridge:
                self.protect(leg.bridge_id, -1)
            return
        self._stop_ringback(leg)
        self.transfers.allow(channel_id, leg.endpoint)
        if consult is not None:
            # Answered now (this is its StasisStart). Mark it before the bridge request: the
            # caller of consult() is woken by ChannelEnteredBridge on the processor thread,
            # possibly before addChannel returns here, and may complete the transfer at once.
            self._state.mark_answered(consult)
        try:
            if leg.answer_peer and self._state.state_of(leg.peer_id) != "Up":
                self.ari.channels.answer(leg.peer_id)
            if leg.create_bridge:
                self.create_bridge(leg.bridge_id, leg.call_id)
            # The bridge swaps caller ids into connected lines: first make each side present
            # itself (a dialled leg carries the caller id of the side that called it).
            self.present_as(channel_id, self.identity(leg.endpoint))
            self.present_as(leg.peer_id, leg.peer_identity)
            self.add_to_bridge(leg.bridge_id, leg.join)
        except AsteriskCtiError as exc:
            logger.warning("call control: could not connect %s to %s: %s", channel_id,
                           leg.peer_id, exc)
            self.hangup(channel_id)
            if leg.create_bridge:
                self.destroy_bridge(leg.bridge_id)
                self.hangup(leg.peer_id)
            else:
                self.protect(leg.bridge_id, -1)
            return
        if not leg.create_bridge:
            self.protect(leg.bridge_id, -1)
        if leg.notify is not None:
            self.transfers.progress(leg.notify, "channel_answered")
            self.hangup(leg.notify)

    def cancel_legs_of(self, peer_id: str) -> None:
        """The peer left before its legs answered: hang the legs up."""
        for leg in self._state.cancel_legs_of(peer_id):
            self.hangup(leg.channel_id)

    # -- bridges ------------------------------------------------------------------------------

    def teardown_if_over(self, bridge_id: str) -> None:
        """End the call of an SDK bridge when fewer than two parties are left and nothing is in
        progress in it: hang up the last party and destroy the bridge."""
        remaining = self._state.close_if_over(bridge_id)
        if remaining is None:
            return
        logger.debug("call control: call in bridge %s is over; remaining %s", bridge_id,
                     remaining)
        for channel_id in remaining:
            self.hangup(channel_id)
        self.quiet(f"destroy bridge {bridge_id}", partial(self.ari.bridges.destroy, bridge_id))


def _ids_of(raw: Mapping[str, Any]) -> List[str]:
    ids: List[str] = []
    for key in ("channel", "peer", "caller"):
        value = raw.get(key)
        cid = value.get("id") if isinstance(value, dict) else None
        if isinstance(cid, str):
            ids.append(cid)
    by = raw.get("referred_by")  # ChannelTransfer has no top-level channel
    source = by.get("source_channel") if isinstance(by, dict) else None
    sid = source.get("id") if isinstance(source, dict) else None
    if isinstance(sid, str):
        ids.append(sid)
    return ids
