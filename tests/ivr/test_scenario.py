"""The simulator's ``ivr_queue`` scenario with the packaged billing IVR, and a phone's keypad:
digits paced like the trunk caller's, so that repeated digits survive the SDK's duplicate
filter."""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import List, Tuple

import pytest

from asterisk_cti import ConnectionState, CtiClient, CtiConfig
from asterisk_cti.events import Event
from asterisk_cti.ivr import DigitInput, DigitRules, IvrCall, IvrEngine, IvrFlow
from asterisk_cti.sim import AriSimulator, scenarios
from asterisk_cti.sim.console import serve
from asterisk_cti.sim.media import DTMF_GAP
from asterisk_cti.tools.demo import BILLING_IVR, billing_ivr
from tests.call_events import CallEvents

from .conftest import APP, SPEED, Recorder, filter_lets_ivr_events_through, wait_until

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ivr" / "billing.json"
TRUNK, P, L = "PJSIP/trunk", "PJSIP/1002", "PJSIP/1006"
NOISE = ("talking_started", "talking_stopped", "line_state_changed")


def test_the_packaged_billing_ivr_is_the_example() -> None:
    assert BILLING_IVR.read_bytes() == EXAMPLE.read_bytes()
    assert billing_ivr().start == "account"


def test_ivr_queue_scenario_goes_through_the_ivr_to_the_queue_and_the_agent() -> None:
    with AriSimulator(speed=SPEED, stasis_app=APP, channelvars=True) as sim:
        client = CtiClient(CtiConfig(url=sim.url, username=sim.username,
                                     password=sim.password, app=APP))
        seen = CallEvents()
        client.add_listener(seen)
        client.monitor("PJSIP")
        engine = IvrEngine(client, {"main": billing_ivr()}).start()
        try:
            with client:
                filter_lets_ivr_events_through(sim)
                scenarios.SCENARIOS["ivr_queue"](sim)
                wait_until(lambda: len(seen.kinds(TRUNK, NOISE)) >= 6
                           and len(seen.kinds(L, NOISE)) >= 4,
                           what="the trunk's and 1006's last CTI events")
                assert client.wait_idle(5)
        finally:
            engine.stop(detach=False)
        assert not sim.pbx.channels
    (record,) = engine.history
    assert record.caller_number == scenarios.IVR_CALLER and record.outcome == "done"
    assert record.path == ("menu account", "5 digits", "data:account", "menu main", "key 1",
                           "data:choice", "queue support")
    data = {"account": scenarios.IVR_ACCOUNT, "choice": "billing"}
    assert seen.kinds(TRUNK, NOISE) == ["originated", "established", "queued", "established",
                                 "connection_cleared", "call_cleared"]
    queued = next(e for e in seen.of(TRUNK) if e.kind.value == "queued")
    assert queued.state is ConnectionState.QUEUED and queued.queue == "support"
    assert dict(queued.data) == data
    assert seen.kinds(P, NOISE) == ["delivered", "connection_cleared", "call_cleared"]
    assert seen.kinds(L, NOISE) == ["delivered", "established", "connection_cleared",
                                    "call_cleared"]
    for line in (P, L):
        delivered = next(e for e in seen.of(line) if e.kind.value == "delivered")
        assert delivered.calling.number == scenarios.IVR_CALLER
        assert delivered.queue == "support" and dict(delivered.data) == data


def test_ivr_queue_without_an_ivr_fails_with_a_clear_error() -> None:
    with AriSimulator(speed=SPEED, stasis_app="nobody-here") as sim, \
            pytest.raises(scenarios.ScenarioError, match="no IVR is connected"):
        scenarios.ivr_queue(sim)


def test_serve_says_when_ivr_queue_has_no_ivr_and_goes_on() -> None:
    out = io.StringIO()
    stop = threading.Event()
    done = threading.Event()

    def watch() -> None:
        try:
            wait_until(lambda: out.getvalue().count("scenario ivr_queue failed") >= 2,
                       what="two failed rounds")
            done.set()
        finally:
            stop.set()

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        code = serve(out, io.StringIO(), prog="t", port=0, speed=SPEED, stasis_app="cti-ctl",
                     play=["ivr_queue"], stop=stop)
    finally:
        stop.set()
        watcher.join(10)
    assert code == 0 and done.is_set()
    assert "no IVR is connected to the application cti-ctl" in out.getvalue()


class _Collect(IvrFlow):
    def __init__(self) -> None:
        self.got: List[DigitInput] = []

    def run(self, call: IvrCall) -> None:
        self.got.append(call.collect(rules=DigitRules(4, 4, None, 5.0, 3.0)))
        call.hangup()


def test_a_phone_keys_1122_into_an_ivr_collect_as_1122(sim: AriSimulator, cti: CtiClient,
                                                       recorder: Recorder) -> None:
    """Repeated digits keyed on a phone are separate frames (paced :data:`DTMF_GAP`
    apart), so the SDK's duplicate filter keeps both."""
    flow = _Collect()
    stamps: List[Tuple[str, str]] = []

    class Dtmf:
        def on_event(self, event: Event) -> None:
            stamps.append((event.raw["digit"], event.raw["timestamp"]))

    cti.add_raw_listener(Dtmf(), {"ChannelDtmfReceived"})
    with IvrEngine(cti, flow) as engine:
        filter_lets_ivr_events_through(sim)
        sim.phone("1000").dial(sim.pbx.config.ivr_extension)
        wait_until(lambda: engine.active_calls == 1, what="the IVR to take the call")
        sim.phone("1000").dtmf("1122")
        assert engine.wait_idle(5)
    assert flow.got == [DigitInput("1122", "max_digits", True)]
    assert [d for d, _ in stamps] == ["1", "1", "2", "2"]
    assert len({t for _, t in stamps}) == 4  # four distinct frames


def test_phone_digits_are_paced_and_a_second_keying_follows_the_first(
        sim: AriSimulator) -> None:
    """One digit at once, the next ones DTMF_GAP simulated seconds apart; digits keyed while
    earlier ones are still being sent come after them (feature codes included)."""
    sim.phone("1000").dial("1002")
    sim.phone("1002").wait_ringing()
    sim.phone("1002").answer()
    ch = sim.pbx.channels[sim.phone("1000").channel_id or ""]
    sent: List[str] = []
    original = sim.pbx.chan_event

    def spy(etype: str, channel: object, *args: object, **kw: object) -> None:
        if etype == "ChannelDtmfReceived" and channel is ch:
            sent.append(dict(args[0])["digit"])  # type: ignore[call-overload]
        original(etype, channel, *args, **kw)  # type: ignore[arg-type]

    sim.pbx.chan_event = spy  # type: ignore[method-assign]
    sim.phone("1000").dtmf("12")
    sim.phone("1000").dtmf("3")
    assert sent == ["1"]  # the others wait for their turn
    wait_until(lambda: len(sent) == 3, timeout=5, what="the paced digits")
    assert sent == ["1", "2", "3"]
    assert DTMF_GAP == 0.25
    sim.phone("1000").hangup()
