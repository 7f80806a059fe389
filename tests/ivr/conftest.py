"""Fixtures of the IVR tests: a simulator whose IVR number enters the client's application, a
client, and a recorder of the playback events the simulator sends."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Tuple

import pytest

from asterisk_cti import CtiClient, CtiConfig
from asterisk_cti.events import Event
from asterisk_cti.sim import AriSimulator

APP = "ivr-test"
#: Fast enough that a 1 s prompt lasts 20 ms, slow enough that a 30 s one can be interrupted.
SPEED = 50.0


def wait_until(cond: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    """Wait for ``cond`` (checked on a condition variable's short ticks), fail on timeout."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        tick.wait(0.005)


def filter_lets_ivr_events_through(sim: AriSimulator) -> None:
    """Wait until the application's server-side event filter (re-installed by the client's
    processor after the engine added its types) lets the IVR's events through."""
    def ready() -> bool:
        with sim.pbx.lock:
            app = sim.pbx.apps.get(APP)
            return app is not None and all(
                app.wants(t) for t in ("ChannelDtmfReceived", "PlaybackFinished"))
    wait_until(ready, what="the event filter to let DTMF and playbacks through")


class Recorder:
    """A raw listener keeping the playback and DTMF events of every channel."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: List[Tuple[str, Dict[str, Any]]] = []

    def on_event(self, event: Event) -> None:
        with self.lock:
            self.events.append((event.type, dict(event.raw)))

    def media(self, etype: str = "PlaybackStarted") -> List[str]:
        with self.lock:
            return [str(raw["playback"]["media_uri"]) for t, raw in self.events if t == etype]

    def finished(self) -> List[Dict[str, Any]]:
        with self.lock:
            return [raw["playback"] for t, raw in self.events if t == "PlaybackFinished"]


@pytest.fixture
def sim() -> Iterator[AriSimulator]:
    with AriSimulator(speed=SPEED, stasis_app=APP) as s:
        yield s


@pytest.fixture
def cti(sim: AriSimulator) -> Iterator[CtiClient]:
    config = CtiConfig(url=sim.url, username=sim.username, password=sim.password, app=APP)
    with CtiClient(config) as client:
        yield client


@pytest.fixture
def recorder(cti: CtiClient) -> Recorder:
    rec = Recorder()
    cti.add_raw_listener(rec, {"PlaybackStarted", "PlaybackFinished"})
    return rec
