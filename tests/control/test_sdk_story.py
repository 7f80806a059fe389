"""Calls the SDK drives tell the same CSTA story as calls made on the phones, on the
simulator: the exact CTI sequence of every call-control operation at every line (the table
the real-lab test asserts too, ``sdk_scenarios.SDK_EXPECTED``), one ``call_id`` per call, one
call record per call, phone states told by events, and blocking control from a listener with
a single dispatcher worker."""

from __future__ import annotations

import threading
from typing import Any, Iterator, List

import pytest

from asterisk_cti import CallEvent, CtiClient, CtiConfig
from asterisk_cti.model import CallListener
from asterisk_cti.sim import AriSimulator

from .sdk_scenarios import (
    CALLER_PHONE_STATES,
    LINES,
    PATHS,
    PHONE_SCENARIOS,
    SDK_EXPECTED,
    SDK_SCENARIOS,
    CallRecords,
    K,
    L,
    P,
    Recorder,
    SimDrive,
    caller_phone_states,
    click_to_dial,
    run,
    settle,
)

APP = "cti-ctl"  # the simulator's 7XXX extensions go to this application


@pytest.fixture
def sim() -> Iterator[AriSimulator]:
    with AriSimulator(speed=20) as s:
        for ext in ("1000", "1002", "1006"):
            s.phone(ext).auto_answer = True
        yield s


def _client(sim: AriSimulator, **extra: Any) -> CtiClient:
    config = CtiConfig(url=sim.url, username=sim.username, password=sim.password, app=APP,
                       **extra)
    return CtiClient(config)


@pytest.mark.parametrize("name", sorted(SDK_EXPECTED))
def test_each_operation_gives_the_documented_sequence(sim: AriSimulator, name: str) -> None:
    rec = Recorder()
    with _client(sim) as cti:
        cti.add_listener(rec)
        cti.monitor(*LINES)
        start, end = run(SDK_SCENARIOS[name], cti, rec, SimDrive(sim))
        assert rec.sequences(start) == SDK_EXPECTED[name]
        events = [e for e in rec.events[start:end] if e.kind.value != "line_state_changed"]
        # one call id from the first event to the last, at every line
        assert len({e.call_id for e in events}) == 1, {e.call_id for e in events}
        # the connections call control placed or dialled say so; a phone's own call does not
        agent = [e for e in events if e.line == K]
        assert all(e.client_originated for e in agent) is (name != "switch")
        assert all(e.client_originated for e in events if e.line == P)
        assert all(line.is_idle for line in cti.lines)


@pytest.mark.parametrize("driver,name", [
    *(("phones", n) for n in sorted(PHONE_SCENARIOS)),
    *(("sdk", n) for n in sorted(SDK_SCENARIOS)),
])
def test_one_call_record_per_call(sim: AriSimulator, driver: str, name: str) -> None:
    """A logger keyed by call id writes one record per call, naming who placed it."""
    scenario = (PHONE_SCENARIOS if driver == "phones" else SDK_SCENARIOS)[name]
    records = CallRecords()
    rec = Recorder()
    with _client(sim) as cti:
        cti.add_listener(rec)
        cti.monitor(*LINES)
        cti.add_listener(records)
        run(scenario, cti, rec, SimDrive(sim))
    assert records.records() == {next(iter(records.first)): "1000"}, rec.sequences()


