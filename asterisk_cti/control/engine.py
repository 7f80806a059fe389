"""The Stasis side of call control: what the SDK knows about its own application, and the
event-driven engine that dials, bridges and cleans up the calls the SDK controls.

Two parts, each with its own thread:

* :class:`StasisState` is fed on the **processor thread**, through a permanent waiter whose
  predicate never matches (:meth:`StasisState.observe`). The processor offers events to the
  waiters in arrival order and in registration order, so this state is always at least as
  recent as anything a pending call-control wait or a listener has seen: when
  ``originate(..., wait_for="established")`` returns, the bridge membership is already known
  here. It records which channels are in the application (StasisStart/StasisEnd), which
  channels were seen outside it, the channel states, and the members of the bridges the SDK
  owns. It never sends a request.
* :class:`StasisEngine` acts on the same events right after they are recorded, in their
  order, on its own short-lived thread (``asterisk-cti-control``, :class:`SerialRunner`):
  never on a dispatcher lane, so completing an operation never needs a free lane (a listener
  may block its lane in ``transfer()`` with ``workers=1``), and never on the processor
  thread, so its requests never hold the delivery of other lines' events. It makes the
  calls go on: the switch (a call the dialplan sent in with
  ``Stasis(app,dial[,destination])`` is dialled, given ringback, bridged on answer, and its
  failure propagated), the second leg of a click-to-dial, the legs of transfers,
  consultations and conferences, and the teardown of bridges when their call ends. It only
  sends short REST requests and never waits for an event. Before it creates a channel or
  ends one by a transfer it tells the call model
  (:meth:`~asterisk_cti.model.CallModel.expect`), so SDK-driven calls are reported like
  calls made on the phones.

Both share one lock (:attr:`StasisState.lock`); no request is sent and no wait is made while
it is held.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from functools import partial
from typing import (
    Any,
    Callable,
    Deque,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Protocol,
    Set,
    Tuple,
)

from ..ari.rest import AriRest
from ..causes import FAILED_DIALSTATUS, dialstatus_for_cause, hangup_reason_for
from ..config import CtiConfig
from ..errors import AriHttpError, AsteriskCtiError, NotFoundError
from ..events.catalogue import Event, parse_event
from ..model.types import ControlHint, Party
from ..pipeline.waiters import Waiter, Waiters

logger = logging.getLogger(__name__)


class SerialRunner:
    """Runs callables one after the other, in submission order, on one thread of its own
    that exists only while there is work (so no thread outlives the work, and nothing needs
    starting or stopping).

    Thread contract: :meth:`submit` from any thread; the callables run on the thread named
    ``name``. A callable that raises is the caller's to guard.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._jobs: Deque[Callable[[], None]] = deque()
        self._lock = threading.Condition()
        self._busy = False

    def submit(self, job: Callable[[], None]) -> None:
        """Queue ``job``; start the thread if none is running."""
        with self._lock:
            self._jobs.append(job)
            if self._busy:
                return
            self._busy = True
        threading.Thread(target=self._run, name=self._name, daemon=True).start()

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._jobs:
                    self._busy = False
                    self._lock.notify_all()
                    return
                job = self._jobs.popleft()
            job()

    def wait_idle(self, timeout: float) -> bool:
        """Block until every job submitted so far has run (any thread but the runner's).

        :returns: False on timeout.
        """
        if threading.current_thread().name == self._name:
            return not self._jobs
        with self._lock:
            return self._lock.wait_for(lambda: not self._busy, timeout)

#: The ARI event types call control needs; registered as raw types, so the processor keeps
#: them (and the server-side filter lets them through).
ENGINE_EVENT_TYPES: Tuple[str, ...] = (
    "StasisStart",
    "StasisEnd",
    "ChannelCreated",
    "ChannelDestroyed",
    "ChannelStateChange",
    "Dial",
    "ChannelEnteredBridge",
    "ChannelLeftBridge",
    "BridgeDestroyed",
    "ChannelTransfer",
)

_SEEN_LIMIT = 20000


def new_id(prefix: str) -> str:
    """A fresh id for a channel, bridge or playback the SDK creates (``cti-c-<uuid4>``)."""
    return f"{prefix}-{uuid.uuid4()}"


def party_of(identity: Optional[str], endpoint: str = "") -> Party:
    """The party of a caller id (``"Kai" <1000>``); without one, the endpoint's resource
    (``PJSIP/1000`` -> ``1000``) as the number, so identities never depend on the dynamic
    configuration route."""
    if identity:
        text = identity.strip()
        if "<" in text and text.endswith(">"):
            name, _, number = text[:-1].partition("<")
            return Party(number.strip(), name.strip().strip('"').strip())
        return Party(text, "")
    resource = endpoint.partition("/")[2] if "/" in endpoint else endpoint
    return Party(resource.split("@", 1)[0], "") if resource else Party("", "")


def default_endpoint_for(destination: str) -> str:
    """Map a destination to a dial endpoint: ``1002`` -> ``PJSIP/1002``; a destination that
    already names a technology (``SIP/x``, ``Local/1002@from-internal``) is kept as is."""
    return destination if "/" in destination else f"PJSIP/{destination}"


