"""What call control knows about its Stasis application, behind intention-revealing methods.

:class:`StasisState` is the one owner of call control's bookkeeping: which channels are in the
application (StasisStart/StasisEnd), which were seen outside it, the channel states, the members
of the bridges the SDK owns, who holds whom, the legs being dialled, the click-to-dial plans
and the consultations. Nobody else touches its dicts or its lock.

It is fed on the **processor thread** by :meth:`StasisState.record`, called from call control's
tap (:meth:`~asterisk_cti.control.engine.StasisEngine.tap`) before any pending wait or
listener sees the event, so this state is always at least as recent as anything a waiting
caller has seen. Caller threads and the control thread read and change it through the other
methods. Every method takes the one internal lock for a short, non-blocking step: no request
is sent and no wait is made while it is held, and no method calls another under it.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Set, Tuple

from ..events.catalogue import Event

logger = logging.getLogger(__name__)

__all__ = [
    "ENGINE_EVENT_TYPES",
    "Consult",
    "Leg",
    "OriginatePlan",
    "OwnedBridge",
    "StasisState",
]

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
_ENGINE_TYPES = frozenset(ENGINE_EVENT_TYPES)
_LIFE_CYCLE = frozenset(("StasisStart", "StasisEnd", "ChannelCreated", "ChannelDestroyed"))


@dataclass
class OwnedBridge:
    """A mixing bridge the SDK created (changed only through :class:`StasisState`)."""

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
    """What the SDK knows about its application (see the module docstring for the threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_stasis: Dict[str, str] = {}
        self._outside: OrderedDict[str, None] = OrderedDict()
        self._states: OrderedDict[str, str] = OrderedDict()
        self._bridges: Dict[str, OwnedBridge] = {}
        self._bridge_of: Dict[str, str] = {}
        self._held: Dict[str, Tuple[str, ...]] = {}
        self._legs: Dict[str, Leg] = {}
        self._plans: Dict[str, OriginatePlan] = {}
        self._consults: Dict[str, Consult] = {}
        #: the Stasis ``app_data`` each channel's last snapshot showed (dialplan ``app_name``
        #: Stasis; the application is its first argument), to say "in another application"
        self._apps: OrderedDict[str, str] = OrderedDict()
        #: channels whose StasisStart the tap handed to the switch: their end goes to it too
        #: (the switch may have dialled legs for them by then); forgotten on ChannelDestroyed
        self._switched: OrderedDict[str, None] = OrderedDict()

    # -- fed on the processor thread ------------------------------------------------------------

    def concerns(self, channel_id: str) -> bool:
        """Whether call control follows this channel (in its app, dialled or bridged by it).

        Called for every event of :data:`ENGINE_EVENT_TYPES` to decide whether the engine gets
        it, so it is lock-free: dict membership tests are atomic.
        """
        return (channel_id in self._in_stasis or channel_id in self._plans
                or channel_id in self._legs or channel_id in self._bridge_of
                or channel_id in self._consults)

    def end_concerns(self, channel_id: str) -> bool:
        """Whether the switch acts on this channel's end (StasisEnd, ChannelDestroyed): a
        click-to-dial agent, a leg, a member of an SDK bridge, a party of a consultation, the
        peer of a leg, or a channel whose StasisStart went to the switch. Lock-free (the tap's
        filter; the scans run only while legs or consultations exist, and copy the values
        first, which is atomic)."""
        if (channel_id in self._switched or channel_id in self._plans
                or channel_id in self._legs or channel_id in self._bridge_of
                or channel_id in self._consults):
            return True
        if self._legs and any(leg.peer_id == channel_id for leg in list(self._legs.values())):
            return True
        return bool(self._consults) and any(
            c.agent_id == channel_id for c in list(self._consults.values()))

    def note_switched(self, channel_id: str) -> None:
        """The tap handed this channel's StasisStart to the switch (processor thread)."""
        with self._lock:
            self._switched[channel_id] = None
            if len(self._switched) > _SEEN_LIMIT:
                self._switched.popitem(last=False)

    def dialling_leg(self, channel_id: str) -> bool:
        """Whether the channel is a leg being dialled, lock-free (the tap's filter: a Dial
        event matters to the switch only for a leg)."""
        return channel_id in self._legs

    def owns_bridge(self, bridge_id: str) -> bool:
        """Whether the bridge is one the SDK created, lock-free (the tap's filter)."""
        return bridge_id in self._bridges

    def record(self, event: Event) -> None:
        """Record what ``event`` says about the application (processor thread). Never raises:
        a hostile frame is logged and skipped."""
        try:
            self._record(event.raw)
        except Exception:  # the state must never break the processor
            logger.exception("call control could not record an event")

    def _record(self, raw: Mapping[str, Any]) -> None:
        # The processor's hot path (every ARI event): exact-type tests and early returns.
        chan: Any = raw.get("channel")
        cid: Any = None
        if chan.__class__ is dict:
            cid = chan.get("id")
            if cid.__class__ is str:
                dialplan = chan.get("dialplan")
                if dialplan.__class__ is dict and dialplan.get("app_name") == "Stasis":
                    self._note_app(cid, dialplan.get("app_data"))
            else:
                cid = None
        etype = raw.get("type")
        if etype not in _ENGINE_TYPES:
            return
        cstate: Any = None
        if cid is not None:
            cstate = chan.get("state")
            if cstate.__class__ is not str or self._states.get(cid) == cstate:
                cstate = None  # nothing new: the order of the bounded map is that of changes
        if etype in _LIFE_CYCLE:
            if cid is not None:
                with self._lock:
                    self._set_state(cid, cstate)
                    self._life_cycle(etype, cid, cstate)
            return
        # bridge events change something only for the SDK's own bridges (a lock-free
        # look-up first; they are few)
        bridge = raw.get("bridge")
        bid = bridge.get("id") if bridge.__class__ is dict else None
        if bid.__class__ is not str or bid not in self._bridges:
            if cstate is not None:
                with self._lock:
                    self._set_state(cid, cstate)
            return
        with self._lock:
            if cid is not None:
                self._set_state(cid, cstate)
            if etype == "BridgeDestroyed":
                owned = self._bridges.pop(bid, None)
                if owned is not None:
                    for member in owned.members:
                        if self._bridge_of.get(member) == owned.id:
                            del self._bridge_of[member]
            elif cid is not None and (etype == "ChannelEnteredBridge"
                                      or etype == "ChannelLeftBridge"):
                owned = self._bridges.get(bid)
                if owned is not None:
                    if etype == "ChannelEnteredBridge":
                        owned.members.add(cid)
                        self._bridge_of[cid] = owned.id
                    else:
                        self._leave(cid, owned.id)

    def _set_state(self, cid: str, cstate: Optional[str]) -> None:
        # Lock held.
        if cstate is not None:
            self._states[cid] = cstate
            self._states.move_to_end(cid)
            if len(self._states) > _SEEN_LIMIT:
                self._states.popitem(last=False)

    def _life_cycle(self, etype: str, cid: str, cstate: Optional[str]) -> None:
        # Lock held.
        if etype == "StasisStart":
            self._in_stasis[cid] = cstate or self._states.get(cid, "")
            self._outside.pop(cid, None)
        elif etype == "StasisEnd":
            self._in_stasis.pop(cid, None)
            self._mark_outside(cid)
        elif etype == "ChannelCreated":
            if cid not in self._in_stasis:
                self._mark_outside(cid)
        else:  # ChannelDestroyed
            self._in_stasis.pop(cid, None)
            self._outside.pop(cid, None)
            self._apps.pop(cid, None)
            self._states.pop(cid, None)
            self._switched.pop(cid, None)
            self._leave(cid, None)

    def _note_app(self, cid: str, data: Any) -> None:
        # The raw app_data is kept (the application is its first argument, read by
        # other_app): most events repeat the channel's snapshot, and comparing the string
        # costs less than splitting it on every event.
        if data.__class__ is not str:
            return
        apps = self._apps
        if apps.get(cid) == data:
            return  # known: the order of the bounded map is that of changes
        with self._lock:
            apps[cid] = data
            apps.move_to_end(cid)
            if len(apps) > _SEEN_LIMIT:
                apps.popitem(last=False)

    def _mark_outside(self, cid: str) -> None:
        self._outside[cid] = None
        if len(self._outside) > _SEEN_LIMIT:
            self._outside.popitem(last=False)

    def _leave(self, cid: str, bid: Optional[str]) -> None:
        bid = bid or self._bridge_of.get(cid)
        if bid is None:
            return
        owned = self._bridges.get(bid)
        if owned is not None:
            owned.members.discard(cid)
        if self._bridge_of.get(cid) == bid:
            del self._bridge_of[cid]

    # -- channels (any thread) ------------------------------------------------------------------

    def known_outside(self, channel_id: str) -> bool:
        """True when the SDK saw the channel outside its application (created elsewhere and
        never entered, or left with StasisEnd), so a Stasis-only request would fail."""
        with self._lock:
            return channel_id not in self._in_stasis and channel_id in self._outside

    def other_app(self, channel_id: str, app: str) -> Optional[str]:
        """The other Stasis application the channel was last seen in, if it is not ``app``."""
        with self._lock:
            data = self._apps.get(channel_id)
        seen = data.split(",", 1)[0].strip() if data else ""
        return seen if seen and seen != app else None

    def is_in_stasis(self, channel_id: str) -> bool:
        """True when the channel is in the SDK's application (StasisStart seen, no end)."""
        with self._lock:
            return channel_id in self._in_stasis

    def visible(self, channel_id: str) -> bool:
        """True when the SDK receives events for the channel (it has seen some)."""
        with self._lock:
            return channel_id in self._states or channel_id in self._in_stasis

    def state_of(self, channel_id: str) -> str:
        """The last channel state seen (``Up``, ``Ringing``...), empty when unknown."""
        with self._lock:
            return self._states.get(channel_id, "")

    # -- the SDK's bridges ----------------------------------------------------------------------

    def bridge_members(self, channel_id: str) -> Tuple[Optional[str], Tuple[str, ...]]:
        """The SDK bridge the channel is in and its other members."""
        with self._lock:
            bid = self._bridge_of.get(channel_id)
            owned = self._bridges.get(bid) if bid is not None else None
            if owned is None:
                return None, ()
            return owned.id, tuple(sorted(m for m in owned.members if m != channel_id))

    def members_of(self, bridge_id: str) -> Tuple[str, ...]:
        """Every member of an SDK bridge, sorted (empty for an unknown bridge)."""
        with self._lock:
            owned = self._bridges.get(bridge_id)
            return tuple(sorted(owned.members)) if owned is not None else ()

    def call_of_bridge(self, bridge_id: Optional[str]) -> Optional[str]:
        """The call id an SDK bridge was created for (None for an unknown bridge)."""
        with self._lock:
            owned = self._bridges.get(bridge_id) if bridge_id is not None else None
            return owned.call_id if owned is not None else None

    def add_bridge(self, bridge_id: str, call_id: str, protect: int = 0) -> None:
        """Record a bridge the SDK is about to create (before the request is sent)."""
        with self._lock:
            self._bridges[bridge_id] = OwnedBridge(bridge_id, call_id, protect=protect)

    def adopt_bridge(self, bridge_id: str, call_id: str, members: Iterable[str]) -> bool:
        """Take over a bridge an earlier process of the same application created, with its
        members (in the application, since a Stasis bridge holds only such channels).
        False when the bridge is known already."""
        with self._lock:
            if bridge_id in self._bridges:
                return False
            owned = OwnedBridge(bridge_id, call_id, members=set(members))
            self._bridges[bridge_id] = owned
            for member in owned.members:
                self._bridge_of[member] = bridge_id
                self._in_stasis.setdefault(member, "")
                self._outside.pop(member, None)
            return True

    def keep_members(self, bridge_id: str, present: Iterable[str]) -> None:
        """Drop the members of an SDK bridge that are not in ``present`` (a later listing)."""
        keep = set(present)
        with self._lock:
            owned = self._bridges.get(bridge_id)
            if owned is None:
                return
            for member in owned.members - keep:
                owned.members.discard(member)
                if self._bridge_of.get(member) == bridge_id:
                    del self._bridge_of[member]

    def forget_bridge(self, bridge_id: str) -> None:
        """Forget a bridge whose creation failed."""
        with self._lock:
            self._bridges.pop(bridge_id, None)

    def mark_closing(self, bridge_id: str) -> None:
        """The SDK is destroying this bridge: it is not torn down a second time."""
        with self._lock:
            owned = self._bridges.get(bridge_id)
            if owned is not None:
                owned.closing = True

    def protect(self, bridge_id: str, delta: int) -> None:
        """Change how many pending operations keep an SDK bridge from being torn down."""
        with self._lock:
            owned = self._bridges.get(bridge_id)
            if owned is not None:
                owned.protect = max(0, owned.protect + delta)

    def close_if_over(self, bridge_id: str) -> Optional[Tuple[str, ...]]:
        """Mark an SDK bridge closing when its call is over (fewer than two parties left,
        nothing in progress in it).

        :returns: the remaining members, to hang up; None when the call is not over.
        """
        with self._lock:
            owned = self._bridges.get(bridge_id)
            if owned is None or owned.closing or owned.protect > 0 or len(owned.members) > 1:
                return None
            owned.closing = True
            return tuple(owned.members)

    def counts(self) -> Tuple[int, int, int]:
        """How many channels are in the application, SDK bridges exist and legs are dialled
        (for reprs)."""
        with self._lock:
            return len(self._in_stasis), len(self._bridges), len(self._legs)

    # -- hold -----------------------------------------------------------------------------------

    def is_holding(self, holder: str) -> bool:
        """Whether ``holder`` has parties on hold through the SDK."""
        with self._lock:
            return holder in self._held

    def note_held(self, holder: str, peers: Tuple[str, ...], *, replace: bool = True) -> None:
        """Record that ``holder`` put ``peers`` on hold (``replace=False``: only when it holds
        nobody yet)."""
        with self._lock:
            if replace or holder not in self._held:
                self._held[holder] = peers

    def take_held(self, holder: str) -> Tuple[str, ...]:
        """Forget and return the parties ``holder`` held (empty when none)."""
        with self._lock:
            return self._held.pop(holder, ())

    # -- click-to-dial plans --------------------------------------------------------------------

    def add_plan(self, plan: OriginatePlan) -> None:
        """Record a click-to-dial waiting for its agent to answer."""
        with self._lock:
            self._plans[plan.agent_id] = plan

    def take_plan(self, agent_id: str) -> Optional[OriginatePlan]:
        """Forget and return the click-to-dial of ``agent_id`` (None when there is none)."""
        with self._lock:
            return self._plans.pop(agent_id, None)

    def pending_plans(self) -> int:
        """How many click-to-dials wait for their agent."""
        with self._lock:
            return len(self._plans)

    # -- legs -----------------------------------------------------------------------------------

    def add_leg(self, leg: Leg) -> None:
        """Record a leg about to be dialled; a leg into an existing bridge protects it."""
        with self._lock:
            self._legs[leg.channel_id] = leg
            if not leg.create_bridge:
                owned = self._bridges.get(leg.bridge_id)
                if owned is not None:
                    owned.protect += 1

    def is_leg(self, channel_id: str) -> bool:
        """Whether the channel is a leg being dialled."""
        with self._lock:
            return channel_id in self._legs

    def is_dialling(self, channel_id: str) -> bool:
        """Whether the SDK is calling this channel into its application (a leg, or the agent
        of a click-to-dial): it enters the application when it answers."""
        with self._lock:
            return channel_id in self._legs or channel_id in self._plans

    def take_leg(self, channel_id: str) -> Tuple[Optional[Leg], Optional[Consult], bool]:
        """Forget a leg that answered or failed.

        :returns: the leg (None when unknown), the consultation it dials, and whether its
            peer is still in the application.
        """
        with self._lock:
            leg = self._legs.pop(channel_id, None)
            if leg is None:
                return None, None, False
            return leg, self._consults.get(channel_id), leg.peer_id in self._in_stasis

    def note_dial(self, channel_id: str, dialstatus: str) -> None:
        """A Dial event for a leg: remember its status (the failure it reports wins over the
        cause of the channel's end)."""
        with self._lock:
            leg = self._legs.get(channel_id)
            if leg is not None:
                leg.dialstatus = dialstatus

    def cancel_leg(self, channel_id: str) -> None:
        """A leg's peer gave up on it: when it answers it is hung up, when it fails nothing is
        done to the peer."""
        with self._lock:
            leg = self._legs.get(channel_id)
            if leg is not None:
                leg.cancelled = True

    def cancel_legs_of(self, peer_id: str) -> List[Leg]:
        """Cancel every leg dialled for ``peer_id``.

        :returns: the cancelled legs (to hang up).
        """
        with self._lock:
            legs = [leg for leg in self._legs.values() if leg.peer_id == peer_id]
            for leg in legs:
                leg.cancelled = True
        return legs

    # -- consultations --------------------------------------------------------------------------

    def add_consult(self, consult: Consult) -> None:
        """Record a consultation (attended transfer) in progress."""
        with self._lock:
            self._consults[consult.consult_id] = consult

    def consult(self, consult_id: str) -> Optional[Consult]:
        """The consultation in progress with this id (None when it is over)."""
        with self._lock:
            return self._consults.get(consult_id)

    def consults_of_agent(self, agent_id: str) -> List[Consult]:
        """The consultations ``agent_id`` is making."""
        with self._lock:
            return [c for c in self._consults.values() if c.agent_id == agent_id]

    def mark_answered(self, consult: Consult) -> None:
        """The destination of a consultation answered."""
        with self._lock:
            consult.answered = True

    def end_consult(self, consult_id: str) -> bool:
        """Forget a consultation.

        :returns: False when it was already over (someone else ended it).
        """
        with self._lock:
            return self._consults.pop(consult_id, None) is not None