def test_blocking_control_inside_a_listener_with_one_worker(sim: AriSimulator) -> None:
    """workers=1: a listener blocks the only lane in transfer(wait_for="established");
    completing it needs no lane (call control's engine runs on the processor thread)."""
    done = threading.Event()
    outcome: List[Any] = []

    class DialOnAnswer(CallListener):
        def __init__(self, cti: CtiClient) -> None:
            self.cti = cti
            self.fired = False

        def on_established(self, event: CallEvent) -> None:
            if self.fired or event.line != K:
                return
            self.fired = True
            try:
                outcome.append(self.cti.control.transfer(event, "1006", wait_for="established",
                                                         timeout=5))
            except Exception as exc:  # reported by the test thread
                outcome.append(exc)
            finally:
                done.set()

    rec = Recorder()
    with _client(sim, workers=1) as cti:
        cti.monitor(*LINES)
        cti.add_listener(rec)
        cti.add_listener(DialOnAnswer(cti))
        start = rec.mark()
        first = cti.control.originate(K, "1002", wait_for="established", timeout=5)
        assert done.wait(15), "the listener's originate never returned"
        (second,) = outcome
        assert not isinstance(second, Exception), second
        assert second.controlled and second.bridge_id == first.bridge_id
        rec.wait("established", "PJSIP/1006", start)
        rec.wait("transferred", P, start)
        cti.control.hangup(second.peer_channel_id)
        for line in LINES:
            rec.wait("call_cleared", line, start)


@pytest.mark.parametrize("path", sorted(CALLER_PHONE_STATES))
def test_the_phone_state_of_the_caller_on_each_path(sim: AriSimulator, path: str) -> None:
    """The calling line's phone state, path by path; every change comes with an event."""
    rec = Recorder()
    with _client(sim) as cti:
        cti.add_listener(rec)
        cti.monitor(*LINES)
        start, _ = run(PATHS[path], cti, rec, SimDrive(sim))
        assert caller_phone_states(rec, start) == CALLER_PHONE_STATES[path]


class _LateFrames:
    """The app's websocket frames held back from the first ``ChannelEnteredBridge`` once
    armed, until :meth:`release` (or ``limit`` seconds later, by a timer the test joins): the
    204 of ``addChannel`` then comes back well before the event, as it may on a loaded
    machine. Order is kept (frames queue behind the held one). Sim HTTP threads call
    :meth:`sink`; any thread releases."""

    def __init__(self, sink: Any, limit: float) -> None:
        self._sink = sink
        self._lock = threading.Lock()
        self._held: List[str] = []
        self._holding = False
        self.armed = False
        self.timer = threading.Timer(limit, self.release)

    def sink(self, frame: str) -> None:
        with self._lock:
            if self.armed and not self._holding and '"ChannelEnteredBridge"' in frame:
                self._holding = True
                self.timer.start()
            if self._holding:
                self._held.append(frame)
                return
        self._sink(frame)

    def release(self) -> None:
        with self._lock:
            self.armed = self._holding = False
            held, self._held = self._held, []
            for frame in held:
                self._sink(frame)


def test_conference_retrieves_the_holder_only_after_the_parties_entered(
        sim: AriSimulator) -> None:
    """The model hears of call control's retrieve through the ring, in order with the events
    received so far; were the holder retrieved before the moved parties' ChannelEnteredBridge
    reached the client, its line would tell ``retrieved`` then ``conferenced``. The frames
    are held until the retrieve reached the model (or 1 s): conference() must wait for the
    parties to enter first."""
    rec = Recorder()
    with _client(sim) as cti:
        cti.add_listener(rec)
        cti.monitor(*LINES)
        call, start = click_to_dial(cti, rec)
        consult = cti.control.consult(call, "1006", wait_for="established")
        rec.wait("established", L, start)
        app = sim.pbx.apps[APP]
        late = _LateFrames(app.sink, 1.0)
        app.sink = late.sink
        told = cti.set_held

        def set_held(channel_id: str, held: bool, timeout: float = 5.0) -> None:
            told(channel_id, held, timeout)  # in the ring before the held frames
            if not held:
                late.release()

        cti.set_held = set_held  # type: ignore[method-assign]
        late.armed = True
        try:
            cti.control.conference(call, consult)
        finally:
            late.release()
            late.timer.cancel()
            if late.timer.ident is not None:  # started: it ends at once now
                late.timer.join()
        for line in (K, P, L):
            rec.wait("conferenced", line, start)
        assert [e.kind.value for e in rec.of(K, start)][-3:] == [
            "held", "party_changed", "conferenced"], rec.sequences(start)
        cti.control.hangup(call.channel_id)
        cti.control.hangup(consult.peer_channel_id)
        settle(rec, start, (K, P, L))
