"""Phone features: hold, DTMF feature codes (``*2`` attended, ``#1`` blind transfer), and the
transfers they start, including the three-way bridge.

Runs with the PBX lock held.
"""

from __future__ import annotations

import re

from .dialplan import _DIAL_VARS
from .local import LocalChannels
from .objects import AttendedTransfer, Channel
from .state import AriError


class Features(LocalChannels):
    """Hold and DTMF from a phone, attended and blind transfers."""

    def phone_hold(self, ch: Channel, hold: bool) -> None:
        if hold:
            ch.held = True
            self.chan_event("ChannelHold", ch, (("musicclass", "default"),))
        else:
            ch.held = False
            self.chan_event("ChannelUnhold", ch)
        if ch.bridge is not None:
            self.bridge_peer_vars(ch.bridge)
        self._device_update(ch)

    def phone_dtmf(self, ch: Channel, digits: str) -> None:
        for d in digits:
            if ch.destroyed:
                return
            self.chan_event("ChannelDtmfReceived", ch, (("digit", d), ("duration_ms", 180)))
            self._feature(ch, d)

    def _feature(self, ch: Channel, d: str) -> None:
        tr = ch.transfer
        if isinstance(tr, AttendedTransfer):
            if tr.consult_bridge is None:
                tr.digits += d
                if re.fullmatch(r"1\d{3}", tr.digits) or tr.digits == self.config.queue_extension:
                    self._attended_dial(ch, tr)
                return
            ch.feature_buffer = (ch.feature_buffer + d)[-2:]
            if ch.feature_buffer == "*3":
                ch.feature_buffer = ""
                self._threeway(ch, tr)
            elif ch.feature_buffer == "*2":
                ch.feature_buffer = ""
                self._complete_attended(ch, tr)
            elif ch.feature_buffer == "*1":
                ch.feature_buffer = ""
                self._abort_attended(ch, tr)
            return
        ch.feature_buffer = (ch.feature_buffer + d)[-2:]
        if (
            ch.feature_buffer == "*2"
            and ch.bridge is not None
            and ch.bridge.bridge_class == "basic"
        ):
            ch.feature_buffer = ""
            ch.transfer = AttendedTransfer(ch, ch.bridge)
            ch.held = True
            self.chan_event("ChannelHold", ch, (("musicclass", "N/A"),))
            for other in ch.bridge.channels:
                if other is not ch and other.endpoint is not None:
                    self.device_event(other.endpoint.id, "ONHOLD")
            ch.held = False

    def _attended_dial(self, a: Channel, tr: AttendedTransfer) -> None:
        exten = tr.digits
        n = next(self._local_seq)
        base = f"Local/{exten}@from-internal-{n:08x}"
        l1 = self._new_channel(
            "local", base + ";1", "Down", (a.caller_name, a.caller_number), linkedid=a.linkedid
        )
        l2 = self._new_channel(
            "local", base + ";2", "Ring", (a.caller_name, a.caller_number), linkedid=a.linkedid
        )
        l1.local_partner, l2.local_partner = l2, l1
        l1.transfer = tr
        tr.local1, tr.local2 = l1, l2
        for ch, order in ((l1, ("TRANSFERERNAME", "ATTENDEDTRANSFER")),):
            for var in order:
                self.varset(ch, var, a.name)
            self.varset(ch, "__TRANSFER_CONTEXT", "from-internal")
        consult = self.new_bridge()
        tr.consult_bridge = consult
        self.varset(l2, "ATTENDEDTRANSFER", a.name)
        self.varset(l2, "TRANSFERERNAME", a.name)
        self.varset(l2, "__TRANSFER_CONTEXT", "from-internal")
        self.caller_id(l2, a.caller_name, a.caller_number)
        self.connected_line(l1, a.caller_name, a.caller_number)
        self.enter_bridge(consult, l1)
        self.varset(l1, "ATTENDEDTRANSFER", "")
        self.enter_bridge(consult, a)
        self.varset(l1, "BRIDGEPEER", a.name)
        self.varset(l1, "BRIDGEPVTCALLID", a.protocol_id)
        self.varset(a, "BRIDGEPEER", l1.name)
        self.varset(a, "BRIDGEPVTCALLID", "")
        self.connected_line(a, "", "")
        self.run_dialplan(l2, exten)

    def _complete_attended(self, a: Channel, tr: AttendedTransfer) -> None:
        """The transferer hangs up (or dials ``*2``) during the consultation: transfer."""
        l1, consult, orig = tr.local1, tr.consult_bridge, tr.original_bridge
        assert l1 is not None and consult is not None
        self.hangup_request(a, 16)
        self.varset(a, "BRIDGEPEER", "")
        self.leave_bridge(a)
        if a.dial_peer is not None:
            self._dial_done_vars(a)
        self.hangup_request(a, 16, soft=True)
        transferee = [c for c in orig.channels if c is not a]
        ev = self._base("BridgeMerged")
        ev["bridge"] = orig.to_json()
        ev["bridge_from"] = consult.to_json()
        self._deliver(self._finish(ev), self._bridge_targets(orig))
        self.leave_bridge(l1)
        self.enter_bridge(orig, l1)
        self.bridge_peer_vars(orig)
        ev = self._attended_transfer(a, l1, transferee, orig, consult, "bridge")
        ev["destination_bridge"] = orig.id
        self._deliver(self._finish(ev), self._bridge_targets(orig, [a, l1, *transferee]))
        self.destroy_bridge(consult)
        a.transfer = None
        self._destroy(a, 16)
        l2 = tr.local2
        target = l2.dial_peer if l2 is not None else None
        if transferee:
            t = transferee[0]
            self.connected_line(l1, t.caller_name, t.caller_number)
            if target is not None:
                self.connected_line(t, target.caller_name, target.caller_number)
                self.connected_line(target, t.caller_name, t.caller_number)
            self.bridge_peer_vars(orig)
            if l2 is not None and l2.bridge is not None:
                self.bridge_peer_vars(l2.bridge)
            if l2 is not None:
                self.caller_id(l2, t.caller_name, t.caller_number)

    def _threeway(self, a: Channel, tr: AttendedTransfer) -> None:
        l1, consult, orig = tr.local1, tr.consult_bridge, tr.original_bridge
        assert l1 is not None and consult is not None
        ev = self._base("BridgeMerged")
        ev["bridge"] = orig.to_json()
        ev["bridge_from"] = consult.to_json()
        self._deliver(self._finish(ev), self._bridge_targets(orig))
        self.leave_bridge(a)
        self.enter_bridge(orig, a)
        self.leave_bridge(l1)
        self.enter_bridge(orig, l1)
        orig.technology = "softmix"
        transferee = [c for c in orig.channels if c is not a and c is not l1]
        ev = self._attended_transfer(a, l1, transferee, orig, consult, "threeway")
        ev["destination_threeway_channel"] = self.cj(a)
        ev["destination_threeway_bridge"] = orig.to_json()
        self._deliver(self._finish(ev), self._bridge_targets(orig, [a, l1, *transferee]))
        self.destroy_bridge(consult)
        a.transfer = None
        self.phone_hold(a, False)

    def _abort_attended(self, a: Channel, tr: AttendedTransfer) -> None:
        l1, l2 = tr.local1, tr.local2
        a.transfer = None
        if l2 is not None and not l2.destroyed:
            self.hangup(l2, 16)
        if l1 is not None and not l1.destroyed:
            b = l1.bridge
            self.leave_bridge(l1)
            self._destroy(l1, 16)
            if b is not None:
                self.leave_bridge(a)
                self.destroy_bridge(b)
        self.enter_bridge(tr.original_bridge, a)
        self.bridge_peer_vars(tr.original_bridge)
        self.phone_hold(a, False)

    def blind_transfer(self, a: Channel, exten: str) -> None:
        """The phone of ``a`` sends a SIP REFER to ``exten`` (an external blind transfer)."""
        b = a.bridge
        if b is None or len(b.channels) != 2:
            raise AriError(422, "Channel not in a two-party bridge")
        t = next(c for c in b.channels if c is not a)
        self.chan_event("ChannelUnhold", a)
        self.varset(t, "BLINDTRANSFER", a.name)
        self.varset(a, "BLINDTRANSFER", t.name)
        self.varset(t, "SIPTRANSFER", "yes")
        self.bridge_peer_vars(b)
        self.varset(t, "SIPREFERRINGCONTEXT", "from-internal")
        self.varset(t, "SIPREFERTOHDR", f"sip:{exten}@127.0.0.1:5060")
        ev = self._base("BridgeBlindTransfer")
        ev["channel"] = self.cj(a)
        ev["exten"] = exten
        ev["context"] = "from-internal"
        ev["result"] = "Success"
        ev["is_external"] = True
        ev["transferee"] = self.cj(t)
        ev["bridge"] = b.to_json()
        self._deliver(self._finish(ev), self._bridge_targets(b, [a, t]))
        self.bridge_peer_vars(b, clear=True)
        self.leave_bridge(a)
        self.leave_bridge(t)
        self.destroy_bridge(b)
        t.dialed_by = None
        t.dial_peer = None
        self.dialplan(t, "AppDial", "(Outgoing Line)")
        if a.dial_peer is not None:
            self._dial_done_vars(a)
        a.dial_peer = None
        self.hangup_request(a, 16)
        self._destroy(a, 16)
        t.answered_at = 0.0
        self._dp_dial_exten_after_transfer(t, exten)

    def _dp_dial_exten_after_transfer(self, t: Channel, exten: str) -> None:
        t.exten, t.priority = exten, 1
        self.dialplan(t, "Set", "TALK_DETECT(set)=", exten=exten, priority=2)
        self.dialplan(t, "Set", "__TRANSFER_CONTEXT=from-internal", priority=3)
        self.varset(t, "__TRANSFER_CONTEXT", "from-internal")
        self.dialplan(t, "Dial", f"PJSIP/{exten},15,Ttib(lab-predial^s^1)", priority=4)
        for var in _DIAL_VARS:
            self.varset(t, var, "")
        ep = self.endpoints.get(f"PJSIP/{exten}")
        self.dial(t, [ep] if ep is not None else [], exten, self.config.dial_timeout)
