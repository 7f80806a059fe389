"""Handlers of channel life-cycle events and of endpoint state.

ChannelCreated, ChannelStateChange, ChannelConnectedLine, ChannelCallerId,
ChannelHangupRequest, ChannelDestroyed, ChannelHold / ChannelUnhold, ChannelTalkingStarted /
ChannelTalkingFinished and EndpointStateChange, each one method registered with
:func:`~asterisk_cti.model.registry.handles`. Processor thread only; no I/O.
"""

from __future__ import annotations

from typing import (
    Any,
    Mapping,
)

from ..calldata import VARIABLE
from ..events.catalogue import endpoint_of_channel_name
from .hints import Hints
from .records import (
    CONNECTED,
    DIAL_FAILURES,
    HOLD,
    INCOMING,
    NULL,
    OUTGOING,
    PLACING_STATES,
    QUEUED,
    ChannelRecord,
    as_dict,
    queue_name,
)
from .registry import handles
from .transitions import TRANSITIONS, S
from .types import (
    Party,
    Reason,
)


class ChannelHandlers(Hints):
    """Handlers of one channel's events (created, state, parties, hold, talk, destroyed)."""

    @handles("ChannelCreated")
    def _on_created(self, raw: Mapping[str, Any]) -> None:
        chan_data = as_dict(raw.get("channel"))
        if chan_data is None:
            return
        cid = chan_data.get("id")
        if type(cid) is not str or cid in self._chans:
            return
        name = str(chan_data.get("name") or "")
        if name.startswith("Local/"):
            self._remember_local(cid, name)
        endpoint = endpoint_of_channel_name(name)
        if not self._is_monitored(endpoint):
            if "channelvars" in chan_data or cid in self._hints:
                self._lookup(chan_data)
            return
        ch = self._new_chan(cid, name, endpoint, chan_data)
        if cid in self._hints:
            hint = self._take_hint(cid)
            if hint is not None and self._created_by_control(ch, hint, chan_data):
                return
        self._attach_new(ch, chan_data)
        state = chan_data.get("state")
        if state in PLACING_STATES or state == "Up":
            ch.direction = OUTGOING
            ch.calling = ch.own
            ch.called = self._dialled_exten(chan_data)
            self._fire(ch, S.CREATED_OUTGOING)
            if state == "Up":
                self._fire(ch, S.ANSWERED)
        else:
            ch.direction = INCOMING
            ch.called = ch.own
            ch.calling = ch.connected
            self._fire(ch, S.CREATED_INCOMING)
            if state == "Ringing":
                self._fire(ch, S.RINGING)

    @handles("ChannelStateChange")
    def _on_state_change(self, raw: Mapping[str, Any]) -> None:
        chan_data = as_dict(raw.get("channel"))
        ch = self._lookup(chan_data)
        if ch is None:
            self._unknown(chan_data)
            return
        if chan_data is None:
            return
        state = chan_data.get("state")
        if ch.hint is not None and ch.hint.role == "leg":
            if state == "Ringing":
                self._leg_rings(ch)
                return
            if state == "Up":
                # established once it talks to its party: when call control bridges it
                return
        if ch.line is None or ch.cleared or self._agent_waits(ch):
            return
        if ch.state is QUEUED and state == "Up":
            return  # app_queue answers its caller: it is established when an agent answers
        if state == "Ringing":
            if not ch.queue:
                ch.queue = self._queue_of_agent_leg(ch, chan_data)
            self._ring(ch)
        elif state == "Up":
            self._fire(ch, S.ANSWERED)
        elif state in PLACING_STATES:
            self._fire_if_fits(ch, S.SYNC_INITIATED)

    def _queue_of_agent_leg(self, ch: ChannelRecord, chan_data: Mapping[str, Any]) -> str:
        """The queue of an agent's leg that rings before its Dial arrived, or ``""``.

        app_queue's Dial that names the queue is published on the caller's topic, the
        leg's Ringing on the agent's: Asterisk 22 may deliver the Ringing first (seen on the
        lab with a caller the IVR continued into the queue). The leg's own dialplan app
        (``AppQueue``) and its call (one linkedid, from ``channelvars``) tell it then: the
        queue its caller waits in."""
        dialplan = as_dict(chan_data.get("dialplan"))
        if dialplan is None or dialplan.get("app_name") != "AppQueue":
            return ""
        for other in ch.call.chans.values():
            if other is not ch and other.queue and other.state is QUEUED:
                return other.queue
        return ""

    @handles("ChannelConnectedLine")
    def _on_connected_line(self, raw: Mapping[str, Any]) -> None:
        chan_data = as_dict(raw.get("channel"))
        ch = self._lookup(chan_data)
        if ch is None:
            self._unknown(chan_data)
            return
        if ch.cleared or chan_data is None:
            return
        party = Party.from_raw(chan_data.get("connected"))
        if not party or party == ch.connected:
            return
        first = not ch.connected
        before = ch.connected
        ch.connected = party
        if ch.line is None:
            return
        if not first and ch.bridge is not None and self._merging:
            merge = self._merging.get(ch.bridge)
            if merge is not None:
                # Its bridge is being merged: a transfer may be about to tell this change.
                merge.deferred.setdefault(ch.id, (ch, before))
                self._dirty(ch)
                return
        if ch.state is NULL and ch.direction is INCOMING:
            ch.calling = party
            if ch.call_is_guess and len(ch.call.chans) == 1:
                self._guess_call(ch)
        if ch.refer_wait is not None:
            # the REFER's target identified before it rings: told with the transfer
            ch.refer_wait = (ch.refer_wait[0], party)
            self._dirty(ch)
            return
        completed = not first and before.number == party.number and not before.name
        if completed and ch.calling.number == party.number and not ch.calling.name:
            ch.calling = party
        if completed or (first and ch.state is not CONNECTED and ch.state is not HOLD):
            # The far end identified while the call is set up: part of delivered/established,
            # not a change of party; or the same number now with a name (Asterisk's two-step
            # connected-line update): the identity completed, the party did not change.
            self._dirty(ch)
        else:
            # A change, or the first name of the far end of an answered call (a queue answers
            # the caller before an agent is found): listeners must hear whom it talks to.
            self._fire(ch, S.CONNECTED_LINE)

    @handles("ChannelCallerId")
    def _on_caller_id(self, raw: Mapping[str, Any]) -> None:
        chan_data = as_dict(raw.get("channel"))
        ch = self._lookup(chan_data)
        if ch is None or chan_data is None:
            return
        own = Party.from_raw(chan_data.get("caller"))
        if own and own != ch.own and (ch.hint is None or not ch.own):
            # a channel call control created keeps the identity it was created for (it sets
            # caller ids for what the phones display)
            self._set_own(ch, own)

    @handles("ChannelVarset")
    def _on_varset(self, raw: Mapping[str, Any]) -> None:
        name = raw.get("variable")
        if type(name) is not str or name.lstrip("_") != VARIABLE:
            return  # the transport keeps only CTI_DATA's; a raw listener may want others
        chan_data = as_dict(raw.get("channel"))
        ch = self._lookup(chan_data)
        if ch is not None:
            value = raw.get("value")
            if value != ch.data_raw:
                self._see_data(ch, value if value is not None else "", True)

    @handles("ChannelDialplan")
    def _on_dialplan(self, raw: Mapping[str, Any]) -> None:
        if raw.get("dialplan_app") != "Queue":
            return  # the transport keeps only Queue's; a raw listener may want others
        chan_data = as_dict(raw.get("channel"))
        ch = self._lookup(chan_data)
        if ch is not None and ch.line is not None and not ch.cleared:
            self._enter_queue(ch, queue_name(raw.get("dialplan_app_data")) or "?")

    @handles("ChannelHangupRequest")
    def _on_hangup_request(self, raw: Mapping[str, Any]) -> None:
        chan_data = as_dict(raw.get("channel"))
        ch = self._chans.get(str(chan_data.get("id"))) if chan_data is not None else None
        if ch is None or ch.cause:
            return
        cause = raw.get("cause")
        if type(cause) is int and cause > 0:
            ch.cause = cause
            self._dirty(ch)  # the connection's snapshot shows the cause from now on

    @handles("ChannelDestroyed")
    def _on_destroyed(self, raw: Mapping[str, Any]) -> None:
        chan_data = as_dict(raw.get("channel"))
        if chan_data is None:
            return
        cid = chan_data.get("id")
        ch = self._chans.get(cid) if type(cid) is str else None
        if ch is None:
            if type(cid) is str:
                self._forget_local(cid)
                self._repair.discard(cid)
                name = chan_data.get("name")
                if type(name) is str and self._is_monitored(endpoint_of_channel_name(name)):
                    self._tombstone(cid)
            return
        if ch.id in self._hints:
            self._claim_transfer(ch)
        if ch.hint is not None and ch.hint.role == "leg" and ch.state is not CONNECTED:
            cause = raw.get("cause")
            self._leg_failed(ch, cause if type(cause) is int else 0)
        if ch.pending_transfer is not None and ch.line is not None and not ch.cleared:
            pending_transfer, ch.pending_transfer = ch.pending_transfer, None
            cause = raw.get("cause")
            if type(cause) is int and cause > 0:
                ch.cause = cause
            ch.reason = Reason.TRANSFERRED
            self._end(ch, S.TRANSFERRED_AWAY, transferring=ch.own or None,
                      transferred=None, transfer_target=pending_transfer.called or None)
        if ch.line is not None and not ch.cleared:
            failure = DIAL_FAILURES.get(ch.dialstatus)
            if failure is not None:
                if not ch.cause:
                    ch.cause = failure[0]
                ch.reason = failure[1]
            else:
                cause = raw.get("cause")
                if type(cause) is int and cause > 0:
                    ch.cause = cause
                if ch.dialstatus == "CANCEL":
                    ch.reason = Reason.CANCELLED
            if not (ch.state is HOLD and self._infer_attended_transfer(ch)):
                self._end(ch, S.HANGUP)
        self._forget(ch)

    @handles("ChannelHold")
    def _on_hold(self, raw: Mapping[str, Any]) -> None:
        chan_data = as_dict(raw.get("channel"))
        ch = self._lookup(chan_data)
        if ch is None:
            self._unknown(chan_data)
        elif ch.line is not None and not ch.cleared:
            self._hold(ch)

    @handles("ChannelUnhold")
    def _on_unhold(self, raw: Mapping[str, Any]) -> None:
        chan_data = as_dict(raw.get("channel"))
        ch = self._lookup(chan_data)
        if ch is None:
            self._unknown(chan_data)
        elif ch.line is not None and not ch.cleared:
            self._fire(ch, S.UNHOLD)

    @handles("ChannelTalkingStarted")
    def _on_talk_start(self, raw: Mapping[str, Any]) -> None:
        chan_data = as_dict(raw.get("channel"))
        ch = self._lookup(chan_data)
        if ch is None:
            self._unknown(chan_data)
        elif ch.line is not None and not ch.cleared:
            if (ch.state, S.TALK_START) in TRANSITIONS:
                ch.talking = True
            self._fire(ch, S.TALK_START)

    @handles("ChannelTalkingFinished")
    def _on_talk_stop(self, raw: Mapping[str, Any]) -> None:
        chan_data = as_dict(raw.get("channel"))
        ch = self._lookup(chan_data)
        if ch is None:
            self._unknown(chan_data)
        elif ch.line is not None and not ch.cleared:
            if (ch.state, S.TALK_STOP) in TRANSITIONS:
                ch.talking = False
            self._fire(ch, S.TALK_STOP)

    @handles("EndpointStateChange")
    def _on_endpoint_state(self, raw: Mapping[str, Any]) -> None:
        endpoint_data = as_dict(raw.get("endpoint"))
        if endpoint_data is not None:
            self._set_registration(endpoint_data)
