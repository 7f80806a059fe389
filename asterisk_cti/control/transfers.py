"""Call control's hold and transfers: :meth:`~TransferOperations.hold` and
:meth:`~TransferOperations.retrieve`, blind :meth:`~TransferOperations.transfer`, the attended
transfer (:meth:`~TransferOperations.consult`, then :meth:`~TransferOperations.complete_transfer`
or :meth:`~TransferOperations.cancel_transfer`) and :meth:`~TransferOperations.conference`,
on calls that run through a bridge of the SDK. Part of
:class:`~asterisk_cti.control.calls.CallControl`.

Threads: every method runs on the caller's thread and blocks it.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import List, Optional, Tuple, Union

from ..errors import AsteriskCtiError, CallFailedError, CallStateError
from ..model.types import ControlHint
from ..pipeline.waiters import Waiter
from .base import ControlBase, _check_text, _check_wait_for, _raise_unavailable
from .handles import Consultation, ControlledCall, Target
from .options import channel_ids, new_id, party_of
from .predicates import DialOutcome, entered, ringing_or_up
from .state import Consult, Leg

logger = logging.getLogger(__name__)


class TransferOperations(ControlBase):
    """Hold, transfers and conferences (see the module docstring); a base of
    :class:`~asterisk_cti.control.calls.CallControl`."""

    # -- hold -----------------------------------------------------------------------------------

    def hold(self, target: Target) -> None:
        """Put the call on hold for the party ``target`` names (the agent).

        The other parties in the SDK's bridge hear music on hold and are muted towards the
        agent: ``POST /channels/{peer}/hold`` (Asterisk 22 plays its default music class; with
        :attr:`ControlOptions.moh_class`, ``POST /channels/{peer}/moh?mohClass=``), then
        ``POST /channels/{peer}/mute?direction=in``. A channel in no SDK bridge (a caller
        waiting in the application) gets the music itself. ARI emits no ChannelHold for
        this, so the SDK marks the agent's connection held in the call model
        (``model.set_held``). Returns when Asterisk accepted. Any thread; blocks the caller.

        :raises NotInStasisError: the call does not run through the SDK's application.
        :raises NotFoundError: a channel is gone.
        """
        holder = self._channel_of(target)
        self._require_stasis(holder, "POST", "hold")
        if self._state.is_holding(holder):
            return
        _, peers = self._state.bridge_members(holder)
        for peer in peers:
            self._require_stasis(peer, "POST", "hold")
        self._engine.hold(holder, peers)
        logger.info("hold: %s holds %s", holder, ", ".join(peers or (holder,)))

    def retrieve(self, target: Target) -> None:
        """Take the call of ``target`` (the agent) off hold: ``DELETE /channels/{peer}/hold``
        (or ``/moh``) and ``DELETE /channels/{peer}/mute?direction=in`` for every party it
        held; parties that hung up meanwhile are skipped. Marks the connection not held in the
        call model. Returns when Asterisk accepted. Any thread; blocks the caller.

        A call the SDK did not put on hold (held from the desk phone) is retrieved the same
        way; a channel in no SDK bridge gets ``DELETE /channels/{id}/hold`` itself, so an
        unknown or gone id raises instead of passing silently. Calling it twice is harmless.

        :raises NotInStasisError: the call does not run through the SDK's application.
        :raises NotFoundError: the channel is unknown or gone.
        """
        holder = self._channel_of(target)
        self._require_stasis(holder, "DELETE", "hold")
        # bridge_members takes the state lock itself: never call it with the lock held (it
        # is not reentrant; that deadlocked the whole client on a call not held by the SDK).
        known = self._state.is_holding(holder)
        if not known:
            _, peers = self._state.bridge_members(holder)
            if not peers:
                # Nothing the SDK put on hold (held from the desk phone, an unknown id, a
                # second retrieve): take the channel itself off hold, and let Asterisk say
                # if it is gone (404) or not ours (409).
                self._engine.unhold_self(holder)
                return
            self._state.note_held(holder, peers, replace=False)
        self._engine.unhold(holder)
        if not known:
            self._model_held(holder, False)

    # -- transfers ------------------------------------------------------------------------------

    def _bridge_call(self, target: Target) -> Tuple[str, str, str, Tuple[str, ...]]:
        holder = self._channel_of(target)
        self._require_stasis(holder, "POST", "transfer")
        bid, peers = self._state.bridge_members(holder)
        if bid is None or not peers:
            raise CallStateError(
                f"channel {holder} is not talking to anybody in a bridge of the SDK; transfer "
                "and conference need a call that runs through the SDK's application")
        return holder, bid, self._call_id_of(target, holder), peers

    def transfer(self, call: Target, destination: str, *, timeout: float = 30.0,
                 wait_for: str = "delivered") -> ControlledCall:
        """Blind transfer: the agent drops out at once, the other party hears ringback while
        the SDK dials ``destination`` into its application, and is bridged with it on answer.
        If the destination fails, the other party is hung up with the matching cause.

        Sends ``DELETE /channels/{agent}``, ``POST /bridges/{id}/play?media=tone:ring``,
        ``POST /channels?endpoint=..&app=..&originator=<party>``, then (on answer)
        ``POST /bridges/{id}/addChannel``. Any thread; blocks the caller until ``wait_for``
        (``"originated"``, ``"delivered"``: the destination rings, ``"established"``: it is
        in the bridge).

        :returns: a handle on the transferred call (``channel_id`` is the transferred party).
        :raises CallStateError: the agent is not in a call the SDK controls.
        :raises CallFailedError: the destination did not answer (when waiting for it).
        """
        _check_text("destination", destination)
        _check_wait_for(wait_for)
        holder, bid, call_id, peers = self._bridge_call(call)
        dest_id = new_id("cti-c")
        leg = Leg(channel_id=dest_id, endpoint=self._get_options().endpoint_for(destination),
                  purpose="transfer", peer_id=peers[0], bridge_id=bid, call_id=call_id,
                  join=(dest_id,), on_failure="hangup")
        self._engine.protect(bid, +1)
        try:
            was_held = self._state.is_holding(holder)
            # the agent leaves by the transfer: cleared as transferred, the others told
            self._engine.hint(holder, ControlHint(
                "transfer", transferees=peers,
                called=party_of(self._engine.identity(leg.endpoint), destination)))
            if was_held:
                self._engine.unhold(holder)
            self._engine.hangup(holder)
            try:
                leg.ringback = ("playback", self._engine.play(
                    "bridges", bid, self._get_options().ringback))
            except AsteriskCtiError as exc:
                logger.info("transfer: no ringback in %s: %s", bid, exc)
            waiter, outcome = self._dial_leg(leg, wait_for, timeout)
        finally:
            self._engine.protect(bid, -1)
        logger.info("blind transfer of %s to %s (%s)", ", ".join(peers), destination, dest_id)
        if waiter is not None and outcome is not None:
            self._await(waiter, outcome, timeout + self._timeout(None), f"{destination} to be "
                        f"{wait_for}")
        return ControlledCall(call_id, peers[0], dest_id, bid, True, (*peers, dest_id))

    def _dial_leg(self, leg: Leg, wait_for: str,
                  timeout: float) -> Tuple[Optional[Waiter], Optional[DialOutcome]]:
        """Dial ``leg`` into the app with a wait for ``wait_for`` registered first (none for
        ``originated``); the wait is cancelled when the dial request fails."""
        outcome: Optional[DialOutcome] = None
        if wait_for != "originated":
            success = (ringing_or_up(leg.channel_id) if wait_for == "delivered"
                       else entered(leg.channel_id, leg.bridge_id))
            outcome = DialOutcome(success, (leg.channel_id,))
        waiter = self._send(partial(self._engine.dial, leg, timeout=timeout), outcome,
                            creates=(leg.endpoint, leg.channel_id))
        return waiter, outcome

    def consult(self, call: Target, destination: str, *, timeout: float = 30.0,
                wait_for: str = "delivered") -> Consultation:
        """Attended transfer, first step: put the call on hold (see :meth:`hold`), move the
        agent into a new consultation bridge with ringback, and dial ``destination`` into it.
        Then :meth:`complete_transfer`, :meth:`cancel_transfer` or :meth:`conference`.

        If the destination fails, the agent goes back to the held call's bridge (still held:
        :meth:`retrieve` it) and :class:`CallFailedError` is raised. If the agent hangs up
        during an answered consultation, the transfer completes (as on a phone).
        Any thread; blocks the caller until ``wait_for``.

        :returns: a :class:`Consultation`.
        :raises CallStateError: the agent is not in a call the SDK controls.
        :raises CallFailedError: the destination did not answer (when waiting for it).
        """
        _check_text("destination", destination)
        _check_wait_for(wait_for)
        holder, bid, call_id, peers = self._bridge_call(call)
        self.hold(holder)
        dest_id, consult_bid = new_id("cti-c"), new_id("cti-b")
        record = Consult(dest_id, call_id, holder, dest_id, bid, consult_bid)
        self._engine.protect(bid, +1)
        self._state.add_consult(record)
        try:
            self._engine.create_bridge(consult_bid, call_id, protect=1)
            self._engine.remove_from_bridge(bid, holder)
            self._engine.add_to_bridge(consult_bid, (holder,))
        except AsteriskCtiError:
            self._engine.transfers.consult_return(record)
            raise
        leg = Leg(channel_id=dest_id, endpoint=self._get_options().endpoint_for(destination),
                  purpose="consult", peer_id=holder, bridge_id=consult_bid, call_id=call_id,
                  join=(dest_id,), on_failure="return")
        try:
            record.playback = self._engine.play("bridges", consult_bid,
                                                self._get_options().ringback)
            leg.ringback = ("playback", record.playback)
        except AsteriskCtiError as exc:
            logger.info("consult: no ringback in %s: %s", consult_bid, exc)
        waiter, outcome = self._dial_leg(leg, wait_for, timeout)
        original = ControlledCall(call_id, holder, peers[0], bid, True, (holder, *peers))
        if waiter is not None and outcome is not None:
            self._await(waiter, outcome, timeout + self._timeout(None),
                        f"{destination} to be {wait_for}")
        logger.info("consultation %s: %s -> %s", dest_id, holder, destination)
        return Consultation(dest_id, original, holder, dest_id, consult_bid)

    def _consult_record(self, consult: Consultation) -> Consult:
        if not isinstance(consult, Consultation):
            raise TypeError("expected the Consultation returned by consult()")
        record = self._state.consult(consult.consult_id)
        if record is None:
            raise CallStateError(f"consultation {consult.consult_id} is over")
        return record

    def complete_transfer(self, call: Target, consult: Consultation, *,
                          timeout: Optional[float] = None) -> ControlledCall:
        """Attended transfer, second step: the destination joins the held party, which is
        taken off hold, and the agent drops out.

        Sends ``POST /bridges/{consult}/removeChannel``, ``POST /bridges/{call}/addChannel``,
        ``DELETE /channels/{peer}/hold`` and ``/mute``, ``DELETE /channels/{agent}``,
        ``DELETE /bridges/{consult}``; waits for ChannelEnteredBridge of the destination.
        Any thread; blocks the caller.

        :raises CallStateError: the consultation is over or not answered yet.
        """
        record = self._consult_record(consult)
        if not record.answered:
            raise CallStateError("the consultation is not answered yet; cancel it or wait")
        waiter = self._send(partial(self._engine.transfers.consult_complete, record),
                            entered(record.dest_id, record.call_bridge))
        assert waiter is not None
        waiter.wait(self._timeout(timeout), "the transfer to complete")
        peers = tuple(p for p in consult.call.channel_ids if p != record.agent_id)
        first = peers[0] if peers else record.dest_id
        return ControlledCall(record.call_id, first, record.dest_id, record.call_bridge, True,
                              tuple(channel_ids([*peers, record.dest_id])))

    def cancel_transfer(self, call: Target, consult: Consultation, *,
                        timeout: Optional[float] = None) -> ControlledCall:
        """Attended transfer, abandoned: hang up the destination, put the agent back with the
        held call and take it off hold.

        Sends ``DELETE /channels/{dest}``, ``POST /bridges/{consult}/removeChannel``,
        ``POST /bridges/{call}/addChannel``, ``DELETE /bridges/{consult}``, then
        :meth:`retrieve`; waits for ChannelEnteredBridge of the agent. Any thread; blocks.

        :raises CallStateError: the consultation is already over.
        """
        record = self._consult_record(consult)
        waiter = self._expect(entered(record.agent_id, record.call_bridge))
        self._state.cancel_leg(record.dest_id)
        self._engine.hangup(record.dest_id)
        self._engine.transfers.consult_return(record)
        waiter.wait(self._timeout(timeout), "the agent to return to the call")
        self.retrieve(record.agent_id)
        return self._handle_for(record.call_id, record.agent_id, record.call_bridge)

    def conference(self, call: Target, *parties: Union[Consultation, ControlledCall, str],
                   timeout: float = 30.0) -> ControlledCall:
        """Bring more parties into the call's mixing bridge (three or more parties talk).

        Each party is a :class:`Consultation` (its destination and the agent join the call,
        the consultation bridge is destroyed), another :class:`ControlledCall` (its parties
        are moved over), or a destination to dial into the bridge. Parties held by the agent
        are taken off hold once every moved party is in the bridge (so the holder is told
        ``conferenced``, never ``retrieved`` first). Sends ``removeChannel``/``addChannel``
        and ``POST /channels``; waits for ChannelEnteredBridge of every new party. Any
        thread; blocks the caller.

        :returns: a handle listing every channel of the conference.
        :raises CallStateError: the call does not run through an SDK bridge.
        :raises CallFailedError: a dialled party did not answer (the others stay).
        """
        if not parties:
            raise ValueError("conference needs at least one more party")
        holder = self._channel_of(call)
        consults = [p for p in parties if isinstance(p, Consultation)]
        record = self._consult_record(consults[0]) if consults else None
        if record is not None:
            bid, call_id = record.call_bridge, record.call_id
        else:
            holder, bid, call_id, _ = self._bridge_call(call)
        moves: List[Tuple[str, str]] = []
        dials: List[str] = []
        records: List[Consult] = []
        for party in parties:
            if isinstance(party, Consultation):
                rec = self._consult_record(party)
                records.append(rec)
                if not rec.answered:
                    raise CallStateError("the consultation is not answered yet")
                moves += [(rec.consult_bridge, rec.dest_id), (rec.consult_bridge, rec.agent_id)]
            elif isinstance(party, ControlledCall):
                other, _ = self._state.bridge_members(party.channel_id)
                if other is None:
                    raise CallStateError(f"call {party.call_id} is not in an SDK bridge")
                members = self._state.members_of(other)
                moves += [(other, m) for m in members if other != bid]
            else:
                dials.append(_check_text("destination", party))
        moved: List[Tuple[Waiter, str]] = [(self._expect(entered(channel_id, bid)), channel_id)
                                          for _, channel_id in moves]
        waiters: List[Tuple[Waiter, Optional[DialOutcome], str]] = []
        legs: List[Leg] = []
        options = self._get_options()
        for destination in dials:
            leg = Leg(channel_id=new_id("cti-c"), endpoint=options.endpoint_for(destination),
                      purpose="conference", peer_id=holder, bridge_id=bid, call_id=call_id,
                      on_failure="none")
            leg.join = (leg.channel_id,)
            outcome = DialOutcome(entered(leg.channel_id, bid), (leg.channel_id,))
            waiters.append((self._expect(outcome), outcome, destination))
            legs.append(leg)
        self._engine.protect(bid, +1)
        try:
            sources = {src for src, _ in moves}
            for rec in records:
                self._state.end_consult(rec.consult_id)
            for rec in records:
                self._engine.stop_playback(rec.playback)
            for src in sources:
                self._engine.protect(src, +1)
            for src, channel_id in moves:
                self._engine.remove_from_bridge(src, channel_id)
                self._engine.add_to_bridge(bid, (channel_id,))
            for src in sources:
                self._engine.destroy_bridge(src)
            for _ in records:
                self._engine.protect(bid, -1)
            # The holder is retrieved only once the model saw every moved party enter: the
            # model learns of the unhold through the ring (ARI hold sends no ChannelUnhold),
            # and the 204 of addChannel can come back before its ChannelEnteredBridge has
            # left the websocket; retrieved first would tell ``retrieved`` then
            # ``conferenced`` instead of the documented ``conferenced(connected)``.
            for waiter, channel_id in moved:
                waiter.wait(self._timeout(None), f"{channel_id} to join the conference")
            self._engine.unhold(holder)
            for leg in legs:
                try:
                    self._engine.dial(leg, timeout=timeout)
                except AsteriskCtiError as exc:
                    _raise_unavailable(exc, leg.endpoint, leg.channel_id)
                    raise
        except AsteriskCtiError:
            for waiter, _ in moved:
                waiter.cancel()
            for waiter, _, _ in waiters:
                waiter.cancel()
            raise
        finally:
            self._engine.protect(bid, -1)
        failures: List[CallFailedError] = []
        for waiter, watch, what in waiters:
            try:
                if watch is not None:
                    self._await(waiter, watch, timeout + self._timeout(None), f"{what} to join")
                else:
                    waiter.wait(self._timeout(None), f"{what} to join the conference")
            except CallFailedError as exc:
                failures.append(exc)
        if failures:
            raise failures[0]
        members = self._state.members_of(bid)
        others = tuple(m for m in members if m != holder)
        return ControlledCall(call_id, holder, others[0] if others else None, bid, True,
                              tuple(channel_ids([holder, *others])))
