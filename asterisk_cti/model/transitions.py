"""The explicit transition table of a connection's CSTA state machine.

:data:`TRANSITIONS` maps ``(current state, stimulus)`` to ``(new state, emitted kinds)``. The
call model turns every ARI event into at most a few stimuli for the connections it touches and
looks each one up here: there is no other place that decides a state change. A pair missing from
the table does not fit: the model counts it, logs it once per channel at debug level and asks
for a REST re-read of the channel (``needs_repair``).

``call_cleared`` is not in the table: it is a call-level event, emitted after a
``connection_cleared`` or ``diverted`` when the line has no other connection of that call.

Pure data and pure functions; import-time constants, safe from any thread.
"""

from __future__ import annotations

from enum import Enum
from typing import Dict, Final, List, NamedTuple, Tuple

from .types import ConnectionState, EventKind, PhoneState


class Stimulus(str, Enum):
    """What happened to a connection, distilled from ARI events (or call control / REST)."""

    SERVICE_INITIATED = "service_initiated"
    """Call control created the agent's channel of a click-to-dial (its own phone rings)."""
    ORIGINATE = "originate"
    """Call control dials the destination of this click-to-dial agent's channel."""
    CREATED_OUTGOING = "created_outgoing"
    """ChannelCreated in state Ring/Dialing/OffHook: the phone placed a call."""
    CREATED_INCOMING = "created_incoming"
    """ChannelCreated in state Down: the channel is being called (or originated)."""
    DIAL_OUT = "dial_out"
    """The channel became the caller of a Dial (click-to-dial after answering, a retry)."""
    RINGBACK = "ringback"
    """Dial RINGING for a peer of this (calling) channel: the far end rings."""
    RINGING = "ringing"
    """The channel itself rings (ChannelStateChange Ringing, Dial RINGING as peer)."""
    ANSWERED = "answered"
    """ChannelStateChange Up, or Dial ANSWER (as peer or as caller)."""
    HOLD = "hold"
    """ChannelHold, or call control's ARI hold (``set_held(id, True)``)."""
    UNHOLD = "unhold"
    """ChannelUnhold, or ``set_held(id, False)``."""
    DIAL_FAILED = "dial_failed"
    """The last outstanding Dial of this calling channel ended BUSY/NOANSWER/CONGESTION/..."""
    DIVERTED = "diverted"
    """Dial with ``forward``: the call left this ringing connection for another destination."""
    TRANSFERRED = "transferred"
    """The call of this connection was transferred (it is the transferee or the target)."""
    TRANSFERRED_AWAY = "transferred_away"
    """This connection transferred its call and leaves it (the transferer)."""
    CONFERENCED = "conferenced"
    """Three or more parties ended up in this connection's bridge."""
    TALK_START = "talk_start"
    """ChannelTalkingStarted."""
    TALK_STOP = "talk_stop"
    """ChannelTalkingFinished."""
    CONNECTED_LINE = "connected_line"
    """ChannelConnectedLine with a different, non-empty party."""
    QUEUE = "queue"
    """ChannelDialplan: the channel runs app Queue (or REST / a Dial shows it in Queue)."""
    HANGUP = "hangup"
    """ChannelDestroyed, or the channel is gone from REST."""
    SYNC_INITIATED = "sync_initiated"
    """REST (resync/repair) shows the channel in Ring/Dialing/OffHook."""

    def __str__(self) -> str:
        return self.value


