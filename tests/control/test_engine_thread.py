"""Where the switch acts: on call control's own thread, never on the processor or a lane."""

from __future__ import annotations

import re
import threading
from typing import Any, Callable, List, Tuple, cast

import pytest

from asterisk_cti.control.calls import CallControl, ControlOptions
from asterisk_cti.testing.fake_ari import RecordedRequest

from .conftest import Pbx


def test_a_slow_switch_request_never_holds_the_processor(pbx: Pbx,
                                                         control: CallControl) -> None:
    release = threading.Event()
    entered = threading.Event()
    threads: List[str] = []

    @pbx.fake.route("POST", r"/channels/(?P<id>[^/]+)/ring")
    def slow_ring(req: RecordedRequest, m: re.Match[str]) -> Tuple[int, None]:
        threads.append(threading.current_thread().name)
        entered.set()
        assert release.wait(5), "the test never released the ring request"
        return 204, None

    caller = pbx.dialplan_call("PJSIP/1000", "7002", ["dial", "1002"])
    assert entered.wait(5), "the switch never asked for ringback"
    # While Asterisk sits on the switch's request, events of other lines keep flowing
    # through the client's processor.
    other = pbx.observed_channel("PJSIP/1006")
    assert pbx.seen.wait_for(lambda raw: raw.get("channel", {}).get("id") == other, 5), (
        "the processor was held by call control's request")
    release.set()
    pbx.idle()
    assert threads == ["asterisk-cti-control"]
    (bridge,) = pbx.bridges
    assert caller in pbx.bridges[bridge]


def test_the_control_thread_serves_a_burst_in_order_and_then_ends() -> None:
    from asterisk_cti.control.engine import SerialRunner

    runner = SerialRunner("asterisk-cti-control-test", linger=0.2)
    seen: List[Tuple[int, int]] = []
    for i in range(200):
        runner.submit(lambda i=i: seen.append((i, threading.get_ident())))
    assert runner.wait_idle(5)
    assert [i for i, _ in seen] == list(range(200))
    # one thread for the whole burst, not one per job
    assert len({ident for _, ident in seen}) == 1
    (thread,) = [t for t in threading.enumerate() if t.name == "asterisk-cti-control-test"]
    thread.join(5)
    assert not thread.is_alive(), "the runner's thread outlived its linger"


def test_the_tap_hands_the_control_thread_only_what_the_switch_acts_on(
        pbx: Pbx, control: CallControl, monkeypatch: pytest.MonkeyPatch) -> None:
    from asterisk_cti.control.engine import _ACTED_ON, ENGINE_EVENT_TYPES

    engine = control._engine
    queued: List[str] = []
    submit = engine._runner.submit

    def spy(job: Callable[[], None]) -> None:
        queued.append(cast(Any, job).args[0].type)
        submit(job)

    monkeypatch.setattr(engine._runner, "submit", spy)
    caller = pbx.dialplan_call("PJSIP/1000", "7002", ["dial", "1002"])
    pbx.idle()
    (bridge,) = pbx.bridges
    assert caller in pbx.bridges[bridge]  # the switch still did its work
    types_seen = {raw["type"] for raw in pbx.seen.events}
    # the call's channels changed state and entered the bridge: recorded, never queued
    assert {"ChannelStateChange", "ChannelEnteredBridge"} <= types_seen
    assert queued and set(queued) <= _ACTED_ON
    assert "StasisStart" in queued
    assert set(ENGINE_EVENT_TYPES) - _ACTED_ON >= {"ChannelStateChange", "ChannelEnteredBridge"}
    # a plain StasisStart with the switch off and no plan or leg is not the switch's
    first = list(queued)
    queued.clear()
    control.configure(ControlOptions(dial_timeout=5, switch=False))
    plain = pbx.dialplan_call("PJSIP/1006", "7002", ["dial", "1002"])
    pbx.idle()
    assert "StasisStart" not in queued
    # a Dial whose peer is no leg of the SDK, leaving a bridge the SDK did not make: the
    # switch would do nothing with them, so they stay on the processor
    other = pbx.observed_channel("PJSIP/1005")
    pbx.emit("Dial", caller=pbx.chan(plain), peer=pbx.chan(other), dialstatus="RINGING")
    pbx.emit("ChannelLeftBridge", channel=pbx.chan(plain),
             bridge={"id": "foreign", "technology": "simple_bridge", "channels": []})
    assert pbx.seen.wait_for(lambda raw: raw["type"] == "ChannelLeftBridge")
    pbx.idle()
    assert "Dial" not in queued and "ChannelLeftBridge" not in queued
    # while the Dial of a leg still reaches the switch (the end of an SDK bridge: the
    # teardown tests of test_switch.py)
    assert "Dial" in first


def test_the_end_of_a_channel_reaches_the_switch_only_when_it_acts_on_it(
        pbx: Pbx, control: CallControl, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = control._engine
    queued: List[Tuple[str, str]] = []
    submit = engine._runner.submit

    def spy(job: Callable[[], None]) -> None:
        raw = cast(Any, job).args[0].raw
        chan = raw.get("channel") or raw.get("peer") or {}
        queued.append((raw["type"], chan.get("id", "")))
        submit(job)

    monkeypatch.setattr(engine._runner, "submit", spy)
    # a channel in the application that the switch has nothing to do with (not its
    # argument, no plan, leg or bridge of the SDK): none of its events is queued
    plain = pbx.dialplan_call("PJSIP/1006", "7002", ["ivr"])
    pbx.destroy(plain)
    pbx.idle()
    assert not any(cid == plain for _, cid in queued)
    # the switch's caller hangs up before the control thread even saw its StasisStart:
    # its end still reaches the switch, which cancels the leg it dialled meanwhile
    pbx.behaviour["PJSIP/1002"] = "ring"
    gate = threading.Event()
    submit(lambda: assert_released(gate))
    caller = pbx.dialplan_call("PJSIP/1000", "1002", ["dial"])
    pbx.destroy(caller)
    assert pbx.seen.wait_for(
        lambda raw: raw["type"] == "ChannelDestroyed" and raw["channel"]["id"] == caller)
    gate.set()
    pbx.idle()
    assert [t for t, cid in queued if cid == caller] == [
        "StasisStart", "StasisEnd", "ChannelDestroyed"]
    (callee,) = [r.params["channelId"] for r in pbx.originates()
                 if r.params.get("originator") == caller]
    assert callee not in pbx.channels, "the leg of a gone caller rings on"
    assert not pbx.bridges


def assert_released(gate: threading.Event) -> None:
    assert gate.wait(5), "the test never released the control thread"
