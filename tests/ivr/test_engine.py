"""The IVR engine against the simulator: the billing example, timeouts and retries, invalid
input, digit collection rules, a caller hanging up mid-prompt, concurrent calls, subclassed
flows, the engine stopping."""

from __future__ import annotations

import json
import logging
import queue
import threading
from pathlib import Path
from typing import Any, Dict, List

import pytest

from asterisk_cti import CtiClient
from asterisk_cti.ivr import (
    CallerHangupError,
    DigitInput,
    DigitRules,
    IvrCall,
    IvrEngine,
    IvrFlow,
    QueueTarget,
    load_definition,
    parse_definition,
)
from asterisk_cti.sim import AriSimulator

from .conftest import Recorder, filter_lets_ivr_events_through, wait_until

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ivr" / "billing.json"


def _ivr_threads() -> List[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("asterisk-cti-ivr-")]


def _menu(**overrides: Any) -> Dict[str, Any]:
    """A one-menu definition: 1 sets choice=one and goes to the queue."""
    menu: Dict[str, Any] = {
        "type": "menu", "prompts": ["sound:vm-press"], "timeout": 0.3, "retries": 2,
        "invalid_prompts": ["sound:pm-invalid-option"],
        "timeout_prompts": ["sound:please-try-again"],
        "options": {"1": [{"action": "set_data", "data": {"choice": "one"}},
                          {"action": "queue", "queue": "support"}]},
        "on_failure": [{"action": "set_data", "data": {"result": "failed"}},
                       {"action": "dialplan"}],
    }
    menu.update(overrides)
    return {"queues": {"support": {"context": "from-internal", "extension": "2000"}},
            "menus": {"main": menu}}


def test_account_then_billing_sets_the_call_data_and_queues_the_caller(
        sim: AriSimulator, cti: CtiClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="asterisk_cti.ivr")
    with IvrEngine(cti, {"main": load_definition(EXAMPLE)}) as engine:
        filter_lets_ivr_events_through(sim)
        cid = sim.trunk_call("+33999888777", "5000", "Ada")
        wait_until(lambda: engine.active_calls == 1, what="the IVR to take the call")
        sim.trunk_dtmf(cid, "12345#1")
        # the queue rings its members once the IVR sent the caller there
        assert sim.phone("1002").wait_ringing(5)
        assert engine.wait_idle(5)
        assert cti.control.call_data(cid) == {"account": "12345", "choice": "billing"}
        with sim.pbx.lock:
            ch = sim.pbx.channels[cid]
            assert ch.queued and ch.context == "from-internal"
            assert not ch.in_stasis
        (record,) = engine.history
        assert record.channel_id == cid and record.outcome == "done"
        assert record.path == ("menu account", "5 digits", "data:account", "menu main",
                               "key 1", "data:choice", "queue support")
        assert any("menu account > 5 digits" in r.getMessage() for r in caplog.records)
        assert not any("12345" in r.getMessage() for r in caplog.records)  # no digits logged
        sim.admin_client().hangup_call(cid)


def test_no_digit_replays_with_the_timeout_prompt_then_runs_on_failure(
        sim: AriSimulator, cti: CtiClient, recorder: Recorder) -> None:
    with IvrEngine(cti, parse_definition(_menu())) as engine:
        filter_lets_ivr_events_through(sim)
        cid = sim.trunk_call("+331", "5000")
        assert wait_for_history(engine)
        assert engine.history[0].path == ("menu main", "timeout", "timeout", "timeout",
                                          "failed", "data:result", "dialplan")
        # three attempts; the timeout prompt between them, not after the last
        assert recorder.media() == ["sound:vm-press", "sound:please-try-again"] * 2 + [
            "sound:vm-press"]
        with sim.pbx.lock:  # given back to the dialplan (from-trunk hangs up after Stasis)
            assert cid not in sim.pbx.channels


def wait_for_history(engine: IvrEngine, count: int = 1) -> bool:
    wait_until(lambda: len(engine.history) >= count, 10, "the flow to end")
    return True


def test_invalid_key_plays_the_invalid_prompt_and_asks_again(
        sim: AriSimulator, cti: CtiClient, recorder: Recorder) -> None:
    with IvrEngine(cti, parse_definition(_menu(timeout=5))) as engine:
        filter_lets_ivr_events_through(sim)
        cid = sim.trunk_call("+331", "5000")
        wait_until(lambda: "sound:vm-press" in recorder.media(), what="the menu prompt")
        sim.trunk_dtmf(cid, "9")
        wait_until(lambda: "sound:pm-invalid-option" in recorder.media(),
                   what="the invalid prompt")
        sim.trunk_dtmf(cid, "1")
        assert wait_for_history(engine)
        assert engine.history[0].path == ("menu main", "invalid", "key 1", "data:choice",
                                          "queue support")
        assert cti.control.call_data(cid) == {"choice": "one"}
        sim.admin_client().hangup_call(cid)


