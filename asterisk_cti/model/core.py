"""The call model: ARI events in, CSTA-style CTI events out, per monitored line.

:class:`CallModel` is a pure state machine. It has no thread and does no I/O: the processor
thread calls :meth:`CallModel.apply` for every event, and the client passes REST data to
:meth:`CallModel.resync` and :meth:`CallModel.repair`. Every state change goes through the
table :data:`~asterisk_cti.model.transitions.TRANSITIONS`.

Readers on other threads use :attr:`CallModel.lines`, :meth:`CallModel.line`,
:meth:`CallModel.find_call` and :meth:`CallModel.connection`: they return immutable snapshots
that the processor republishes (copy-on-write, per line / call / connection) at the end of every
mutating call, so a reader never sees a half-applied event.

Cost: every handler does a constant number of dict look-ups plus work proportional to the
channels of the one call or line an event touches; nothing iterates over all lines or calls.
Events about channels that are neither on a monitored line nor related to a tracked call are
dropped after one or two dict look-ups.
"""

from __future__ import annotations

import calendar
import logging
import threading
import time
from collections import OrderedDict
from typing import (
    Any,
    Callable,
    Dict,
    FrozenSet,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
)

from ..causes import STATUS_FOR_CAUSE as _STATUS_OF_CAUSE
from ..events.catalogue import Event, endpoint_of_channel_name
from .transitions import TRANSITIONS, Stimulus, phone_state_of
from .types import (
    LINE_UNKNOWN,
    NOBODY,
    Call,
    CallEvent,
    Connection,
    ConnectionState,
    ControlHint,
    Direction,
    EventKind,
    Line,
    LineStateChange,
    Party,
    PhoneState,
    Reason,
    ResyncReport,
)

_LOG = logging.getLogger(__name__)

_NULL = ConnectionState.NULL
_INITIATED = ConnectionState.INITIATED
_CONNECTED = ConnectionState.CONNECTED
_HOLD = ConnectionState.HOLD
_INCOMING = Direction.INCOMING
_OUTGOING = Direction.OUTGOING

#: ARI channel states meaning "the phone is placing a call".
_OUT_STATES = frozenset({"Ring", "Dialing", "OffHook", "Dialing Offhook", "Pre-ring"})

#: Failed DIALSTATUS values: the Q.850 cause used when the peer's own cause is unknown, and the
#: CSTA reason.
_DIAL_FAILURES: Dict[str, Tuple[int, Reason]] = {
    "BUSY": (17, Reason.BUSY),
    "NOANSWER": (19, Reason.NO_ANSWER),
    "CONGESTION": (34, Reason.CONGESTION),
    "CHANUNAVAIL": (20, Reason.UNAVAILABLE),
    "DONTCALL": (21, Reason.UNAVAILABLE),
    "TORTURE": (21, Reason.UNAVAILABLE),
    "INVALIDARGS": (28, Reason.UNAVAILABLE),
}
_DIAL_FINAL = frozenset({"ANSWER", "CANCEL", *_DIAL_FAILURES})

_CLEARING_KINDS = frozenset(
    {EventKind.CONNECTION_CLEARED, EventKind.CALL_CLEARED, EventKind.DIVERTED}
)

_NO_RAW: Tuple[Mapping[str, Any], ...] = ()
_NOBODY_IDS: FrozenSet[str] = frozenset()
_TOMBSTONES = 4096
_LOCAL_CACHE = 20000
#: After a BridgeMerged, how long (ARI time) the bridge counts as settling when no
#: BridgeAttendedTransfer arrives; Asterisk publishes the transfer in the same burst.
_SETTLE_SECONDS = 2.0
#: At most this many bridges settling at once (the oldest is dropped).
_MERGING_MAX = 1024


def _epoch_of(ts: str, cache: Dict[str, float]) -> Optional[float]:
    """Parse ``2026-11-26T03:53:31.659+0000`` to epoch seconds; ``None`` if malformed.

    ``cache`` memoises the minute prefix, which makes this a few slices and one float().
    """
    try:
        base = cache.get(ts[:16])
        if base is None:
            base = float(
                calendar.timegm(
                    (int(ts[0:4]), int(ts[5:7]), int(ts[8:10]), int(ts[11:13]),
                     int(ts[14:16]), 0, 0, 0, 0)
                )
            )
            if len(cache) > 256:
                cache.clear()
            cache[ts[:16]] = base
        rest = ts[17:]
        cut = max(rest.rfind("+"), rest.rfind("-"))
        if cut < 0:
            return base + float(rest.rstrip("Z"))
        tz = rest[cut + 1:].replace(":", "")
        offset = int(tz[0:2]) * 3600 + int(tz[2:4]) * 60
        if rest[cut] == "-":
            offset = -offset
        return base + float(rest[:cut]) - offset
    except (ValueError, IndexError, TypeError):
        return None


def _linkedid(raw: Mapping[str, Any]) -> Optional[str]:
    """The linkedid from ``channelvars`` (``CHANNEL(linkedid)`` or ``linkedid``), if sent."""
    cv = raw.get("channelvars")
    if type(cv) is not dict:
        return None
    value = cv.get("CHANNEL(linkedid)") or cv.get("linkedid")
    return str(value) if value else None


def _sibling(name: str) -> Optional[str]:
    """The other half of a Local channel (``...;1`` <-> ``...;2``)."""
    if name.endswith(";1"):
        return name[:-1] + "2"
    if name.endswith(";2"):
        return name[:-1] + "1"
    return None


def _as_dict(value: Any) -> Optional[Mapping[str, Any]]:
    return value if type(value) is dict else None


class _Call:
    """A conversation: the tracked channels (monitored or related) that belong together."""

    __slots__ = ("id", "chans", "seq", "keys")

    def __init__(self, call_id: str, seq: int) -> None:
        self.id = call_id
        self.chans: Dict[str, _Chan] = {}
        self.seq = seq
        self.keys: List[str] = [call_id]


class _Chan:
    """A tracked channel. ``line`` is ``None`` for a related channel not on a monitored line
    (a Local channel, a trunk): it takes part in correlation but has no CSTA state."""

    __slots__ = (
        "id", "name", "line", "call", "state", "direction", "own", "calling", "called",
        "connected", "talking", "ringback", "cause", "dialstatus", "reason", "start", "answer",
        "end", "peer", "dials", "bridge", "hold_party", "xfer_pending", "cleared", "announced",
        "weak", "conf", "seq", "hint", "xfer", "xfer_wait",
    )

    def __init__(self, cid: str, name: str, line: Optional[str], seq: int) -> None:
        self.id = cid
        self.name = name
        self.line = line
        self.call: _Call = _NO_CALL
        self.state = _NULL
        self.direction = _INCOMING
        self.own = NOBODY
        self.calling = NOBODY
        self.called = NOBODY
        self.connected = NOBODY
        self.talking = False
        self.ringback = False
        self.cause = 0
        self.dialstatus = ""
        self.reason = Reason.NORMAL
        self.start = 0.0
        self.answer: Optional[float] = None
        self.end: Optional[float] = None
        self.peer: Optional[str] = None
        self.dials = 0
        self.bridge: Optional[str] = None
        self.hold_party = NOBODY
        self.xfer_pending = False
        self.cleared = False
        self.announced = False
        self.weak = True
        self.conf: FrozenSet[str] = _NOBODY_IDS
        self.seq = seq
        #: what call control said about this channel (it placed or dialled it)
        self.hint: Optional[ControlHint] = None
        #: a pending transfer call control announced for this (transferring) channel
        self.xfer: Optional[ControlHint] = None
        #: a REFER blind transfer seen (transferring, target), told when the target rings
        self.xfer_wait: Optional[Tuple[Party, Party]] = None


_NO_CALL = _Call("", -1)


class _Merge:
    """A bridge that absorbed another (BridgeMerged) and has not settled yet: ``since`` is the
    ARI time of the merge, ``deferred`` the connected-line changes held back meanwhile
    (channel id -> (channel, party before)), told as ``party_changed`` unless a transfer
    told them."""

    __slots__ = ("since", "deferred")

    def __init__(self, since: float) -> None:
        self.since = since
        self.deferred: Dict[str, Tuple[_Chan, Party]] = {}


class _LineRec:
    __slots__ = ("name", "registration", "conns")

    def __init__(self, name: str) -> None:
        self.name = name
        self.registration = LINE_UNKNOWN
        self.conns: Dict[str, _Chan] = {}


