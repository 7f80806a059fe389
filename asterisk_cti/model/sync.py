"""Resynchronising from REST: the whole model (:meth:`Sync.resync`), one channel (``repair``).

The processor thread passes the bodies of ``GET /channels``, ``/bridges``, ``/endpoints``
(or ``GET /channels/{id}``); the model clears what REST no longer has, adds what it has on
monitored lines, correlates by bridges and Local pairs, and emits the events that make
listeners converge. Processor thread only; the REST requests themselves are the caller's.
"""

from __future__ import annotations

from typing import (
    Any,
    Dict,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
)

from ..events.catalogue import endpoint_of_channel_name
from .bridges import Bridges
from .records import (
    INCOMING,
    OUTGOING,
    PLACING_STATES,
    ChannelRecord,
    linkedid_of,
    local_sibling,
    queue_of,
)
from .transitions import S
from .types import (
    CallEvent,
    Connection,
    LineStateChange,
    Party,
    ResyncReport,
)


class Sync(Bridges):
    """Rebuilds the model from REST data (resync) or one channel (repair)."""

    def repair(self, channel_id: str, channel: Optional[Mapping[str, Any]]) -> List[CallEvent]:
        """Re-synchronise one channel from REST.

        Processor thread. ``channel`` is the ``GET /channels/{id}`` body, or ``None`` when that
        answered 404 (the channel is gone: its connection is cleared).

        :returns: the CTI events that bring listeners in line with REST.
        """
        self._repair.discard(channel_id)
        self._begin()
        ch = self._chans.get(channel_id)
        if channel is None or type(channel) is not dict:
            if ch is not None:
                self._vanished(ch)
            else:
                self._tombstone(channel_id)
        else:
            name = str(channel.get("name") or "")
            if name.startswith("Local/"):
                self._remember_local(channel_id, name)
            if ch is None:
                endpoint = endpoint_of_channel_name(name)
                if self._is_monitored(endpoint):
                    ch = self._new_chan(channel_id, name, endpoint, channel)
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
        self._begin()
        while self._merging:
            self._settle_merge(next(iter(self._merging)))
        rest: Dict[str, Mapping[str, Any]] = {}
        for chan_data in channels:
            if type(chan_data) is dict and type(chan_data.get("id")) is str:
                rest[chan_data["id"]] = chan_data
        line_changes: List[LineStateChange] = []
        for endpoint_data in endpoints:
            if type(endpoint_data) is dict:
                change = self._set_registration(endpoint_data)
                if change is not None:
                    line_changes.append(change)
        removed = self._drop_missing(rest)
        before: Dict[str, Connection] = {
            cid: self._snapshot_of(ch)
            for cid, ch in self._chans.items()
            if ch.line is not None and not ch.cleared
        }
        fresh = self._track_rest_channels(rest)
        self._correlate_bridges(bridges, rest)
        for ch in fresh:
            if ch.direction is INCOMING and not any(
                o is not ch and o.line is not None for o in ch.call.chans.values()
            ):
                self._guess_call(ch, merge=True)
        order = sorted(rest.items(), key=lambda kv: (str(kv[1].get("creationtime") or ""), kv[0]))
        for cid, chan_data in order:
            cur = self._chans.get(cid)
            if cur is None or cur.line is None or cur.cleared:
                continue
            if cid in before:
                self._sync_existing(cur, chan_data)
            else:
                self._sync_state(cur, chan_data, new=True)
        self._repair.clear()
        self._publish()
        added: List[Connection] = []
        changed: List[Connection] = []
        for cid, ch in self._chans.items():
            if ch.line is None or ch.cleared:
                continue
            now = self._conn_snaps.get(cid) or self._snapshot_of(ch)
            was = before.get(cid)
            if was is None:
                added.append(now)
            elif (was.state, was.connected, was.call_id) != (now.state, now.connected, now.call_id):
                changed.append(now)
        out = self._out
        self._out = []
        report = ResyncReport(tuple(added), tuple(removed), tuple(changed), tuple(line_changes))
        return out, report

    def _drop_missing(self, rest: Mapping[str, Mapping[str, Any]]) -> List[Connection]:
        """Clear and forget the channels REST no longer has; the connections that were live."""
        removed: List[Connection] = []
        for old in list(self._chans.values()):
            if old.id not in rest:
                if old.line is not None and not old.cleared:
                    removed.append(self._snapshot_of(old))
                self._vanished(old)
        return removed

    def _track_rest_channels(
        self, rest: Mapping[str, Mapping[str, Any]]
    ) -> List[ChannelRecord]:
        """Track the REST channels on monitored lines the model does not know (returned, in a
        call of their linkedid or their own), refresh the caller of known ones, and promote a
        related channel whose endpoint became monitored."""
        fresh: List[ChannelRecord] = []
        for cid, chan_data in rest.items():
            name = str(chan_data.get("name") or "")
            if name.startswith("Local/"):
                self._remember_local(cid, name)
            endpoint = endpoint_of_channel_name(name)
            known = self._chans.get(cid)
            if known is None:
                if self._is_monitored(endpoint):
                    new = self._new_chan(cid, name, endpoint, chan_data)
                    self._sync_new(new, chan_data)
                    linked_id = linkedid_of(chan_data)
                    self._join(new, self._call_for(linked_id or cid))
                    if linked_id:
                        new.call_is_guess = False
                    fresh.append(new)
                continue
            own = Party.from_raw(chan_data.get("caller"))
            if own and own != known.own:
                self._set_own(known, own)
            self._see_channelvars(known, chan_data)
            if known.line is None and not known.cleared and self._is_monitored(endpoint):
                known.line = endpoint
                known.connected = Party.from_raw(chan_data.get("connected"))
                self._line_rec(endpoint).connections[cid] = known
                self._index(known)
                self._sync_new(known, chan_data)
                self._dirty(known)
        return fresh

    def _sync_new(self, ch: ChannelRecord, chan_data: Mapping[str, Any]) -> None:
        """Set direction and parties of a connection first seen in REST."""
        state = chan_data.get("state")
        exten = self._dialled_exten(chan_data)
        if state in PLACING_STATES or (state == "Up" and exten):
            ch.direction = OUTGOING
            ch.calling = ch.own
            ch.called = exten
        else:
            ch.direction = INCOMING
            ch.called = ch.own
            ch.calling = ch.connected

    def _sync_state(self, ch: ChannelRecord, chan_data: Mapping[str, Any], new: bool) -> None:
        state = chan_data.get("state")
        queue = queue_of(chan_data)
        if queue:
            # waiting in a queue (REST has no other sign of it): queued, whatever the state
            if new and ch.direction is OUTGOING:
                self._fire_if_fits(ch, S.SYNC_INITIATED)
            if ch.line is not None and not ch.cleared:
                self._enter_queue(ch, queue)
            return
        if state in PLACING_STATES:
            self._fire_if_fits(ch, S.SYNC_INITIATED)
        elif state == "Ringing":
            self._fire_if_fits(ch, S.RINGING)
        elif state == "Up":
            if new:
                self._fire_if_fits(
                    ch,
                    S.SYNC_INITIATED if ch.direction is OUTGOING else S.RINGING,
                )
            self._fire_if_fits(ch, S.ANSWERED)

    def _sync_existing(self, ch: ChannelRecord, chan_data: Mapping[str, Any]) -> None:
        own = Party.from_raw(chan_data.get("caller"))
        if own and own != ch.own:
            self._set_own(ch, own)
        party = Party.from_raw(chan_data.get("connected"))
        if party and party != ch.connected:
            first = not ch.connected
            ch.connected = party
            if first:
                self._dirty(ch)
            else:
                self._fire_if_fits(ch, S.CONNECTED_LINE)
        self._sync_state(ch, chan_data, new=False)

    def _correlate_bridges(
        self, bridges: Sequence[Mapping[str, Any]], rest: Mapping[str, Mapping[str, Any]]
    ) -> None:
        groups: List[Tuple[List[str], str]] = []
        for bridge_data in bridges:
            if type(bridge_data) is not dict:
                continue
            ids = [i for i in bridge_data.get("channels") or () if type(i) is str]
            if ids:
                groups.append((ids, str(bridge_data.get("id") or "")))
        for _ in range(3):
            before = len(self._chans)
            for ids, bridge_id in groups:
                self._relate_bridge_quietly(ids, bridge_id, rest)
            for cid, chan_data in rest.items():
                name = str(chan_data.get("name") or "")
                if cid in self._chans or not name.startswith("Local/"):
                    continue
                sibling_name = local_sibling(name)
                sibling_id = self._local_id_of.get(sibling_name) if sibling_name else None
                if sibling_id is not None and sibling_id in self._chans:
                    self._adopt(cid, chan_data, self._chans[sibling_id].call)
            if len(self._chans) == before:
                break
        # Conferences REST shows are known from now on (not announced: nothing says they
        # are new), so that only a party joining later makes news.
        for ids, _bid in groups:
            real = self._real_parties(ids)
            if len(real) >= 3:
                conference_ids = frozenset(ch.id for ch in real)
                for ch in real:
                    ch.conference_ids = conference_ids

    def _relate_bridge_quietly(
        self, ids: Sequence[str], bridge_id: str, rest: Mapping[str, Mapping[str, Any]]
    ) -> None:
        tracked = [self._chans[i] for i in ids if i in self._chans]
        if not tracked:
            return
        call = min((ch.call for ch in tracked), key=lambda rec: rec.seq)
        for i in ids:
            if i not in self._chans and i in rest:
                self._adopt(i, rest[i], call)
        for ch in tracked:
            if ch.call is not call:
                call = self._merge(ch.call, call)
            ch.call_is_guess = False
            ch.bridge = bridge_id
