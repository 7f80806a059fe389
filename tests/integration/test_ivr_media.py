"""The IVR's ARI facts on a real Asterisk 22, compared with the simulator: a prompt played to
the end, digits keyed on a phone (RFC 4733) while a prompt plays, a sound that does not exist,
and the caller hanging up during a prompt.

The call is originated into the client's application with ``appArgs=ivr,main`` (the lab's
IVR number 5000 is exercised by ``test_ivr_lab.py``); the phone answers by itself.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable, Dict, List, Tuple

from asterisk_cti import CtiClient, CtiConfig
from asterisk_cti.events import Event
from asterisk_cti.ivr import (
    CallerHangupError,
    DigitInput,
    DigitRules,
    IvrCall,
    IvrEngine,
    IvrFlow,
    QueueTarget,
)
from asterisk_cti.sim import AriSimulator

from .conftest import CtiFactory
from .lab import Lab, Phone

Step = Tuple[str, str, str]  # (event type, media_uri, state)


class _Flow(IvrFlow):
    def __init__(self) -> None:
        self.stage: queue.Queue[str] = queue.Queue()
        self.result: List[Any] = []

    def run(self, call: IvrCall) -> None:
        try:
            self.result.append(call.play("sound:beep"))
            self.stage.put("collect")
            self.result.append(call.collect("sound:demo-congrats", rules=DigitRules(
                1, 4, "#", 10.0, 5.0)))
            self.result.append(call.play("sound:no-such-sound-here"))
            self.stage.put("long")
            call.play("sound:demo-congrats")
        except CallerHangupError as exc:
            self.result.append(exc)
            raise


class _Playbacks:
    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.events: List[Dict[str, Any]] = []

    def on_event(self, event: Event) -> None:
        with self.lock:
            self.events.append(dict(event.raw))
            self.lock.notify_all()

    def wait_step(self, step: Step, count: int = 1, timeout: float = 20.0) -> None:
        """Block until ``step`` was seen ``count`` times (a lane thread appends)."""
        with self.lock:
            if not self.lock.wait_for(lambda: self.steps().count(step) >= count, timeout):
                raise AssertionError(f"no {step} #{count} within {timeout} s: {self.steps()}")

    def steps(self) -> List[Step]:
        with self.lock:
            return [(e["type"], e["playback"]["media_uri"], e["playback"]["state"])
                    for e in self.events if e["type"].startswith("Playback")]

    def digits(self) -> List[str]:
        with self.lock:
            return [e["digit"] for e in self.events if e["type"] == "ChannelDtmfReceived"]


def _drive(client: CtiClient, originate: Callable[[], None], key: Callable[[str], None],
           hang_up: Callable[[], None]) -> Tuple[_Flow, _Playbacks, IvrEngine]:
    flow = _Flow()
    rec = _Playbacks()
    client.add_raw_listener(rec, {"PlaybackStarted", "PlaybackFinished",
                                  "ChannelDtmfReceived"})
    engine = IvrEngine(client, flow).start()
    try:
        client.start(timeout=15.0)
        originate()
        assert flow.stage.get(timeout=20) == "collect"
        # the digits interrupt the prompt: key them once it plays
        rec.wait_step(("PlaybackStarted", "sound:demo-congrats", "playing"))
        key("12#")
        assert flow.stage.get(timeout=20) == "long"
        # the caller hangs up during the long prompt (the same sound, its second start)
        rec.wait_step(("PlaybackStarted", "sound:demo-congrats", "playing"), count=2)
        hang_up()
        assert engine.wait_idle(20)
        # the hang-up ends the prompt (PlaybackFinished, failed): the engine can be idle
        # (StasisEnd) before that event reached this listener's lane
        rec.wait_step(("PlaybackFinished", "sound:demo-congrats", "failed"))
    finally:
        engine.stop()
    return flow, rec, engine


def test_ivr_media_and_dtmf_on_asterisk_22_match_the_simulator(
        lab: Lab, phones: Dict[str, Phone], cti_factory: CtiFactory) -> None:
    phone = phones["1000"]
    phone.set_auto_answer(True)
    cti = cti_factory(monitor=(), start=False)

    def originate() -> None:
        r = lab.ari("POST", "/channels", params={"endpoint": "PJSIP/1000", "app": cti.app,
                                                 "appArgs": "ivr,main"})
        assert r.status_code == 200, r.text

    flow, rec, engine = _drive(cti.client, originate, phone.send_dtmf, phone.hangup)

    with AriSimulator(speed=5, stasis_app="ivr-cmp") as sim:
        client = CtiClient(CtiConfig(url=sim.url, username=sim.username,
                                     password=sim.password, app="ivr-cmp"))
        ids: List[str] = []
        try:
            sim_flow, sim_rec, _ = _drive(
                client, lambda: ids.append(sim.trunk_call("+331", "5000")),
                lambda d: sim.trunk_dtmf(ids[0], d),
                lambda: sim.admin_client().hangup_call(ids[0]))
        finally:
            client.stop()

    for result in (flow.result, sim_flow.result):
        assert result[0] is True
        assert result[1] == DigitInput("12", "terminator", True)
        assert result[2] is False  # a sound that does not exist fails
        assert isinstance(result[3], CallerHangupError)
    assert rec.digits() == sim_rec.digits() == ["1", "2", "#"]
    expected = [
        ("PlaybackStarted", "sound:beep", "playing"),
        ("PlaybackFinished", "sound:beep", "done"),
        ("PlaybackStarted", "sound:demo-congrats", "playing"),
        ("PlaybackFinished", "sound:demo-congrats", "done"),   # stopped by the first digit
        ("PlaybackStarted", "sound:no-such-sound-here", "playing"),
        ("PlaybackFinished", "sound:no-such-sound-here", "failed"),
        ("PlaybackStarted", "sound:demo-congrats", "playing"),
    ]
    assert rec.steps()[:7] == expected, rec.steps()
    assert sim_rec.steps()[:7] == expected, sim_rec.steps()
    # the caller's hang-up ends the playing prompt as Asterisk 22 reports it
    assert rec.steps()[7:] == sim_rec.steps()[7:], (rec.steps(), sim_rec.steps())
    lab_keys = {tuple(sorted(e["playback"])) for e in rec.events if "playback" in e}
    sim_keys = {tuple(sorted(e["playback"])) for e in sim_rec.events if "playback" in e}
    assert lab_keys == sim_keys
    assert engine.history[0].outcome == "caller hung up"


def test_ivr_call_data_goes_with_the_caller_to_the_queue_and_its_agents(
        lab: Lab, phones: Dict[str, Phone], cti_factory: CtiFactory) -> None:
    """The IVR sets the call data on the caller's channel and continues it to the lab's
    ``support`` queue: the agents' ringing channels inherit ``CTI_DATA``."""
    phones["1000"].set_auto_answer(True)
    for ext in ("1002", "1006"):
        phones[ext].set_auto_answer(False)
    cti = cti_factory(monitor=(), start=False)

    class ToQueue(IvrFlow):
        def run(self, call: IvrCall) -> None:
            call.set_data(account="12345", choice="billing")
            call.route_to_queue("support")

    queues = {"support": QueueTarget("from-internal", lab.config.queue_exten)}
    engine = IvrEngine(cti.client, ToQueue(), queues=queues).start()
    try:
        cti.client.start(timeout=15.0)
        r = lab.ari("POST", "/channels", params={"endpoint": "PJSIP/1000", "app": cti.app,
                                                 "appArgs": "ivr,main"})
        assert r.status_code == 200, r.text
        caller = r.json()["id"]
        phones["1002"].wait_for("incoming", timeout=15)
        assert engine.wait_idle(10)
        assert engine.history[0].path == ("data:account,choice", "queue support")
        channels = lab.ari("GET", "/channels").json()
        agents = [c["id"] for c in channels if c["name"].startswith(("PJSIP/1002-",
                                                                       "PJSIP/1006-"))]
        assert agents
        for cid in [caller, *agents]:
            value = lab.ari("GET", f"/channels/{cid}/variable",
                            params={"variable": "CTI_DATA"}).json()["value"]
            assert value == "account=12345&choice=billing", cid
        assert cti.control.call_data(agents[0]) == {"account": "12345", "choice": "billing"}
    finally:
        engine.stop()
        phones["1000"].hangup()
