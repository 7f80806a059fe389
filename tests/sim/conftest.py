"""Fixtures for the simulator tests: a running simulator and recording ARI clients."""

from __future__ import annotations

import base64
import json
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest
import requests
import websocket

from asterisk_cti.sim import AriSimulator
from tests.conftest import traces_dir

#: The ``ari`` fixture: ``ari(method, path, **params)`` -> the response.
Ari = Callable[..., requests.Response]


REC_SOURCES = "endpoint:PJSIP/1000,endpoint:PJSIP/1002,endpoint:PJSIP/1006"


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Wait on a condition with a deadline (polls; never a bare sleep in a test)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


class Recorder:
    """A real websocket-client connection that records every frame on its own thread."""

    def __init__(self, sim: AriSimulator, apps: str, subscribe_all: bool = False) -> None:
        self.sim = sim
        self.apps = apps
        token = base64.b64encode(f"{sim.username}:{sim.password}".encode()).decode()
        url = f"{sim.ws_url}?app={apps}&subscribeAll={'true' if subscribe_all else 'false'}"
        self.ws = websocket.create_connection(
            url, header=[f"Authorization: Basic {token}"], timeout=5
        )
        self.events: List[Dict[str, Any]] = []
        self.closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-recorder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                text = self.ws.recv()
                if not text:
                    break
                self.events.append(json.loads(text))
        except Exception:
            pass
        finally:
            self.closed.set()

    def count(self, app: str) -> int:
        return sum(1 for e in self.events if e.get("application") == app)

    def settle(self, timeout: float = 5.0) -> None:
        """Wait until every frame the simulator sent to our apps has arrived."""
        names = self.apps.split(",")
        wait_for(
            lambda: all(self.count(a) >= self.sim.delivered(a) for a in names),
            timeout,
            f"events for {self.apps}",
        )

    def close(self) -> None:
        try:
            self.ws.close(timeout=1)
        except Exception:
            pass
        self._thread.join(5)


@pytest.fixture
def traces() -> Path:
    return traces_dir()


@pytest.fixture
def sim() -> Iterator[AriSimulator]:
    s = AriSimulator(speed=25, boot_time=0.3).start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def ari(sim: AriSimulator) -> Ari:
    session = requests.Session()
    session.auth = (sim.username, sim.password)

    def call(
        method: str, path: str, json_body: Optional[Dict[str, Any]] = None, **params: Any
    ) -> requests.Response:
        return session.request(
            method, f"{sim.url}/ari{path}", params=params, json=json_body, timeout=5
        )

    yield call
    session.close()


@pytest.fixture
def recorders(
    sim: AriSimulator, ari: Callable[..., requests.Response]
) -> Iterator[Dict[str, Recorder]]:
    """``rec``: cti-rec (endpoint subscriptions) + cti-ctl on one socket; ``all``: cti-all."""
    rec = Recorder(sim, "cti-rec,cti-ctl")
    wait_for(lambda: "cti-rec" in sim.pbx.apps, what="cti-rec registered")
    assert ari("POST", "/applications/cti-rec/subscription", eventSource=REC_SOURCES).ok
    allrec = Recorder(sim, "cti-all", subscribe_all=True)
    wait_for(lambda: "cti-all" in sim.pbx.apps, what="cti-all registered")
    yield {"rec": rec, "all": allrec}
    rec.close()
    allrec.close()
