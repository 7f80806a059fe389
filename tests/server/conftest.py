"""A real mosquitto (Debian package) on a free 127.0.0.1 port with the generated rights, and
MQTT 5 subscribers logged in as agents."""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from asterisk_cti import CtiConfig
from asterisk_cti.server import AgentRights, ServerConfig, write_mosquitto_config
from asterisk_cti.sim import AriSimulator
from tests.mqtt_fixtures import TlsFiles, free_port, make_tls, running_mosquitto

SITE = "paris"
PASSWORDS = {"1000": "pw-1000-secret", "1002": "pw-1002-secret", "sup": "pw-sup-secret"}
SERVER_PASSWORD = "pw-server-secret"


@pytest.fixture
def sim() -> Iterator[AriSimulator]:
    """A simulated Asterisk whose phones 1000 and 1002 answer by themselves."""
    with AriSimulator(speed=20) as s:
        for ext in ("1000", "1002"):
            s.phone(ext).auto_answer = True
        yield s


def cti_config(sim: AriSimulator, app: str) -> CtiConfig:
    """The server's ARI settings for a simulator, with its own application name."""
    return CtiConfig(url=sim.url, username=sim.username, password=sim.password, app=app)


def site_config(port: int) -> ServerConfig:
    return ServerConfig(
        site=SITE, broker_port=port, broker_password=SERVER_PASSWORD,
        agents={"1000": AgentRights(("PJSIP/1000",)), "1002": AgentRights(("PJSIP/1002",)),
                "sup": AgentRights(("PJSIP/1000", "PJSIP/1002"), supervisor=True)})


@dataclass
class Broker:
    port: int
    config: ServerConfig
    log: Path
    mode: str
    #: the TLS material when the listener speaks TLS (``tls_broker``)
    tls: Optional[TlsFiles] = None
    proc: Optional[subprocess.Popen[bytes]] = None

    def stop(self) -> None:
        """Stop the broker now (a broker outage); the fixture's exit is then a no-op."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def _broker(tmp_path: Path, mode: str, tls: Optional[TlsFiles],
            make_config: Callable[[int], ServerConfig] = site_config,
            passwords: Dict[str, str] = PASSWORDS,
            client_certs: bool = False) -> Iterator[Broker]:
    port = free_port()
    config = make_config(port)
    if tls is not None:
        config = dataclasses.replace(config, broker_tls=True, broker_ca_file=str(tls.ca_cert))
    files = write_mosquitto_config(
        tmp_path / "broker", config, passwords, port=port, mode=mode,
        run_as="root" if os.geteuid() == 0 else None,
        tls_certfile=tls.server_cert if tls else None,
        tls_keyfile=tls.server_key if tls else None,
        tls_client_ca=tls.ca_cert if tls and client_certs else None)
    log = tmp_path / "mosquitto.log"
    with running_mosquitto(files.conf, port, log) as proc:
        yield Broker(port, config, log, mode, tls, proc)


@pytest.fixture
def broker(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Broker]:
    """mosquitto with the generated config (rights mode ``dynsec``, or the test's indirect
    parameter); stopped (and waited for) after the test."""
    yield from _broker(tmp_path, getattr(request, "param", "dynsec"), None)


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[Broker]:
    """mosquitto whose only listener speaks TLS with a throwaway CA (``broker.tls``); its
    ``config`` connects with ``mqtts`` and trusts that CA."""
    yield from _broker(tmp_path, "dynsec", make_tls(tmp_path / "tls"))


@pytest.fixture
def mtls_broker(tmp_path: Path) -> Iterator[Broker]:
    """Like ``tls_broker``, and the broker requires a client certificate signed by its CA."""
    yield from _broker(tmp_path, "dynsec", make_tls(tmp_path / "tls"), client_certs=True)


class Agent:
    """An MQTT 5 client logged in as an agent; messages land in a queue (paho's thread)."""

    def __init__(self, port: int, user: str, password: str,
                 tls: Optional[TlsFiles] = None) -> None:
        self.user = user
        self._responses = False
        self.messages: queue.Queue[Tuple[str, Dict[str, Any], Optional[bytes], bool]] = \
            queue.Queue()
        self.responses: queue.Queue[Tuple[str, Dict[str, Any], Optional[bytes], bool]] = \
            queue.Queue()
        #: every topic received, in order (paho's thread appends)
        self.topics: List[str] = []
        self.acks: queue.Queue[Tuple[int, List[int]]] = queue.Queue()
        self.connects: queue.Queue[Any] = queue.Queue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"agent-{user}-{uuid.uuid4().hex[:6]}",
                                  protocol=mqtt.MQTTv5)
        self.client.username_pw_set(user, password)
        if tls is not None:
            self.client.tls_set(ca_certs=str(tls.ca_cert))
        self.client.on_connect = lambda c, u, f, rc, p: self.connects.put(rc)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda c, u, mid, codes, p: self.acks.put(
            (mid, [int(code.value) for code in codes]))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.connect_code = self.connects.get(timeout=10)

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        corr = getattr(msg.properties, "CorrelationData", None)
        item = (msg.topic, json.loads(msg.payload), corr, bool(msg.retain))
        self.topics.append(msg.topic)
        (self.responses if msg.topic.endswith("/response") else self.messages).put(item)

    def subscribe(self, topic: str) -> List[int]:
        """Subscribe; the SUBACK's reason codes (0/1 granted, >= 0x80 refused)."""
        _, mid = self.client.subscribe(topic, qos=1)
        got_mid, codes = self.acks.get(timeout=10)
        assert got_mid == mid
        if codes == [1] and topic == f"cti/{SITE}/agent/{self.user}/response":
            self._responses = True
        return codes

    def wait(self, pred: Callable[[str, Dict[str, Any]], bool],
             timeout: float = 10.0) -> Tuple[str, Dict[str, Any], Optional[bytes], bool]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"agent {self.user}: no matching message in {timeout}s")
            try:
                item = self.messages.get(timeout=left)
            except queue.Empty:
                continue
            if pred(item[0], item[1]):
                return item

    def request(self, body: Dict[str, Any], timeout: float = 30.0) -> Dict[str, Any]:
        """Publish an MQTT 5 request and wait for the response with its correlation data."""
        if not self._responses:
            assert self.subscribe(f"cti/{SITE}/agent/{self.user}/response") == [1]
            self._responses = True
        corr = uuid.uuid4().bytes
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = f"cti/{SITE}/agent/{self.user}/response"
        props.CorrelationData = corr
        self.client.publish(f"cti/{SITE}/agent/{self.user}/request", json.dumps(body), qos=1,
                            properties=props)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"agent {self.user}: no response in {timeout}s")
            try:
                _, payload, got, _ = self.responses.get(timeout=left)
            except queue.Empty:
                continue
            if got == corr:
                return payload

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def agents(broker: Broker) -> Iterator[Callable[[str, Optional[str]], Agent]]:
    made: List[Agent] = []

    def make(user: str, password: Optional[str] = None) -> Agent:
        agent = Agent(broker.port, user, password if password is not None else PASSWORDS[user],
                      broker.tls)
        made.append(agent)
        return agent

    yield make
    for a in made:
        a.close()