class CallModel:
    """Lines, calls and connections built from ARI events; emits :class:`CallEvent` objects.

    Mutating methods (:meth:`apply`, :meth:`set_monitored`, :meth:`resync`, :meth:`repair`,
    :meth:`set_held`) must be called from one thread, the processor thread. The snapshot
    accessors (:attr:`lines`, :meth:`line`, :meth:`find_call`, :meth:`connection`) may be
    called from any thread.

    :param clock: returns the current epoch time; used when an event has no timestamp and
        for REST-driven events. Injectable for tests.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        #: When True, :meth:`apply` leaves publishing the snapshots to :meth:`flush`: the
        #: processor flushes once per batch, before it delivers the batch's events, instead
        #: of rebuilding snapshots after every event.
        self.defer_publish = False
        self._eps: Set[str] = set()
        self._techs: Set[str] = set()
        self._lines: Dict[str, _LineRec] = {}
        self._chans: Dict[str, _Chan] = {}
        self._calls: Dict[str, _Call] = {}
        self._by_number: Dict[str, Dict[str, _Chan]] = {}
        self._local_by_name: Dict[str, str] = {}
        self._local_name: Dict[str, str] = {}
        self._merging: Dict[str, _Merge] = {}
        self._tomb: OrderedDict[str, None] = OrderedDict()
        self._repair: Set[str] = set()
        # Call control's hints (channel id -> hint), written by any thread under _hint_lock.
        self._hint_lock = threading.Lock()
        self._hints: Dict[str, ControlHint] = {}
        self._seq = 0
        self._ts_cache: Dict[str, float] = {}
        #: How many stimuli did not fit the transition table since creation.
        self.unfit_count = 0
        # Per-call (apply/resync/...) scratch state.
        self._out: List[CallEvent] = []
        self._raw: Tuple[Mapping[str, Any], ...] = _NO_RAW
        self._ts_text = ""
        self._ts: Optional[float] = None
        self._dirty_chans: Dict[str, _Chan] = {}
        self._dirty_lines: Dict[str, None] = {}
        self._dirty_calls: Set[str] = set()
        # Published snapshots.
        self._lock = threading.Lock()
        self._line_snaps: Dict[str, Line] = {}
        self._conn_snaps: Dict[str, Connection] = {}
        self._call_snaps: Dict[str, Call] = {}
        self._handlers: Dict[str, Callable[[Mapping[str, Any]], None]] = {
            "ChannelCreated": self._on_created,
            "ChannelStateChange": self._on_state_change,
            "ChannelConnectedLine": self._on_connected_line,
            "ChannelCallerId": self._on_caller_id,
            "ChannelHangupRequest": self._on_hangup_request,
            "ChannelDestroyed": self._on_destroyed,
            "ChannelHold": self._on_hold,
            "ChannelUnhold": self._on_unhold,
            "ChannelTalkingStarted": self._on_talk_start,
            "ChannelTalkingFinished": self._on_talk_stop,
            "ChannelEnteredBridge": self._on_entered_bridge,
            "ChannelLeftBridge": self._on_left_bridge,
            "BridgeMerged": self._on_bridge_merged,
            "BridgeDestroyed": self._on_bridge_destroyed,
            "BridgeAttendedTransfer": self._on_attended_transfer,
            "BridgeBlindTransfer": self._on_blind_transfer,
            "Dial": self._on_dial,
            "EndpointStateChange": self._on_endpoint_state,
        }

    # ------------------------------------------------------------------ public API

    def set_monitored(self, sources: Iterable[str]) -> None:
        """Set the monitored endpoints (``PJSIP/1000``) and technologies (``PJSIP``).

        Processor thread. Lines of endpoints no longer monitored disappear (without events);
        explicitly named endpoints get a line at once (registration ``unknown``), endpoints of
        a monitored technology get one when first seen. Calls already in progress at a newly
        monitored endpoint appear after the next :meth:`resync`.
        """
        eps: Dict[str, None] = {}
        techs: Set[str] = set()
        for src in sources:
            src = src.strip()
            if not src:
                continue
            if "/" in src:
                eps[src] = None
            else:
                techs.add(src)
        self._eps, self._techs = set(eps), techs
        self._begin(None)
        for name in list(self._lines):
            if not self._is_monitored(name):
                rec = self._lines.pop(name)
                for ch in list(rec.conns.values()):
                    self._unindex(ch)
                    ch.line = None
                    self._dirty_chans[ch.id] = ch
                    self._dirty_calls.add(ch.call.id)
                self._dirty_lines[name] = None
        for ep in eps:
            if ep not in self._lines:
                self._lines[ep] = _LineRec(ep)
                self._dirty_lines[ep] = None
        self._publish()

    def apply(self, event: Event) -> List[CallEvent]:
        """Apply one ARI event; return the CTI events it caused, in causal order.

        Processor thread only. O(1) in the number of lines and calls. Never raises for odd
        input: an event that does not fit is counted (:attr:`unfit_count`) and its channel is
        put in :attr:`needs_repair`.
        """
        handler = self._handlers.get(event.type)
        if handler is None:
            return []
        raw = event.raw
        out: List[CallEvent] = []
        self._out = out
        self._raw = (raw,)
        ts = raw.get("timestamp")
        self._ts_text = ts if type(ts) is str else ""
        self._ts = None
        if self._merging:
            self._expire_merges()
        handler(raw)
        if not self.defer_publish and (self._dirty_chans or self._dirty_lines
                                       or self._dirty_calls):
            self._publish()
        self._raw = _NO_RAW
        return out

    def flush(self) -> None:
        """Publish the snapshots of everything :meth:`apply` changed (with
        :attr:`defer_publish`). Processor thread; cheap when nothing changed."""
        if self._dirty_chans or self._dirty_lines or self._dirty_calls:
            self._publish()

    @property
    def needs_repair(self) -> Set[str]:
        """Channel ids the model could not fit; re-read each (``GET /channels/{id}``) and call
        :meth:`repair`. A copy; processor thread."""
        return set(self._repair)

    def repair(self, channel_id: str, channel: Optional[Mapping[str, Any]]) -> List[CallEvent]:
        """Re-synchronise one channel from REST.

        Processor thread. ``channel`` is the ``GET /channels/{id}`` body, or ``None`` when that
        answered 404 (the channel is gone: its connection is cleared).

        :returns: the CTI events that bring listeners in line with REST.
        """
        self._repair.discard(channel_id)
        self._begin(None)
        ch = self._chans.get(channel_id)
        if channel is None or type(channel) is not dict:
            if ch is not None:
                self._gone(ch)
            else:
                self._bury(channel_id)
        else:
            name = str(channel.get("name") or "")
            if name.startswith("Local/"):
                self._remember_local(channel_id, name)
            if ch is None:
                ep = endpoint_of_channel_name(name)
                if self._is_monitored(ep):
                    ch = self._new_chan(channel_id, name, ep, channel)
                    self._sync_new(ch, channel)
                    self._attach_new(ch, channel)
                    self._sync_state(ch, channel, new=True)
            elif not ch.cleared:
                self._sync_existing(ch, channel)
        self._publish()
        out = self._out
        self._out = []
        return out

    def resync(
        self,
        channels: Sequence[Mapping[str, Any]],
        bridges: Sequence[Mapping[str, Any]],
        endpoints: Sequence[Mapping[str, Any]],
    ) -> Tuple[List[CallEvent], ResyncReport]:
        """Rebuild the model from REST and emit the events that make listeners converge.

        Processor thread. Pass the raw bodies of ``GET /channels``, ``GET /bridges`` and
        ``GET /endpoints`` (or ``/endpoints/{tech}``). Connections the model has but REST does
        not are cleared (reason ``resync``); channels REST has on monitored lines but the
        model does not are added (originated / delivered / established as their state says);
        known connections get the events for a changed state or connected party. Hold cannot
        be read from REST: a known connection keeps its hold state. :attr:`needs_repair` is
        emptied.

        :returns: the CTI events, and a :class:`ResyncReport` of what changed.
        """
        self._begin(None)
        while self._merging:
            self._settle(next(iter(self._merging)))
        rest: Dict[str, Mapping[str, Any]] = {}
        for d in channels:
            if type(d) is dict and type(d.get("id")) is str:
                rest[d["id"]] = d
        line_changes: List[LineStateChange] = []
        for e in endpoints:
            if type(e) is not dict:
                continue
            name = f"{e.get('technology') or ''}/{e.get('resource') or ''}"
            if not self._is_monitored(name):
                continue
            state = str(e.get("state") or LINE_UNKNOWN)
            rec = self._line_rec(name)
            if rec.registration != state:
                line_changes.append(LineStateChange(name, rec.registration, state))
                self._line_state(rec, state)
        removed: List[Connection] = []
        for old in list(self._chans.values()):
            if old.id not in rest:
                if old.line is not None and not old.cleared:
                    removed.append(self._snap(old))
                self._gone(old)
        before: Dict[str, Connection] = {
            cid: self._snap(ch)
            for cid, ch in self._chans.items()
            if ch.line is not None and not ch.cleared
        }
        fresh: List[_Chan] = []
        for cid, d in rest.items():
            name = str(d.get("name") or "")
            if name.startswith("Local/"):
                self._remember_local(cid, name)
            known = self._chans.get(cid)
            if known is None:
                ep = endpoint_of_channel_name(name)
                if self._is_monitored(ep):
                    new = self._new_chan(cid, name, ep, d)
                    self._sync_new(new, d)
                    lid = _linkedid(d)
                    self._join(new, self._call_for(lid or cid))
                    if lid:
                        new.weak = False
                    fresh.append(new)
            else:
                own = Party.from_raw(d.get("caller"))
                if own and own != known.own:
                    self._set_own(known, own)
                ep = endpoint_of_channel_name(name)
                if known.line is None and not known.cleared and self._is_monitored(ep):
                    # A related channel whose endpoint became monitored: promote it.
                    known.line = ep
                    known.connected = Party.from_raw(d.get("connected"))
                    self._line_rec(ep).conns[cid] = known
                    self._index(known)
                    self._sync_new(known, d)
                    self._dirty(known)
        self._correlate_bridges(bridges, rest)
        for ch in fresh:
            if ch.direction is _INCOMING and not any(
                o is not ch and o.line is not None for o in ch.call.chans.values()
            ):
                self._guess_call(ch, merge=True)
        order = sorted(rest.items(), key=lambda kv: (str(kv[1].get("creationtime") or ""), kv[0]))
        for cid, d in order:
            cur = self._chans.get(cid)
            if cur is None or cur.line is None or cur.cleared:
                continue
            if cid in before:
                self._sync_existing(cur, d)
            else:
                self._sync_state(cur, d, new=True)
        self._repair.clear()
        self._publish()
        added: List[Connection] = []
        changed: List[Connection] = []
        for cid, ch in self._chans.items():
            if ch.line is None or ch.cleared:
                continue
            now = self._conn_snaps.get(cid) or self._snap(ch)
            was = before.get(cid)
            if was is None:
                added.append(now)
            elif (was.state, was.connected, was.call_id) != (now.state, now.connected, now.call_id):
                changed.append(now)
        out = self._out
        self._out = []
        report = ResyncReport(tuple(added), tuple(removed), tuple(changed), tuple(line_changes))
        return out, report

    def expect(self, channel_id: str, hint: ControlHint) -> None:
        """Tell the model what call control is about to do with a channel: create it (a
        click-to-dial agent, a leg it dials) or end it by a transfer. Call it *before* the
        request, so that the channel's first event finds it.

        Any thread: it only records the hint under a short lock; the processor thread reads
        it with the channel's events. A hint nobody uses is dropped with the channel, and at
        most 4096 are kept.
        """
        with self._hint_lock:
            hints = self._hints
            hints[channel_id] = hint
            if hint.role == "transfer" and hint.target:
                hints[hint.target] = ControlHint("transfer_target", peer=channel_id)
            while len(hints) > _TOMBSTONES:
                del hints[next(iter(hints))]

    def _take_hint(self, cid: str) -> Optional[ControlHint]:
        if cid not in self._hints:  # lock-free fast path: most channels have none
            return None
        with self._hint_lock:
            return self._hints.pop(cid, None)

    def set_held(self, channel_id: str, held: bool) -> List[CallEvent]:
        """Tell the model that call control held (or retrieved) a channel through ARI, which
        emits no ChannelHold. Processor thread.

        :returns: the held / retrieved event, or nothing if the state did not allow it (then
            the channel is put in :attr:`needs_repair`).
        """
        self._begin(None)
        ch = self._chans.get(channel_id)
        if ch is not None and channel_id in self._hints and not held:
            self._claim_transfer(ch)
        if ch is not None and ch.xfer is not None and not held:
            pass  # leaving by a transfer: it is cleared as transferred, not retrieved
        elif ch is not None and ch.line is not None and not ch.cleared:
            if held:
                self._hold(ch)
            else:
                self._fire(ch, Stimulus.UNHOLD)
        self._publish()
        out = self._out
        self._out = []
        return out

    @property
    def lines(self) -> Tuple[Line, ...]:
        """Snapshots of every line. Any thread."""
        with self._lock:
            return tuple(self._line_snaps.values())

    def line(self, name: str) -> Optional[Line]:
        """The snapshot of line ``name`` (``PJSIP/1000``), or ``None``. Any thread."""
        return self._line_snaps.get(name)

    def find_call(self, call_id: str) -> Optional[Call]:
        """The snapshot of a call with a connection at a monitored line, or ``None``. Any thread."""
        return self._call_snaps.get(call_id)

    def connection(self, channel_id: str) -> Optional[Connection]:
        """The snapshot of the connection of channel ``channel_id``, or ``None``. Any thread."""
        return self._conn_snaps.get(channel_id)

    @property
    def tracked_channels(self) -> int:
        """How many channels the model tracks (monitored and related). Processor thread."""
        return len(self._chans)

    # ------------------------------------------------------------------ helpers: bookkeeping

    def _is_monitored(self, endpoint: str) -> bool:
        if endpoint in self._eps:
            return True
        if self._techs:
            return endpoint.partition("/")[0] in self._techs
        return False

    def _begin(self, raw: Optional[Mapping[str, Any]]) -> None:
        self._out = []
        self._raw = (raw,) if raw is not None else _NO_RAW
        self._ts_text = ""
        self._ts = None

    def _now(self) -> float:
        ts = self._ts
        if ts is None:
            ts = _epoch_of(self._ts_text, self._ts_cache) if self._ts_text else None
            if ts is None:
                ts = float(self._clock())
            self._ts = ts
        return ts

    def _line_rec(self, name: str) -> _LineRec:
        rec = self._lines.get(name)
        if rec is None:
            rec = self._lines[name] = _LineRec(name)
            self._dirty_lines[name] = None
        return rec

    def _call_for(self, call_id: str) -> _Call:
        call = self._calls.get(call_id)
        if call is None:
            self._seq += 1
            call = self._calls[call_id] = _Call(call_id, self._seq)
        return call

    def _dirty(self, ch: _Chan) -> None:
        if ch.line is not None:
            self._dirty_chans[ch.id] = ch
            self._dirty_lines[ch.line] = None
            self._dirty_calls.add(ch.call.id)

    def _index(self, ch: _Chan) -> None:
        if ch.line is not None and not ch.cleared and ch.own.number:
            self._by_number.setdefault(ch.own.number, {})[ch.id] = ch

    def _unindex(self, ch: _Chan) -> None:
        if ch.own.number:
            bucket = self._by_number.get(ch.own.number)
            if bucket is not None:
                bucket.pop(ch.id, None)
                if not bucket:
                    del self._by_number[ch.own.number]

    def _set_own(self, ch: _Chan, own: Party) -> None:
        self._unindex(ch)
        ch.own = own
        self._index(ch)

    def _remember_local(self, cid: str, name: str) -> None:
        if cid in self._local_name:
            return
        if len(self._local_name) >= _LOCAL_CACHE:
            old = next(iter(self._local_name))
            self._local_by_name.pop(self._local_name.pop(old), None)
        self._local_name[cid] = name
        self._local_by_name[name] = cid

    def _forget_local(self, cid: str) -> None:
        name = self._local_name.pop(cid, None)
        if name is not None and self._local_by_name.get(name) == cid:
            del self._local_by_name[name]

    def _bury(self, cid: str) -> None:
        tomb = self._tomb
        tomb[cid] = None
        if len(tomb) > _TOMBSTONES:
            tomb.popitem(last=False)

    def _new_chan(
        self, cid: str, name: str, line: Optional[str], raw: Mapping[str, Any]
    ) -> _Chan:
        self._seq += 1
        ch = _Chan(cid, name, line, self._seq)
        ch.own = Party.from_raw(raw.get("caller"))
        ch.connected = Party.from_raw(raw.get("connected"))
        ch.start = self._now()
        self._chans[cid] = ch
        self._tomb.pop(cid, None)
        if line is not None:
            self._line_rec(line).conns[cid] = ch
            self._index(ch)
            self._dirty(ch)
        return ch

    def _call_id_changed(self, ch: _Chan, old: _Call) -> None:
        """Tell a connection's line that its call id changed (only once it announced
        anything: before, nobody knew the old id)."""
        if ch.line is None or not ch.announced or ch.cleared or old.id == ch.call.id:
            return
        self._out.append(
            CallEvent(
                EventKind.CALL_ID_CHANGED, ch.line, ch.call.id, ch.id, ch.state, ch.state,
                phone_state_of(ch.state, ch.ringback), ch.direction, ch.calling, ch.called,
                ch.connected, ch.cause, ch.dialstatus, ch.reason, self._now(), self._raw,
                ch.talking, ch.state is _HOLD, client_originated=ch.hint is not None,
                previous_call_id=old.id,
            )
        )

    def _join(self, ch: _Chan, call: _Call) -> None:
        old = ch.call
        if old is call:
            return
        if old is not _NO_CALL:
            old.chans.pop(ch.id, None)
            self._dirty_calls.add(old.id)
            if not old.chans:
                self._drop_call(old)
        ch.call = call
        call.chans[ch.id] = ch
        self._dirty(ch)
        if old is not _NO_CALL:
            self._call_id_changed(ch, old)

    def _drop_call(self, call: _Call) -> None:
        for key in call.keys:
            if self._calls.get(key) is call:
                del self._calls[key]
        self._dirty_calls.add(call.id)

    def _merge(self, a: _Call, b: _Call) -> _Call:
        """Merge two calls; the older one (first seen) keeps its id."""
        if a is b:
            return a
        keep, gone = (a, b) if a.seq <= b.seq else (b, a)
        for ch in list(gone.chans.values()):
            ch.call = keep
            keep.chans[ch.id] = ch
            self._dirty(ch)
            self._call_id_changed(ch, gone)
        gone.chans.clear()
        for key in gone.keys:
            self._calls[key] = keep
            keep.keys.append(key)
        self._dirty_calls.add(gone.id)
        self._dirty_calls.add(keep.id)
        return keep

    def _relate(self, ch: _Chan, call: _Call) -> None:
        """Put ``ch`` into ``call``: move it if its own call is a guess, otherwise merge."""
        if ch.call is call:
            return
        if ch.weak and len(ch.call.chans) <= 1:
            self._join(ch, call)
        else:
            self._merge(ch.call, call)

    def _adopt(self, cid: str, raw: Mapping[str, Any], call: _Call) -> Optional[_Chan]:
        """Track a related channel that is not on a monitored line (Local, trunk)."""
        name = str(raw.get("name") or self._local_name.get(cid, ""))
        if self._is_monitored(endpoint_of_channel_name(name)):
            if cid not in self._tomb:
                self._unfit(cid, "unknown channel on a monitored line")
            return None
        ch = self._new_chan(cid, name, None, raw)
        ch.weak = False
        self._join(ch, call)
        if name.startswith("Local/"):
            self._remember_local(cid, name)
            sib_name = _sibling(name)
            sib = self._local_by_name.get(sib_name) if sib_name else None
            if sib is not None and sib not in self._chans:
                self._adopt(sib, {"id": sib, "name": sib_name}, call)
        return ch

    def _lookup(self, raw: Optional[Mapping[str, Any]]) -> Optional[_Chan]:
        """The tracked channel of an ARI channel object, adopting a related untracked one
        (a Local half whose sibling is tracked, or a channel of a tracked linkedid)."""
        if raw is None:
            return None
        cid = raw.get("id")
        ch = self._chans.get(cid) if type(cid) is str else None
        if ch is not None or type(cid) is not str:
            return ch
        name = raw.get("name")
        if type(name) is str and name.startswith("Local/"):
            sib_name = _sibling(name)
            sib = self._local_by_name.get(sib_name) if sib_name else None
            sib_ch = self._chans.get(sib) if sib is not None else None
            if sib_ch is not None:
                return self._adopt(cid, raw, sib_ch.call)
        if cid in self._hints:
            hint = self._hints.get(cid)
            peer = self._chans.get(hint.peer) if hint is not None else None
            if hint is not None and hint.role == "leg" and peer is not None:
                ch = self._adopt(cid, raw, peer.call)
                if ch is not None:
                    self._take_hint(cid)
                    self._hinted(ch, hint, raw)
                return ch
        if "channelvars" in raw:
            lid = _linkedid(raw)
            call = self._calls.get(lid) if lid else None
            if call is not None:
                return self._adopt(cid, raw, call)
        return None

    def _unknown(self, raw: Optional[Mapping[str, Any]]) -> None:
        """An event about an untracked channel: a monitored one means we lost its start."""
        if raw is None:
            return
        cid = raw.get("id")
        if type(cid) is not str or cid in self._tomb or cid in self._repair:
            return
        name = raw.get("name")
        if type(name) is str and self._is_monitored(endpoint_of_channel_name(name)):
            self._unfit(cid, "unknown channel on a monitored line")

    def _unfit(self, cid: str, what: object) -> None:
        self.unfit_count += 1
        if cid not in self._repair:
            self._repair.add(cid)
            _LOG.debug("call model: %s does not fit (%s); channel needs repair", cid, what)

    # ------------------------------------------------------------------ helpers: transitions

    def _fire(self, ch: _Chan, stim: Stimulus, **extra: Any) -> bool:
        tr = TRANSITIONS.get((ch.state, stim))
        if tr is None:
            self._unfit(ch.id, f"{ch.state.value} + {stim.value}")
            return False
        self._apply_transition(ch, tr.state, tr.emits, extra)
        return True

    def _fire_if_fits(self, ch: _Chan, stim: Stimulus) -> bool:
        tr = TRANSITIONS.get((ch.state, stim))
        if tr is None:
            return False
        self._apply_transition(ch, tr.state, tr.emits, {})
        return True

    def _apply_transition(
        self,
        ch: _Chan,
        new: ConnectionState,
        emits: Tuple[EventKind, ...],
        extra: Dict[str, Any],
    ) -> None:
        prev = ch.state
        ch.state = new
        if new is _CONNECTED and ch.answer is None:
            ch.answer = self._now()
        for kind in emits:
            self._emit(kind, ch, prev, extra)
        if emits:
            ch.announced = True
        self._dirty(ch)

    def _emit(
        self, kind: EventKind, ch: _Chan, prev: ConnectionState, extra: Dict[str, Any]
    ) -> None:
        assert ch.line is not None
        phone = (
            PhoneState.DISCONNECTED
            if kind in _CLEARING_KINDS
            else phone_state_of(ch.state, ch.ringback)
        )
        self._out.append(
            CallEvent(
                kind,
                ch.line,
                ch.call.id,
                ch.id,
                ch.state,
                prev,
                phone,
                ch.direction,
                ch.calling,
                ch.called,
                ch.connected,
                ch.cause,
                ch.dialstatus,
                ch.reason,
                self._now(),
                self._raw,
                ch.talking,
                ch.state is _HOLD,
                client_originated=ch.hint is not None,
                **extra,
            )
        )

    def _end(self, ch: _Chan, stim: Stimulus, **extra: Any) -> None:
        """Fire a stimulus that may end the connection; on NULL, leave the line and emit
        call_cleared when it was the call's last connection there."""
        if not self._fire(ch, stim, **extra):
            return
        if ch.state is _NULL:
            self._leave_line(ch)

    def _leave_line(self, ch: _Chan) -> None:
        if ch.cleared or ch.line is None:
            return
        ch.cleared = True
        ch.end = self._now()
        rec = self._lines.get(ch.line)
        if rec is not None:
            rec.conns.pop(ch.id, None)
        self._unindex(ch)
        self._dirty(ch)
        if not ch.announced:
            return
        call = ch.call
        if rec is not None:
            for other in rec.conns.values():
                if other.call is call:
                    return
        self._out.append(
            CallEvent(
                EventKind.CALL_CLEARED, ch.line, call.id, ch.id, _NULL, _NULL,
                PhoneState.DISCONNECTED, ch.direction, ch.calling, ch.called, ch.connected,
                ch.cause, ch.dialstatus, ch.reason, self._now(), self._raw, False, False,
                client_originated=ch.hint is not None,
            )
        )

    def _forget(self, ch: _Chan) -> None:
        """Stop tracking a channel (it is destroyed or gone from REST)."""
        if ch.line is not None and not ch.cleared:
            self._leave_line(ch)
        self._chans.pop(ch.id, None)
        self._dirty_chans[ch.id] = ch
        call = ch.call
        call.chans.pop(ch.id, None)
        self._dirty_calls.add(call.id)
        self._forget_local(ch.id)
        self._repair.discard(ch.id)
        self._bury(ch.id)
        if ch.line is not None and call.chans and all(
            other.line is None for other in call.chans.values()
        ):
            # The call's last channel on a monitored line is gone: the related channels left
            # (Local halves, whose ChannelDestroyed endpoint subscriptions never deliver) go.
            for other in list(call.chans.values()):
                self._forget(other)
        if not call.chans and call is not _NO_CALL:
            self._drop_call(call)

    def _gone(self, ch: _Chan) -> None:
        """The channel vanished without a ChannelDestroyed (REST no longer has it)."""
        if ch.line is not None and not ch.cleared:
            ch.reason = Reason.RESYNC
            self._end(ch, Stimulus.HANGUP)
            if not ch.cleared:
                self._leave_line(ch)
        self._forget(ch)

    def _hold(self, ch: _Chan) -> None:
        if (ch.state, Stimulus.HOLD) in TRANSITIONS and ch.state is not _HOLD:
            ch.hold_party = ch.connected
        self._fire(ch, Stimulus.HOLD)

    def _guess_call(self, ch: _Chan, merge: bool = False) -> None:
        """Correlate an incoming channel by its connected line: the channel whose own caller
        number equals it (preferring one still dialling) is very likely the one calling."""
        bucket = self._by_number.get(ch.connected.number)
        if not bucket:
            return
        best: Optional[_Chan] = None
        for other in bucket.values():
            if other is ch or other.cleared:
                continue
            if best is None:
                best = other
                continue
            other_dialling = other.state is _INITIATED
            best_dialling = best.state is _INITIATED
            if other_dialling != best_dialling:
                if other_dialling:
                    best = other
            elif other.seq > best.seq:
                best = other
        if best is not None and best.call is not ch.call:
            if merge:
                self._merge(best.call, ch.call)
            else:
                self._join(ch, best.call)

    # ------------------------------------------------------------------ ARI handlers

    def _on_created(self, raw: Mapping[str, Any]) -> None:
        c = _as_dict(raw.get("channel"))
        if c is None:
            return
        cid = c.get("id")
        if type(cid) is not str or cid in self._chans:
            return
        name = str(c.get("name") or "")
        if name.startswith("Local/"):
            self._remember_local(cid, name)
        ep = endpoint_of_channel_name(name)
        if not self._is_monitored(ep):
            if "channelvars" in c or cid in self._hints:
                self._lookup(c)
            return
        ch = self._new_chan(cid, name, ep, c)
        hint = self._take_hint(cid)
        if hint is not None and self._created_by_control(ch, hint, c):
            return
        self._attach_new(ch, c)
        state = c.get("state")
        if state in _OUT_STATES or state == "Up":
            ch.direction = _OUTGOING
            ch.calling = ch.own
            ch.called = self._dialled(c)
            self._fire(ch, Stimulus.CREATED_OUTGOING)
            if state == "Up":
                self._fire(ch, Stimulus.ANSWERED)
        else:
            ch.direction = _INCOMING
            ch.called = ch.own
            ch.calling = ch.connected
            self._fire(ch, Stimulus.CREATED_INCOMING)
            if state == "Ringing":
                self._fire(ch, Stimulus.RINGING)

    # -- channels call control creates (hints)

    def _created_by_control(self, ch: _Chan, hint: ControlHint, c: Mapping[str, Any]) -> bool:
        """A monitored channel call control created: a click-to-dial agent goes outgoing
        (``service_initiated``), a leg joins the call of the channel it is dialled for."""
        if hint.role == "agent":
            ch.hint = hint
            self._attach_new(ch, c)
            ch.direction = _OUTGOING
            if hint.calling:
                self._set_own(ch, hint.calling)
            ch.calling = ch.own
            ch.called = hint.called
            ch.connected = hint.called or ch.connected
            self._fire(ch, Stimulus.SERVICE_INITIATED)
            return True
        if hint.role != "leg":
            return False
        peer = self._chans.get(hint.peer)
        if peer is None:
            self._attach_new(ch, c)
        else:
            ch.weak = False
            self._join(ch, peer.call)
        ch.direction = _INCOMING
        self._hinted(ch, hint, c)
        self._fire(ch, Stimulus.CREATED_INCOMING)
        if c.get("state") == "Ringing":
            self._leg_rings(ch)
        return True

    def _hinted(self, ch: _Chan, hint: ControlHint, c: Mapping[str, Any]) -> None:
        """Identities of a leg call control dialled: it is the destination (``called``), its
        caller is who placed the call, whatever caller ids the channels carry; the peer, a
        click-to-dial agent, now reaches the destination (``originated``)."""
        ch.hint = hint
        peer = self._chans.get(hint.peer)
        if hint.called:
            self._set_own(ch, hint.called)
        if ch.line is not None:
            ch.called = ch.own
            ch.calling = hint.calling or (peer.own if peer is not None else NOBODY)
            ch.connected = ch.calling or ch.connected
        if peer is None or peer.line is None or peer.cleared:
            return
        if hint.purpose in ("originate", "switch"):
            peer.peer = ch.id
            if hint.called:
                peer.called = hint.called
            if peer.state is _INITIATED and peer.hint is not None and peer.hint.role == "agent":
                self._fire(peer, Stimulus.ORIGINATE)

    def _agent_waits(self, ch: _Chan) -> bool:
        """A click-to-dial agent's own channel rings or answers: the call is still initiated
        until the destination answers."""
        hint = ch.hint
        return hint is not None and hint.role == "agent" and ch.state is _INITIATED

    def _leg_rings(self, ch: _Chan) -> None:
        """A leg call control dialled rings: its line is delivered; the caller it was dialled
        for hears ringback; a blind transfer's transferee is transferred to it."""
        if ch.line is not None and not ch.cleared:
            self._ring(ch)
        hint = ch.hint
        peer = self._chans.get(hint.peer) if hint is not None else None
        if hint is None or peer is None or peer.line is None or peer.cleared:
            return
        if hint.purpose in ("originate", "switch") and peer.state is _INITIATED:
            if not peer.ringback:
                peer.ringback = True
                if not peer.connected:
                    peer.connected = ch.own
                self._fire(peer, Stimulus.RINGBACK)
        elif hint.purpose == "transfer" and peer.connected != ch.own:
            xfer = peer.xfer
            peer.xfer = None
            before = peer.connected
            peer.connected = ch.own or peer.connected
            self._fire(peer, Stimulus.TRANSFERRED,
                       transferring=(xfer.calling if xfer is not None else before) or None,
                       transferred=peer.own or None, transfer_target=ch.own or None)

    def _legs_bridged(self, members: Sequence[str]) -> None:
        """Legs call control dialled are established when they are bridged with their party
        (not when they answer: call control bridges them a moment later, and a listener that
        reacts to ``established`` must find the call ready for transfer or hold). The caller a
        leg was dialled for (the switch's caller, a click-to-dial agent) is established with
        it when both are in the bridge."""
        ids = set(members)
        for cid in members:
            ch = self._chans.get(cid)
            hint = ch.hint if ch is not None else None
            if ch is None or hint is None or hint.role != "leg" or ch.state is _CONNECTED:
                continue
            peer = self._chans.get(hint.peer)
            pairs = hint.purpose in ("originate", "switch")
            if pairs and peer is not None and peer.id not in ids:
                continue  # its party joins next
            if hint.purpose == "transfer" and peer is not None and peer.connected != ch.own:
                self._leg_rings(ch)  # answered without ringing: transferred now
            if ch.line is not None and not ch.cleared:
                self._fire_if_fits(ch, Stimulus.ANSWERED)
            if (pairs and peer is not None and peer.line is not None and not peer.cleared
                    and peer.state is _INITIATED):
                if ch.own:
                    peer.connected = ch.own
                self._fire(peer, Stimulus.ANSWERED)

    def _leg_failed(self, ch: _Chan, cause: int) -> None:
        """A leg call control dialled is gone unanswered: its caller's call failed."""
        hint = ch.hint
        peer = self._chans.get(hint.peer) if hint is not None else None
        if (hint is None or peer is None or peer.line is None or peer.cleared
                or hint.purpose not in ("originate", "switch") or peer.state is not _INITIATED):
            return
        status = ch.dialstatus if ch.dialstatus in _DIAL_FAILURES else _STATUS_OF_CAUSE.get(
            cause, "NOANSWER")
        failure = _DIAL_FAILURES[status]
        peer.dialstatus = status
        peer.cause = cause if cause not in (0, 16) else failure[0]
        peer.reason = failure[1]
        self._fire(peer, Stimulus.DIAL_FAILED)

    def _claim_transfer(self, ch: _Chan) -> None:
        """Move a pending ``transfer`` hint of a tracked channel onto it."""
        hint = self._take_hint(ch.id)
        if hint is None:
            return
        if hint.role == "transfer":
            ch.xfer = hint
        elif hint.role == "transfer_target":
            self._transfer_to(ch, hint)

    def _transfer_to(self, target: _Chan, hint: ControlHint) -> None:
        """The target of an attended transfer by call control joined the transferees: the
        transferer leaves (``transferred``), the transferees and the target are told."""
        agent = self._chans.get(hint.peer)
        if agent is None:
            return
        self._claim_transfer(agent)
        xfer = agent.xfer
        if xfer is None:
            return
        agent.xfer = None
        tees = [self._chans[i] for i in xfer.transferees if i in self._chans]
        tee = tees[0] if tees else None
        call = self._merge(agent.call, target.call)  # the target's call joins (phone REFER)
        self._transfer([agent], tee, tee.own if tee is not None else NOBODY, target.own, call)

    def _attach_new(self, ch: _Chan, c: Mapping[str, Any]) -> None:
        lid = _linkedid(c)
        if lid:
            ch.weak = False
            self._join(ch, self._call_for(lid))
            return
        self._join(ch, self._call_for(ch.id))
        if ch.connected.number and str(c.get("state")) not in _OUT_STATES:
            self._guess_call(ch)

    @staticmethod
    def _dialled(c: Mapping[str, Any]) -> Party:
        dp = c.get("dialplan")
        exten = str(dp.get("exten") or "") if type(dp) is dict else ""
        return Party(exten, "") if exten and exten != "s" else NOBODY

    def _on_state_change(self, raw: Mapping[str, Any]) -> None:
        c = _as_dict(raw.get("channel"))
        ch = self._lookup(c)
        if ch is None:
            self._unknown(c)
            return
        if c is None:
            return
        state = c.get("state")
        if ch.hint is not None and ch.hint.role == "leg":
            if state == "Ringing":
                self._leg_rings(ch)
                return
            if state == "Up":
                # established once it talks to its party: when call control bridges it
                return
        if ch.line is None or ch.cleared or self._agent_waits(ch):
            return
        if state == "Ringing":
            self._ring(ch)
        elif state == "Up":
            self._fire(ch, Stimulus.ANSWERED)
        elif state in _OUT_STATES:
            self._fire_if_fits(ch, Stimulus.SYNC_INITIATED)

    def _ring(self, ch: _Chan) -> None:
        if self._agent_waits(ch):
            return
        if (ch.state is _NULL or ch.state is _INITIATED) and not ch.calling:
            ch.calling = ch.connected
        self._fire(ch, Stimulus.RINGING)

    def _on_connected_line(self, raw: Mapping[str, Any]) -> None:
        c = _as_dict(raw.get("channel"))
        ch = self._lookup(c)
        if ch is None:
            self._unknown(c)
            return
        if ch.cleared or c is None:
            return
        party = Party.from_raw(c.get("connected"))
        if not party or party == ch.connected:
            return
        first = not ch.connected
        before = ch.connected
        ch.connected = party
        if ch.line is None:
            return
        if not first and ch.bridge is not None and self._merging:
            merge = self._merging.get(ch.bridge)
            if merge is not None:
                # Its bridge is being merged: a transfer may be about to tell this change.
                merge.deferred.setdefault(ch.id, (ch, before))
                self._dirty(ch)
                return
        if ch.state is _NULL and ch.direction is _INCOMING:
            ch.calling = party
            if ch.weak and len(ch.call.chans) == 1:
                self._guess_call(ch)
        if ch.xfer_wait is not None:
            # the REFER's target identified before it rings: told with the transfer
            ch.xfer_wait = (ch.xfer_wait[0], party)
            self._dirty(ch)
            return
        completed = not first and before.number == party.number and not before.name
        if completed and ch.calling.number == party.number and not ch.calling.name:
            ch.calling = party
        if completed or (first and ch.state is not _CONNECTED and ch.state is not _HOLD):
            # The far end identified while the call is set up: part of delivered/established,
            # not a change of party; or the same number now with a name (Asterisk's two-step
            # connected-line update): the identity completed, the party did not change.
            self._dirty(ch)
        else:
            # A change, or the first name of the far end of an answered call (a queue answers
            # the caller before an agent is found): listeners must hear whom it talks to.
            self._fire(ch, Stimulus.CONNECTED_LINE)

    def _on_caller_id(self, raw: Mapping[str, Any]) -> None:
        c = _as_dict(raw.get("channel"))
        ch = self._lookup(c)
        if ch is None or c is None:
            return
        own = Party.from_raw(c.get("caller"))
        if own and own != ch.own and (ch.hint is None or not ch.own):
            # a channel call control created keeps the identity it was created for (it sets
            # caller ids for what the phones display)
            self._set_own(ch, own)

    def _on_hangup_request(self, raw: Mapping[str, Any]) -> None:
        c = _as_dict(raw.get("channel"))
        ch = self._chans.get(str(c.get("id"))) if c is not None else None
        if ch is None or ch.cause:
            return
        cause = raw.get("cause")
        if type(cause) is int and cause > 0:
            ch.cause = cause

    def _on_destroyed(self, raw: Mapping[str, Any]) -> None:
        c = _as_dict(raw.get("channel"))
        if c is None:
            return
        cid = c.get("id")
        ch = self._chans.get(cid) if type(cid) is str else None
        if ch is None:
            if type(cid) is str:
                self._forget_local(cid)
                self._repair.discard(cid)
                name = c.get("name")
                if type(name) is str and self._is_monitored(endpoint_of_channel_name(name)):
                    self._bury(cid)
            return
        if ch.id in self._hints:
            self._claim_transfer(ch)
        if ch.hint is not None and ch.hint.role == "leg" and ch.state is not _CONNECTED:
            cause = raw.get("cause")
            self._leg_failed(ch, cause if type(cause) is int else 0)
        if ch.xfer is not None and ch.line is not None and not ch.cleared:
            xfer, ch.xfer = ch.xfer, None
            cause = raw.get("cause")
            if type(cause) is int and cause > 0:
                ch.cause = cause
            ch.reason = Reason.TRANSFERRED
            self._end(ch, Stimulus.TRANSFERRED_AWAY, transferring=ch.own or None,
                      transferred=None, transfer_target=xfer.called or None)
        if ch.line is not None and not ch.cleared:
            failure = _DIAL_FAILURES.get(ch.dialstatus)
            if failure is not None:
                if not ch.cause:
                    ch.cause = failure[0]
                ch.reason = failure[1]
            else:
                cause = raw.get("cause")
                if type(cause) is int and cause > 0:
                    ch.cause = cause
                if ch.dialstatus == "CANCEL":
                    ch.reason = Reason.CANCELLED
            if not (ch.state is _HOLD and self._infer_attended_transfer(ch)):
                self._end(ch, Stimulus.HANGUP)
        self._forget(ch)

    def _on_hold(self, raw: Mapping[str, Any]) -> None:
        c = _as_dict(raw.get("channel"))
        ch = self._lookup(c)
        if ch is None:
            self._unknown(c)
        elif ch.line is not None and not ch.cleared:
            self._hold(ch)

    def _on_unhold(self, raw: Mapping[str, Any]) -> None:
        c = _as_dict(raw.get("channel"))
        ch = self._lookup(c)
        if ch is None:
            self._unknown(c)
        elif ch.line is not None and not ch.cleared:
            self._fire(ch, Stimulus.UNHOLD)

    def _on_talk_start(self, raw: Mapping[str, Any]) -> None:
        c = _as_dict(raw.get("channel"))
        ch = self._lookup(c)
        if ch is None:
            self._unknown(c)
        elif ch.line is not None and not ch.cleared:
            if (ch.state, Stimulus.TALK_START) in TRANSITIONS:
                ch.talking = True
            self._fire(ch, Stimulus.TALK_START)

    def _on_talk_stop(self, raw: Mapping[str, Any]) -> None:
        c = _as_dict(raw.get("channel"))
        ch = self._lookup(c)
        if ch is None:
            self._unknown(c)
        elif ch.line is not None and not ch.cleared:
            if (ch.state, Stimulus.TALK_STOP) in TRANSITIONS:
                ch.talking = False
            self._fire(ch, Stimulus.TALK_STOP)

    # -- Dial

    def _on_dial(self, raw: Mapping[str, Any]) -> None:
        praw = _as_dict(raw.get("peer"))
        craw = _as_dict(raw.get("caller"))
        peer = self._lookup(praw)
        caller = self._lookup(craw)
        if peer is None and caller is None:
            self._unknown(praw)
            self._unknown(craw)
            return
        if peer is None and praw is not None and caller is not None:
            pid = praw.get("id")
            if type(pid) is str:
                peer = self._adopt(pid, praw, caller.call)
        if caller is None and craw is not None and peer is not None:
            cid = craw.get("id")
            if type(cid) is str:
                caller = self._adopt(cid, craw, peer.call)
        if caller is not None and peer is not None and caller.call is not peer.call:
            self._relate(peer, caller.call)
        if peer is not None:
            peer.weak = False
        status = str(raw.get("dialstatus") or "")
        if not status:
            self._dial_begins(caller, peer, praw, raw)
        elif status == "RINGING":
            if peer is not None and peer.line is not None and not peer.cleared:
                self._ring(peer)
            if caller is not None and caller.xfer_wait is not None:
                self._referred(caller)
            if (caller is not None and caller.line is not None and not caller.cleared
                    and not caller.ringback):
                caller.ringback = True
                self._fire(caller, Stimulus.RINGBACK)
        elif status in _DIAL_FINAL:
            if (status == "ANSWER" and caller is not None and not caller.connected
                    and praw is not None and not str(praw.get("name") or "").startswith("Local/")):
                # the far end is known now (a Queue answers the caller with the agent's
                # channel): established names it, and its connected line follows silently
                caller.connected = Party.from_raw(praw.get("caller"))
            self._dial_ends(caller, peer, status)
        forward = raw.get("forward")
        if forward and peer is not None and peer.line is not None and not peer.cleared:
            peer.reason = Reason.DIVERTED
            peer.dialstatus = status
            self._end(peer, Stimulus.DIVERTED)
            fwd = _as_dict(raw.get("forwarded"))
            if fwd is not None and peer.call is not _NO_CALL:
                fch = self._chans.get(str(fwd.get("id")))
                if fch is not None:
                    self._relate(fch, peer.call)

    def _dial_begins(
        self,
        caller: Optional[_Chan],
        peer: Optional[_Chan],
        praw: Optional[Mapping[str, Any]],
        raw: Mapping[str, Any],
    ) -> None:
        if peer is not None:
            peer.peer = caller.id if caller is not None else peer.peer
        if caller is None:
            return
        prev_peer = caller.peer
        if peer is not None:
            caller.peer = peer.id
        caller.dials += 1
        if caller.line is None or caller.cleared:
            return
        target = Party.from_raw(praw.get("caller")) if praw is not None else NOBODY
        if caller.xfer_pending:
            caller.xfer_pending = False
            return
        prev_alive = prev_peer is not None and prev_peer in self._chans and not (
            self._chans[prev_peer].cleared
        )
        if (
            caller.direction is _INCOMING
            and caller.state in (_CONNECTED, _HOLD)
            and prev_peer is not None
            and prev_peer != caller.peer
            and not prev_alive
        ):
            # A called channel now dials: its caller transferred it (blind transfer, REFER).
            # Told when the target rings (or answers): until then nothing is transferred.
            caller.xfer_wait = (caller.connected, target)
            return
        if caller.state is _CONNECTED or caller.state is _NULL or not caller.called:
            dialled = self._dial_target(raw, target)
            if dialled:
                caller.called = dialled
        self._fire(caller, Stimulus.DIAL_OUT)

    def _referred(self, ch: _Chan) -> None:
        """The target of a REFER blind transfer rings (or answered): the transferee is told."""
        wait, ch.xfer_wait = ch.xfer_wait, None
        if wait is None or ch.line is None or ch.cleared:
            return
        transferring, target = wait
        if target:
            ch.connected = target
        self._fire(ch, Stimulus.TRANSFERRED, transferring=transferring or None,
                   transferred=ch.own or None, transfer_target=target or None)

    @staticmethod
    def _dial_target(raw: Mapping[str, Any], peer_caller: Party) -> Party:
        ds = str(raw.get("dialstring") or "")
        number = ds.rsplit("/", 1)[-1].split("@", 1)[0]
        if not number:
            return peer_caller
        return Party(number, peer_caller.name if peer_caller.number == number else "")

    def _dial_ends(self, caller: Optional[_Chan], peer: Optional[_Chan], status: str) -> None:
        failure = _DIAL_FAILURES.get(status)
        if peer is not None:
            peer.dialstatus = status
            if failure is not None:
                peer.reason = failure[1]
            elif status == "CANCEL":
                peer.reason = Reason.CANCELLED
            if (status == "ANSWER" and peer.line is not None and not peer.cleared
                    and not self._agent_waits(peer)
                    and (peer.hint is None or peer.hint.role != "leg")):
                self._fire(peer, Stimulus.ANSWERED)
        if caller is None:
            return
        if caller.dials > 0:
            caller.dials -= 1
        if caller.xfer_wait is not None:
            if status == "ANSWER":
                self._referred(caller)
            else:
                caller.xfer_wait = None  # the target failed: no transfer happened
        if caller.line is None or caller.cleared:
            return
        if status == "ANSWER":
            caller.dialstatus = status
            self._fire(caller, Stimulus.ANSWERED)
        elif failure is not None and caller.dials == 0:
            caller.dialstatus = status
            caller.cause = peer.cause if peer is not None and peer.cause else failure[0]
            caller.reason = failure[1]
            self._fire(caller, Stimulus.DIAL_FAILED)

    # -- bridges

    def _bridge_members(
        self, ids: Iterable[str], bid: str, mixing: bool, check: bool = True
    ) -> None:
        """Relate the channels of one bridge: adopt related ones, merge their calls, record the
        bridge, and (``check``) detect a conference: three or more real parties."""
        members = list(dict.fromkeys(ids))
        call = self._correlate(members)
        if call is None:
            return
        for i in members:
            ch = self._chans.get(i)
            if ch is not None:
                ch.bridge = bid
        if check:
            self._conference(members, mixing)

    def _correlate(self, members: Sequence[str]) -> Optional[_Call]:
        """Merge the calls of the tracked channels among ``members`` and adopt the untracked
        Local channels whose names are known; the resulting call, or ``None``."""
        tracked = [self._chans[i] for i in members if i in self._chans]
        if not tracked:
            return None
        call = min((ch.call for ch in tracked), key=lambda c: c.seq)
        for i in members:
            if i not in self._chans and i in self._local_name:
                self._adopt(i, {"id": i, "name": self._local_name[i]}, call)
        for ch in tracked:
            if ch.call is not call:
                call = self._merge(ch.call, call)
        return call

    def _real_parties(self, members: Iterable[str]) -> List[_Chan]:
        """The real parties behind the channels of one bridge: the channels themselves, except
        that a Local half stands for what its sibling is bridged with (followed through up to
        three Local pairs), and a connection already cleared from its line (a transferer on
        its way out) is nobody. Cost: the channels of the bridge and of the calls behind its
        Local channels."""
        chans = self._chans
        found: List[_Chan] = []
        local: List[_Chan] = []
        for cid in members:
            ch = chans.get(cid)
            if ch is None:
                continue
            if ch.name.startswith("Local/"):
                local.append(ch)
            elif ch.line is None or not ch.cleared:
                found.append(ch)
        if not local:
            return found
        seen = {ch.id for ch in found}
        seen.update(ch.id for ch in local)
        todo = [(ch, 0) for ch in local]
        while todo:
            ch, depth = todo.pop()
            sib_name = _sibling(ch.name)
            sib_id = self._local_by_name.get(sib_name) if sib_name else None
            sib = chans.get(sib_id) if sib_id is not None else None
            if sib is None or sib.bridge is None:
                continue
            seen.add(sib.id)
            for other in sib.call.chans.values():
                if other.bridge != sib.bridge or other.id in seen:
                    continue
                seen.add(other.id)
                if not other.name.startswith("Local/"):
                    if other.line is None or not other.cleared:
                        found.append(other)
                elif depth < 2:
                    todo.append((other, depth + 1))
        return found

    def _conference(self, members: Iterable[str], mixing: bool) -> None:
        """Announce a conference when three or more real parties share a mixing bridge, and
        again to a party that was not told of one of them yet (the conference grew); every
        real party's line is told, also one reached through a Local pair. ``conf`` keeps the
        real parties (channel ids) a party was last told; a stale or partial view of the
        bridge (an event from the middle of a merge) tells nobody anything."""
        if not mixing:
            return
        real = self._real_parties(members)
        if len(real) < 3:
            return
        real.sort(key=lambda c: c.seq)  # in the order the channels were first seen
        ids = frozenset(ch.id for ch in real)
        parties = tuple(ch.own for ch in real if ch.own)
        for ch in real:
            if not ids <= ch.conf and ch.line is not None and not ch.cleared:
                ch.conf = ids
                self._fire(ch, Stimulus.CONFERENCED, conference=parties)

    @staticmethod
    def _is_mixing(b: Mapping[str, Any]) -> bool:
        return str(b.get("bridge_type") or "mixing") == "mixing"

    def _expire_merges(self) -> None:
        """Settle the merges older than :data:`_SETTLE_SECONDS` (ARI time): those no
        BridgeAttendedTransfer explained (a Local channel optimised away). Oldest first, so
        this stops at the first young one."""
        now = self._now()
        merging = self._merging
        while merging:
            bid = next(iter(merging))
            if now - merging[bid].since <= _SETTLE_SECONDS:
                return
            self._settle(bid)

    def _settle(self, bid: str) -> None:
        """The merge of bridge ``bid`` is over: tell the connected-line changes held back,
        except to connections a transfer just told."""
        merge = self._merging.pop(bid, None)
        if merge is None or not merge.deferred:
            return
        told = {e.connection_id for e in self._out if e.kind is EventKind.TRANSFERRED}
        for ch, before in merge.deferred.values():
            if (
                ch.id not in told
                and ch.line is not None
                and not ch.cleared
                and self._chans.get(ch.id) is ch
                and ch.connected != before
            ):
                self._fire_if_fits(ch, Stimulus.CONNECTED_LINE)

    def _on_entered_bridge(self, raw: Mapping[str, Any]) -> None:
        b = _as_dict(raw.get("bridge"))
        c = _as_dict(raw.get("channel"))
        if b is None or c is None:
            return
        ids = [i for i in b.get("channels") or () if type(i) is str]
        cid = c.get("id")
        if type(cid) is str and cid not in self._chans:
            others = [self._chans[i] for i in ids if i in self._chans]
            if not others:
                self._unknown(c)
                return
            if self._adopt(cid, c, others[0].call) is None:
                return
        if type(cid) is str and cid not in ids:
            ids.append(cid)
        bid = str(b.get("id") or "")
        if type(cid) is str and cid in self._hints:
            ch = self._chans.get(cid)
            if ch is not None:  # the target of a transfer joined the transferees
                self._claim_transfer(ch)
        self._legs_bridged(ids)
        self._bridge_members(ids, bid, self._is_mixing(b), check=bid not in self._merging)

    def _on_left_bridge(self, raw: Mapping[str, Any]) -> None:
        b = _as_dict(raw.get("bridge"))
        c = _as_dict(raw.get("channel"))
        if b is None or c is None:
            return
        ch = self._chans.get(str(c.get("id")))
        bid = str(b.get("id") or "")
        if ch is not None and ch.bridge == bid:
            # Out of the conference: joining one again is news to this party.
            ch.bridge = None
            ch.conf = _NOBODY_IDS

    def _on_bridge_merged(self, raw: Mapping[str, Any]) -> None:
        """One bridge absorbs another: only correlation. The channels that really move follow
        as ChannelLeftBridge / ChannelEnteredBridge, a transferer leaves, and
        BridgeAttendedTransfer says what it was; until then (or :data:`_SETTLE_SECONDS`) the
        bridge is settling and no conference is counted in it."""
        b = _as_dict(raw.get("bridge"))
        f = _as_dict(raw.get("bridge_from"))
        if b is None:
            return
        ids = [i for i in b.get("channels") or () if type(i) is str]
        if f is not None:
            ids.extend(i for i in f.get("channels") or () if type(i) is str)
        if self._correlate(list(dict.fromkeys(ids))) is None:
            return
        bid = str(b.get("id") or "")
        merging = self._merging
        if bid in merging:
            self._settle(bid)
        elif len(merging) >= _MERGING_MAX:
            self._settle(next(iter(merging)))
        merging[bid] = _Merge(self._now())

    def _on_bridge_destroyed(self, raw: Mapping[str, Any]) -> None:
        b = _as_dict(raw.get("bridge"))
        if b is None:
            return
        bid = b.get("id")
        if self._merging and bid in self._merging:
            self._settle(str(bid))
        for i in b.get("channels") or ():
            ch = self._chans.get(i)
            if ch is not None and ch.bridge == bid:
                ch.bridge = None
                ch.conf = _NOBODY_IDS

    # -- transfers

    def _transfer(
        self,
        legs: Sequence[_Chan],
        transferee: Optional[_Chan],
        transferee_party: Party,
        target_party: Party,
        call: _Call,
        pending: bool = False,
    ) -> None:
        """Emit a completed transfer: the transferer legs are cleared (reason transferred),
        the transferee and the connections that were talking to the transferer get
        ``transferred`` with their new connected party."""
        xparty = legs[0].own if legs else NOBODY
        extra = {
            "transferring": xparty or None,
            "transferred": transferee_party or None,
            "transfer_target": target_party or None,
        }
        for leg in legs:
            if leg.line is not None and not leg.cleared:
                leg.reason = Reason.TRANSFERRED
                self._end(leg, Stimulus.TRANSFERRED_AWAY, **extra)
        if transferee is not None and transferee.line is not None and not transferee.cleared:
            if target_party:
                transferee.connected = target_party
            transferee.xfer_pending = pending
            self._fire(transferee, Stimulus.TRANSFERRED, **extra)
        if not xparty.number:
            return
        for other in list(call.chans.values()):
            if (
                other.line is None
                or other.cleared
                or other is transferee
                or other in legs
                or other.connected.number != xparty.number
            ):
                continue
            if transferee_party:
                other.connected = transferee_party
            self._fire(other, Stimulus.TRANSFERRED, **extra)

    def _infer_attended_transfer(self, ch: _Chan) -> bool:
        """Without bridge events: a held channel that consulted another party (its connected
        line changed) hangs up while both parties live on: Asterisk completes the transfer."""
        held_with = ch.hold_party
        consulted = ch.connected
        if not held_with.number or not consulted.number or consulted.number == held_with.number:
            return False
        transferee: Optional[_Chan] = None
        target: Optional[_Chan] = None
        for other in ch.call.chans.values():
            if other is ch or other.cleared:
                continue
            num = other.own.number
            if num == held_with.number and (transferee is None or transferee.line is None):
                transferee = other
            elif num == consulted.number and (target is None or target.line is None):
                target = other
        if transferee is None or target is None:
            return False
        self._transfer([ch], transferee, transferee.own or held_with, consulted, ch.call)
        return True

    def _on_attended_transfer(self, raw: Mapping[str, Any]) -> None:
        if raw.get("result") != "Success":
            return
        first = self._lookup(_as_dict(raw.get("transferer_first_leg")))
        second = self._lookup(_as_dict(raw.get("transferer_second_leg")))
        teeraw = _as_dict(raw.get("transferee"))
        traw = _as_dict(raw.get("transfer_target"))
        transferee = self._lookup(teeraw)
        target = self._lookup(traw)
        known = [x for x in (first, second, transferee, target) if x is not None]
        if not known:
            return
        call = known[0].call
        for x in known[1:]:
            if x.call is not call:
                call = self._merge(x.call, call)
        if raw.get("destination_type") == "threeway":
            # The transferer stays, with the transferee and the target: a conference of the
            # real parties (the target is often a Local channel: the party behind it counts).
            b = _as_dict(raw.get("destination_threeway_bridge"))
            if b is not None:
                ids = [i for i in b.get("channels") or () if type(i) is str]
                self._bridge_members(ids, str(b.get("id") or ""), True)
            self._settle_transfer(raw)
            return
        legs: List[_Chan] = []
        for leg in (first, second):
            if leg is not None and leg not in legs:
                legs.append(leg)
        tee_party = Party.from_raw(teeraw.get("caller")) if teeraw is not None else NOBODY
        if transferee is not None and transferee.own:
            tee_party = transferee.own
        tgt_party = Party.from_raw(traw.get("caller")) if traw is not None else NOBODY
        if not tgt_party and second is not None:
            tgt_party = second.connected
        self._transfer(legs, transferee, tee_party, tgt_party, call)
        self._settle_transfer(raw)

    def _settle_transfer(self, raw: Mapping[str, Any]) -> None:
        """A BridgeAttendedTransfer explains the merge of the bridges it names."""
        if not self._merging:
            return
        for key in ("transferer_first_leg_bridge", "transferer_second_leg_bridge",
                    "destination_threeway_bridge"):
            bridge = _as_dict(raw.get(key))
            if bridge is not None:
                self._settle(str(bridge.get("id") or ""))
        dest = raw.get("destination_bridge")
        if type(dest) is str:
            self._settle(dest)

    def _on_blind_transfer(self, raw: Mapping[str, Any]) -> None:
        if raw.get("result") != "Success":
            return
        x = self._lookup(_as_dict(raw.get("channel")))
        teeraw = _as_dict(raw.get("transferee"))
        tee = self._lookup(teeraw)
        if x is None and tee is None:
            return
        call = (x or tee).call  # type: ignore[union-attr]
        exten = str(raw.get("exten") or "")
        tee_party = tee.own if tee is not None and tee.own else (
            Party.from_raw(teeraw.get("caller")) if teeraw is not None else NOBODY
        )
        self._transfer(
            [x] if x is not None else [], tee, tee_party, Party(exten, "") if exten else NOBODY,
            call, pending=True,
        )

    # -- endpoints

    def _on_endpoint_state(self, raw: Mapping[str, Any]) -> None:
        e = _as_dict(raw.get("endpoint"))
        if e is None:
            return
        name = f"{e.get('technology') or ''}/{e.get('resource') or ''}"
        if not self._is_monitored(name):
            return
        state = str(e.get("state") or LINE_UNKNOWN)
        rec = self._line_rec(name)
        if rec.registration != state:
            self._line_state(rec, state)

    def _line_state(self, rec: _LineRec, state: str) -> None:
        prev = rec.registration
        rec.registration = state
        self._dirty_lines[rec.name] = None
        self._out.append(
            CallEvent(
                EventKind.LINE_STATE_CHANGED, rec.name, "", "", _NULL, _NULL, PhoneState.IDLE,
                None, NOBODY, NOBODY, NOBODY, 0, "", Reason.NORMAL, self._now(), self._raw,
                False, False, line_state=state, previous_line_state=prev,
            )
        )

    # ------------------------------------------------------------------ REST sync

    def _sync_new(self, ch: _Chan, d: Mapping[str, Any]) -> None:
        """Set direction and parties of a connection first seen in REST."""
        state = d.get("state")
        exten = self._dialled(d)
        if state in _OUT_STATES or (state == "Up" and exten):
            ch.direction = _OUTGOING
            ch.calling = ch.own
            ch.called = exten
        else:
            ch.direction = _INCOMING
            ch.called = ch.own
            ch.calling = ch.connected

    def _sync_state(self, ch: _Chan, d: Mapping[str, Any], new: bool) -> None:
        state = d.get("state")
        if state in _OUT_STATES:
            self._fire_if_fits(ch, Stimulus.SYNC_INITIATED)
        elif state == "Ringing":
            self._fire_if_fits(ch, Stimulus.RINGING)
        elif state == "Up":
            if new:
                self._fire_if_fits(
                    ch,
                    Stimulus.SYNC_INITIATED if ch.direction is _OUTGOING else Stimulus.RINGING,
                )
            self._fire_if_fits(ch, Stimulus.ANSWERED)

    def _sync_existing(self, ch: _Chan, d: Mapping[str, Any]) -> None:
        own = Party.from_raw(d.get("caller"))
        if own and own != ch.own:
            self._set_own(ch, own)
        party = Party.from_raw(d.get("connected"))
        if party and party != ch.connected:
            first = not ch.connected
            ch.connected = party
            if first:
                self._dirty(ch)
            else:
                self._fire_if_fits(ch, Stimulus.CONNECTED_LINE)
        self._sync_state(ch, d, new=False)

    def _correlate_bridges(
        self, bridges: Sequence[Mapping[str, Any]], rest: Mapping[str, Mapping[str, Any]]
    ) -> None:
        groups: List[Tuple[List[str], str]] = []
        for b in bridges:
            if type(b) is not dict:
                continue
            ids = [i for i in b.get("channels") or () if type(i) is str]
            if ids:
                groups.append((ids, str(b.get("id") or "")))
        for _ in range(3):
            before = len(self._chans)
            for ids, bid in groups:
                self._bridge_quiet(ids, bid, rest)
            for cid, d in rest.items():
                name = str(d.get("name") or "")
                if cid in self._chans or not name.startswith("Local/"):
                    continue
                sib_name = _sibling(name)
                sib = self._local_by_name.get(sib_name) if sib_name else None
                if sib is not None and sib in self._chans:
                    self._adopt(cid, d, self._chans[sib].call)
            if len(self._chans) == before:
                break
        # Conferences REST shows are known from now on (not announced: nothing says they
        # are new), so that only a party joining later makes news.
        for ids, _bid in groups:
            real = self._real_parties(ids)
            if len(real) >= 3:
                conf = frozenset(ch.id for ch in real)
                for ch in real:
                    ch.conf = conf

    def _bridge_quiet(
        self, ids: Sequence[str], bid: str, rest: Mapping[str, Mapping[str, Any]]
    ) -> None:
        tracked = [self._chans[i] for i in ids if i in self._chans]
        if not tracked:
            return
        call = min((ch.call for ch in tracked), key=lambda c: c.seq)
        for i in ids:
            if i not in self._chans and i in rest:
                self._adopt(i, rest[i], call)
        for ch in tracked:
            if ch.call is not call:
                call = self._merge(ch.call, call)
            ch.weak = False
            ch.bridge = bid

    # ------------------------------------------------------------------ snapshots

    def _snap(self, ch: _Chan) -> Connection:
        return Connection(
            ch.id,
            ch.line or "",
            ch.call.id,
            ch.name,
            ch.state,
            phone_state_of(ch.state, ch.ringback),
            ch.direction,
            ch.calling,
            ch.called,
            ch.connected,
            ch.state is _HOLD,
            ch.talking,
            ch.cause,
            ch.dialstatus,
            ch.start,
            ch.answer,
            ch.end,
        )

    def _publish(self) -> None:
        """Rebuild the snapshots of what changed and publish them atomically."""
        conn_up: Dict[str, Optional[Connection]] = {}
        for cid, ch in self._dirty_chans.items():
            live = ch.line is not None and not ch.cleared and self._chans.get(cid) is ch
            conn_up[cid] = self._snap(ch) if live else None
        old_conns = self._conn_snaps

        def snap_of(ch: _Chan) -> Connection:
            snap = conn_up.get(ch.id)
            if snap is None:
                snap = old_conns.get(ch.id)
            return snap if snap is not None else self._snap(ch)

        line_up: Dict[str, Optional[Line]] = {}
        for name in self._dirty_lines:
            rec = self._lines.get(name)
            if rec is None:
                line_up[name] = None
            else:
                line_up[name] = Line(
                    name, rec.registration, tuple(snap_of(ch) for ch in rec.conns.values())
                )
        call_up: Dict[str, Optional[Call]] = {}
        for call_id in self._dirty_calls:
            call = self._calls.get(call_id)
            if call is None or call.id != call_id:
                call_up[call_id] = None
                continue
            conns = tuple(
                snap_of(ch)
                for ch in call.chans.values()
                if ch.line is not None and not ch.cleared
            )
            call_up[call_id] = Call(call_id, conns) if conns else None
        with self._lock:
            for cid, conn in conn_up.items():
                if conn is None:
                    self._conn_snaps.pop(cid, None)
                else:
                    self._conn_snaps[cid] = conn
            for name, line in line_up.items():
                if line is None:
                    self._line_snaps.pop(name, None)
                else:
                    self._line_snaps[name] = line
            for call_id, snap in call_up.items():
                if snap is None:
                    self._call_snaps.pop(call_id, None)
                else:
                    self._call_snaps[call_id] = snap
        self._dirty_chans.clear()
        self._dirty_lines.clear()
        self._dirty_calls.clear()


#: Every ARI event type the call model reads; the server-side filter must let these through.
MODEL_EVENT_TYPES: FrozenSet[str] = frozenset(
    {
        "ChannelCreated",
        "ChannelStateChange",
        "ChannelConnectedLine",
        "ChannelCallerId",
        "ChannelHangupRequest",
        "ChannelDestroyed",
        "ChannelHold",
        "ChannelUnhold",
        "ChannelTalkingStarted",
        "ChannelTalkingFinished",
        "ChannelEnteredBridge",
        "ChannelLeftBridge",
        "BridgeMerged",
        "BridgeDestroyed",
        "BridgeAttendedTransfer",
        "BridgeBlindTransfer",
        "Dial",
        "EndpointStateChange",
    }
)