class ControlHost(Protocol):
    """What call control needs from the client (:class:`~asterisk_cti.CtiClient` has it)."""

    @property
    def config(self) -> CtiConfig: ...

    @property
    def rest(self) -> AriRest: ...

    @property
    def waiters(self) -> Waiters: ...

    @property
    def model(self) -> Any: ...

    def add_raw_listener(self, listener: Any, event_types: Iterable[str],
                         wants: Optional[Callable[[str], bool]] = None) -> Any: ...


@dataclass(frozen=True)
class ControlOptions:
    """How call control dials and how the switch behaves.

    :param endpoint_for: maps a destination (``1002``) to the endpoint to dial
        (``PJSIP/1002``). Called on lane and caller threads; must be fast and thread-safe.
    :param switch: handle calls the dialplan sends into the application with
        ``Stasis(<app>,<switch_arg>[,<destination>])``.
    :param switch_arg: the first ``Stasis()`` argument that asks for the switch.
    :param dial_timeout: seconds the switch lets the destination ring.
    :param on_failure: what the switch does with the caller when the destination fails:
        ``"hangup"`` (with the matching cause: busy, no answer, congestion) or ``"continue"``
        (set ``DIALSTATUS`` on the caller and continue it at the next dialplan priority).
    :param moh_class: the music-on-hold class for :meth:`CallControl.hold`; ``None`` uses
        ``POST /channels/{id}/hold`` (Asterisk plays its default class), a name uses
        ``POST /channels/{id}/moh?mohClass=<name>``.
    :param ringback: the media played to a party that waits for a leg to answer (agent of a
        click-to-dial, transferee of a blind transfer, consulting agent).
    :param phone_transfers: let the phones transfer the calls the SDK controls: the SDK sets
        ``PJSIP_TRANSFER_HANDLING(ari-only)`` on the PJSIP channels it controls, so Asterisk
        hands a phone's REFER to the application (``ChannelTransfer``), and carries the
        transfer out in its bridges.
    """

    endpoint_for: Callable[[str], str] = default_endpoint_for
    switch: bool = True
    switch_arg: str = "dial"
    dial_timeout: float = 30.0
    on_failure: str = "hangup"
    moh_class: Optional[str] = None
    ringback: str = "tone:ring"
    phone_transfers: bool = True

    def __post_init__(self) -> None:
        if self.on_failure not in ("hangup", "continue"):
            raise ValueError("on_failure must be 'hangup' or 'continue'")
        if self.dial_timeout <= 0:
            raise ValueError("dial_timeout must be positive")


@dataclass
class OwnedBridge:
    """A mixing bridge the SDK created (state under :attr:`StasisState.lock`)."""

    id: str
    call_id: str
    members: Set[str] = field(default_factory=set)
    protect: int = 0
    closing: bool = False


@dataclass
class Leg:
    """A channel the SDK dials into its application, and what happens when it answers or fails.

    :ivar peer_id: the channel waiting for this leg (the switch's caller, the click-to-dial
        agent, the transferee, the consulting agent).
    :ivar join: the channels added to :attr:`bridge_id` when the leg answers.
    :ivar on_failure: ``hangup`` / ``continue`` the peer, ``return`` (consultation: put the
        agent back with the held call) or ``none``.
    """

    channel_id: str
    endpoint: str
    purpose: str
    peer_id: str
    bridge_id: str
    call_id: str
    create_bridge: bool = False
    join: Tuple[str, ...] = ()
    answer_peer: bool = False
    ringback: Optional[Tuple[str, str]] = None
    on_failure: str = "none"
    state: str = "dialing"
    dialstatus: str = ""
    cancelled: bool = False
    #: the caller id the peer presents once bridged (click-to-dial: the agent's own, instead
    #: of the destination its phone was shown while ringing); None leaves it as it is
    peer_identity: Optional[str] = None
    #: a phone's REFER this leg carries out: the transferer's channel, told the outcome
    #: (``POST /channels/{id}/transfer_progress``) and hung up when it is known
    notify: Optional[str] = None


@dataclass
class OriginatePlan:
    """A click-to-dial waiting for the agent to answer (then :attr:`leg` is dialled)."""

    agent_id: str
    leg: Leg
    caller_id: Optional[str]
    variables: Optional[Mapping[str, str]]
    timeout: float


@dataclass
class Consult:
    """An attended transfer in progress: the call is held in :attr:`call_bridge`, the agent
    talks to the destination in :attr:`consult_bridge`."""

    consult_id: str
    call_id: str
    agent_id: str
    dest_id: str
    call_bridge: str
    consult_bridge: str
    answered: bool = False
    playback: Optional[str] = None


