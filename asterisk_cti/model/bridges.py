"""Bridge events: correlation by bridge membership, conferences, and settling merges.

:class:`Bridges` handles ChannelEnteredBridge, ChannelLeftBridge, BridgeMerged and
BridgeDestroyed: the channels of one bridge are one call; three or more real parties (a Local
pair stands for the party behind it) in a mixing bridge are a conference; a merged bridge is
*settling* until a BridgeAttendedTransfer explains it (or :data:`SETTLE_SECONDS` pass) and
holds back its connected-line changes meanwhile. Processor thread only; no I/O.
"""

from __future__ import annotations

from typing import (
    Any,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
)

from .hints import Hints
from .records import (
    MAX_SETTLING,
    NO_CONFERENCE,
    SETTLE_SECONDS,
    CallRecord,
    ChannelRecord,
    PendingMerge,
    as_dict,
    local_sibling,
)
from .registry import handles
from .transitions import S
from .types import (
    EventKind,
)


class Bridges(Hints):
    """Bridge membership, conferences, and bridges settling after a merge."""

    def _bridge_members(
        self, ids: Iterable[str], bridge_id: str, mixing: bool, check: bool = True
    ) -> None:
        """Relate the channels of one bridge: adopt related ones, merge their calls, record the
        bridge, and (``check``) detect a conference: three or more real parties."""
        members = list(dict.fromkeys(ids))
        call = self._correlate_members(members)
        if call is None:
            return
        for i in members:
            ch = self._chans.get(i)
            if ch is not None:
                ch.bridge = bridge_id
        if check:
            self._announce_conference(members, mixing)

    def _correlate_members(self, members: Sequence[str]) -> Optional[CallRecord]:
        """Merge the calls of the tracked channels among ``members`` and adopt the untracked
        Local channels whose names are known; the resulting call, or ``None``."""
        tracked = [self._chans[i] for i in members if i in self._chans]
        if not tracked:
            return None
        call = tracked[0].call  # the oldest call (the first of equals, as min() picks)
        for ch in tracked:
            if ch.call.seq < call.seq:
                call = ch.call
        for i in members:
            if i not in self._chans and i in self._local_name_of:
                self._adopt(i, {"id": i, "name": self._local_name_of[i]}, call)
        for ch in tracked:
            if ch.call is not call:
                call = self._merge(ch.call, call)
        return call

    def _real_parties(self, members: Iterable[str]) -> List[ChannelRecord]:
        """The real parties behind the channels of one bridge: the channels themselves, except
        that a Local half stands for what its sibling is bridged with (followed through up to
        three Local pairs), and a connection already cleared from its line (a transferer on
        its way out) is nobody. Cost: the channels of the bridge and of the calls behind its
        Local channels."""
        chans = self._chans
        found: List[ChannelRecord] = []
        local: List[ChannelRecord] = []
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
            sibling_name = local_sibling(ch.name)
            sibling_id = self._local_id_of.get(sibling_name) if sibling_name else None
            sibling = chans.get(sibling_id) if sibling_id is not None else None
            if sibling is None or sibling.bridge is None:
                continue
            seen.add(sibling.id)
            for other in sibling.call.chans.values():
                if other.bridge != sibling.bridge or other.id in seen:
                    continue
                seen.add(other.id)
                if not other.name.startswith("Local/"):
                    if other.line is None or not other.cleared:
                        found.append(other)
                elif depth < 2:
                    todo.append((other, depth + 1))
        return found

    def _announce_conference(self, members: Iterable[str], mixing: bool) -> None:
        """Announce a conference when three or more real parties share a mixing bridge, and
        again to a party that was not told of one of them yet (the conference grew); every
        real party's line is told, also one reached through a Local pair. ``conference_ids``
        keeps the real parties (channel ids) a party was last told; a stale or partial view of
        the bridge (an event from the middle of a merge) tells nobody anything."""
        if not mixing:
            return
        real = self._real_parties(members)
        if len(real) < 3:
            return
        real.sort(key=lambda rec: rec.seq)  # in the order the channels were first seen
        ids = frozenset(ch.id for ch in real)
        parties = tuple(ch.own for ch in real if ch.own)
        for ch in real:
            if not ids <= ch.conference_ids and ch.line is not None and not ch.cleared:
                ch.conference_ids = ids
                self._fire(ch, S.CONFERENCED, conference=parties)

    @staticmethod
    def _is_mixing(bridge_data: Mapping[str, Any]) -> bool:
        return str(bridge_data.get("bridge_type") or "mixing") == "mixing"

    def _expire_merges(self) -> None:
        """Settle the merges older than :data:`SETTLE_SECONDS` (ARI time): those no
        BridgeAttendedTransfer explained (a Local channel optimised away). Oldest first, so
        this stops at the first young one."""
        now = self._now()
        merging = self._merging
        while merging:
            bridge_id = next(iter(merging))
            if now - merging[bridge_id].since <= SETTLE_SECONDS:
                return
            self._settle_merge(bridge_id)

    def _settle_merge(self, bridge_id: str) -> None:
        """The merge of bridge ``bridge_id`` is over: tell the connected-line changes held back,
        except to connections a transfer just told."""
        merge = self._merging.pop(bridge_id, None)
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
                self._fire_if_fits(ch, S.CONNECTED_LINE)

    @handles("ChannelEnteredBridge")
    def _on_entered_bridge(self, raw: Mapping[str, Any]) -> None:
        bridge_data = as_dict(raw.get("bridge"))
        chan_data = as_dict(raw.get("channel"))
        if bridge_data is None or chan_data is None:
            return
        ids = [i for i in bridge_data.get("channels") or () if type(i) is str]
        cid = chan_data.get("id")
        if type(cid) is str and cid not in self._chans:
            others = [self._chans[i] for i in ids if i in self._chans]
            if not others:
                self._unknown(chan_data)
                return
            if self._adopt(cid, chan_data, others[0].call) is None:
                return
        if type(cid) is str and cid not in ids:
            ids.append(cid)
        bridge_id = str(bridge_data.get("id") or "")
        if type(cid) is str and cid in self._hints:
            ch = self._chans.get(cid)
            if ch is not None:  # the target of a transfer joined the transferees
                self._claim_transfer(ch)
        self._legs_bridged(ids)
        self._bridge_members(
            ids, bridge_id, self._is_mixing(bridge_data), check=bridge_id not in self._merging
        )

    @handles("ChannelLeftBridge")
    def _on_left_bridge(self, raw: Mapping[str, Any]) -> None:
        bridge_data = as_dict(raw.get("bridge"))
        chan_data = as_dict(raw.get("channel"))
        if bridge_data is None or chan_data is None:
            return
        ch = self._chans.get(str(chan_data.get("id")))
        bridge_id = str(bridge_data.get("id") or "")
        if ch is not None and ch.bridge == bridge_id:
            # Out of the conference: joining one again is news to this party.
            ch.bridge = None
            ch.conference_ids = NO_CONFERENCE

    @handles("BridgeMerged")
    def _on_bridge_merged(self, raw: Mapping[str, Any]) -> None:
        """One bridge absorbs another: only correlation. The channels that really move follow
        as ChannelLeftBridge / ChannelEnteredBridge, a transferer leaves, and
        BridgeAttendedTransfer says what it was; until then (or :data:`SETTLE_SECONDS`) the
        bridge is settling and no conference is counted in it."""
        bridge_data = as_dict(raw.get("bridge"))
        merged_from = as_dict(raw.get("bridge_from"))
        if bridge_data is None:
            return
        ids = [i for i in bridge_data.get("channels") or () if type(i) is str]
        if merged_from is not None:
            ids.extend(i for i in merged_from.get("channels") or () if type(i) is str)
        if self._correlate_members(list(dict.fromkeys(ids))) is None:
            return
        bridge_id = str(bridge_data.get("id") or "")
        merging = self._merging
        if bridge_id in merging:
            self._settle_merge(bridge_id)
        elif len(merging) >= MAX_SETTLING:
            self._settle_merge(next(iter(merging)))
        merging[bridge_id] = PendingMerge(self._now())

    @handles("BridgeDestroyed")
    def _on_bridge_destroyed(self, raw: Mapping[str, Any]) -> None:
        bridge_data = as_dict(raw.get("bridge"))
        if bridge_data is None:
            return
        bridge_id = bridge_data.get("id")
        if self._merging and bridge_id in self._merging:
            self._settle_merge(str(bridge_id))
        for i in bridge_data.get("channels") or ():
            ch = self._chans.get(i)
            if ch is not None and ch.bridge == bridge_id:
                ch.bridge = None
                ch.conference_ids = NO_CONFERENCE