class S:
    """The members of :class:`Stimulus` as plain class attributes, for the handlers' hot
    paths: on Python 3.11 every ``Stimulus.X`` goes through EnumType's Python-level
    attribute hook (~120 ns), ``S.X`` is an ordinary class attribute."""

    SERVICE_INITIATED: Final = Stimulus.SERVICE_INITIATED
    ORIGINATE: Final = Stimulus.ORIGINATE
    CREATED_OUTGOING: Final = Stimulus.CREATED_OUTGOING
    CREATED_INCOMING: Final = Stimulus.CREATED_INCOMING
    DIAL_OUT: Final = Stimulus.DIAL_OUT
    RINGBACK: Final = Stimulus.RINGBACK
    RINGING: Final = Stimulus.RINGING
    ANSWERED: Final = Stimulus.ANSWERED
    HOLD: Final = Stimulus.HOLD
    UNHOLD: Final = Stimulus.UNHOLD
    DIAL_FAILED: Final = Stimulus.DIAL_FAILED
    DIVERTED: Final = Stimulus.DIVERTED
    TRANSFERRED: Final = Stimulus.TRANSFERRED
    TRANSFERRED_AWAY: Final = Stimulus.TRANSFERRED_AWAY
    CONFERENCED: Final = Stimulus.CONFERENCED
    TALK_START: Final = Stimulus.TALK_START
    TALK_STOP: Final = Stimulus.TALK_STOP
    CONNECTED_LINE: Final = Stimulus.CONNECTED_LINE
    QUEUE: Final = Stimulus.QUEUE
    HANGUP: Final = Stimulus.HANGUP
    SYNC_INITIATED: Final = Stimulus.SYNC_INITIATED


class Transition(NamedTuple):
    """The outcome of one table entry: the new state and the event kinds emitted, in order."""

    state: ConnectionState
    emits: Tuple[EventKind, ...]


_N = ConnectionState.NULL
_I = ConnectionState.INITIATED
_A = ConnectionState.ALERTING
_C = ConnectionState.CONNECTED
_H = ConnectionState.HOLD
_Q = ConnectionState.QUEUED
_F = ConnectionState.FAIL
_S = Stimulus
_K = EventKind


def _t(state: ConnectionState, *kinds: EventKind) -> Transition:
    return Transition(state, tuple(kinds))


