"""The simulated PBX: endpoints, channels, bridges, the small dialplan, and the events.

:class:`Pbx` is a stateful fake of Asterisk 22's core as ARI sees it. Every state change
happens under one re-entrant lock and emits the ARI events a real Asterisk 22.10.1 emits for it,
in the same order per channel as the recorded traces (the repository's ``tests/data/traces``),
routed to the apps whose subscriptions, Stasis ownership and event filter ask for them.

Threads: phone actions run on the caller's thread (a test, a scenario), ARI requests on the
HTTP handler threads, timers (ring timeout, talk detection, auto-answer) on the scheduler
thread. All of them take :attr:`Pbx.lock`. Delivery to an app only hands a serialised frame to
its connection's queue, so nothing blocks while the lock is held.
"""

from __future__ import annotations

from .ari_ops import DEVICE_STATES, cause_from_reason
from .media import Media
from .objects import AttendedTransfer, Bridge, Channel
from .state import AriError, PbxConfig, PhoneHooks

__all__ = ["DEVICE_STATES", "AriError", "Pbx", "PbxConfig", "PhoneHooks", "cause_from_reason"]


class Pbx(Media):
    """The fake Asterisk core. See the module docstring for the threading contract.

    The class is stacked from one module per concern (see :mod:`.state`); this one adds the
    hangups, which touch every other concern.
    """

    def hangup(self, ch: Channel, cause: int = 16, *, ari: bool = False) -> None:
        """Hang ``ch`` up, from its phone (``ari=False``) or ``DELETE /channels`` (``ari``)."""
        if ch.destroyed:
            return
        first_cause = 32 if ari else cause
        if ch.dialed_by is not None and ch in ch.dialed_by.dial_forks:
            if ari:
                self.hangup_request(ch, 32, soft=True)
                ch.dialed_by.dial_forks.remove(ch)
                a = ch.dialed_by
                self.dial_event(a, ch, "CANCEL")
                self._destroy(ch, cause)
                if not a.dial_forks:
                    self.varset(a, "DIALSTATUS", "CANCEL")
                    self._end_dialplan(a, 16)
            else:
                self.callee_reject(ch)
            return
        if ch.dial_forks:
            self.caller_cancel(ch, first_cause, soft=ari)
            return
        tr = ch.transfer
        if (
            isinstance(tr, AttendedTransfer)
            and tr.consult_bridge is not None
            and ch.bridge is tr.consult_bridge
        ):
            self._complete_attended(ch, tr)
            return
        self.hangup_request(ch, None if ch.queue_call and not ari else first_cause, soft=ari)
        b = ch.bridge
        if b is not None:
            if len(b.channels) == 2:
                self.bridge_peer_vars(b, clear=True)
            self.leave_bridge(ch)
        if ch.dial_peer is not None:
            self._dial_done_vars(ch)
            self.hangup_request(ch, 16, soft=True)
        if ch.in_stasis:
            self.varset(ch, "STASISSTATUS", "SUCCESS")
            self.stasis_event("StasisEnd", ch)
        self._destroy(ch, cause)
        self._after_leave(b)
        if ch.kind == "local" and ch.local_partner is not None:
            if ch.dp_local:
                self.local_partner_hangup(ch.local_partner, cause)
            else:
                self._local_gone(ch.local_partner)

    def _after_leave(self, b: Bridge | None) -> None:
        """A party left bridge ``b``: a dialplan bridge with one party left dissolves."""
        if b is None or b.bridge_class != "basic" or b.destroyed:
            return
        if len(b.channels) == 1:
            self._peer_gone(b.channels[0])
        if not b.channels:
            self.destroy_bridge(b)

    def _peer_gone(self, y: Channel) -> None:
        """The other party of ``y``'s dialplan bridge left; Asterisk hangs ``y`` up."""
        b = y.bridge
        if y.dial_peer is not None:  # a caller whose Dial() returns
            self._dial_done_vars(y)
            self.hangup_request(y, 16, soft=y.kind == "local")
            self.leave_bridge(y)
            if b is not None and not b.channels:
                self.destroy_bridge(b)
            if y.kind == "local":
                self.hangup_request(y, 16, soft=True)
            self._destroy(y, 16)
            if y.kind == "local" and y.local_partner is not None:
                self._local_gone(y.local_partner)
        elif y.kind == "local":
            self.leave_bridge(y)
            self._destroy(y, 16)
            if b is not None and not b.channels:
                self.destroy_bridge(b)
            if y.local_partner is not None:
                self._local_gone(y.local_partner)
        elif y.in_stasis:
            self.leave_bridge(y)
            if b is not None and not b.channels:
                self.destroy_bridge(b)
        else:  # a Dial() callee
            self.leave_bridge(y)
            if b is not None and not b.channels:
                self.destroy_bridge(b)
            self._destroy(y, 16)