class StasisState:
    """What the SDK knows about its application; fed on the processor thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_stasis: Dict[str, str] = {}
        self.outside: OrderedDict[str, None] = OrderedDict()
        self.states: OrderedDict[str, str] = OrderedDict()
        self.bridges: Dict[str, OwnedBridge] = {}
        self.bridge_of: Dict[str, str] = {}
        self.held: Dict[str, Tuple[str, ...]] = {}
        self.legs: Dict[str, Leg] = {}
        self.plans: Dict[str, OriginatePlan] = {}
        self.consults: Dict[str, Consult] = {}
        #: the Stasis application each channel's last snapshot showed it in (dialplan
        #: ``app_name`` Stasis, first ``app_data`` argument), to say "in another application"
        self.apps: OrderedDict[str, str] = OrderedDict()

    # -- processor thread -------------------------------------------------------------------

    def concerns(self, channel_id: str) -> bool:
        """Whether call control follows this channel (in its app, dialled or bridged by it).

        The processor calls this for every event of :data:`ENGINE_EVENT_TYPES` to decide
        whether the engine gets it, so it is lock-free: dict membership tests are atomic.
        """
        return (channel_id in self.in_stasis or channel_id in self.plans
                or channel_id in self.legs or channel_id in self.bridge_of
                or channel_id in self.consults)

    def observe(self, item: Any) -> bool:
        """Waiter predicate: record ``item`` and never match (so the waiter stays forever)."""
        try:
            if isinstance(item, Event):
                self._observe(item)
            elif isinstance(item, dict) and "type" in item:
                self._observe(parse_event(item))
        except Exception:  # the state must never break the processor's waiters
            logger.exception("call control could not record an event")
        return False

    def _observe(self, event: Event) -> None:
        etype = event.type
        raw = event.raw
        chan = raw.get("channel")
        cid = chan.get("id") if isinstance(chan, dict) else None
        if isinstance(cid, str) and isinstance(chan, dict):
            self._note_app(cid, chan.get("dialplan"))
        if etype not in ENGINE_EVENT_TYPES:
            return
        cstate = chan.get("state") if isinstance(chan, dict) else None
        with self.lock:
            if isinstance(cid, str) and isinstance(cstate, str):
                self.states[cid] = cstate
                self.states.move_to_end(cid)
                if len(self.states) > _SEEN_LIMIT:
                    self.states.popitem(last=False)
            if etype == "StasisStart" and isinstance(cid, str):
                self.in_stasis[cid] = str(cstate or "")
                self.outside.pop(cid, None)
            elif etype == "StasisEnd" and isinstance(cid, str):
                self.in_stasis.pop(cid, None)
                self._mark_outside(cid)
            elif etype == "ChannelCreated" and isinstance(cid, str):
                if cid not in self.in_stasis:
                    self._mark_outside(cid)
            elif etype == "ChannelDestroyed" and isinstance(cid, str):
                self.in_stasis.pop(cid, None)
                self.outside.pop(cid, None)
                self.apps.pop(cid, None)
                self.states.pop(cid, None)
                self._leave(cid, None)
            elif etype in ("ChannelEnteredBridge", "ChannelLeftBridge") and isinstance(cid, str):
                bridge = raw.get("bridge")
                bid = bridge.get("id") if isinstance(bridge, dict) else None
                owned = self.bridges.get(bid) if isinstance(bid, str) else None
                if owned is not None:
                    if etype == "ChannelEnteredBridge":
                        owned.members.add(cid)
                        self.bridge_of[cid] = owned.id
                    else:
                        self._leave(cid, owned.id)
            elif etype == "BridgeDestroyed":
                bridge = raw.get("bridge")
                bid = bridge.get("id") if isinstance(bridge, dict) else None
                owned = self.bridges.pop(bid, None) if isinstance(bid, str) else None
                if owned is not None:
                    for member in owned.members:
                        if self.bridge_of.get(member) == owned.id:
                            del self.bridge_of[member]

    def _note_app(self, cid: str, dialplan: Any) -> None:
        if not isinstance(dialplan, dict):
            return
        name, data = dialplan.get("app_name"), dialplan.get("app_data")
        if name != "Stasis" or not isinstance(data, str):
            return
        app = data.split(",", 1)[0].strip()
        with self.lock:
            self.apps[cid] = app
            self.apps.move_to_end(cid)
            if len(self.apps) > _SEEN_LIMIT:
                self.apps.popitem(last=False)

    def _mark_outside(self, cid: str) -> None:
        self.outside[cid] = None
        if len(self.outside) > _SEEN_LIMIT:
            self.outside.popitem(last=False)

    def _leave(self, cid: str, bid: Optional[str]) -> None:
        bid = bid or self.bridge_of.get(cid)
        if bid is None:
            return
        owned = self.bridges.get(bid)
        if owned is not None:
            owned.members.discard(cid)
        if self.bridge_of.get(cid) == bid:
            del self.bridge_of[cid]

    # -- queries (any thread) ---------------------------------------------------------------

    def known_outside(self, channel_id: str) -> bool:
        """True when the SDK saw the channel outside its application (created elsewhere and
        never entered, or left with StasisEnd), so a Stasis-only request would fail."""
        with self.lock:
            return channel_id not in self.in_stasis and channel_id in self.outside

    def other_app(self, channel_id: str, app: str) -> Optional[str]:
        """The other Stasis application the channel was last seen in, if it is not ``app``."""
        with self.lock:
            seen = self.apps.get(channel_id)
        return seen if seen and seen != app else None

    def is_in_stasis(self, channel_id: str) -> bool:
        """True when the channel is in the SDK's application (StasisStart seen, no end)."""
        with self.lock:
            return channel_id in self.in_stasis

    def visible(self, channel_id: str) -> bool:
        """True when the SDK receives events for the channel (it has seen some)."""
        with self.lock:
            return channel_id in self.states or channel_id in self.in_stasis

    def state_of(self, channel_id: str) -> str:
        """The last channel state seen (``Up``, ``Ringing``...), empty when unknown."""
        with self.lock:
            return self.states.get(channel_id, "")

    def bridge_members(self, channel_id: str) -> Tuple[Optional[str], Tuple[str, ...]]:
        """The SDK bridge the channel is in and its other members."""
        with self.lock:
            bid = self.bridge_of.get(channel_id)
            owned = self.bridges.get(bid) if bid is not None else None
            if owned is None:
                return None, ()
            return owned.id, tuple(sorted(m for m in owned.members if m != channel_id))

    def add_bridge(self, bridge_id: str, call_id: str, protect: int = 0) -> None:
        """Record a bridge the SDK is about to create (before the request is sent)."""
        with self.lock:
            self.bridges[bridge_id] = OwnedBridge(bridge_id, call_id, protect=protect)


