"""A connection's life through the transition table: fire stimuli, emit CTI events, clear.

:class:`Connections` is the only place a connection's :class:`ConnectionState` changes: a
stimulus is looked up in :data:`~asterisk_cti.model.transitions.TRANSITIONS` (:meth:`_fire`)
and emits :class:`CallEvent` objects; a connection ending leaves its line (``call_cleared``
when it was the call's last one there) and a destroyed or vanished channel is forgotten. Also
the effects several handlers share: ring, hold, a completed transfer, the line registration
change. Processor thread only; no I/O.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from .records import (
    CLEARING_KINDS,
    CONNECTED,
    HOLD,
    INITIATED,
    NO_CALL,
    NULL,
    QUEUED,
    CallRecord,
    ChannelRecord,
    LineRecord,
)
from .tracking import Tracking
from .transitions import TRANSITIONS, S, Stimulus, phone_state_of
from .types import (
    LINE_UNKNOWN,
    NOBODY,
    CallEvent,
    ConnectionState,
    EventKind,
    LineStateChange,
    Party,
    PhoneState,
    Reason,
)

#: Builds a named tuple from a full tuple of its fields, without the keyword matching of
#: its constructor (the same object as ``CallEvent(*fields)``).
_make_event = tuple.__new__
_TRANSITION_OF = TRANSITIONS.get
_DISCONNECTED = PhoneState.DISCONNECTED
_CALL_CLEARED = EventKind.CALL_CLEARED
_NO_EXTRA: Dict[str, Any] = {}
#: The field order the fast path in :meth:`Connections._apply_transition` writes.
EVENT_FIELDS = (
    "kind", "line", "call_id", "connection_id", "state", "previous_state", "phone_state",
    "direction", "calling", "called", "connected", "cause", "dialstatus", "reason",
    "timestamp", "raw", "talking", "held", "transferring", "transferred", "transfer_target",
    "conference", "line_state", "previous_line_state", "client_originated",
    "previous_call_id", "data", "queue",
)
if CallEvent._fields != EVENT_FIELDS:  # pragma: no cover - a new field must be added above
    raise ImportError("CallEvent's fields changed: update Connections._apply_transition")


class Connections(Tracking):
    """Fires stimuli through the transition table and emits the resulting CTI events."""

    def _fire(self, ch: ChannelRecord, stim: Stimulus, **extra: Any) -> bool:
        tr = _TRANSITION_OF((ch.state, stim))
        if tr is None:
            self._mark_unfit(ch.id, f"{ch.state.value} + {stim.value}")
            return False
        self._apply_transition(ch, tr.state, tr.emits, extra)
        return True

    def _fire_if_fits(self, ch: ChannelRecord, stim: Stimulus) -> bool:
        tr = _TRANSITION_OF((ch.state, stim))
        if tr is None:
            return False
        self._apply_transition(ch, tr.state, tr.emits, _NO_EXTRA)
        return True

    def _apply_transition(
        self,
        ch: ChannelRecord,
        new: ConnectionState,
        emits: Tuple[EventKind, ...],
        extra: Dict[str, Any],
    ) -> None:
        prev = ch.state
        ch.state = new
        if new is CONNECTED and ch.answer is None:
            ch.answer = self._now()
        if emits:
            if extra:
                for kind in emits:
                    self._emit(kind, ch, prev, extra)
            else:
                # The common case, built here: the fields every event of this transition
                # shares are read once, and the tuple is made without keyword matching.
                line = ch.line
                assert line is not None
                call = ch.call
                live_phone = phone_state_of(new, ch.ringback)
                now = self._now()
                append = self._out.append
                for kind in emits:
                    append(_make_event(CallEvent, (
                        kind, line, call.id, ch.id, new, prev,
                        _DISCONNECTED if kind in CLEARING_KINDS else live_phone,
                        ch.direction, ch.calling, ch.called, ch.connected, ch.cause,
                        ch.dialstatus, ch.reason, now, self._raw, ch.talking, new is HOLD,
                        None, None, None, (), "", "", ch.hint is not None, "", call.data,
                        ch.queue,
                    )))
            ch.announced = True
        if ch.line is not None:  # _dirty, inline
            self._dirty_chans[ch.id] = ch
            self._dirty_lines[ch.line] = None
            self._dirty_calls.add(ch.call.id)

    def _emit(
        self, kind: EventKind, ch: ChannelRecord, prev: ConnectionState, extra: Dict[str, Any]
    ) -> None:
        assert ch.line is not None
        phone = (
            PhoneState.DISCONNECTED
            if kind in CLEARING_KINDS
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
                ch.state is HOLD,
                client_originated=ch.hint is not None,
                data=ch.call.data,
                queue=ch.queue,
                **extra,
            )
        )

    def _end(self, ch: ChannelRecord, stim: Stimulus, **extra: Any) -> None:
        """Fire a stimulus that may end the connection; on NULL, leave the line and emit
        call_cleared when it was the call's last connection there."""
        if not self._fire(ch, stim, **extra):
            return
        if ch.state is NULL:
            self._leave_line(ch)

    def _leave_line(self, ch: ChannelRecord) -> None:
        if ch.cleared or ch.line is None:
            return
        ch.cleared = True
        ch.end = self._now()
        rec = self._lines.get(ch.line)
        if rec is not None:
            rec.connections.pop(ch.id, None)
        self._unindex(ch)
        self._dirty(ch)
        if not ch.announced:
            return
        call = ch.call
        if rec is not None:
            for other in rec.connections.values():
                if other.call is call:
                    return
        self._out.append(_make_event(CallEvent, (
            _CALL_CLEARED, ch.line, call.id, ch.id, NULL, NULL, _DISCONNECTED, ch.direction,
            ch.calling, ch.called, ch.connected, ch.cause, ch.dialstatus, ch.reason,
            self._now(), self._raw, False, False, None, None, None, (), "", "",
            ch.hint is not None, "", call.data, ch.queue,
        )))

    def _forget(self, ch: ChannelRecord) -> None:
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
        self._tombstone(ch.id)
        if ch.line is not None and call.chans and all(
            other.line is None for other in call.chans.values()
        ):
            # The call's last channel on a monitored line is gone: the related channels left
            # (Local halves, whose ChannelDestroyed endpoint subscriptions never deliver) go.
            for other in list(call.chans.values()):
                self._forget(other)
        if not call.chans and call is not NO_CALL:
            self._drop_call(call)

    def _vanished(self, ch: ChannelRecord) -> None:
        """The channel vanished without a ChannelDestroyed (REST no longer has it)."""
        if ch.line is not None and not ch.cleared:
            ch.reason = Reason.RESYNC
            self._end(ch, S.HANGUP)
            if not ch.cleared:
                self._leave_line(ch)
        self._forget(ch)

    def _enter_queue(self, ch: ChannelRecord, queue: str) -> None:
        """The connection's channel runs app Queue: it is queued (again, in another queue)."""
        if ch.state is QUEUED and ch.queue == queue:
            return
        if (ch.state, S.QUEUE) not in TRANSITIONS:
            self._mark_unfit(ch.id, f"{ch.state.value} + {S.QUEUE.value}")
            return
        ch.queue = queue
        self._fire(ch, S.QUEUE)

    def _hold(self, ch: ChannelRecord) -> None:
        if (ch.state, S.HOLD) in TRANSITIONS and ch.state is not HOLD:
            ch.hold_party = ch.connected
        self._fire(ch, S.HOLD)

    def _agent_waits(self, ch: ChannelRecord) -> bool:
        """A click-to-dial agent's own channel rings or answers: the call is still initiated
        until the destination answers."""
        hint = ch.hint
        return hint is not None and hint.role == "agent" and ch.state is INITIATED

    def _ring(self, ch: ChannelRecord) -> None:
        if self._agent_waits(ch):
            return
        if (ch.state is NULL or ch.state is INITIATED) and not ch.calling:
            ch.calling = ch.connected
        self._fire(ch, S.RINGING)

    def _set_registration(
        self, endpoint_data: Mapping[str, Any]
    ) -> Optional[LineStateChange]:
        """Take the registration state of an ARI endpoint object: a monitored line whose state
        changed emits ``line_state_changed``; returns the change, or ``None``."""
        name = f"{endpoint_data.get('technology') or ''}/{endpoint_data.get('resource') or ''}"
        if not self._is_monitored(name):
            return None
        state = str(endpoint_data.get("state") or LINE_UNKNOWN)
        rec = self._line_rec(name)
        if rec.registration == state:
            return None
        change = LineStateChange(name, rec.registration, state)
        self._line_state(rec, state)
        return change

    def _line_state(self, rec: LineRecord, state: str) -> None:
        prev = rec.registration
        rec.registration = state
        self._dirty_lines[rec.name] = None
        self._out.append(
            CallEvent(
                EventKind.LINE_STATE_CHANGED, rec.name, "", "", NULL, NULL, PhoneState.IDLE,
                None, NOBODY, NOBODY, NOBODY, 0, "", Reason.NORMAL, self._now(), self._raw,
                False, False, line_state=state, previous_line_state=prev,
            )
        )

    def _transfer(
        self,
        legs: Sequence[ChannelRecord],
        transferee: Optional[ChannelRecord],
        transferee_party: Party,
        target_party: Party,
        call: CallRecord,
        pending: bool = False,
    ) -> None:
        """Emit a completed transfer: the transferer legs are cleared (reason transferred),
        the transferee and the connections that were talking to the transferer get
        ``transferred`` with their new connected party."""
        transferer_party = legs[0].own if legs else NOBODY
        extra = {
            "transferring": transferer_party or None,
            "transferred": transferee_party or None,
            "transfer_target": target_party or None,
        }
        for leg in legs:
            if leg.line is not None and not leg.cleared:
                leg.reason = Reason.TRANSFERRED
                self._end(leg, S.TRANSFERRED_AWAY, **extra)
        if transferee is not None and transferee.line is not None and not transferee.cleared:
            if target_party:
                transferee.connected = target_party
            transferee.awaits_transfer_dial = pending
            self._fire(transferee, S.TRANSFERRED, **extra)
        if not transferer_party.number:
            return
        for other in list(call.chans.values()):
            if (
                other.line is None
                or other.cleared
                or other is transferee
                or other in legs
                or other.connected.number != transferer_party.number
            ):
                continue
            if transferee_party:
                other.connected = transferee_party
            self._fire(other, S.TRANSFERRED, **extra)

    def _infer_attended_transfer(self, ch: ChannelRecord) -> bool:
        """Without bridge events: a held channel that consulted another party (its connected
        line changed) hangs up while both parties live on: Asterisk completes the transfer."""
        held_with = ch.hold_party
        consulted = ch.connected
        if not held_with.number or not consulted.number or consulted.number == held_with.number:
            return False
        transferee: Optional[ChannelRecord] = None
        target: Optional[ChannelRecord] = None
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
