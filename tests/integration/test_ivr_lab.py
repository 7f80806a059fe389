"""The full path on the real Asterisk 22: IVR -> queue -> agent, with the call data on the
agent's screen-pop and QUEUED in the model.

Phone 1000 (baresip) dials the lab's IVR number (``5000``: ``Answer()``, then
``Stasis(<app>,ivr,main)``), where an :class:`~asterisk_cti.ivr.IvrEngine` runs the billing
IVR packaged with the SDK (``asterisk_cti/ivr/examples/billing.json``, prompts from Debian's
``asterisk-core-sounds-en-gsm``). During the first prompt the phone keys the account number
``12345#`` (RFC 4733), during the menu's prompt ``1`` for billing. The IVR sets the call data
(``__CTI_DATA`` on the caller's channel) and continues the caller to the support queue
(``2000``: ``Queue(support)``, ringall over 1002 and 1006). The CTI events show the caller
QUEUED in ``support``; both agents' ``delivered`` carry the data and the queue; a
:class:`~asterisk_cti.tools.screenpop.ScreenPop` (as ``asterisk-cti screenpop --message``
builds it) writes the caller, the data and the queue at each ringing agent; 1006 answers.
The simulator's ``ivr_queue`` scenario with the same IVR gives the same CTI events per line.
"""

from __future__ import annotations

import threading
from typing import Any, Dict, List, Tuple

from asterisk_cti import CallEvent, ConnectionState, CtiClient, CtiConfig
from asterisk_cti.events import Event
from asterisk_cti.ivr import IvrEngine
from asterisk_cti.sim import AriSimulator, scenarios
from asterisk_cti.tools.demo import billing_ivr
from asterisk_cti.tools.screenpop import MessageAction, ScreenPop
from asterisk_cti.tools.session import settle

from ..call_events import CallEvents
from .calls import NOISE, agent_answers_queued, expect_queued, keep_sequences
from .conftest import LAB_LINES, CtiFactory, LabCti
from .lab import Lab, Phone

K, P, L = "PJSIP/1000", "PJSIP/1002", "PJSIP/1006"
ACCOUNT = "12345"
DATA = {"account": ACCOUNT, "choice": "billing"}
TEMPLATE = "{calling.number} account {data.account} ({data.choice}) via {queue}"


