"""The model's records and facts: plain data, no behaviour of the model.

The mutable records the processor thread keeps per call (:class:`CallRecord`), channel
(:class:`ChannelRecord`), line (:class:`LineRecord`) and settling bridge merge
(:class:`PendingMerge`); the Asterisk facts the handlers read (channel states meaning
"placing a call", DIALSTATUS values and their causes); the size bounds; and the small pure
parsers of ARI data (timestamps, linkedid, Local channel siblings). Only the processor thread
touches the records; nothing here runs a thread or does I/O.
"""

from __future__ import annotations

import calendar
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Tuple

from ..causes import STATUS_FOR_CAUSE
from .types import (
    LINE_UNKNOWN,
    NO_DATA,
    NOBODY,
    ConnectionState,
    ControlHint,
    Direction,
    EventKind,
    Party,
    Reason,
)

NULL = ConnectionState.NULL
INITIATED = ConnectionState.INITIATED
CONNECTED = ConnectionState.CONNECTED
HOLD = ConnectionState.HOLD
QUEUED = ConnectionState.QUEUED
INCOMING = Direction.INCOMING
OUTGOING = Direction.OUTGOING

#: ARI channel states meaning "the phone is placing a call".
PLACING_STATES = frozenset({"Ring", "Dialing", "OffHook", "Dialing Offhook", "Pre-ring"})

#: Failed DIALSTATUS values: the Q.850 cause used when the peer's own cause is unknown, and the
#: CSTA reason.
DIAL_FAILURES: Dict[str, Tuple[int, Reason]] = {
    "BUSY": (17, Reason.BUSY),
    "NOANSWER": (19, Reason.NO_ANSWER),
    "CONGESTION": (34, Reason.CONGESTION),
    "CHANUNAVAIL": (20, Reason.UNAVAILABLE),
    "DONTCALL": (21, Reason.UNAVAILABLE),
    "TORTURE": (21, Reason.UNAVAILABLE),
    "INVALIDARGS": (28, Reason.UNAVAILABLE),
}
FINAL_DIALSTATUS = frozenset({"ANSWER", "CANCEL", *DIAL_FAILURES})
#: The failed DIALSTATUS a Q.850 cause of an unanswered leg stands for.
DIALSTATUS_OF_CAUSE = STATUS_FOR_CAUSE

#: Event kinds after which the phone of the connection is disconnected.
CLEARING_KINDS = frozenset(
    {EventKind.CONNECTION_CLEARED, EventKind.CALL_CLEARED, EventKind.DIVERTED}
)

#: The ``raw`` of an event not caused by an ARI event (REST data, a hint).
NO_RAW: Tuple[Mapping[str, Any], ...] = ()
#: ``ChannelRecord.conference_ids`` of a channel in no conference.
NO_CONFERENCE: FrozenSet[str] = frozenset()
#: Destroyed channel ids remembered, so that a late event about one is not "lost".
MAX_TOMBSTONES = 4096
#: At most this many call-control hints are kept (the oldest is dropped).
MAX_HINTS = 4096
#: Local channel names remembered (id <-> name), to pair a ``;1`` with its ``;2``.
MAX_LOCAL_NAMES = 20000
#: After a BridgeMerged, how long (ARI time) the bridge counts as settling when no
#: BridgeAttendedTransfer arrives; Asterisk publishes the transfer in the same burst.
SETTLE_SECONDS = 2.0
#: At most this many bridges settling at once (the oldest is dropped).
MAX_SETTLING = 1024


def epoch_of(ts: str, cache: Dict[str, float]) -> Optional[float]:
    """Parse ``2026-11-26T03:53:31.659+0000`` to epoch seconds; ``None`` if malformed.

    ``cache`` memoises the minute prefix, which makes this a few slices and one float();
    Asterisk's own form (28 characters, a known ``+hhmm``/``-hhmm`` offset) skips the
    search for the offset.
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
        if len(ts) == 28:
            known = _OFFSETS.get(ts[23:])
            if known is not None:
                return base + float(ts[17:23]) - known
        rest = ts[17:]
        cut = max(rest.rfind("+"), rest.rfind("-"))
        if cut < 0:
            return base + float(rest.rstrip("Z"))
        tz = rest[cut + 1:].replace(":", "")
        offset = int(tz[0:2]) * 3600 + int(tz[2:4]) * 60
        if rest[cut] == "-":
            offset = -offset
        if len(ts) == 28 and cut == 6 and len(_OFFSETS) < 64 and tz.isdigit():
            _OFFSETS[ts[23:]] = offset
        return base + float(rest[:cut]) - offset
    except (ValueError, IndexError, TypeError):
        return None


#: ``+hhmm``/``-hhmm`` -> seconds east of UTC, for the offsets seen (a handful at most).
_OFFSETS: Dict[str, int] = {}


def linkedid_of(raw: Mapping[str, Any]) -> Optional[str]:
    """The linkedid from ``channelvars`` (``CHANNEL(linkedid)`` or ``linkedid``), if sent."""
    channelvars = raw.get("channelvars")
    if type(channelvars) is not dict:
        return None
    value = channelvars.get("CHANNEL(linkedid)") or channelvars.get("linkedid")
    return str(value) if value else None


def queue_name(app_data: object) -> str:
    """The queue of app Queue's arguments (``support,Tt,,,30`` -> ``support``)."""
    if type(app_data) is not str:
        return ""
    return app_data.split(",", 1)[0].strip()[:80]


