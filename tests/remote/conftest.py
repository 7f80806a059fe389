"""Desktop clients (RemoteClient) against a real mosquitto (the fixtures of tests/server),
a CtiServer and the embedded simulator; a broker that can be stopped and started again on
the same port; and a check that no paho network thread outlives a test."""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional, Tuple

import pytest

from asterisk_cti import (
    CallEvent,
    CallListener,
    ConnectionEvent,
    ConnectionListener,
    CtiConfig,
    LineSnapshotEvent,
)
from asterisk_cti.remote import RemoteClient, RemoteConfig
from asterisk_cti.server import CtiServer, write_mosquitto_config
from asterisk_cti.sim import AriSimulator

from ..mqtt_fixtures import free_port as _free_port
from ..mqtt_fixtures import mosquitto_path as _mosquitto
from ..server import conftest as _server
from ..server.conftest import PASSWORDS, SITE, Broker, site_config

# the real mosquitto of tests/server, and its agents' plain MQTT clients
broker = _server.broker
agents = _server.agents


@pytest.fixture
def sim() -> Iterator[AriSimulator]:
    with AriSimulator(speed=20) as s:
        for ext in ("1000", "1002", "1006"):
            s.phone(ext).auto_answer = True
        yield s


def cti_config(sim: AriSimulator) -> CtiConfig:
    return CtiConfig(url=sim.url, username=sim.username, password=sim.password, app="cti-srv")


@pytest.fixture
def server(broker: Broker, sim: AriSimulator) -> Iterator[CtiServer]:
    with CtiServer(broker.config, cti_config(sim)) as s:
        yield s


class Recorder(CallListener, ConnectionListener):
    """Every callback, in order, into a queue (lane and notice threads)."""

    def __init__(self) -> None:
        self.items: queue.Queue[Tuple[str, Any]] = queue.Queue()
        self.seen: List[Tuple[str, Any]] = []
        self.threads: List[str] = []

    def _put(self, name: str, event: Any) -> None:
        self.threads.append(threading.current_thread().name)
        self.items.put((name, event))

    def on_line_snapshot(self, event: LineSnapshotEvent) -> None:
        self._put("snapshot", event)

    def on_call_event(self, event: CallEvent) -> None:
        self._put("event", event)

    def on_held(self, event: CallEvent) -> None:
        self._put("on_held", event)

    def on_connected(self, event: ConnectionEvent) -> None:
        self._put("connected", event)

    def on_disconnected(self, event: ConnectionEvent) -> None:
        self._put("disconnected", event)

    def wait(self, pred: Callable[[str, Any], bool], timeout: float = 15.0) -> Any:
        """The next item matching ``pred`` (earlier ones are kept in ``seen``)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching callback in {timeout}s; seen {self.seen}")
            try:
                name, event = self.items.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append((name, event))
            if pred(name, event):
                return event

    def first(self, pred: Callable[[str, Any], bool], timeout: float = 15.0) -> Any:
        """The first item matching ``pred``, seen already or still to come."""
        for name, event in self.seen:
            if pred(name, event):
                return event
        return self.wait(pred, timeout)

    def event(self, kind: str, line: Optional[str] = None, timeout: float = 15.0) -> CallEvent:
        return self.wait(lambda n, e: n == "event" and e.kind.value == kind
                         and (line is None or e.line == line), timeout)


def remote_config(port: int, agent: str, *lines: str, **more: Any) -> RemoteConfig:
    return RemoteConfig(site=SITE, agent=agent, password=PASSWORDS[agent], broker_port=port,
                        lines=lines or (f"PJSIP/{agent}",), reconnect_min=1,
                        reconnect_max=1, **more)


@pytest.fixture
def desk(broker: Broker) -> Iterator[Callable[..., Tuple[RemoteClient, Recorder]]]:
    """``desk(agent, *lines)``: a started RemoteClient with a Recorder added first."""
    made: List[RemoteClient] = []

    def make(agent: str, *lines: str, **more: Any) -> Tuple[RemoteClient, Recorder]:
        client = RemoteClient(remote_config(broker.port, agent, *lines, **more))
        made.append(client)
        rec = Recorder()
        client.add_listener(rec)
        client.start()
        return client, rec

    yield make
    for c in made:
        assert c.stop(), "a remote client's thread did not stop"


class Mosquitto:
    """A mosquitto that can be stopped and started again on the same port (for broker loss
    tests); its configuration is the generated one of tests/server."""

    def __init__(self, folder: Path) -> None:
        self.port = _free_port()
        self.config = site_config(self.port)
        self.files = write_mosquitto_config(folder / "broker", self.config, PASSWORDS,
                                            port=self.port,
                                            run_as="root" if os.geteuid() == 0 else None)
        self.log = folder / "mosquitto.log"
        self.proc: Optional[subprocess.Popen[bytes]] = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([_mosquitto(), "-c", str(self.files.conf)],
                                         stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"mosquitto exited: {self.log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"mosquitto did not listen: {self.log.read_text()}")
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()  # as a crash would: no goodbye to anyone
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    m = Mosquitto(tmp_path)
    m.start()
    try:
        yield m
    finally:
        m.stop()
