"""Transfers the engine carries out: consultations ending (attended transfer completed or
abandoned) and the phones' own transfers (SIP REFER, published as ``ChannelTransfer``).

The public transfer operations (``transfer``, ``consult``, ``complete_transfer``,
``cancel_transfer``, ``conference``) are :class:`~asterisk_cti.control.calls.CallControl`'s
(:mod:`asterisk_cti.control.transfers`); they and the engine share the steps here.

Threads: :class:`PhoneTransfers` runs on the control thread (events) and on caller threads
(operations); it only sends short best-effort requests and reads and changes
:class:`~asterisk_cti.control.state.StasisState` through its methods.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from functools import partial
from typing import Any, Mapping, Optional

from ..errors import AsteriskCtiError
from ..model.types import ControlHint
from .options import EngineOps, new_id
from .state import Consult, Leg, StasisState

logger = logging.getLogger(__name__)


class PhoneTransfers:
    """Ends consultations and carries out the phones' REFERs for
    :class:`~asterisk_cti.control.engine.StasisEngine`.

    :param engine: the engine whose requests it uses.
    :param state: the shared state.
    """

    def __init__(self, engine: EngineOps, state: StasisState) -> None:
        self._engine = engine
        self._state = state
        self._referred: OrderedDict[str, None] = OrderedDict()

    def consult_return(self, consult: Consult) -> None:
        """End a consultation that failed or was cancelled: the agent goes back to the held
        call's bridge, the consultation bridge is destroyed; the held parties stay held."""
        if not self._state.end_consult(consult.consult_id):
            return
        agent_alive = self._state.is_in_stasis(consult.agent_id)
        self._engine.stop_playback(consult.playback)
        self._engine.remove_from_bridge(consult.consult_bridge, consult.agent_id)
        self._engine.destroy_bridge(consult.consult_bridge)
        if agent_alive:
            self._engine.quiet("return the agent", lambda: self._engine.add_to_bridge(
                consult.call_bridge, (consult.agent_id,)))
        self._engine.protect(consult.call_bridge, -1)
        if not agent_alive:
            self._engine.teardown_if_over(consult.call_bridge)

    def consult_complete(self, consult: Consult, hangup_agent: bool = True) -> None:
        """Complete an attended transfer: the destination joins the held call, which is taken
        off hold, the agent drops out and the consultation bridge is destroyed.

        :raises AsteriskCtiError: when the destination cannot be moved.
        """
        if not self._state.end_consult(consult.consult_id):
            return
        transferees = self._state.members_of(consult.call_bridge)
        if hangup_agent:
            # the agent leaves by the transfer: cleared as transferred, the others told
            self._engine.hint(consult.agent_id, ControlHint(
                "transfer", transferees=transferees, target=consult.dest_id))
        self._engine.remove_from_bridge(consult.consult_bridge, consult.dest_id)
        try:
            self._engine.add_to_bridge(consult.call_bridge, (consult.dest_id,))
        finally:
            self._engine.unhold(consult.agent_id)
            if hangup_agent:
                self._engine.hangup(consult.agent_id)
            self._engine.destroy_bridge(consult.consult_bridge)
            self._engine.protect(consult.call_bridge, -1)

    # -- the phones' own transfers (REFER, ChannelTransfer) -----------------------------------

    def allow(self, channel_id: str, endpoint: str) -> None:
        """Have Asterisk hand a phone's REFER on this PJSIP channel to the application
        (``PJSIP_TRANSFER_HANDLING(ari-only)``), when :attr:`ControlOptions.phone_transfers`."""
        if self._engine.options().phone_transfers and endpoint.upper().startswith("PJSIP/"):
            self._engine.quiet(f"transfer handling of {channel_id}", partial(
                self._engine.ari.channels.set_variable, channel_id,
                "PJSIP_TRANSFER_HANDLING()", "ari-only"))

    def progress(self, channel_id: str, state: str) -> None:
        """``POST /channels/{id}/transfer_progress?states=``: tell a phone how its REFER went
        (best effort: the phone may have hung up already)."""
        self._engine.quiet(f"transfer progress of {channel_id}", partial(
            self._engine.ari.channels.transfer_progress, channel_id, state))

    def on_refer(self, raw: Mapping[str, Any]) -> None:
        """A phone sent REFER on a channel of the application (ChannelTransfer: the data is in
        ``refer_to`` and ``referred_by``, there is no top-level channel)."""
        refer_to, by = raw.get("refer_to"), raw.get("referred_by")
        source = _id_in(by, "source_channel")
        if source is None or not isinstance(refer_to, dict):
            return
        # Asterisk 22 may publish one REFER twice (the second once the transferer has left
        # its bridge): a phone transfers its call once.
        if source in self._referred:
            return
        self._referred[source] = None
        if len(self._referred) > 1024:
            self._referred.popitem(last=False)
        wanted = refer_to.get("requested_destination")
        destination = wanted.get("destination") if isinstance(wanted, dict) else None
        if isinstance(destination, str) and destination:
            self._refer_blind(source, destination)
        else:
            self._refer_attended(source, refer_to)

    def _refer_blind(self, source: str, destination: str) -> None:
        """Blind transfer by the phone on ``source``: it leaves the SDK bridge, the others hear
        ringback while the destination is dialled into the bridge; the phone is told the
        outcome and hung up (as :meth:`CallControl.transfer` does for the agent)."""
        bid, peers = self._state.bridge_members(source)
        call_id = self._state.call_of_bridge(bid) or ""
        if bid is None or not peers:
            logger.info("call control: REFER on %s, which talks to nobody in an SDK bridge", source)
            self.progress(source, "channel_declined")
            return
        try:
            endpoint = self._engine.options().endpoint_for(destination)
        except Exception:
            logger.exception("call control: endpoint_for(%r) raised", destination)
            self.progress(source, "channel_unavailable")
            return
        leg = Leg(channel_id=new_id("cti-c"), endpoint=endpoint, purpose="transfer",
                  peer_id=peers[0], bridge_id=bid, call_id=call_id, on_failure="hangup",
                  notify=source)
        leg.join = (leg.channel_id,)
        logger.info("call control: %s transfers %s to %s (REFER)", source, ", ".join(peers),
                    endpoint)
        self._engine.protect(bid, +1)
        try:
            self._engine.hint(source, ControlHint("transfer", transferees=peers,
                                          called=self._engine.party(endpoint)))
            self._engine.remove_from_bridge(bid, source)
            try:
                leg.ringback = ("playback", self._engine.play(
                    "bridges", bid, self._engine.options().ringback))
            except AsteriskCtiError as exc:
                logger.info("call control: no ringback in %s: %s", bid, exc)
            self._engine.dial(leg)
        except AsteriskCtiError as exc:
            logger.warning("call control: REFER of %s to %s failed: %s", source, endpoint, exc)
        finally:
            self._engine.protect(bid, -1)

    def _refer_attended(self, source: str, refer_to: Mapping[str, Any]) -> None:
        """Attended transfer by the phone: REFER with Replaces on ``source`` (D, talking to C)
        naming its other call (B, talking to A): C joins A in B's bridge, D's bridge goes,
        the phone is told 200 OK, B and D are hung up."""
        replaced = _id_in(refer_to, "destination_channel")
        b1, a_side = self._state.bridge_members(replaced) if replaced else (None, ())
        b2, c_side = self._state.bridge_members(source)
        if replaced is None or b1 is None or b2 is None or not a_side or not c_side:
            logger.info("call control: attended REFER on %s not in SDK bridges", source)
            self.progress(source, "channel_declined")
            return
        logger.info("call control: attended REFER: %s joins %s", ", ".join(c_side),
                    ", ".join(a_side))
        self._engine.hint(replaced, ControlHint("transfer", transferees=a_side, target=c_side[0]))
        self._engine.hint(source, ControlHint("transfer", transferees=c_side))
        self._engine.protect(b1, +1)
        self._engine.protect(b2, +1)
        try:
            for channel_id in c_side:
                self._engine.remove_from_bridge(b2, channel_id)
            # join before B leaves, so that the bridge never looks over (fewer than two)
            self._engine.add_to_bridge(b1, c_side)
            self._engine.remove_from_bridge(b1, replaced)
            self.progress(source, "channel_answered")
        except AsteriskCtiError as exc:
            logger.warning("call control: attended REFER on %s failed: %s", source, exc)
            self.progress(source, "channel_unavailable")
        finally:
            self._engine.protect(b1, -1)
            self._engine.protect(b2, -1)
        self._engine.destroy_bridge(b2)
        self._engine.hangup(replaced)
        self._engine.hangup(source)



def _id_in(holder: Any, key: str) -> Optional[str]:
    value = holder.get(key) if isinstance(holder, dict) else None
    cid = value.get("id") if isinstance(value, dict) else None
    return cid if isinstance(cid, str) and cid else None


