"""Value types of the call model: states, parties, immutable snapshots and CTI events.

Everything here is immutable (enums, ``NamedTuple`` and frozen dataclasses), so any thread may
read these objects at any time. The processor thread creates them inside
:class:`~asterisk_cti.model.CallModel`; listeners and call control only read them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import Any, Dict, Mapping, NamedTuple, Optional, Tuple, Type, TypeVar

from ..calldata import CallDataError, encode_call_data
from ..errors import EventParseError
from ..events.catalogue import CallerID


class ConnectionState(str, Enum):
    """ECMA-269 (CSTA) local connection state of one connection (a channel at a line)."""

    NULL = "null"
    INITIATED = "initiated"
    ALERTING = "alerting"
    CONNECTED = "connected"
    HOLD = "hold"
    QUEUED = "queued"
    FAIL = "fail"

    def __str__(self) -> str:
        return self.value


class PhoneState(str, Enum):
    """A TAPI-style summary of a connection for phone bars and UIs."""

    IDLE = "idle"
    DIALING = "dialing"
    RINGBACK = "ringback"
    RINGING = "ringing"
    CONNECTED = "connected"
    HELD = "held"
    FAILED = "failed"
    DISCONNECTED = "disconnected"

    def __str__(self) -> str:
        return self.value


class Direction(str, Enum):
    """Whether the monitored line placed the call (outgoing) or received it (incoming)."""

    INCOMING = "incoming"
    OUTGOING = "outgoing"

    def __str__(self) -> str:
        return self.value


class EventKind(str, Enum):
    """The kind of a :class:`CallEvent`; the dispatcher calls ``on_<kind>`` on listeners."""

    SERVICE_INITIATED = "service_initiated"
    ORIGINATED = "originated"
    RINGBACK = "ringback"
    DELIVERED = "delivered"
    ESTABLISHED = "established"
    HELD = "held"
    RETRIEVED = "retrieved"
    TRANSFERRED = "transferred"
    CONFERENCED = "conferenced"
    DIVERTED = "diverted"
    FAILED = "failed"
    CONNECTION_CLEARED = "connection_cleared"
    CALL_CLEARED = "call_cleared"
    QUEUED = "queued"
    TALKING_STARTED = "talking_started"
    TALKING_STOPPED = "talking_stopped"
    PARTY_CHANGED = "party_changed"
    LINE_STATE_CHANGED = "line_state_changed"
    CALL_ID_CHANGED = "call_id_changed"

    def __str__(self) -> str:
        return self.value


class Reason(str, Enum):
    """Why a connection changed, in CSTA "event cause" terms (the Q.850 code is ``cause``)."""

    NORMAL = "normal"
    TRANSFERRED = "transferred"
    CONFERENCED = "conferenced"
    DIVERTED = "diverted"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    CONGESTION = "congestion"
    UNAVAILABLE = "unavailable"
    CANCELLED = "cancelled"
    RESYNC = "resync"

    def __str__(self) -> str:
        return self.value


#: Registration states of a line (from EndpointStateChange / GET /endpoints).
LINE_ONLINE = "online"
LINE_OFFLINE = "offline"
LINE_UNKNOWN = "unknown"


_tuple_new = tuple.__new__


class Party(NamedTuple):
    """A party of a call: a number and a display name. Immutable; any thread."""

    number: str
    name: str

    @classmethod
    def from_caller(cls, caller: Optional[CallerID]) -> Party:
        """Build from an ARI :class:`~asterisk_cti.events.CallerID`; ``None`` gives NOBODY."""
        if caller is None or (not caller.number and not caller.name):
            return NOBODY
        return cls(caller.number, caller.name)

    @classmethod
    def from_raw(cls, raw: Any) -> Party:
        """Build from an ARI ``CallerID`` JSON object, tolerating anything else."""
        if type(raw) is not dict:
            return NOBODY
        number = raw.get("number") or ""
        name = raw.get("name") or ""
        if not number and not name:
            return NOBODY
        return _tuple_new(cls, (  # the constructor without its keyword matching
            number if type(number) is str else str(number),
            name if type(name) is str else str(name),
        ))

    def as_dict(self) -> Dict[str, str]:
        """``{"number": ..., "name": ...}`` (empty strings when unknown). Any thread."""
        return {"number": self.number, "name": self.name}

    @classmethod
    def from_dict(cls, data: object) -> Party:
        """The inverse of :meth:`as_dict`, strict (a payload from the network). Pure.

        :raises EventParseError: not an object of two strings.
        """
        d = _object(data, "party")
        number, name = _text(d, "number"), _text(d, "name")
        return cls(number, name) if number or name else NOBODY

    def __bool__(self) -> bool:
        return bool(self.number or self.name)

    def __str__(self) -> str:
        if self.name:
            return f'"{self.name}" <{self.number}>'
        return self.number


#: The empty party (unknown or not yet set).
NOBODY = Party("", "")

#: The data of a call without call data (an empty read-only mapping).
NO_DATA: Mapping[str, str] = MappingProxyType({})


class Connection(NamedTuple):
    """Immutable snapshot of one connection: one channel at one monitored line.

    Published by the processor thread; safe to read from any thread.
    """

    connection_id: str
    line: str
    call_id: str
    channel_name: str
    state: ConnectionState
    phone_state: PhoneState
    direction: Direction
    calling: Party
    called: Party
    connected: Party
    held: bool
    talking: bool
    cause: int
    dialstatus: str
    start_time: float
    answer_time: Optional[float]
    end_time: Optional[float]
    #: the call data of its call (read-only; :data:`NO_DATA` when none), see
    #: :mod:`asterisk_cti.calldata`
    data: Mapping[str, str] = NO_DATA
    #: the Asterisk queue the connection waits in (state ``queued``) or came from (an agent's
    #: leg that app_queue rang, the caller once an agent answered); empty otherwise
    queue: str = ""

    def as_dict(self) -> Dict[str, Any]:
        """The JSON-ready form (enumerations as their values, parties as
        :meth:`Party.as_dict`): what the CTI server publishes in a line snapshot. Pure; any
        thread."""
        return {
            "connection_id": self.connection_id, "call_id": self.call_id,
            "state": self.state.value, "phone_state": self.phone_state.value,
            "direction": self.direction.value, "calling": self.calling.as_dict(),
            "called": self.called.as_dict(), "connected": self.connected.as_dict(),
            "held": bool(self.held), "talking": bool(self.talking), "line": self.line,
            "channel_name": self.channel_name, "cause": int(self.cause),
            "dialstatus": self.dialstatus, "start_time": float(self.start_time),
            "answer_time": self.answer_time, "end_time": self.end_time,
            "data": dict(self.data), "queue": self.queue,
        }

    @classmethod
    def from_dict(cls, data: object, line: str = "") -> Connection:
        """The inverse of :meth:`as_dict`, strict (a payload from the network): unknown
        keys are ignored, a missing or malformed one raises. ``line`` is used when the
        payload names none. Pure; any thread.

        :raises EventParseError: what is wrong, never a half-built connection.
        """
        d = _object(data, "connection")
        name = _text(d, "line", line) or line
        if not name:
            raise EventParseError("connection: 'line' is missing")
        return cls(
            connection_id=_text(d, "connection_id", required=True),
            line=name,
            call_id=_text(d, "call_id", required=True),
            channel_name=_text(d, "channel_name"),
            state=_enum(ConnectionState, d, "state"),
            phone_state=_enum(PhoneState, d, "phone_state"),
            direction=_enum(Direction, d, "direction"),
            calling=Party.from_dict(d.get("calling", {})),
            called=Party.from_dict(d.get("called", {})),
            connected=Party.from_dict(d.get("connected", {})),
            held=_flag(d, "held"),
            talking=_flag(d, "talking"),
            cause=_int(d, "cause"),
            dialstatus=_text(d, "dialstatus"),
            start_time=_number(d, "start_time", 0.0) or 0.0,
            answer_time=_number(d, "answer_time", None),
            end_time=_number(d, "end_time", None),
            data=_data(d),
            queue=_text(d, "queue"),
        )


class Call(NamedTuple):
    """Immutable snapshot of a call: its connections at monitored lines.

    ``call_id`` is stable for the conversation (the linkedid when ``channelvars`` carries it,
    otherwise the first channel's id). ``data`` is the call's data (read-only, empty when
    none; see :mod:`asterisk_cti.calldata`). Safe to read from any thread.
    """

    call_id: str
    connections: Tuple[Connection, ...]
    data: Mapping[str, str] = NO_DATA

    @property
    def lines(self) -> Tuple[str, ...]:
        """The monitored lines taking part, without duplicates, in connection order."""
        seen: Dict[str, None] = {}
        for c in self.connections:
            seen.setdefault(c.line, None)
        return tuple(seen)

    def connection_at(self, line: str) -> Optional[Connection]:
        """The (first) connection of this call at ``line``, if any."""
        for c in self.connections:
            if c.line == line:
                return c
        return None


_PHONE_RANK = {
    PhoneState.CONNECTED: 7,
    PhoneState.RINGING: 6,
    PhoneState.RINGBACK: 5,
    PhoneState.DIALING: 4,
    PhoneState.HELD: 3,
    PhoneState.FAILED: 2,
    PhoneState.DISCONNECTED: 1,
    PhoneState.IDLE: 0,
}


#: Line.active_connection's order: higher first; 0 is never chosen.
_ACT_RANK = {
    PhoneState.RINGING: 5,
    PhoneState.CONNECTED: 4,
    PhoneState.RINGBACK: 3,
    PhoneState.DIALING: 3,
    PhoneState.HELD: 2,
    PhoneState.FAILED: 1,
}


class Line(NamedTuple):
    """Immutable snapshot of a monitored line (endpoint ``TECH/RESOURCE``).

    ``registration`` is ``online``, ``offline`` or ``unknown``. Safe to read from any thread.
    """

    name: str
    registration: str
    connections: Tuple[Connection, ...]

    def as_dict(self) -> Dict[str, Any]:
        """The JSON-ready form: ``line``, ``registration``, ``phone_state`` and
        ``connections`` (:meth:`Connection.as_dict`). Pure; any thread."""
        return {"line": self.name, "registration": self.registration,
                "phone_state": self.phone_state.value,
                "connections": [c.as_dict() for c in self.connections]}

    @classmethod
    def from_dict(cls, data: object) -> Line:
        """The inverse of :meth:`as_dict`, strict (a payload from the network; at most
        :data:`MAX_CONNECTIONS` connections). ``phone_state`` is derived, not read. Pure.

        :raises EventParseError: what is wrong, never a half-built line.
        """
        d = _object(data, "line")
        name = _text(d, "line", required=True)
        registration = _text(d, "registration") or LINE_UNKNOWN
        raw = d.get("connections", [])
        if not isinstance(raw, list) or len(raw) > MAX_CONNECTIONS:
            raise EventParseError(
                f"line: 'connections' must be a list of at most {MAX_CONNECTIONS}")
        connections = tuple(Connection.from_dict(c, name) for c in raw)
        if any(c.line != name for c in connections):
            raise EventParseError("line: a connection names another line")
        return cls(name, registration, connections)

    @property
    def phone_state(self) -> PhoneState:
        """The most relevant phone state over the line's connections (idle when none)."""
        best = PhoneState.IDLE
        for c in self.connections:
            if _PHONE_RANK[c.phone_state] > _PHONE_RANK[best]:
                best = c.phone_state
        return best

    @property
    def call_ids(self) -> Tuple[str, ...]:
        """Ids of the calls present at the line, without duplicates."""
        seen: Dict[str, None] = {}
        for c in self.connections:
            seen.setdefault(c.call_id, None)
        return tuple(seen)

    @property
    def is_idle(self) -> bool:
        """True when the line has no connection."""
        return not self.connections

    @property
    def active_connection(self) -> Optional[Connection]:
        """The connection a phone bar acts on (its Answer / Hang up / Hold buttons), or None.

        The rule, first match wins:

        1. a ringing (incoming, alerting) connection, the one ringing longest (the oldest
           ``start_time``): what the user is asked to take;
        2. the connected one (not held);
        3. a call being placed (dialing, ringback): what Hang up cancels, for example a
           consultation that still rings while the first call is held;
        4. a held one;
        5. a failed one (busy, unavailable: the phone still shows it until hung up).

        Within 2 to 5 the newest (latest ``start_time``) wins. Disconnected connections are
        never chosen; a line without any other gives None. Pass the result to
        ``client.control.actions()`` to know which buttons to enable. Any thread.
        """
        best: Optional[Connection] = None
        best_key: Tuple[int, float] = (0, 0.0)
        for c in self.connections:
            rank = _ACT_RANK.get(c.phone_state, 0)
            if rank == 0:
                continue
            # the oldest ringing call, otherwise the newest
            age = -c.start_time if c.phone_state == PhoneState.RINGING else c.start_time
            key = (rank, age)
            if best is None or key > best_key:
                best, best_key = c, key
        return best


#: The keys of :meth:`CallEvent.as_dict`, in order.
CALL_EVENT_KEYS: Tuple[str, ...] = (
    "kind", "line", "call_id", "connection_id", "state", "previous_state", "phone_state",
    "direction", "calling", "called", "connected", "cause", "dialstatus", "reason",
    "line_state", "timestamp", "talking", "held", "data", "queue",
)


class CallEvent(NamedTuple):
    """One CTI event (CSTA style) about a connection at a monitored line. Immutable.

    Created by the processor thread, delivered to :class:`~asterisk_cti.model.CallListener`
    methods on a dispatcher lane; safe to keep and read from any thread.

    ``cause`` is the Q.850 hangup cause (0 when none); ``reason`` the CSTA event cause
    (``transferred`` for a transferer's cleared connection, ``busy``, ...). ``timestamp`` is the
    ARI event time (epoch seconds), or the model's clock when the event had none. ``raw`` holds
    the ARI event dicts behind it. ``transferring``/``transferred``/``transfer_target`` are set
    on transfer events, ``conference`` on conferenced events, ``line_state`` and
    ``previous_line_state`` on line_state_changed events. ``client_originated`` tells the
    connections this client's call control placed or dialled.

    ``data`` is the call data of the event's call (a read-only ``Mapping[str, str]``, empty
    when the call has none): what an IVR or any application attached to the call through the
    inherited channel variable ``CTI_DATA`` (see :mod:`asterisk_cti.calldata` and the call
    model page). ``queue`` names the Asterisk queue the connection waits in (``queued``) or
    came from (an agent's ``delivered``/``established`` of a call app_queue rang); empty
    otherwise.
    """

    kind: EventKind
    line: str
    call_id: str
    connection_id: str
    state: ConnectionState
    previous_state: ConnectionState
    phone_state: PhoneState
    direction: Optional[Direction]
    calling: Party
    called: Party
    connected: Party
    cause: int
    dialstatus: str
    reason: Reason
    timestamp: float
    raw: Tuple[Mapping[str, Any], ...]
    talking: bool
    held: bool
    transferring: Optional[Party] = None
    transferred: Optional[Party] = None
    transfer_target: Optional[Party] = None
    conference: Tuple[Party, ...] = ()
    line_state: str = ""
    previous_line_state: str = ""
    #: True on every event of a connection this client's call control placed or dialled (a
    #: click-to-dial agent, a leg the switch or a transfer dialled)
    client_originated: bool = False
    #: on call_id_changed: the id the connection's call had until now (``call_id`` is the new)
    previous_call_id: str = ""
    #: the call's data (read-only; :data:`NO_DATA` when none)
    data: Mapping[str, str] = NO_DATA
    #: the queue the connection waits in or came from (empty when none)
    queue: str = ""

    @property
    def key(self) -> str:
        """The dispatch-order key: the line. Events of one line are delivered in order."""
        return self.line

    def as_dict(self) -> Dict[str, Any]:
        """The stable JSON-ready form (keys :data:`CALL_EVENT_KEYS`, in that order): what
        ``asterisk-cti monitor --json`` prints, ``screenpop --post`` sends and the CTI
        server publishes. Enumerations become their string values; ``direction`` is
        ``None`` when unknown; parties are :meth:`Party.as_dict`. Pure; any thread.
        """
        return {
            "kind": self.kind.value,
            "line": self.line,
            "call_id": self.call_id,
            "connection_id": self.connection_id,
            "state": self.state.value,
            "previous_state": self.previous_state.value,
            "phone_state": self.phone_state.value,
            "direction": self.direction.value if self.direction is not None else None,
            "calling": self.calling.as_dict(),
            "called": self.called.as_dict(),
            "connected": self.connected.as_dict(),
            "cause": int(self.cause),
            "dialstatus": self.dialstatus,
            "reason": self.reason.value,
            "line_state": self.line_state,
            "timestamp": float(self.timestamp),
            "talking": bool(self.talking),
            "held": bool(self.held),
            "data": dict(self.data),
            "queue": self.queue,
        }

    def extras_dict(self) -> Dict[str, Any]:
        """The fields :meth:`as_dict` leaves out, JSON-ready: ``transferring``,
        ``transferred``, ``transfer_target`` (a party or ``None``), ``conference`` (a list
        of parties), ``previous_line_state``, ``client_originated``, ``previous_call_id``.
        ``{**event.as_dict(), **event.extras_dict()}`` is what :meth:`from_dict` reads back
        whole (but ``raw``). Pure; any thread."""

        def party(p: Optional[Party]) -> Optional[Dict[str, str]]:
            return None if p is None else p.as_dict()

        return {
            "transferring": party(self.transferring),
            "transferred": party(self.transferred),
            "transfer_target": party(self.transfer_target),
            "conference": [p.as_dict() for p in self.conference],
            "previous_line_state": self.previous_line_state,
            "client_originated": bool(self.client_originated),
            "previous_call_id": self.previous_call_id,
        }

    @classmethod
    def from_dict(cls, data: object) -> CallEvent:
        """The inverse of :meth:`as_dict` (and :meth:`extras_dict`, whose keys are
        optional), strict: it reads a payload from the network. Unknown keys are ignored
        (fields are added within a schema version); a missing or malformed one raises, so
        an event is never half-built. ``raw`` is empty. Pure; any thread.

        :raises EventParseError: what is wrong (bad JSON types, an unknown kind or state,
            an over-long string, a non-finite number).
        """
        d = _object(data, "event")

        def party(key: str) -> Optional[Party]:
            value = d.get(key)
            return None if value is None else Party.from_dict(value)

        conference = d.get("conference", [])
        if not isinstance(conference, list) or len(conference) > MAX_CONNECTIONS:
            raise EventParseError("event: 'conference' must be a short list of parties")
        direction = d.get("direction")
        timestamp = _number(d, "timestamp", None)
        if timestamp is None:
            raise EventParseError("event: 'timestamp' is missing")
        kind = _enum(EventKind, d, "kind")
        # a line_state_changed event concerns the line (its registration), no connection
        of_call = kind is not EventKind.LINE_STATE_CHANGED
        return cls(
            kind=kind,
            line=_text(d, "line", required=True),
            call_id=_text(d, "call_id", required=of_call),
            connection_id=_text(d, "connection_id", required=of_call),
            state=_enum(ConnectionState, d, "state"),
            previous_state=_enum(ConnectionState, d, "previous_state"),
            phone_state=_enum(PhoneState, d, "phone_state"),
            direction=None if direction is None else _enum(Direction, d, "direction"),
            calling=Party.from_dict(d.get("calling", {})),
            called=Party.from_dict(d.get("called", {})),
            connected=Party.from_dict(d.get("connected", {})),
            cause=_int(d, "cause"),
            dialstatus=_text(d, "dialstatus"),
            reason=_enum(Reason, d, "reason"),
            timestamp=timestamp,
            raw=(),
            talking=_flag(d, "talking"),
            held=_flag(d, "held"),
            transferring=party("transferring"),
            transferred=party("transferred"),
            transfer_target=party("transfer_target"),
            conference=tuple(Party.from_dict(p) for p in conference),
            line_state=_text(d, "line_state"),
            previous_line_state=_text(d, "previous_line_state"),
            client_originated=_flag(d, "client_originated"),
            previous_call_id=_text(d, "previous_call_id"),
            data=_data(d),
            queue=_text(d, "queue"),
        )

    def __repr__(self) -> str:
        return (
            f"CallEvent({self.kind.value} line={self.line!r} call={self.call_id!r} "
            f"conn={self.connection_id!r} {self.previous_state.value}->{self.state.value} "
            f"connected={self.connected!s} cause={self.cause} reason={self.reason.value})"
        )


# -- reading the JSON forms back (payloads from the network: strict, bounded) ---------------

#: The longest string field :meth:`CallEvent.from_dict` and friends accept.
MAX_TEXT = 1024
#: The most connections (or conference parties) a parsed line (event) may carry.
MAX_CONNECTIONS = 64

_E = TypeVar("_E", bound=Enum)


def _object(data: object, what: str) -> Mapping[str, Any]:
    if type(data) is not dict:
        raise EventParseError(f"{what}: expected a JSON object, got {type(data).__name__}")
    return data


def _text(d: Mapping[str, Any], key: str, default: str = "", *, required: bool = False) -> str:
    value = d.get(key)
    if value is None:
        if required:
            raise EventParseError(f"'{key}' is missing")
        return default
    if type(value) is not str or len(value) > MAX_TEXT:
        raise EventParseError(f"'{key}' must be a string of at most {MAX_TEXT} characters")
    if required and not value:
        raise EventParseError(f"'{key}' must not be empty")
    return value


def _enum(cls: Type[_E], d: Mapping[str, Any], key: str) -> _E:
    value = d.get(key)
    try:
        if type(value) is not str:
            raise ValueError
        return cls(value)
    except ValueError:
        shown = repr(value)[:40]
        raise EventParseError(f"'{key}': {shown} is not a {cls.__name__}") from None


def _data(d: Mapping[str, Any]) -> Mapping[str, str]:
    """The ``data`` object (call data: :mod:`asterisk_cti.calldata`'s rules), read-only."""
    value = d.get("data")
    if value is None or value == {}:
        return NO_DATA
    if type(value) is not dict:
        raise EventParseError("'data' must be an object of strings")
    try:
        encode_call_data(value)
    except CallDataError as exc:
        raise EventParseError(f"'data': {exc}") from None
    return MappingProxyType(dict(value))


def _flag(d: Mapping[str, Any], key: str) -> bool:
    value = d.get(key, False)
    if type(value) is not bool:
        raise EventParseError(f"'{key}' must be true or false")
    return value


def _int(d: Mapping[str, Any], key: str) -> int:
    value = d.get(key, 0)
    if type(value) is not int or not -(2 ** 31) <= value < 2 ** 31:
        raise EventParseError(f"'{key}' must be a small integer")
    return value


def _number(d: Mapping[str, Any], key: str, default: Optional[float]) -> Optional[float]:
    value = d.get(key)
    if value is None:
        return default
    if type(value) not in (int, float) or not math.isfinite(value):
        raise EventParseError(f"'{key}' must be a finite number")
    return float(value)


@dataclass(frozen=True)
class LineStateChange:
    """A registration change seen during a resynchronisation."""

    line: str
    previous: str
    current: str


@dataclass(frozen=True)
class ResyncReport:
    """What a :meth:`CallModel.resync <asterisk_cti.model.CallModel.resync>` changed.

    ``added`` are connections found in REST that the model did not know, ``removed`` the
    connections the model had that REST no longer shows (their calls ended during the gap),
    ``changed`` connections whose state or connected party differed. Connection snapshots are
    taken after the resync (for ``removed``: just before removal). Immutable; any thread.
    """

    added: Tuple[Connection, ...] = ()
    removed: Tuple[Connection, ...] = ()
    changed: Tuple[Connection, ...] = ()
    line_changes: Tuple[LineStateChange, ...] = ()

    @property
    def is_empty(self) -> bool:
        """True when the model already matched REST."""
        return not (self.added or self.removed or self.changed or self.line_changes)

    @property
    def lines(self) -> Tuple[str, ...]:
        """Every line that had a change, sorted."""
        names = {c.line for c in self.added + self.removed + self.changed}
        names.update(lc.line for lc in self.line_changes)
        return tuple(sorted(names))

    def for_line(self, line: str) -> ResyncReport:
        """The part of this report about ``line``."""
        return ResyncReport(
            added=tuple(c for c in self.added if c.line == line),
            removed=tuple(c for c in self.removed if c.line == line),
            changed=tuple(c for c in self.changed if c.line == line),
            line_changes=tuple(lc for lc in self.line_changes if lc.line == line),
        )


@dataclass(frozen=True)
class ControlHint:
    """What call control tells the model about a channel it is about to create or end, so that
    the calls the SDK drives are reported like the same calls made on the phones.

    Immutable; created on any thread, read on the processor thread (see
    :meth:`~asterisk_cti.model.CallModel.expect`).

    :ivar role: ``agent`` (the agent's channel of a click-to-dial: outgoing, its own phone rings
        first), ``leg`` (a channel the SDK dials for ``peer``: the switch's destination, a
        click-to-dial destination, a transfer target, a consultation, a conference party),
        ``transfer`` (the agent's channel leaves its call by a transfer).
    :ivar peer: the channel this leg is for (the caller, the agent, the transferee).
    :ivar calling: who placed the call (the agent, the caller); the leg's screen-pop.
    :ivar called: the party dialled (the destination).
    :ivar purpose: ``originate``, ``switch``, ``transfer``, ``consult``, ``conference``.
    :ivar transferees: (role ``transfer``) the channels that stay in the call.
    :ivar target: (role ``transfer``) the channel the transferees are transferred to, when it
        is already connected (an attended transfer); empty for a blind transfer, whose target
        leg carries ``purpose="transfer"``.
    """

    role: str
    peer: str = ""
    calling: Party = NOBODY
    called: Party = NOBODY
    purpose: str = ""
    transferees: Tuple[str, ...] = ()
    target: str = ""