#: (current state, stimulus) -> (new state, emitted event kinds). See the module docstring.
TRANSITIONS: Dict[Tuple[ConnectionState, Stimulus], Transition] = {
    (_N, _S.SERVICE_INITIATED): _t(_I, _K.SERVICE_INITIATED),
    (_I, _S.ORIGINATE): _t(_I, _K.ORIGINATED),
    (_N, _S.CREATED_OUTGOING): _t(_I, _K.ORIGINATED),
    (_N, _S.CREATED_INCOMING): _t(_N),
    (_N, _S.SYNC_INITIATED): _t(_I, _K.ORIGINATED),
    (_I, _S.SYNC_INITIATED): _t(_I),
    (_F, _S.SYNC_INITIATED): _t(_F),
    (_N, _S.DIAL_OUT): _t(_I, _K.ORIGINATED),
    (_I, _S.DIAL_OUT): _t(_I),
    (_C, _S.DIAL_OUT): _t(_C, _K.ORIGINATED),
    (_F, _S.DIAL_OUT): _t(_I),
    (_Q, _S.DIAL_OUT): _t(_Q),
    (_I, _S.RINGBACK): _t(_I, _K.RINGBACK),
    (_C, _S.RINGBACK): _t(_C),
    (_Q, _S.RINGBACK): _t(_Q),
    (_N, _S.RINGING): _t(_A, _K.DELIVERED),
    (_I, _S.RINGING): _t(_A, _K.DELIVERED),
    (_A, _S.RINGING): _t(_A),
    (_C, _S.RINGING): _t(_C),
    (_N, _S.ANSWERED): _t(_C, _K.ESTABLISHED),
    (_I, _S.ANSWERED): _t(_C, _K.ESTABLISHED),
    (_A, _S.ANSWERED): _t(_C, _K.ESTABLISHED),
    (_Q, _S.ANSWERED): _t(_C, _K.ESTABLISHED),
    (_F, _S.ANSWERED): _t(_C, _K.ESTABLISHED),
    (_C, _S.ANSWERED): _t(_C),
    (_H, _S.ANSWERED): _t(_H),
    (_C, _S.HOLD): _t(_H, _K.HELD),
    (_H, _S.HOLD): _t(_H),
    (_H, _S.UNHOLD): _t(_C, _K.RETRIEVED),
    (_C, _S.UNHOLD): _t(_C),
    (_I, _S.DIAL_FAILED): _t(_F, _K.FAILED),
    (_C, _S.DIAL_FAILED): _t(_C),
    (_H, _S.DIAL_FAILED): _t(_H),
    (_Q, _S.DIAL_FAILED): _t(_Q),
    (_F, _S.DIAL_FAILED): _t(_F),
    (_N, _S.DIVERTED): _t(_N),
    (_A, _S.DIVERTED): _t(_N, _K.DIVERTED),
    (_I, _S.TRANSFERRED): _t(_I, _K.TRANSFERRED),
    (_A, _S.TRANSFERRED): _t(_A, _K.TRANSFERRED),
    (_C, _S.TRANSFERRED): _t(_C, _K.TRANSFERRED),
    (_H, _S.TRANSFERRED): _t(_C, _K.TRANSFERRED),
    (_I, _S.TRANSFERRED_AWAY): _t(_N, _K.CONNECTION_CLEARED),
    (_A, _S.TRANSFERRED_AWAY): _t(_N, _K.CONNECTION_CLEARED),
    (_C, _S.TRANSFERRED_AWAY): _t(_N, _K.CONNECTION_CLEARED),
    (_H, _S.TRANSFERRED_AWAY): _t(_N, _K.CONNECTION_CLEARED),
    (_C, _S.CONFERENCED): _t(_C, _K.CONFERENCED),
    (_H, _S.CONFERENCED): _t(_C, _K.CONFERENCED),
    (_I, _S.TALK_START): _t(_I, _K.TALKING_STARTED),
    (_C, _S.TALK_START): _t(_C, _K.TALKING_STARTED),
    (_H, _S.TALK_START): _t(_H, _K.TALKING_STARTED),
    (_F, _S.TALK_START): _t(_F, _K.TALKING_STARTED),
    (_I, _S.TALK_STOP): _t(_I, _K.TALKING_STOPPED),
    (_C, _S.TALK_STOP): _t(_C, _K.TALKING_STOPPED),
    (_H, _S.TALK_STOP): _t(_H, _K.TALKING_STOPPED),
    (_F, _S.TALK_STOP): _t(_F, _K.TALKING_STOPPED),
    (_Q, _S.TALK_START): _t(_Q, _K.TALKING_STARTED),
    (_Q, _S.TALK_STOP): _t(_Q, _K.TALKING_STOPPED),
    (_N, _S.CONNECTED_LINE): _t(_N),
    (_I, _S.CONNECTED_LINE): _t(_I, _K.PARTY_CHANGED),
    (_A, _S.CONNECTED_LINE): _t(_A, _K.PARTY_CHANGED),
    (_C, _S.CONNECTED_LINE): _t(_C, _K.PARTY_CHANGED),
    (_H, _S.CONNECTED_LINE): _t(_H, _K.PARTY_CHANGED),
    (_Q, _S.CONNECTED_LINE): _t(_Q, _K.PARTY_CHANGED),
    (_F, _S.CONNECTED_LINE): _t(_F, _K.PARTY_CHANGED),
    (_N, _S.QUEUE): _t(_Q, _K.QUEUED),
    (_I, _S.QUEUE): _t(_Q, _K.QUEUED),
    (_C, _S.QUEUE): _t(_Q, _K.QUEUED),
    (_Q, _S.QUEUE): _t(_Q, _K.QUEUED),
    (_F, _S.QUEUE): _t(_Q, _K.QUEUED),
    (_N, _S.HANGUP): _t(_N),
    (_I, _S.HANGUP): _t(_N, _K.CONNECTION_CLEARED),
    (_A, _S.HANGUP): _t(_N, _K.CONNECTION_CLEARED),
    (_C, _S.HANGUP): _t(_N, _K.CONNECTION_CLEARED),
    (_H, _S.HANGUP): _t(_N, _K.CONNECTION_CLEARED),
    (_Q, _S.HANGUP): _t(_N, _K.CONNECTION_CLEARED),
    (_F, _S.HANGUP): _t(_N, _K.CONNECTION_CLEARED),
}


