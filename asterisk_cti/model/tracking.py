"""Tracking channels and correlating them into calls.

:class:`Tracking` keeps which channels the model follows and which call each belongs to: the
line records, the caller-number index, the Local channel name cache, the tombstones of
destroyed channels; creating a channel record, joining, merging and relating calls (with the
``call_id_changed`` that tells a line), adopting related channels that are not on a monitored
line (Local halves, trunks), and the connected-line guess. No CSTA state changes here.
Processor thread only; no I/O.
"""

from __future__ import annotations

from typing import (
    Any,
    Mapping,
    Optional,
)

from ..events.catalogue import endpoint_of_channel_name
from .calldata import CallDataTracking
from .records import (
    HOLD,
    INITIATED,
    MAX_LOCAL_NAMES,
    MAX_TOMBSTONES,
    NO_CALL,
    PLACING_STATES,
    CallRecord,
    ChannelRecord,
    LineRecord,
    linkedid_of,
    local_sibling,
)
from .transitions import phone_state_of
from .types import (
    NOBODY,
    CallEvent,
    EventKind,
    Party,
)


class Tracking(CallDataTracking):
    """Which channels are tracked, and which call each belongs to (correlation)."""

    def _line_rec(self, name: str) -> LineRecord:
        rec = self._lines.get(name)
        if rec is None:
            rec = self._lines[name] = LineRecord(name)
            self._dirty_lines[name] = None
        return rec

    def _call_for(self, call_id: str) -> CallRecord:
        call = self._calls.get(call_id)
        if call is None:
            self._seq += 1
            call = self._calls[call_id] = CallRecord(call_id, self._seq)
        return call

    def _index(self, ch: ChannelRecord) -> None:
        if ch.line is not None and not ch.cleared and ch.own.number:
            self._by_number.setdefault(ch.own.number, {})[ch.id] = ch

    def _unindex(self, ch: ChannelRecord) -> None:
        if ch.own.number:
            bucket = self._by_number.get(ch.own.number)
            if bucket is not None:
                bucket.pop(ch.id, None)
                if not bucket:
                    del self._by_number[ch.own.number]

    def _set_own(self, ch: ChannelRecord, own: Party) -> None:
        self._unindex(ch)
        ch.own = own
        self._index(ch)

    def _remember_local(self, cid: str, name: str) -> None:
        if cid in self._local_name_of:
            return
        if len(self._local_name_of) >= MAX_LOCAL_NAMES:
            old = next(iter(self._local_name_of))
            self._local_id_of.pop(self._local_name_of.pop(old), None)
        self._local_name_of[cid] = name
        self._local_id_of[name] = cid

    def _forget_local(self, cid: str) -> None:
        name = self._local_name_of.pop(cid, None)
        if name is not None and self._local_id_of.get(name) == cid:
            del self._local_id_of[name]

    def _tombstone(self, cid: str) -> None:
        destroyed = self._destroyed
        destroyed[cid] = None
        if len(destroyed) > MAX_TOMBSTONES:
            destroyed.popitem(last=False)

    def _new_chan(
        self, cid: str, name: str, line: Optional[str], raw: Mapping[str, Any]
    ) -> ChannelRecord:
        self._seq += 1
        ch = ChannelRecord(cid, name, line, self._seq)
        ch.own = Party.from_raw(raw.get("caller"))
        ch.connected = Party.from_raw(raw.get("connected"))
        ch.start = self._now()
        self._see_channelvars(ch, raw)
        self._chans[cid] = ch
        if cid in self._destroyed:
            del self._destroyed[cid]
        if line is not None:
            self._line_rec(line).connections[cid] = ch
            number = ch.own.number
            if number:  # _index
                self._by_number.setdefault(number, {})[cid] = ch
            self._dirty_chans[cid] = ch  # _dirty
            self._dirty_lines[line] = None
            self._dirty_calls.add(ch.call.id)
        return ch

    def _call_id_changed(self, ch: ChannelRecord, old: CallRecord) -> None:
        """Tell a connection's line that its call id changed (only once it announced
        anything: before, nobody knew the old id)."""
        if ch.line is None or not ch.announced or ch.cleared or old.id == ch.call.id:
            return
        self._out.append(
            CallEvent(
                EventKind.CALL_ID_CHANGED, ch.line, ch.call.id, ch.id, ch.state, ch.state,
                phone_state_of(ch.state, ch.ringback), ch.direction, ch.calling, ch.called,
                ch.connected, ch.cause, ch.dialstatus, ch.reason, self._now(), self._raw,
                ch.talking, ch.state is HOLD, client_originated=ch.hint is not None,
                previous_call_id=old.id, data=ch.call.data, queue=ch.queue,
            )
        )

    def _join(self, ch: ChannelRecord, call: CallRecord) -> None:
        old = ch.call
        if old is call:
            return
        if old is not NO_CALL:
            old.chans.pop(ch.id, None)
            self._dirty_calls.add(old.id)
            if not old.chans:
                self._drop_call(old)
        ch.call = call
        call.chans[ch.id] = ch
        self._dirty(ch)
        if ch.data and not call.data:
            self._set_call_data(call, ch.data)
        if old is not NO_CALL:
            self._call_id_changed(ch, old)

    def _drop_call(self, call: CallRecord) -> None:
        for key in call.keys:
            if self._calls.get(key) is call:
                del self._calls[key]
        self._dirty_calls.add(call.id)

    def _merge(self, a: CallRecord, b: CallRecord) -> CallRecord:
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
        if gone.data and not keep.data:
            self._set_call_data(keep, gone.data)
        for key in gone.keys:
            self._calls[key] = keep
            keep.keys.append(key)
        self._dirty_calls.add(gone.id)
        self._dirty_calls.add(keep.id)
        return keep

    def _relate(self, ch: ChannelRecord, call: CallRecord) -> None:
        """Put ``ch`` into ``call``: move it if its own call is a guess, otherwise merge."""
        if ch.call is call:
            return
        if ch.call_is_guess and len(ch.call.chans) <= 1:
            self._join(ch, call)
        else:
            self._merge(ch.call, call)

    def _guess_call(self, ch: ChannelRecord, merge: bool = False) -> None:
        """Correlate an incoming channel by its connected line: the channel whose own caller
        number equals it (preferring one still dialling) is very likely the one calling."""
        bucket = self._by_number.get(ch.connected.number)
        if not bucket:
            return
        best: Optional[ChannelRecord] = None
        for other in bucket.values():
            if other is ch or other.cleared:
                continue
            if best is None:
                best = other
                continue
            other_dialling = other.state is INITIATED
            best_dialling = best.state is INITIATED
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

    def _attach_new(self, ch: ChannelRecord, chan_data: Mapping[str, Any]) -> None:
        linked_id = linkedid_of(chan_data)
        if linked_id:
            ch.call_is_guess = False
            self._join(ch, self._call_for(linked_id))
            return
        call = self._calls.get(ch.id)
        if call is None:  # _call_for, inline
            self._seq += 1
            call = self._calls[ch.id] = CallRecord(ch.id, self._seq)
        self._join(ch, call)
        if ch.connected.number and str(chan_data.get("state")) not in PLACING_STATES:
            self._guess_call(ch)

    @staticmethod
    def _dialled_exten(chan_data: Mapping[str, Any]) -> Party:
        dialplan = chan_data.get("dialplan")
        exten = str(dialplan.get("exten") or "") if type(dialplan) is dict else ""
        return Party(exten, "") if exten and exten != "s" else NOBODY

    def _adopt(self, cid: str, raw: Mapping[str, Any], call: CallRecord) -> Optional[ChannelRecord]:
        """Track a related channel that is not on a monitored line (Local, trunk)."""
        name = str(raw.get("name") or self._local_name_of.get(cid, ""))
        if self._is_monitored(endpoint_of_channel_name(name)):
            if cid not in self._destroyed:
                self._mark_unfit(cid, "unknown channel on a monitored line")
            return None
        ch = self._new_chan(cid, name, None, raw)
        ch.call_is_guess = False
        self._join(ch, call)
        if name.startswith("Local/"):
            self._remember_local(cid, name)
            sibling_name = local_sibling(name)
            sibling_id = self._local_id_of.get(sibling_name) if sibling_name else None
            if sibling_id is not None and sibling_id not in self._chans:
                self._adopt(sibling_id, {"id": sibling_id, "name": sibling_name}, call)
        return ch

    def _unknown(self, raw: Optional[Mapping[str, Any]]) -> None:
        """An event about an untracked channel: a monitored one means we lost its start."""
        if raw is None:
            return
        cid = raw.get("id")
        if type(cid) is not str or cid in self._destroyed or cid in self._repair:
            return
        name = raw.get("name")
        if type(name) is str and self._is_monitored(endpoint_of_channel_name(name)):
            self._mark_unfit(cid, "unknown channel on a monitored line")