def queue_of(chan_data: Mapping[str, Any]) -> str:
    """The queue an ARI channel object waits in (its dialplan runs app Queue), or ``""``."""
    dialplan = chan_data.get("dialplan")
    if type(dialplan) is not dict or dialplan.get("app_name") != "Queue":
        return ""
    return queue_name(dialplan.get("app_data")) or "?"


def local_sibling(name: str) -> Optional[str]:
    """The other half of a Local channel (``...;1`` <-> ``...;2``)."""
    if name.endswith(";1"):
        return name[:-1] + "2"
    if name.endswith(";2"):
        return name[:-1] + "1"
    return None


def as_dict(value: Any) -> Optional[Mapping[str, Any]]:
    return value if type(value) is dict else None


_NORMAL = Reason.NORMAL


class CallRecord:
    """A conversation: the tracked channels (monitored or related) that belong together."""

    __slots__ = ("id", "chans", "seq", "keys", "data")

    def __init__(self, call_id: str, seq: int) -> None:
        #: the call id listeners see (the linkedid, or the first channel's id)
        self.id = call_id
        #: its tracked channels, by channel id
        self.chans: Dict[str, ChannelRecord] = {}
        #: creation order: when two calls merge, the older keeps its id
        self.seq = seq
        #: every id under which the model's call table finds this call (merged ones too)
        self.keys: List[str] = [call_id]
        #: the call data (read-only; the value of CTI_DATA last seen changing on any of its
        #: channels)
        self.data: Mapping[str, str] = NO_DATA


class ChannelRecord:
    """A tracked channel. ``line`` is ``None`` for a related channel not on a monitored line
    (a Local channel, a trunk): it takes part in correlation but has no CSTA state."""

    __slots__ = (
        "id", "name", "line", "call", "state", "direction", "own", "calling", "called",
        "connected", "talking", "ringback", "cause", "dialstatus", "reason", "start", "answer",
        "end", "peer", "open_dials", "bridge", "hold_party", "awaits_transfer_dial", "cleared",
        "announced", "call_is_guess", "conference_ids", "seq", "hint", "pending_transfer",
        "refer_wait", "data_raw", "data", "queue",
    )

    def __init__(self, cid: str, name: str, line: Optional[str], seq: int) -> None:
        self.id = cid
        self.name = name
        self.line = line
        self.call: CallRecord = NO_CALL
        self.state = NULL
        self.direction = INCOMING
        #: the channel's own party (its caller id)
        self.own = NOBODY
        self.calling = NOBODY
        self.called = NOBODY
        self.connected = NOBODY
        self.talking = False
        self.ringback = False
        self.cause = 0
        self.dialstatus = ""
        self.reason = _NORMAL  # (Reason.NORMAL: an enum class attribute is slow on 3.11)
        self.start = 0.0
        self.answer: Optional[float] = None
        self.end: Optional[float] = None
        #: the channel at the other end of its last Dial (or of the leg call control dialled)
        self.peer: Optional[str] = None
        #: Dials this channel placed that have no final status yet
        self.open_dials = 0
        #: the bridge it is in, if any
        self.bridge: Optional[str] = None
        #: whom it was talking to when put on hold (to infer an attended transfer)
        self.hold_party = NOBODY
        #: a blind transfer moved it: its next Dial is the transfer's, not a new call
        self.awaits_transfer_dial = False
        #: its connection left the line (CSTA state NULL); the record may live on
        self.cleared = False
        #: an event about it was emitted (so a call id change is news)
        self.announced = False
        #: its call is a guess (no linkedid, Dial or bridge said so): it may move
        self.call_is_guess = True
        #: the real parties of the conference it was last told of
        self.conference_ids: FrozenSet[str] = NO_CONFERENCE
        #: creation order
        self.seq = seq
        #: what call control said about this channel (it placed or dialled it)
        self.hint: Optional[ControlHint] = None
        #: a pending transfer call control announced for this (transferring) channel
        self.pending_transfer: Optional[ControlHint] = None
        #: a REFER blind transfer seen (transferring, target), told when the target rings
        self.refer_wait: Optional[Tuple[Party, Party]] = None
        #: the CTI_DATA value last seen on this channel (None: not seen yet)
        self.data_raw: object = None
        #: what that value decoded to (the channel's own data)
        self.data: Mapping[str, str] = NO_DATA
        #: the queue it waits in or came from
        self.queue = ""


NO_CALL = CallRecord("", -1)


class PendingMerge:
    """A bridge that absorbed another (BridgeMerged) and has not settled yet: ``since`` is the
    ARI time of the merge, ``deferred`` the connected-line changes held back meanwhile
    (channel id -> (channel, party before)), told as ``party_changed`` unless a transfer
    told them."""

    __slots__ = ("since", "deferred")

    def __init__(self, since: float) -> None:
        self.since = since
        self.deferred: Dict[str, Tuple[ChannelRecord, Party]] = {}


class LineRecord:
    __slots__ = ("name", "registration", "connections")

    def __init__(self, name: str) -> None:
        self.name = name
        self.registration = LINE_UNKNOWN
        self.connections: Dict[str, ChannelRecord] = {}


