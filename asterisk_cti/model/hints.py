"""What call control tells the model: channels it creates, legs it dials, transfers it makes.

Call control calls :meth:`Hints.expect` (any thread, under a short lock) *before* its
request; the processor thread takes the hint when the channel's first event arrives and
reports the call as if it had been made on the phones: a click-to-dial agent goes outgoing,
a dialled leg joins its caller's call and is established when bridged, a transfer clears the
transferer as ``transferred``. Also :meth:`Hints.set_held` (ARI hold emits no ChannelHold)
and :meth:`Hints._lookup`, the channel look-up every handler uses (it adopts a hinted leg).
No I/O.
"""

from __future__ import annotations

from typing import (
    Any,
    List,
    Mapping,
    Optional,
    Sequence,
)

from ..calldata import VARIABLE
from .connections import Connections
from .records import (
    CONNECTED,
    DIAL_FAILURES,
    DIALSTATUS_OF_CAUSE,
    INCOMING,
    INITIATED,
    MAX_HINTS,
    OUTGOING,
    ChannelRecord,
    linkedid_of,
    local_sibling,
)
from .transitions import S
from .types import (
    NOBODY,
    CallEvent,
    ControlHint,
)


class Hints(Connections):
    """Call control's hints (channels it creates, legs it dials, transfers) and the look-up."""

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
            while len(hints) > MAX_HINTS:
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
        self._begin()
        ch = self._chans.get(channel_id)
        if ch is not None and channel_id in self._hints and not held:
            self._claim_transfer(ch)
        if ch is not None and ch.pending_transfer is not None and not held:
            pass  # leaving by a transfer: it is cleared as transferred, not retrieved
        elif ch is not None and ch.line is not None and not ch.cleared:
            if held:
                self._hold(ch)
            else:
                self._fire(ch, S.UNHOLD)
        self._publish()
        out = self._out
        self._out = []
        return out

    def set_call_data(self, channel_id: str, value: str) -> List[CallEvent]:
        """Tell the model that call control set a channel's ``CTI_DATA`` to ``value`` (the
        server-side filter keeps ChannelVarset away). Processor thread.

        :returns: no event (the data shows on the call's next events and snapshots).
        """
        self._begin()
        ch = self._chans.get(channel_id)
        if ch is not None:
            self._see_data(ch, value, True)
        self._publish()
        out = self._out
        self._out = []
        return out

    def _lookup(self, raw: Optional[Mapping[str, Any]]) -> Optional[ChannelRecord]:
        """The tracked channel of an ARI channel object, adopting a related untracked one
        (a Local half whose sibling is tracked, or a channel of a tracked linkedid)."""
        if raw is None:
            return None
        cid = raw.get("id")
        ch = self._chans.get(cid) if type(cid) is str else None
        if ch is not None:
            channelvars = raw.get("channelvars")  # _see_channelvars, inline
            if type(channelvars) is dict:
                value = channelvars.get(VARIABLE)
                if value is not None and value != ch.data_raw:
                    self._see_data(ch, value, False)
            return ch
        if type(cid) is not str:
            return None
        name = raw.get("name")
        if type(name) is str and name.startswith("Local/"):
            sibling_name = local_sibling(name)
            sibling_id = self._local_id_of.get(sibling_name) if sibling_name else None
            sibling = self._chans.get(sibling_id) if sibling_id is not None else None
            if sibling is not None:
                return self._adopt(cid, raw, sibling.call)
        if cid in self._hints:
            hint = self._hints.get(cid)
            peer = self._chans.get(hint.peer) if hint is not None else None
            if hint is not None and hint.role == "leg" and peer is not None:
                ch = self._adopt(cid, raw, peer.call)
                if ch is not None:
                    self._take_hint(cid)
                    self._apply_leg_hint(ch, hint)
                return ch
        if "channelvars" in raw:
            linked_id = linkedid_of(raw)
            call = self._calls.get(linked_id) if linked_id else None
            if call is not None:
                return self._adopt(cid, raw, call)
        return None

    def _created_by_control(
        self, ch: ChannelRecord, hint: ControlHint, chan_data: Mapping[str, Any]
    ) -> bool:
        """A monitored channel call control created: a click-to-dial agent goes outgoing
        (``service_initiated``), a leg joins the call of the channel it is dialled for."""
        if hint.role == "agent":
            ch.hint = hint
            self._attach_new(ch, chan_data)
            ch.direction = OUTGOING
            if hint.calling:
                self._set_own(ch, hint.calling)
            ch.calling = ch.own
            ch.called = hint.called
            ch.connected = hint.called or ch.connected
            self._fire(ch, S.SERVICE_INITIATED)
            return True
        if hint.role != "leg":
            return False
        peer = self._chans.get(hint.peer)
        if peer is None:
            self._attach_new(ch, chan_data)
        else:
            ch.call_is_guess = False
            self._join(ch, peer.call)
        ch.direction = INCOMING
        self._apply_leg_hint(ch, hint)
        self._fire(ch, S.CREATED_INCOMING)
        if chan_data.get("state") == "Ringing":
            self._leg_rings(ch)
        return True

    def _apply_leg_hint(self, ch: ChannelRecord, hint: ControlHint) -> None:
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
            if peer.state is INITIATED and peer.hint is not None and peer.hint.role == "agent":
                self._fire(peer, S.ORIGINATE)

    def _leg_rings(self, ch: ChannelRecord) -> None:
        """A leg call control dialled rings: its line is delivered; the caller it was dialled
        for hears ringback; a blind transfer's transferee is transferred to it."""
        if ch.line is not None and not ch.cleared:
            self._ring(ch)
        hint = ch.hint
        peer = self._chans.get(hint.peer) if hint is not None else None
        if hint is None or peer is None or peer.line is None or peer.cleared:
            return
        if hint.purpose in ("originate", "switch") and peer.state is INITIATED:
            if not peer.ringback:
                peer.ringback = True
                if not peer.connected:
                    peer.connected = ch.own
                self._fire(peer, S.RINGBACK)
        elif hint.purpose == "transfer" and peer.connected != ch.own:
            pending_transfer = peer.pending_transfer
            peer.pending_transfer = None
            before = peer.connected
            peer.connected = ch.own or peer.connected
            transferring = pending_transfer.calling if pending_transfer is not None else before
            self._fire(peer, S.TRANSFERRED, transferring=transferring or None,
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
            if ch is None or hint is None or hint.role != "leg" or ch.state is CONNECTED:
                continue
            peer = self._chans.get(hint.peer)
            pairs = hint.purpose in ("originate", "switch")
            if pairs and peer is not None and peer.id not in ids:
                continue  # its party joins next
            if hint.purpose == "transfer" and peer is not None and peer.connected != ch.own:
                self._leg_rings(ch)  # answered without ringing: transferred now
            if ch.line is not None and not ch.cleared:
                self._fire_if_fits(ch, S.ANSWERED)
            if (pairs and peer is not None and peer.line is not None and not peer.cleared
                    and peer.state is INITIATED):
                if ch.own:
                    peer.connected = ch.own
                self._fire(peer, S.ANSWERED)

    def _leg_failed(self, ch: ChannelRecord, cause: int) -> None:
        """A leg call control dialled is gone unanswered: its caller's call failed."""
        hint = ch.hint
        peer = self._chans.get(hint.peer) if hint is not None else None
        if (hint is None or peer is None or peer.line is None or peer.cleared
                or hint.purpose not in ("originate", "switch") or peer.state is not INITIATED):
            return
        status = ch.dialstatus if ch.dialstatus in DIAL_FAILURES else DIALSTATUS_OF_CAUSE.get(
            cause, "NOANSWER")
        failure = DIAL_FAILURES[status]
        peer.dialstatus = status
        peer.cause = cause if cause not in (0, 16) else failure[0]
        peer.reason = failure[1]
        self._fire(peer, S.DIAL_FAILED)

    def _claim_transfer(self, ch: ChannelRecord) -> None:
        """Move a pending ``transfer`` hint of a tracked channel onto it."""
        hint = self._take_hint(ch.id)
        if hint is None:
            return
        if hint.role == "transfer":
            ch.pending_transfer = hint
        elif hint.role == "transfer_target":
            self._transfer_to(ch, hint)

    def _transfer_to(self, target: ChannelRecord, hint: ControlHint) -> None:
        """The target of an attended transfer by call control joined the transferees: the
        transferer leaves (``transferred``), the transferees and the target are told."""
        agent = self._chans.get(hint.peer)
        if agent is None:
            return
        self._claim_transfer(agent)
        pending_transfer = agent.pending_transfer
        if pending_transfer is None:
            return
        agent.pending_transfer = None
        transferees = [self._chans[i] for i in pending_transfer.transferees if i in self._chans]
        transferee = transferees[0] if transferees else None
        call = self._merge(agent.call, target.call)  # the target's call joins (phone REFER)
        transferee_party = transferee.own if transferee is not None else NOBODY
        self._transfer([agent], transferee, transferee_party, target.own, call)
