"""The dialplan: the lab's ``from-internal`` extensions, ``Dial()``, ``Queue()`` and the
test dialplan of the translated Asterisk testsuite (context ``default``).

Runs with the PBX lock held (ring timeouts and dialplan steps on the scheduler thread).
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Dict, List, Tuple

from .lifecycle import Lifecycle
from .objects import AttendedTransfer, Channel, Endpoint

_DIAL_VARS = (
    "DIALSTATUS",
    "DIALEDPEERNUMBER",
    "DIALEDPEERNAME",
    "ANSWEREDTIME",
    "ANSWEREDTIME_MS",
    "DIALEDTIME",
    "DIALEDTIME_MS",
    "RINGTIME",
    "RINGTIME_MS",
    "PROGRESSTIME",
    "PROGRESSTIME_MS",
)


#: The test dialplan, context ``default``: the extensions our translation of Asterisk's
#: testsuite uses (tests/sim/testsuite), the same as the lab's (tests/integration/lab).
TEST_CONTEXT = "default"
TEST_DIALPLAN: Dict[str, List[Tuple[str, str]]] = {
    "s": [("NoOp", ""), ("Answer", ""), ("Echo", ""), ("Hangup", "")],
    "echo": [("NoOp", ""), ("Answer", ""), ("Echo", ""), ("Hangup", "")],
    "stasis": [("NoOp", ""), ("Answer", ""), ("Stasis", "testsuite"), ("Hangup", "")],
    "stasis_echo": [("NoOp", ""), ("Answer", ""), ("Stasis", "testsuite"), ("Echo", "")],
    "1000": [("Answer", ""), ("Echo", "")],
    "2000": [("Answer", ""), ("Wait", "2"), ("Hangup", "99")],
    "wait5": [("Answer", ""), ("Wait", "5"), ("Hangup", "")],
    "one": [("NoOp", ""), ("Answer", ""), ("Wait", "1"), ("Hangup", "")],
    "two": [("NoOp", ""), ("Answer", ""), ("Wait", "1"), ("Hangup", "")],
    "three": [("NoOp", ""), ("Answer", ""), ("Wait", "1"), ("Hangup", "")],
    "four": [("NoOp", ""), ("Answer", ""), ("Echo", "")],
    "do_stuff": [("NoOp", ""), ("Answer", ""), ("Playback", "silence/1"), ("Hangup", "")],
    "short": [("NoOp", ""), ("Answer", ""), ("Wait", "3"), ("Hangup", "")],
    "ring": [("NoOp", ""), ("Ringing", ""), ("Wait", "3")],
}


#: The outside-caller (trunk) endpoint and the context its calls enter (see :meth:`trunk_call`).
TRUNK_RESOURCE = "trunk"
TRUNK_CONTEXT = "from-trunk"


class Dialplan(Lifecycle):
    """What a phone's call does in the dialplan, and ``Dial()`` from ringing to answer."""

    def trunk_call(self, number: str, exten: str, name: str = "") -> Channel:
        """A call from outside: the provider's INVITE arrives on ``PJSIP/trunk`` with caller
        id ``number`` (``name``, empty by default as most providers send none) for ``exten``,
        and enters the inbound context ``from-trunk``, which routes like ``from-internal``:
        ``1XXX`` rings that phone, the queue extension rings the queue, the IVR extension
        enters the IVR, anything else hangs up. The endpoint ``PJSIP/trunk`` is created
        (online) on the first call."""
        ep = self.endpoints.get(f"PJSIP/{TRUNK_RESOURCE}")
        if ep is None:
            ep = Endpoint("PJSIP", TRUNK_RESOURCE, "")
            self.endpoints[ep.id] = ep
            self.endpoint_event(ep)
        chan_name = f"PJSIP/{TRUNK_RESOURCE}-{next(self._pjsip_seq):08x}"
        a = self._new_channel("pjsip", chan_name, "Ring", (name, number), ep, exten=exten,
                              context=TRUNK_CONTEXT)
        a.protocol_id = uuid.uuid4().hex[:16]
        self.varset(a, "SIPDOMAIN", "127.0.0.1")
        self.run_dialplan(a, exten, TRUNK_CONTEXT)
        return a

    def phone_dial(self, ep: Endpoint, exten: str) -> Channel:
        """A phone sends INVITE for ``exten`` in ``from-internal``."""
        a = self.new_pjsip(ep, "Ring", exten=exten)
        a.protocol_id = uuid.uuid4().hex[:16]
        self.varset(a, "SIPDOMAIN", "127.0.0.1")
        self.run_dialplan(a, exten)
        return a

    def run_dialplan(self, a: Channel, exten: str, context: str = "from-internal") -> None:
        a.context = context
        if re.fullmatch(r"1\d{3,}", exten):
            self._dp_dial_exten(a, exten)
        elif exten == self.config.queue_extension:
            self._dp_queue(a, exten)
        elif exten == self.config.ivr_extension:
            self._dp_ivr(a, exten)
        elif exten == self.config.queue_data_extension:
            self._dp_queue(a, exten, self.config.queue_data)
        elif context == "from-internal" and re.fullmatch(r"7\d{3}", exten):
            self._dp_stasis(a, exten)
        else:
            self.dialplan(a, "Hangup", "1", exten=exten, priority=1)
            self._end_dialplan(a, 1)

    def _dp_dial_exten(self, a: Channel, exten: str) -> None:
        noop = f'lab: "{a.caller_name}" <{a.caller_number}> -> {exten}'
        self.dialplan(a, "NoOp", noop, exten=exten, priority=1)
        self.dialplan(a, "Set", "TALK_DETECT(set)=", priority=2)
        a.talk_detect = True
        self.dialplan(a, "Set", "__TRANSFER_CONTEXT=from-internal", priority=3)
        self.varset(a, "__TRANSFER_CONTEXT", "from-internal")
        self.dialplan(a, "Dial", f"PJSIP/{exten},15,Ttib(lab-predial^s^1)", priority=4)
        for var in _DIAL_VARS:
            self.varset(a, var, "")
        ep = self.endpoints.get(f"PJSIP/{exten}")
        self.dial(a, [ep] if ep is not None else [], exten, self.config.dial_timeout)

    def _dp_stasis(self, a: Channel, exten: str) -> None:
        app = self.config.stasis_app
        self.dialplan(a, "Goto", f"to-stasis,{exten},1", exten=exten, priority=1)
        self.dialplan(
            a, "NoOp", f"lab: into Stasis {app}, exten {exten}", context="to-stasis", priority=1
        )
        self.dialplan(a, "Set", "TALK_DETECT(set)=", priority=2)
        a.talk_detect = True
        args = ["dial", "1" + exten[1:]]
        self.dialplan(a, "Stasis", f"{app},{','.join(args)}", priority=3)
        self.varset(a, "STASISSTATUS", "")
        if app not in self.apps or self.apps[app].sink is None:
            self.varset(a, "STASISSTATUS", "FAILED")
            self._end_dialplan(a, 16)
            return
        self.stasis_start(a, app, args)

    def _dp_ivr(self, a: Channel, exten: str) -> None:
        """The IVR number (both contexts): ``Answer()``, then
        ``Stasis(<stasis_app>,ivr,<ivr_flow>)``; when the application lets the call go
        without sending it on, the dialplan hangs up."""
        app = self.config.stasis_app
        self.dialplan(a, "NoOp", f"lab: {a.caller_number} calls the IVR", exten=exten,
                      priority=1)
        self.dialplan(a, "Answer", "", priority=2)
        if a.state != "Up":
            self.set_state(a, "Up")
            a.answered_at = time.monotonic()
        args = ["ivr", self.config.ivr_flow]
        self.dialplan(a, "Stasis", f"{app},{','.join(args)}", priority=3)
        self.varset(a, "STASISSTATUS", "")
        if app not in self.apps or self.apps[app].sink is None:
            self.varset(a, "STASISSTATUS", "FAILED")
            self.dialplan(a, "Hangup", "", priority=4)
            self._end_dialplan(a, 16)
            return
        self.stasis_start(a, app, args)

    def _dp_queue(self, a: Channel, exten: str, data: str = "") -> None:
        q = self.config.queue_name
        # As the lab's dialplan (recorded on Asterisk 22.10.1): the caller is not answered;
        # it rings until an agent answers, then learns the agent as its connected line.
        self.dialplan(a, "NoOp", f"lab: {a.caller_number} calls the {q} queue", exten=exten,
                      priority=1)
        self.dialplan(a, "Set", "TALK_DETECT(set)=", priority=2)
        a.talk_detect = True
        priority = 3
        if data:
            # the lab's queue_data extension: Set(__CTI_DATA=...) first; the members inherit
            self.dialplan(a, "Set", f"__CTI_DATA={data}", priority=priority)
            self.varset(a, "__CTI_DATA", data)
            priority += 1
        self.dialplan(a, "Queue", f"{q},Tt,,,30,,lab-predial", priority=priority)
        a.queued = True
        a.queue_call = True
        members = [
            self.endpoints[f"PJSIP/{m}"]
            for m in self.config.queue_members
            if f"PJSIP/{m}" in self.endpoints
        ]
        self.dial(a, members, exten, 30.0, queue=True)

    def _dial_failed_epilogue(self, a: Channel, status: str, cause: int) -> None:
        """Priorities 5 and 6 of the lab dialplan after a failed Dial()."""
        self.dialplan(a, "NoOp", f"lab: DIALSTATUS={status} HANGUPCAUSE={cause}", priority=5)
        self.dialplan(a, "Hangup", "", priority=6)

    def _end_dialplan(self, a: Channel, cause: int, hangup_cause: int | None = None) -> None:
        """The dialplan ran out: Asterisk hangs the channel up."""
        self.hangup_request(a, cause)
        self._destroy(a, hangup_cause if hangup_cause is not None else cause)

    def dial(
        self, a: Channel, eps: List[Endpoint], dialstring: str, timeout: float, queue: bool = False
    ) -> None:
        """``Dial()`` (or a ringall queue) from channel ``a`` to PJSIP endpoints."""
        a.dial_started = time.monotonic()
        a.dial_exten = dialstring
        a.dial_forks = []
        a.dial_peer = None
        reachable = [ep for ep in eps if ep.registered]
        if not reachable:
            self.varset(a, "DIALSTATUS", "CHANUNAVAIL")
            self._end_dialplan(a, 16, 20)
            return
        for ep in reachable:
            b = self.new_pjsip(ep, "Down", linkedid=a.linkedid)
            self.inherit_variables(a, b, skip=("__TRANSFER_CONTEXT",))
            b.dialed_by = a
            b.protocol_id = str(uuid.uuid4())
            self.varset(b, "DIALEDPEERNUMBER", ep.resource)
            self.varset(b, "__TRANSFER_CONTEXT", "from-internal")
            self.dialplan(b, "AppDial", "(Outgoing Line)", exten="", priority=1)
            self.connected_line(b, a.caller_name, a.caller_number)
            self.varset(b, "LOCAL(ARGC)", "0")
            self.dialplan(
                b, "Set", "TALK_DETECT(set)=", context="lab-predial", exten="s", priority=1
            )
            b.talk_detect = True
            self.dialplan(b, "Return", "", priority=2)
            b.context, b.exten, b.priority = "from-internal", "", 1
            self.varset(b, "ARGC", "")
            self.varset(b, "GOSUB_RETVAL", "")
            self.dialplan(b, "AppDial", "(Outgoing Line)")
            self.dial_event(a, b, "", ep.resource if not queue else ep.id)
            a.dial_forks.append(b)
            if len(a.dial_forks) == 1 and not queue:
                self.connected_line(a, ep.name, ep.resource)
            if self.hooks.is_busy(ep.resource, b):
                self.hangup_request(b, 17)
                self.dial_event(a, b, "BUSY")
                a.dial_forks.remove(b)
                self._destroy(b, 17)
                continue
            self.set_state(b, "Ringing")
            self._local_ringing(a, b)
            self.hooks.incoming(ep.resource, b)
        if not a.dial_forks:
            self.varset(a, "DIALSTATUS", "BUSY")
            if not a.originated:
                self._dial_failed_epilogue(a, "BUSY", 17)
            self._end_dialplan(a, 16, 17)
            return
        ring_ms = int((time.monotonic() - a.dial_started) * 1000) + 3
        self.varset(a, "RINGTIME", "0")
        self.varset(a, "RINGTIME_MS", str(ring_ms))
        for b in a.dial_forks:
            self.dial_event(a, b, "RINGING")
        self.later(a, timeout, lambda: self._dial_timeout(a))

    def _local_ringing(self, a: Channel, b: Channel) -> None:
        l1 = a.local_partner
        if a.kind == "local" and l1 is not None and l1.state != "Ringing":
            tr = l1.transfer
            if isinstance(tr, AttendedTransfer):
                self.connected_line(tr.transferer, b.caller_name, b.caller_number)
                self.varset(tr.transferer, "BRIDGEPEER", l1.name)
            self.set_state(l1, "Ringing")
            self.caller_id(l1, b.caller_name, b.caller_number)
            self.dial_event(None, l1, "RINGING")

    def _dial_timeout(self, a: Channel) -> None:
        if a.dial_peer is not None or not a.dial_forks:
            return
        for b in list(a.dial_forks):
            self.dial_event(a, b, "NOANSWER")
        self.varset(a, "DIALSTATUS", "NOANSWER")
        for b in list(a.dial_forks):
            self._destroy(b, 0)
        a.dial_forks = []
        if a.originated:
            return
        self._dial_failed_epilogue(a, "NOANSWER", 0)
        self._end_dialplan(a, 16)

    def callee_answer(self, b: Channel) -> None:
        """The phone of a ringing Dial() callee answers."""
        a = b.dialed_by
        if a is None or b not in a.dial_forks or b.state == "Up":
            return
        self.set_state(b, "Up")
        b.answered_at = time.monotonic()
        self.varset(a, "DIALSTATUS", "ANSWER")
        self.varset(a, "DIALEDPEERNAME", b.name)
        self.varset(a, "DIALEDPEERNUMBER", a.dial_exten)
        self.dial_event(a, b, "ANSWER")
        for other in [c for c in a.dial_forks if c is not b]:
            self.dial_event(a, other, "CANCEL")
            if a.queue_call:
                # app_queue reports the cancel twice and destroys without a hangup request
                self.dial_event(a, other, "CANCEL")
            else:
                self.hangup_request(other, 26)
            self._destroy(other, 26)
        a.dial_forks = []
        a.dial_peer = b
        a.answered_at = time.monotonic()
        if a.queued:
            a.queued = False
            if b.endpoint is not None:
                self.connected_line(a, b.endpoint.name, b.endpoint.resource)
        self.set_state(a, "Up")
        bridge = self.new_bridge()
        self.dialplan(b, "AppDial", "(Outgoing Line)")
        self.enter_bridge(bridge, b)
        l1 = a.local_partner
        if a.kind == "local" and l1 is not None:
            self.set_state(l1, "Up")
            self.dial_event(None, l1, "ANSWER")
            tr = l1.transfer
            if isinstance(tr, AttendedTransfer):
                self.varset(tr.transferer, "BRIDGEPEER", l1.name)
        self.enter_bridge(bridge, a)
        if a.kind == "local":
            self.varset(a, "ATTENDEDTRANSFER", "")
            self.bridge_peer_vars(bridge)  # once per joining channel, as Asterisk does
        if a.variables.get("BLINDTRANSFER"):
            self.varset(a, "BLINDTRANSFER", "")
        self.bridge_peer_vars(bridge)
        self.start_talk_detect(b)
        if a.kind != "local":
            self.start_talk_detect(a)

    def callee_reject(self, b: Channel, cause: int = 17) -> None:
        """The phone of a ringing callee declines (486 Busy Here)."""
        a = b.dialed_by
        if a is None or b not in a.dial_forks:
            return
        self.hangup_request(b, cause)
        self.dial_event(a, b, "BUSY")
        a.dial_forks.remove(b)
        self._destroy(b, cause)
        if not a.dial_forks:
            self.varset(a, "DIALSTATUS", "BUSY")
            if not a.originated:
                self._dial_failed_epilogue(a, "BUSY", cause)
                self._end_dialplan(a, 16, cause)

    def caller_cancel(self, a: Channel, cause: int = 16, soft: bool = False) -> None:
        """The caller hangs up while its Dial() still rings."""
        self.hangup_request(a, cause, soft)
        for b in list(a.dial_forks):
            self.dial_event(a, b, "CANCEL")
            self._destroy(b, 16)
        a.dial_forks = []
        self.varset(a, "DIALSTATUS", "CANCEL")
        self._destroy(a, 16)

    def dp_run(self, ch: Channel, context: str, exten: str, priority: int = 1) -> None:
        """Run the test dialplan (context ``default``) on ``ch`` from ``exten,priority``."""
        ch.context, ch.exten = context, exten
        if context != TEST_CONTEXT or exten not in TEST_DIALPLAN:
            self.dialplan(ch, "", "", priority=priority)
            self.dp_hangup(ch, 16)
            return
        self._dp_step(ch, priority)

    def _dp_step(self, ch: Channel, priority: int) -> None:
        if ch.destroyed:
            return
        steps = TEST_DIALPLAN.get(ch.exten, [])
        if priority > len(steps):  # the dialplan ran out
            self.dp_hangup(ch, 16 if ch.state == "Up" else 0)
            return
        app, data = steps[priority - 1]
        self.dialplan(ch, app, data, priority=priority)

        def step() -> None:
            self._dp_step(ch, priority + 1)

        if app == "Answer":
            self._dp_answer(ch)
            step()
        elif app == "Ringing":
            if ch.state != "Up":
                self.set_state(ch, "Ringing")
                p = ch.local_partner
                if p is not None and p.state not in ("Up", "Ringing"):
                    self.set_state(p, "Ringing")
                    self.dial_event(None, p, "RINGING")
            step()
        elif app in ("Wait", "Playback"):
            seconds = float(data.rsplit("/", 1)[-1]) if app == "Wait" or "/" in data else 1.0
            self.later(ch, seconds, step)
        elif app == "Hangup":
            self.dp_hangup(ch, int(data) if data else 16)
        elif app == "Stasis":
            name, *args = data.split(",")
            self.varset(ch, "STASISSTATUS", "")
            target = self.apps.get(name)
            if target is None or target.sink is None:
                self.varset(ch, "STASISSTATUS", "FAILED")
                step()
                return
            self.stasis_start(ch, name, args)
        elif app == "Echo":
            pass  # echoes until hung up
        else:
            step()

    def _dp_answer(self, ch: Channel) -> None:
        if ch.state != "Up":
            self.set_state(ch, "Up")
            ch.answered_at = time.monotonic()
        p = ch.local_partner
        if p is not None and p.state != "Up" and not p.destroyed:
            self.set_state(p, "Up")
            p.answered_at = time.monotonic()
            p.created_only = False
            if p.originated:
                self.dial_event(None, p, "ANSWER")
            cont, p.on_answer = p.on_answer, None
            if cont is not None:
                cont()

    def dp_hangup(self, ch: Channel, cause: int) -> None:
        """The dialplan hangs ``ch`` up (``Hangup(cause)`` or no priority left)."""
        if ch.destroyed:
            return
        self.hangup_request(ch, cause)
        b = ch.bridge
        if b is not None:
            self.leave_bridge(ch)
        if ch.in_stasis:
            self.stasis_event("StasisEnd", ch)
        self._destroy(ch, cause)
        self._after_leave(b)
        p = ch.local_partner
        if p is not None:
            self.local_partner_hangup(p, cause)