class Steps(IvrFlow):
    """A subclassed flow: collects under rules the test sets, one step at a time."""

    def __init__(self, steps: List[Dict[str, Any]]) -> None:
        self.steps = steps
        self.ready: queue.Queue[int] = queue.Queue()
        self.results: List[DigitInput] = []
        self.error: List[BaseException] = []

    def run(self, call: IvrCall) -> None:
        try:
            for i, rules in enumerate(self.steps):
                self.ready.put(i)
                self.results.append(call.collect(rules=DigitRules(**rules)))
            call.set_data(last=self.results[-1].digits or "none")
            call.route_to_queue("support")
        except CallerHangupError as exc:
            self.error.append(exc)
            raise


def test_collect_rules_terminator_min_max_and_timeouts(sim: AriSimulator,
                                                       cti: CtiClient) -> None:
    flow = Steps([
        {"min_digits": 3, "max_digits": 6, "terminator": "#"},           # "12#": too short
        {"min_digits": 1, "max_digits": 3},                               # "1234": max 3
        {"min_digits": 1, "max_digits": 1},                               # the typed-ahead "4"
        {"min_digits": 1, "max_digits": 4, "first_timeout": 0.2},         # nothing
        {"min_digits": 2, "max_digits": 4, "inter_digit_timeout": 0.2},   # "5" then silence
    ])
    queues = {"support": QueueTarget("from-internal", "2000")}
    with IvrEngine(cti, flow, queues=queues) as engine:
        filter_lets_ivr_events_through(sim)
        cid = sim.trunk_call("+331", "5000")
        assert flow.ready.get(timeout=5) == 0
        sim.trunk_dtmf(cid, "12#")
        assert flow.ready.get(timeout=5) == 1
        sim.trunk_dtmf(cid, "1234")
        assert flow.ready.get(timeout=5) == 2
        assert flow.ready.get(timeout=5) == 3
        assert flow.ready.get(timeout=5) == 4
        sim.trunk_dtmf(cid, "5")
        assert wait_for_history(engine)
        assert flow.results == [
            DigitInput("12", "terminator", False),
            DigitInput("123", "max_digits", True),
            DigitInput("4", "max_digits", True),
            DigitInput("", "timeout", False),
            DigitInput("5", "timeout", False),
        ]
        assert cti.control.call_data(cid) == {"last": "5"}
        assert engine.history[0].outcome == "done"
        sim.admin_client().hangup_call(cid)


def test_caller_hanging_up_mid_prompt_stops_the_flow_and_its_thread(
        sim: AriSimulator, cti: CtiClient, recorder: Recorder) -> None:
    raised: List[BaseException] = []

    class Long(IvrFlow):
        def run(self, call: IvrCall) -> None:
            try:
                call.play("sound:demo-congrats")  # 30 s: still playing when the caller leaves
            except CallerHangupError as exc:
                raised.append(exc)
                raise

    with IvrEngine(cti, Long()) as engine:
        filter_lets_ivr_events_through(sim)
        cid = sim.trunk_call("+331", "5000")
        wait_until(lambda: recorder.media() == ["sound:demo-congrats"], what="the prompt")
        assert len(_ivr_threads()) == 1
        sim.admin_client().hangup_call(cid)
        assert wait_for_history(engine)
        assert engine.history[0].outcome == "caller hung up"
        assert isinstance(raised[0], CallerHangupError) and raised[0].channel_id == cid
        # Asterisk ends the playback of a hung-up channel as failed; nothing plays any more
        wait_until(lambda: len(recorder.finished()) == 1, what="PlaybackFinished")
        assert recorder.finished()[0]["state"] == "failed"
        with sim.pbx.lock:
            assert sim.pbx._playbacks() == {}
        assert engine.active_calls == 0
        wait_until(lambda: not _ivr_threads(), what="the call's thread to end")


def test_calls_run_concurrently_and_a_call_beyond_max_calls_goes_back_busy(
        sim: AriSimulator, cti: CtiClient) -> None:
    data: Dict[str, str] = {}

    class CallData:  # what each channel carries, as Asterisk reports the inherited variable
        def on_event(self, event: Any) -> None:
            if event.raw.get("variable") == "__CTI_DATA":
                data[event.raw["channel"]["id"]] = event.raw["value"]

    cti.add_raw_listener(CallData(), {"ChannelVarset"})
    definition = parse_definition(json.loads(EXAMPLE.read_text()))
    with IvrEngine(cti, definition, max_calls=2) as engine:
        filter_lets_ivr_events_through(sim)
        a = sim.trunk_call("+331", "5000")
        b = sim.trunk_call("+332", "5000")
        wait_until(lambda: engine.active_calls == 2, what="two calls in the IVR")
        assert len(_ivr_threads()) == 2
        c = sim.trunk_call("+333", "5000")
        wait_until(lambda: engine.calls_refused == 1, what="the third call refused")
        # IVR_STATUS=BUSY, then from-trunk hangs up after Stasis()
        wait_until(lambda: c not in sim.pbx.channels, what="the third call given back")
        sim.trunk_dtmf(a, "1111#2")
        sim.trunk_dtmf(b, "2222#1")
        wait_until(lambda: len(engine.history) == 2, 10, "both flows to end")
        assert all(r.outcome == "done" and r.path[-1] == "queue support"
                   for r in engine.history)
        assert cti.wait_idle(5)
        assert data[a] == "account=1111&choice=support"
        assert data[b] == "account=2222&choice=billing"
        assert engine.calls_handled == 2
        for cid in (a, b):
            with sim.pbx.lock:
                alive = cid in sim.pbx.channels
            if alive:  # the second caller finds the queue's members busy ringing the first
                sim.admin_client().hangup_call(cid)