class _Prompts:
    """The IVR's playbacks as Asterisk reports them (a raw listener)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.started: List[Tuple[str, str]] = []  # (playback id, media_uri)

    def on_event(self, event: Event) -> None:
        with self.cond:
            playback: Dict[str, Any] = event.raw["playback"]
            self.started.append((str(playback["id"]), str(playback["media_uri"])))
            self.cond.notify_all()

    def wait_new(self, count: int, timeout: float = 20.0) -> Tuple[str, str]:
        """The ``count``-th PlaybackStarted (1-based), waiting for it."""
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.started) >= count, timeout), \
                f"no prompt {count} within {timeout}s: {self.started}"
            return self.started[count - 1]


class _Pops:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.lines: List[str] = []

    def __call__(self, text: str) -> None:
        with self.cond:
            self.lines.append(text)
            self.cond.notify_all()

    def wait(self, count: int, timeout: float = 10.0) -> List[str]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.lines) >= count, timeout), self.lines
            return sorted(self.lines)


Step = Tuple[str, str, str, str, str, Tuple[Tuple[str, str], ...]]


def _steps(events: List[CallEvent], line: str) -> List[Step]:
    """What the CTI events of ``line`` say: kind, previous state, state, phone state, queue,
    data (talk detection and line states left out)."""
    return [(e.kind.value, e.previous_state.value, e.state.value, e.phone_state.value,
             e.queue or "", tuple(sorted(e.data.items())))
            for e in events if e.line == line and e.kind.value not in NOISE]


def _on_the_simulator() -> List[CallEvent]:
    """The simulator's ``ivr_queue`` scenario (an outside caller on ``PJSIP/trunk`` instead
    of 1000) with the same IVR: its CTI events."""
    with AriSimulator(speed=10, stasis_app="ivr-lab-cmp", channelvars=True) as sim:
        client = CtiClient(CtiConfig(url=sim.url, username=sim.username,
                                     password=sim.password, app="ivr-lab-cmp"))
        seen = CallEvents()
        client.add_listener(seen)
        client.monitor("PJSIP")
        engine = IvrEngine(client, {"main": billing_ivr()}).start()
        try:
            with client:
                scenarios.ivr_queue(sim)
                settle(client)  # every line idle, every event delivered
        finally:
            engine.stop(detach=False)
    return seen.all()


def sequence(cti: LabCti, since: int) -> List[str]:
    """Every CTI event of the three lines since ``since`` (talk detection and line states
    left out): ``line kind previous->state (phone state) party queue data``."""
    out = []
    for e in cti.events.call_events(None, since):
        if e.kind.value in NOISE:
            continue
        party = e.calling if e.kind.value == "delivered" else e.connected
        who = party.number or party.name or "-"
        out.append(f"{e.line} {e.kind.value} {e.previous_state.value}->{e.state.value} "
                   f"({e.phone_state.value}) party={who} queue={e.queue or '-'} "
                   f"data={dict(e.data)}")
    return out


def test_ivr_queue_agent_with_call_data_on_the_screen_pop(
        lab: Lab, phones: Dict[str, Phone], cti_factory: CtiFactory) -> None:
    kai, ping, lee = phones["1000"], phones["1002"], phones["1006"]
    for phone in (kai, ping, lee):
        phone.set_auto_answer(False)
    cti = cti_factory(app=lab.config.app, start=False)
    prompts = _Prompts()
    cti.client.add_raw_listener(prompts, {"PlaybackStarted"})
    pops = _Pops()
    pop = ScreenPop([MessageAction(TEMPLATE, pops)], [P, L])
    cti.client.add_listener(pop)
    # the engine first: the client's first connect asks Asterisk for the IVR's event types
    engine = IvrEngine(cti.client, {"main": billing_ivr()}).start()
    try:
        cti.client.start(timeout=15.0)
        start = cti.events.mark()
        kai.dial(lab.config.ivr_exten)
        kai.wait_for("CALL_ESTABLISHED", timeout=15)  # Answer() before Stasis()
        first = prompts.wait_new(1)
        assert first[1] == "sound:vm-enter-num-to-call", prompts.started
        kai.send_dtmf(ACCOUNT + "#")
        menu = prompts.wait_new(2)  # the menu, once the account number is in
        assert menu[1] == "sound:vm-press", prompts.started
        kai.send_dtmf("1")
        expect_queued(cti.events, start, K, (P, L), DATA, timeout=20)
        expected_pop = f"1000 account {ACCOUNT} (billing) via support"
        assert pops.wait(2) == [expected_pop, expected_pop]
        assert engine.wait_idle(10)
        (record,) = engine.history
        assert record.path == ("menu account", "5 digits", "data:account", "menu main",
                               "key 1", "data:choice", "queue support"), record
        assert record.outcome == "done"
        agent_answers_queued(cti, lee, L, K, start, DATA,
                             where=lambda e: e.previous_state is ConnectionState.QUEUED)
        cti.events.wait_call("call_cleared", P, since=start)
        kai.hangup()
        lee.wait_for("CALL_CLOSED")
        for line in (K, L):
            cti.events.wait_call("call_cleared", line, since=start)
        assert cti.wait_idle(5.0)
    finally:
        engine.stop(detach=False)
        pop.close()
    assert cti.events.kinds(K, start, skip=NOISE) == [
        "originated", "established", "queued", "established", "connection_cleared",
        "call_cleared"]
    assert cti.events.kinds(P, start, skip=NOISE) == [
        "delivered", "connection_cleared", "call_cleared"]
    assert cti.events.kinds(L, start, skip=NOISE) == [
        "delivered", "established", "connection_cleared", "call_cleared"]
    assert cti.stats()["model"] == {"unfit": 0, "call_data_errors": 0}
    # the simulator's scenario: the same CTI events per line, state for state
    lab_events = cti.events.call_events(None, start)
    sim_events = _on_the_simulator()
    assert _steps(sim_events, "PJSIP/trunk") == _steps(lab_events, K)
    for line in (P, L):
        assert _steps(sim_events, line) == _steps(lab_events, line), line
    observed = sequence(cti, start)
    print("\nobserved (IVR -> queue -> agent, Asterisk 22):\n  " + "\n  ".join(observed)
          + "\nprompts: " + ", ".join(m for _, m in prompts.started)
          + "\nscreen-pops: " + " | ".join(pops.lines))
    keep_sequences("IVR -> queue -> agent (1000 dials 5000, keys 12345# and 1, 1006 answers)",
                   cti.events, LAB_LINES, start)
