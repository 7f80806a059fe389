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