def test_a_busy_call_sees_ivr_status_busy(sim: AriSimulator, cti: CtiClient) -> None:
    varsets: queue.Queue[Dict[str, Any]] = queue.Queue()

    class Varsets:
        def on_event(self, event: Any) -> None:
            if event.raw.get("variable") == "IVR_STATUS":
                varsets.put(dict(event.raw))

    cti.add_raw_listener(Varsets(), {"ChannelVarset"})
    hold = threading.Event()

    class Holding(IvrFlow):
        def run(self, call: IvrCall) -> None:
            hold.wait(5)

    with IvrEngine(cti, Holding(), max_calls=1) as engine:
        filter_lets_ivr_events_through(sim)
        sim.trunk_call("+331", "5000")
        wait_until(lambda: engine.active_calls == 1)
        c = sim.trunk_call("+332", "5000")
        got = varsets.get(timeout=5)
        assert got["channel"]["id"] == c and got["value"] == "BUSY"
        hold.set()
        got = varsets.get(timeout=5)  # the first flow returned without sending the call on
        assert got["value"] == "DONE"


def test_stopping_the_engine_gives_calls_back_to_the_dialplan(
        sim: AriSimulator, cti: CtiClient) -> None:
    engine = IvrEngine(cti, parse_definition(_menu(timeout=30))).start()
    filter_lets_ivr_events_through(sim)
    cid = sim.trunk_call("+331", "5000")
    wait_until(lambda: engine.active_calls == 1)
    assert engine.stop(5)
    assert engine.history[0].outcome == "stopped"
    assert not _ivr_threads()
    with sim.pbx.lock:
        assert cid not in sim.pbx.channels or not sim.pbx.channels[cid].in_stasis


def test_an_unknown_flow_name_is_given_back(sim: AriSimulator, cti: CtiClient) -> None:
    with IvrEngine(cti, {"other": parse_definition(_menu())}) as engine:
        filter_lets_ivr_events_through(sim)
        sim.trunk_call("+331", "5000")  # the simulator's IVR number asks for flow "main"
        wait_until(lambda: engine.calls_refused == 1)
        assert engine.calls_handled == 0


def test_non_ivr_dtmf_is_dropped_before_the_lanes(sim: AriSimulator, cti: CtiClient) -> None:
    """A phone's DTMF in the application on another Stasis argument never reaches the IVR."""
    seen: List[str] = []

    class Spy(IvrEngine):
        def on_event(self, event: Any) -> None:
            seen.append(event.type)
            super().on_event(event)

    with Spy(cti, parse_definition(_menu())):
        filter_lets_ivr_events_through(sim)
        for ext in ("1000", "1002"):
            sim.phone(ext).auto_answer = True
        call = cti.control.originate("PJSIP/1000", "1002", wait_for="established", timeout=10)
        sim.phone("1000").dtmf("123")
        cti.control.hangup(call, timeout=10)
        assert cti.wait_idle(5)
    assert "ChannelDtmfReceived" not in seen


def test_play_of_a_sound_that_does_not_exist_returns_false(sim: AriSimulator,
                                                            cti: CtiClient) -> None:
    played: List[bool] = []

    class Missing(IvrFlow):
        def run(self, call: IvrCall) -> None:
            played.append(call.play("sound:no-such-sound"))
            played.append(call.play("sound:beep"))

    with IvrEngine(cti, Missing()) as engine:
        filter_lets_ivr_events_through(sim)
        sim.trunk_call("+331", "5000")
        assert wait_for_history(engine)
    assert played == [False, True]
    assert engine.history[0].outcome == "done"


def test_a_call_sent_back_into_the_ivr_runs_the_flow_again(sim: AriSimulator,
                                                           cti: CtiClient) -> None:
    runs: List[int] = []

    class Again(IvrFlow):
        def run(self, call: IvrCall) -> None:
            runs.append(len(runs))
            if len(runs) == 1:  # the IVR number again: a new StasisStart of the same channel
                call.route_to_extension("5000", "from-internal")
            else:
                call.set_data(rounds="2")
                call.route_to_queue("support")

    queues = {"support": QueueTarget("from-internal", "2000")}
    with IvrEngine(cti, Again(), queues=queues) as engine:
        filter_lets_ivr_events_through(sim)
        cid = sim.trunk_call("+331", "5000")
        wait_until(lambda: len(engine.history) == 2, 10, "two rounds")
        assert [r.channel_id for r in engine.history] == [cid, cid]
        assert [r.path[-1] for r in engine.history] == ["extension 5000@from-internal",
                                                        "queue support"]
        assert cti.control.call_data(cid) == {"rounds": "2"}
        assert engine.wait_idle(5) and engine.active_calls == 0
        sim.admin_client().hangup_call(cid)
