"""The engine's reactions to the events of the calls the SDK controls (control thread).

:class:`Switch` is what :class:`~asterisk_cti.control.engine.StasisEngine` runs for each event
its tap queued, in event order, on the ``asterisk-cti-control`` thread: the switch itself (a
call the dialplan sent in with ``Stasis(app,dial[,destination])`` is dialled, given ringback
and bridged on answer), the second leg of a click-to-dial once the agent answers, answered and
failed legs, channels that leave (their legs cancelled, their consultations ended, their
bridges torn down) and the phones' REFERs.
"""

from __future__ import annotations

import logging
from functools import partial

from ..causes import dialstatus_for_cause
from ..errors import AsteriskCtiError
from ..events.catalogue import Event
from .options import EngineOps, new_id
from .phone_transfers import PhoneTransfers
from .state import Leg, OriginatePlan, StasisState

logger = logging.getLogger(__name__)


class Switch:
    """Acts on one event at a time for :class:`~asterisk_cti.control.engine.StasisEngine`
    (control thread only).

    :param engine: the engine whose operations it uses.
    :param state: the shared state.
    :param transfers: the engine's :class:`PhoneTransfers`.
    """

    def __init__(self, engine: EngineOps, state: StasisState,
                 transfers: PhoneTransfers) -> None:
        self._engine = engine
        self._state = state
        self._transfers = transfers

    # -- the switch ---------------------------------------------------------------------------

    def switch(self, event: Event) -> None:
        """A call the dialplan sent in with ``Stasis(app,dial[,destination])``: ring the
        destination, give ringback to the caller, bridge on answer."""
        chan = event.channel
        assert chan is not None
        args = tuple(event.raw.get("args") or ())
        destination = str(args[1]) if len(args) > 1 and args[1] else chan.dialplan.exten
        options = self._engine.options()
        if not destination:
            logger.warning("call control: switch call %s has no destination", chan.id)
            self._engine.hangup(chan.id, "unallocated")
            return
        try:
            endpoint = options.endpoint_for(destination)
        except Exception:
            logger.exception("call control: endpoint_for(%r) raised", destination)
            self._engine.hangup(chan.id, "unallocated")
            return
        leg = Leg(
            channel_id=new_id("cti-c"), endpoint=endpoint, purpose="switch", peer_id=chan.id,
            bridge_id=new_id("cti-b"), call_id=chan.id, create_bridge=True,
            answer_peer=True, on_failure=options.on_failure,
        )
        leg.join = (chan.id, leg.channel_id)
        logger.info("call control: switch %s (%s) -> %s", chan.id, chan.name, endpoint)
        self._transfers.allow(chan.id, chan.name)
        if chan.state != "Up" and self._engine.quiet(
            "ring the caller", partial(self._engine.ari.channels.ring, chan.id)
        ):
            leg.ringback = ("ring", chan.id)
        caller = chan.caller
        caller_id = f'"{caller.name}" <{caller.number}>' if caller.number else None
        try:
            self._engine.dial(leg, caller_id=caller_id, timeout=options.dial_timeout)
        except AsteriskCtiError as exc:
            logger.warning("call control: switch could not dial %s: %s", endpoint, exc)

    def on_event(self, event: Event) -> None:
        """Act on one event that concerns call control (the control thread, queued by
        the engine's tap, in event order)."""
        etype = event.type
        if etype == "StasisStart":
            self._on_stasis_start(event)
        elif etype in ("StasisEnd", "ChannelDestroyed"):
            self._on_gone(event)
        elif etype == "Dial":
            self._on_dial(event)
        elif etype == "ChannelLeftBridge":
            bridge = event.bridge
            if bridge is not None:
                self._engine.teardown_if_over(bridge.id)
        elif etype == "ChannelTransfer":
            self._transfers.on_refer(event.raw)

    def _on_stasis_start(self, event: Event) -> None:
        chan = event.channel
        if chan is None:
            return
        cid = chan.id
        plan = self._state.take_plan(cid)
        is_leg = self._state.is_leg(cid)
        if plan is not None:
            self._agent_answered(plan, chan.endpoint)
        elif is_leg:
            self._engine.leg_answered(cid)
        else:
            args = event.raw.get("args")
            if not isinstance(args, list):  # a hostile or broken frame: no switch argument
                args = []
            options = self._engine.options()
            if options.switch and args and str(args[0]) == options.switch_arg:
                self.switch(event)

    def _agent_answered(self, plan: OriginatePlan, agent_endpoint: str) -> None:
        leg = plan.leg
        self._transfers.allow(plan.agent_id, agent_endpoint)
        leg.peer_identity = self._engine.identity(agent_endpoint)
        try:
            leg.ringback = ("playback", self._engine.play(
                "channels", plan.agent_id, self._engine.options().ringback))
        except AsteriskCtiError as exc:
            logger.info("call control: no ringback for %s: %s", plan.agent_id, exc)
        try:
            self._engine.dial(leg, caller_id=plan.caller_id, variables=plan.variables,
                      timeout=plan.timeout)
        except AsteriskCtiError as exc:
            logger.warning("call control: click-to-dial could not dial %s: %s",
                           leg.endpoint, exc)

    def _on_gone(self, event: Event) -> None:
        chan = event.channel
        if chan is None:
            return
        cid = chan.id
        cause = int(event.raw.get("cause") or 0)
        plan = self._state.take_plan(cid) if event.type == "ChannelDestroyed" else None
        is_leg = self._state.is_leg(cid)
        consult_as_agent = self._state.consults_of_agent(cid)
        consult_as_dest = self._state.consult(cid)
        bid, _ = self._state.bridge_members(cid)
        if plan is not None:
            logger.info("call control: click-to-dial agent %s did not answer (cause %s)", cid,
                        cause)
        if is_leg and event.type == "ChannelDestroyed":
            self._engine.leg_failed(cid, dialstatus_for_cause(cause), cause)
        self._engine.cancel_legs_of(cid)
        for consult in consult_as_agent:
            if consult.answered:
                self._engine.quiet("complete the transfer", partial(
                    self._transfers.consult_complete, consult, hangup_agent=False))
            else:
                self._engine.hangup(consult.dest_id)
                self._transfers.consult_return(consult)
        if consult_as_dest is not None and consult_as_dest.answered:
            self._transfers.consult_return(consult_as_dest)
        if bid is not None:
            self._engine.teardown_if_over(bid)

    def _on_dial(self, event: Event) -> None:
        peer = event.raw.get("peer")
        pid = peer.get("id") if isinstance(peer, dict) else None
        status = str(event.raw.get("dialstatus") or "")
        if not isinstance(pid, str) or not status:
            return
        self._state.note_dial(pid, status)