def phone_state_of(state: ConnectionState, ringback: bool) -> PhoneState:
    """The :class:`PhoneState` shown for a live connection in ``state``.

    :param ringback: the far end of an initiated call is ringing.
    """
    if state is _INITIATED:  # module constants: an enum member look-up is not free
        return _RINGBACK if ringback else _DIALING
    return _PHONE_OF[state]


_INITIATED, _RINGBACK, _DIALING = (ConnectionState.INITIATED, PhoneState.RINGBACK,
                                   PhoneState.DIALING)


_PHONE_OF: Dict[ConnectionState, PhoneState] = {
    ConnectionState.NULL: PhoneState.IDLE,
    ConnectionState.INITIATED: PhoneState.DIALING,
    ConnectionState.ALERTING: PhoneState.RINGING,
    ConnectionState.CONNECTED: PhoneState.CONNECTED,
    ConnectionState.HOLD: PhoneState.HELD,
    ConnectionState.QUEUED: PhoneState.RINGBACK,
    ConnectionState.FAIL: PhoneState.FAILED,
}


def transition_table_rst() -> str:
    """Render :data:`TRANSITIONS` as a reST grid-free ("simple") table, one row per entry.

    Rows are grouped by stimulus in declaration order, then by state. ``call_cleared`` is
    appended by the model after a cleared/diverted connection when it was the call's last
    connection at the line; it is not part of the table.
    """
    order = {s: i for i, s in enumerate(ConnectionState)}
    rows: List[Tuple[str, str, str, str]] = []
    for stim in Stimulus:
        keys = sorted((k for k in TRANSITIONS if k[1] is stim), key=lambda k: order[k[0]])
        for state, _ in keys:
            tr = TRANSITIONS[(state, stim)]
            emits = ", ".join(k.value for k in tr.emits) or "(none)"
            rows.append((stim.value, state.value, tr.state.value, emits))
    head = ("stimulus", "state", "new state", "emits")
    widths = [max(len(head[i]), *(len(r[i]) for r in rows)) for i in range(4)]
    rule = "  ".join("=" * w for w in widths)

    def fmt(r: Tuple[str, str, str, str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()

    lines = [rule, fmt(head), rule, *(fmt(r) for r in rows), rule]
    return "\n".join(lines) + "\n"


#: A plain-text state diagram of the connection states (for docs).
STATE_DIAGRAM = r"""
             created_outgoing, sync_initiated, dial_out
   +------+ -----------------------------------------> +-----------+  dial_failed  +------+
   | NULL |                                             | INITIATED | ------------> | FAIL |
   +------+ --ringing--> +----------+                   +-----------+               +------+
     ^  |                | ALERTING |                         |                       |
     |  |                +----------+                      answered                answered
     |  |   diverted <------+  |  answered                    v                       |
     |  |                      +-----------------------> +-----------+ <--------------+
     |  +----------- answered (no ringing seen) -------> | CONNECTED |
     |                                                   +-----------+
     |                                         hold |        ^  unhold, transferred,
     |                                              v        |  conferenced
     |                                             +----------+
     +-- hangup, transferred_away (from any) ------|   HOLD   |
                                                   +----------+

   queue (app Queue) from NULL, INITIATED, CONNECTED, FAIL --> +--------+ --answered--> CONNECTED
                                                               | QUEUED |
                                                               +--------+ --hangup--> NULL
"""