class StasisEngine:
    """Drives the calls the SDK controls; the raw listener of call control (lane threads).

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
        self._tracker: Optional[Waiter] = None
        self._tracker_lock = threading.Lock()
        self._runner = SerialRunner("asterisk-cti-control")
        self._identities: Dict[str, Optional[str]] = {}
        self._referred: OrderedDict[str, None] = OrderedDict()

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
                attrs = self.rest.get("asterisk", "config", "dynamic", "res_pjsip", "endpoint",
                                      resource)
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
                self.rest.post, "channels", channel_id, "variable",
                params={"variable": "CALLERID(all)", "value": party}))

    @property
    def app(self) -> str:
        """The ARI application name."""
        return self._host.config.app

    @property
    def rest(self) -> AriRest:
        """The client's REST client."""
        return self._host.rest

    def observe(self, item: Any) -> bool:
        """The permanent waiter's predicate, on the **processor thread**: record the event in
        :class:`StasisState`, then queue the engine's action on it when it concerns call
        control.

        The engine acts on the control thread, in event order: not on a dispatcher lane, so
        that completing a control operation never needs a free lane (a listener may block its
        lane in ``originate(..., wait_for="established")`` even with ``workers=1``), and not
        here, so that its requests never hold the processor. Never matches (the waiter stays
        forever).
        """
        event: Optional[Event] = None
        wanted = False
        try:
            if isinstance(item, Event) and item.type in ENGINE_EVENT_TYPES:
                event = item
                wanted = item.type == "StasisStart" or any(
                    self._state.concerns(cid) for cid in _ids_of(item.raw))
        except Exception:
            logger.exception("call control could not read an event")
        self._state.observe(item)
        if event is not None and wanted:
            self._runner.submit(partial(self._act, event))
        return False

    def wait_idle(self, timeout: float) -> bool:
        """Block until the engine acted on every event queued so far (any thread).

        :returns: False on timeout.
        """
        return self._runner.wait_idle(timeout)

    def _act(self, event: Event) -> None:
        try:
            self.on_event(event)
        except Exception:  # one failed action never stops the next
            logger.exception("call control failed on %s", event.type)

    def ensure_tracker(self) -> None:
        """(Re-)register the permanent waiter that feeds :class:`StasisState` (it is failed
        when the client stops); a stopped client is left alone."""
        with self._tracker_lock:
            if self._tracker is not None and not self._tracker.done:
                return
            try:
                self._tracker = self._host.waiters.expect(self.observe)
            except AsteriskCtiError:
                self._tracker = None

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
        return self.quiet(f"hangup {channel_id}", lambda: self.rest.delete(
            "channels", channel_id, params={"reason": reason}))

    def add_to_bridge(self, bridge_id: str, channels: Iterable[str]) -> None:
        """``POST /bridges/{id}/addChannel?channel=a,b``."""
        self.rest.post("bridges", bridge_id, "addChannel",
                       params={"channel": ",".join(channels)})

    def remove_from_bridge(self, bridge_id: str, channel_id: str) -> bool:
        """``POST /bridges/{id}/removeChannel?channel=`` (best effort)."""
        return self.quiet(f"remove {channel_id} from {bridge_id}", lambda: self.rest.post(
            "bridges", bridge_id, "removeChannel", params={"channel": channel_id}))

    def create_bridge(self, bridge_id: str, call_id: str, protect: int = 0) -> None:
        """Record, then ``POST /bridges?type=mixing&bridgeId=`` (forgotten if it fails)."""
        self._state.add_bridge(bridge_id, call_id, protect)
        try:
            self.rest.post("bridges", params={
                "type": "mixing", "bridgeId": bridge_id, "name": f"{self.app}:{call_id}"})
        except AsteriskCtiError:
            with self._state.lock:
                self._state.bridges.pop(bridge_id, None)
            raise

    def destroy_bridge(self, bridge_id: str) -> None:
        """Mark an SDK bridge closing and ``DELETE /bridges/{id}`` (best effort)."""
        with self._state.lock:
            owned = self._state.bridges.get(bridge_id)
            if owned is not None:
                owned.closing = True
        self.quiet(f"destroy bridge {bridge_id}", lambda: self.rest.delete("bridges", bridge_id))

    def play(self, target: str, target_id: str, media: str) -> str:
        """``POST /{channels|bridges}/{id}/play/{playbackId}?media=``; returns the playback id."""
        playback = new_id("cti-p")
        self.rest.post(target, target_id, "play", playback, params={"media": media})
        return playback

    def stop_playback(self, playback_id: Optional[str]) -> None:
        """``DELETE /playbacks/{id}`` (best effort; the playback may have ended)."""
        if playback_id:
            self.quiet(f"stop playback {playback_id}",
                       lambda: self.rest.delete("playbacks", playback_id))

    def protect(self, bridge_id: str, delta: int) -> None:
        """Change how many pending operations keep an SDK bridge from being torn down."""
        with self._state.lock:
            owned = self._state.bridges.get(bridge_id)
            if owned is not None:
                owned.protect = max(0, owned.protect + delta)

    def unhold(self, holder: str) -> None:
        """Stop the music and the mute of the parties ``holder`` put on hold (best effort)."""
        with self._state.lock:
            peers = self._state.held.pop(holder, ())
        moh = self._options().moh_class
        for peer in peers:
            what = "hold" if moh is None else "moh"
            self.quiet(f"stop {what} of {peer}", partial(self.rest.delete, "channels", peer, what))
            if peer != holder:
                self.quiet(f"unmute {peer}", partial(
                    self.rest.delete, "channels", peer, "mute", params={"direction": "in"}))
        if peers:
            self._model_held(holder, False)

    # -- dialling legs ------------------------------------------------------------------------

    def dial(self, leg: Leg, caller_id: Optional[str] = None,
             variables: Optional[Mapping[str, str]] = None,
             timeout: Optional[float] = None) -> None:
        """Register ``leg`` and originate it into the application (``POST /channels``).

        :raises AsteriskCtiError: when Asterisk refuses; the failure is then handled as a
            failed dial (the peer is hung up, continued or returned as the leg says).
        """
        with self._state.lock:
            self._state.legs[leg.channel_id] = leg
            if not leg.create_bridge:
                owned = self._state.bridges.get(leg.bridge_id)
                if owned is not None:
                    owned.protect += 1
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
        body = {"variables": dict(variables)} if variables else None
        self.hint(leg.channel_id, ControlHint("leg", peer=leg.peer_id,
                                              called=self.party(leg.endpoint),
                                              purpose=leg.purpose))
        try:
            self.rest.post("channels", params=params, json_body=body)
        except AsteriskCtiError as exc:
            status = "CHANUNAVAIL"
            if isinstance(exc, AriHttpError) and exc.status in (400, 422):
                status = "INVALIDARGS"
            self.leg_failed(leg.channel_id, status, 0)
            raise

    def leg_failed(self, channel_id: str, dialstatus: str, cause: int) -> None:
        """A leg ended without an answer: stop its ringback, release its bridge and do what
        its ``on_failure`` says with the peer."""
        with self._state.lock:
            leg = self._state.legs.pop(channel_id, None)
            if leg is None:
                return
            consult = self._state.consults.get(channel_id)
        status = leg.dialstatus if leg.dialstatus in FAILED_DIALSTATUS else dialstatus
        logger.info("call control: %s leg %s to %s failed: %s (cause %s)",
                    leg.purpose, channel_id, leg.endpoint, status, cause)
        self._stop_ringback(leg)
        action = "none" if leg.cancelled else leg.on_failure
        if action == "hangup":
            self.hangup(leg.peer_id, hangup_reason_for(status))
        elif action == "continue":
            self.quiet("set DIALSTATUS", lambda: self.rest.post(
                "channels", leg.peer_id, "variable",
                params={"variable": "DIALSTATUS", "value": status}))
            self.quiet("continue the caller", lambda: self.rest.post(
                "channels", leg.peer_id, "continue"))
        elif action == "return" and consult is not None:
            self.consult_return(consult)
        if leg.notify is not None:
            self.transfer_progress(
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
            self.quiet("stop ringing", lambda: self.rest.delete("channels", ident, "ring"))

    def leg_answered(self, channel_id: str) -> None:
        """A leg answered (its StasisStart): stop the ringback, answer the peer if it waits
        unanswered, create the bridge if needed and put the channels in it."""
        with self._state.lock:
            leg = self._state.legs.pop(channel_id, None)
            if leg is None:
                return
            peer_alive = leg.peer_id in self._state.in_stasis
            consult = self._state.consults.get(channel_id)
        if leg.cancelled or not peer_alive:
            logger.info("call control: %s answered but its peer %s is gone", channel_id,
                        leg.peer_id)
            self.hangup(channel_id)
            if not leg.create_bridge:
                self.protect(leg.bridge_id, -1)
            return
        self._stop_ringback(leg)
        self.allow_phone_transfers(channel_id, leg.endpoint)
        if consult is not None:
            # Answered now (this is its StasisStart). Mark it before the bridge request: the
            # caller of consult() is woken by ChannelEnteredBridge on the processor thread,
            # possibly before addChannel returns here, and may complete the transfer at once.
            with self._state.lock:
                consult.answered = True
        try:
            if leg.answer_peer and self._state.state_of(leg.peer_id) != "Up":
                self.rest.post("channels", leg.peer_id, "answer")
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
            self.transfer_progress(leg.notify, "channel_answered")
            self.hangup(leg.notify)

    def cancel_legs_of(self, peer_id: str) -> None:
        """The peer left before its legs answered: hang the legs up."""
        with self._state.lock:
            legs = [leg for leg in self._state.legs.values() if leg.peer_id == peer_id]
            for leg in legs:
                leg.cancelled = True
        for leg in legs:
            self.hangup(leg.channel_id)

    # -- bridges ------------------------------------------------------------------------------

    def teardown_if_over(self, bridge_id: str) -> None:
        """End the call of an SDK bridge when fewer than two parties are left and nothing is in
        progress in it: hang up the last party and destroy the bridge."""
        with self._state.lock:
            owned = self._state.bridges.get(bridge_id)
            if owned is None or owned.closing or owned.protect > 0 or len(owned.members) > 1:
                return
            owned.closing = True
            remaining = tuple(owned.members)
        logger.debug("call control: call in bridge %s is over; remaining %s", bridge_id,
                     remaining)
        for channel_id in remaining:
            self.hangup(channel_id)
        self.quiet(f"destroy bridge {bridge_id}", lambda: self.rest.delete("bridges", bridge_id))

    # -- consultations --------------------------------------------------------------------------

    def consult_return(self, consult: Consult) -> None:
        """End a consultation that failed or was cancelled: the agent goes back to the held
        call's bridge, the consultation bridge is destroyed; the held parties stay held."""
        with self._state.lock:
            if self._state.consults.pop(consult.dest_id, None) is None:
                return
            agent_alive = consult.agent_id in self._state.in_stasis
        self.stop_playback(consult.playback)
        self.remove_from_bridge(consult.consult_bridge, consult.agent_id)
        self.destroy_bridge(consult.consult_bridge)
        if agent_alive:
            self.quiet("return the agent", lambda: self.add_to_bridge(
                consult.call_bridge, (consult.agent_id,)))
        self.protect(consult.call_bridge, -1)
        if not agent_alive:
            self.teardown_if_over(consult.call_bridge)

    def consult_complete(self, consult: Consult, hangup_agent: bool = True) -> None:
        """Complete an attended transfer: the destination joins the held call, which is taken
        off hold, the agent drops out and the consultation bridge is destroyed.

        :raises AsteriskCtiError: when the destination cannot be moved.
        """
        with self._state.lock:
            if self._state.consults.pop(consult.dest_id, None) is None:
                return
            owned = self._state.bridges.get(consult.call_bridge)
            transferees = tuple(sorted(owned.members)) if owned is not None else ()
        if hangup_agent:
            # the agent leaves by the transfer: cleared as transferred, the others told
            self.hint(consult.agent_id, ControlHint(
                "transfer", transferees=transferees, target=consult.dest_id))
        self.remove_from_bridge(consult.consult_bridge, consult.dest_id)
        try:
            self.add_to_bridge(consult.call_bridge, (consult.dest_id,))
        finally:
            self.unhold(consult.agent_id)
            if hangup_agent:
                self.hangup(consult.agent_id)
            self.destroy_bridge(consult.consult_bridge)
            self.protect(consult.call_bridge, -1)

    # -- the phones' own transfers (REFER, ChannelTransfer) -----------------------------------

    def allow_phone_transfers(self, channel_id: str, endpoint: str) -> None:
        """Have Asterisk hand a phone's REFER on this PJSIP channel to the application
        (``PJSIP_TRANSFER_HANDLING(ari-only)``), when :attr:`ControlOptions.phone_transfers`."""
        if self._options().phone_transfers and endpoint.upper().startswith("PJSIP/"):
            self.quiet(f"transfer handling of {channel_id}", partial(
                self.rest.post, "channels", channel_id, "variable",
                params={"variable": "PJSIP_TRANSFER_HANDLING()", "value": "ari-only"}))

    def transfer_progress(self, channel_id: str, state: str) -> None:
        """``POST /channels/{id}/transfer_progress?states=``: tell a phone how its REFER went
        (best effort: the phone may have hung up already)."""
        self.quiet(f"transfer progress of {channel_id}", partial(
            self.rest.post, "channels", channel_id, "transfer_progress",
            params={"states": state}))

    def _on_refer(self, raw: Mapping[str, Any]) -> None:
        """A phone sent REFER on a channel of the application (ChannelTransfer: the data is in
        ``refer_to`` and ``referred_by``, there is no top-level channel)."""
        refer_to, by = raw.get("refer_to"), raw.get("referred_by")
        source = _id_in(by, "source_channel")
        if source is None or not isinstance(refer_to, dict):
            return
        # Asterisk 22 may publish one REFER twice (the second once the transferer has left
        # its bridge): a phone transfers its call once.
        if source in self._referred:
            return
        self._referred[source] = None
        if len(self._referred) > 1024:
            self._referred.popitem(last=False)
        wanted = refer_to.get("requested_destination")
        destination = wanted.get("destination") if isinstance(wanted, dict) else None
        if isinstance(destination, str) and destination:
            self._refer_blind(source, destination)
        else:
            self._refer_attended(source, refer_to)

    def _refer_blind(self, source: str, destination: str) -> None:
        """Blind transfer by the phone on ``source``: it leaves the SDK bridge, the others hear
        ringback while the destination is dialled into the bridge; the phone is told the
        outcome and hung up (as :meth:`CallControl.transfer` does for the agent)."""
        bid, peers = self._state.bridge_members(source)
        with self._state.lock:
            owned = self._state.bridges.get(bid) if bid is not None else None
            call_id = owned.call_id if owned is not None else ""
        if bid is None or not peers:
            logger.info("call control: REFER on %s, which talks to nobody in an SDK bridge", source)
            self.transfer_progress(source, "channel_declined")
            return
        try:
            endpoint = self._options().endpoint_for(destination)
        except Exception:
            logger.exception("call control: endpoint_for(%r) raised", destination)
            self.transfer_progress(source, "channel_unavailable")
            return
        leg = Leg(channel_id=new_id("cti-c"), endpoint=endpoint, purpose="transfer",
                  peer_id=peers[0], bridge_id=bid, call_id=call_id, on_failure="hangup",
                  notify=source)
        leg.join = (leg.channel_id,)
        logger.info("call control: %s transfers %s to %s (REFER)", source, ", ".join(peers),
                    endpoint)
        self.protect(bid, +1)
        try:
            self.hint(source, ControlHint("transfer", transferees=peers,
                                          called=self.party(endpoint)))
            self.remove_from_bridge(bid, source)
            try:
                leg.ringback = ("playback", self.play("bridges", bid, self._options().ringback))
            except AsteriskCtiError as exc:
                logger.info("call control: no ringback in %s: %s", bid, exc)
            self.dial(leg)
        except AsteriskCtiError as exc:
            logger.warning("call control: REFER of %s to %s failed: %s", source, endpoint, exc)
        finally:
            self.protect(bid, -1)

    def _refer_attended(self, source: str, refer_to: Mapping[str, Any]) -> None:
        """Attended transfer by the phone: REFER with Replaces on ``source`` (D, talking to C)
        naming its other call (B, talking to A): C joins A in B's bridge, D's bridge goes,
        the phone is told 200 OK, B and D are hung up."""
        replaced = _id_in(refer_to, "destination_channel")
        b1, a_side = self._state.bridge_members(replaced) if replaced else (None, ())
        b2, c_side = self._state.bridge_members(source)
        if replaced is None or b1 is None or b2 is None or not a_side or not c_side:
            logger.info("call control: attended REFER on %s not in SDK bridges", source)
            self.transfer_progress(source, "channel_declined")
            return
        logger.info("call control: attended REFER: %s joins %s", ", ".join(c_side),
                    ", ".join(a_side))
        self.hint(replaced, ControlHint("transfer", transferees=a_side, target=c_side[0]))
        self.hint(source, ControlHint("transfer", transferees=c_side))
        self.protect(b1, +1)
        self.protect(b2, +1)
        try:
            for channel_id in c_side:
                self.remove_from_bridge(b2, channel_id)
            # join before B leaves, so that the bridge never looks over (fewer than two)
            self.add_to_bridge(b1, c_side)
            self.remove_from_bridge(b1, replaced)
            self.transfer_progress(source, "channel_answered")
        except AsteriskCtiError as exc:
            logger.warning("call control: attended REFER on %s failed: %s", source, exc)
            self.transfer_progress(source, "channel_unavailable")
        finally:
            self.protect(b1, -1)
            self.protect(b2, -1)
        self.destroy_bridge(b2)
        self.hangup(replaced)
        self.hangup(source)

    # -- the switch ---------------------------------------------------------------------------

    def switch(self, event: Event) -> None:
        """A call the dialplan sent in with ``Stasis(app,dial[,destination])``: ring the
        destination, give ringback to the caller, bridge on answer."""
        chan = event.channel
        assert chan is not None
        args = tuple(event.raw.get("args") or ())
        destination = str(args[1]) if len(args) > 1 and args[1] else chan.dialplan.exten
        options = self._options()
        if not destination:
            logger.warning("call control: switch call %s has no destination", chan.id)
            self.hangup(chan.id, "unallocated")
            return
        try:
            endpoint = options.endpoint_for(destination)
        except Exception:
            logger.exception("call control: endpoint_for(%r) raised", destination)
            self.hangup(chan.id, "unallocated")
            return
        leg = Leg(
            channel_id=new_id("cti-c"), endpoint=endpoint, purpose="switch", peer_id=chan.id,
            bridge_id=new_id("cti-b"), call_id=chan.id, create_bridge=True,
            answer_peer=True, on_failure=options.on_failure,
        )
        leg.join = (chan.id, leg.channel_id)
        logger.info("call control: switch %s (%s) -> %s", chan.id, chan.name, endpoint)
        self.allow_phone_transfers(chan.id, chan.name)
        if chan.state != "Up" and self.quiet(
            "ring the caller", partial(self.rest.post, "channels", chan.id, "ring")
        ):
            leg.ringback = ("ring", chan.id)
        caller = chan.caller
        caller_id = f'"{caller.name}" <{caller.number}>' if caller.number else None
        try:
            self.dial(leg, caller_id=caller_id, timeout=options.dial_timeout)
        except AsteriskCtiError as exc:
            logger.warning("call control: switch could not dial %s: %s", endpoint, exc)

    # -- the raw listener -------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """Act on one event that concerns call control (the control thread, queued by
        :meth:`observe` in event order)."""
        etype = event.type
        if etype == "StasisStart":
            self._on_stasis_start(event)
        elif etype in ("StasisEnd", "ChannelDestroyed"):
            self._on_gone(event)
        elif etype == "Dial":
            self._on_dial(event)
        elif etype == "ChannelLeftBridge":
            bridge = event.bridge
            if bridge is not None:
                self.teardown_if_over(bridge.id)
        elif etype == "ChannelTransfer":
            self._on_refer(event.raw)

    def _on_stasis_start(self, event: Event) -> None:
        chan = event.channel
        if chan is None:
            return
        cid = chan.id
        with self._state.lock:
            plan = self._state.plans.pop(cid, None)
            is_leg = cid in self._state.legs
        if plan is not None:
            self._agent_answered(plan, chan.endpoint)
        elif is_leg:
            self.leg_answered(cid)
        else:
            args = event.raw.get("args")
            if not isinstance(args, list):  # a hostile or broken frame: no switch argument
                args = []
            options = self._options()
            if options.switch and args and str(args[0]) == options.switch_arg:
                self.switch(event)

    def _agent_answered(self, plan: OriginatePlan, agent_endpoint: str) -> None:
        leg = plan.leg
        self.allow_phone_transfers(plan.agent_id, agent_endpoint)
        leg.peer_identity = self.identity(agent_endpoint)
        try:
            leg.ringback = ("playback", self.play(
                "channels", plan.agent_id, self._options().ringback))
        except AsteriskCtiError as exc:
            logger.info("call control: no ringback for %s: %s", plan.agent_id, exc)
        try:
            self.dial(leg, caller_id=plan.caller_id, variables=plan.variables,
                      timeout=plan.timeout)
        except AsteriskCtiError as exc:
            logger.warning("call control: click-to-dial could not dial %s: %s",
                           leg.endpoint, exc)

    def _on_gone(self, event: Event) -> None:
        chan = event.channel
        if chan is None:
            return
        cid = chan.id
        cause = int(event.raw.get("cause") or 0)
        with self._state.lock:
            plan = self._state.plans.pop(cid, None) if event.type == "ChannelDestroyed" else None
            leg = self._state.legs.get(cid)
            consult_as_agent = [c for c in self._state.consults.values() if c.agent_id == cid]
            consult_as_dest = self._state.consults.get(cid)
            bid = self._state.bridge_of.get(cid)
        if plan is not None:
            logger.info("call control: click-to-dial agent %s did not answer (cause %s)", cid,
                        cause)
        if leg is not None and event.type == "ChannelDestroyed":
            self.leg_failed(cid, dialstatus_for_cause(cause), cause)
        self.cancel_legs_of(cid)
        for consult in consult_as_agent:
            if consult.answered:
                self.quiet("complete the transfer",
                           partial(self.consult_complete, consult, hangup_agent=False))
            else:
                self.hangup(consult.dest_id)
                self.consult_return(consult)
        if consult_as_dest is not None and consult_as_dest.answered:
            self.consult_return(consult_as_dest)
        if bid is not None:
            self.teardown_if_over(bid)

    def _on_dial(self, event: Event) -> None:
        peer = event.raw.get("peer")
        pid = peer.get("id") if isinstance(peer, dict) else None
        status = str(event.raw.get("dialstatus") or "")
        if not isinstance(pid, str) or not status:
            return
        with self._state.lock:
            leg = self._state.legs.get(pid)
            if leg is not None:
                leg.dialstatus = status
                if status == "RINGING":
                    leg.state = "ringing"


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


def _id_in(holder: Any, key: str) -> Optional[str]:
    value = holder.get(key) if isinstance(holder, dict) else None
    cid = value.get("id") if isinstance(value, dict) else None
    return cid if isinstance(cid, str) and cid else None


def channel_ids(items: Iterable[Optional[str]]) -> List[str]:
    """The non-empty ids of ``items``, without duplicates, in order."""
    out: List[str] = []
    for item in items:
        if item and item not in out:
            out.append(item)
    return out
