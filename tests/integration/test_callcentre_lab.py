"""The call centre on a real Asterisk 22: a real mosquitto (Debian package) with the generated
rights, a :class:`~asterisk_cti.server.CtiServer` owning the lab's Stasis application (the
switch of ``7XXX``), and desktop :class:`~asterisk_cti.remote.RemoteClient` s per agent.

Proves issue 14's "Done means" on the PBX: each desk sees only its own line (in the server's
order, after the retained snapshot); agent 1000 holds, transfers and conferences its call
through the server; the broker refuses 1000 the topics of 1002 and the server refuses it the
control of 1002's call; wrong credentials and an unverifiable broker certificate are refused;
a crashed active server is replaced by its standby with the call still up and controllable;
the PBX sees one application whatever the number of desktops.

With ``ASTERISK_CTI_CC_OBSERVED=FILE`` the tests append what they observed (each desk's
event sequence, the takeover time) to ``FILE`` (the material of docs/callcentre.rst).
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import select
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from asterisk_cti import (
    CallEvent,
    ConnectionState,
    CtiConfig,
    Reason,
    TlsVerificationError,
)
from asterisk_cti.control import Action
from asterisk_cti.remote import BrokerRefusedError, RemoteClient, RemoteConfig
from asterisk_cti.server import (
    AccessDeniedError,
    AgentRights,
    BrokerTlsError,
    CtiServer,
    ServerConfig,
    write_mosquitto_config,
)

from ..call_events import CallEvents, kind_and_id
from ..conftest import REPO
from ..mqtt_fixtures import TlsFiles, free_port, make_tls, running_mosquitto
from ..remote.conftest import Recorder
from .calls import NOISE, assert_in_order
from .conftest import _drop_application
from .lab import Lab, Phone

SITE = "lab"
K, P, L = "PJSIP/1000", "PJSIP/1002", "PJSIP/1006"
PASSWORDS = {"1000": "pw-lab-1000", "1002": "pw-lab-1002", "1006": "pw-lab-1006",
             "sup": "pw-lab-sup"}
SERVER_PASSWORD = "pw-lab-server"
#: an operation's wait on an event or a callback (seconds)
WAIT = 15.0


def _observe(title: str, lines: List[str]) -> None:
    """Append an observation to ``$ASTERISK_CTI_CC_OBSERVED`` (when set)."""
    target = os.environ.get("ASTERISK_CTI_CC_OBSERVED")
    if not target:
        return
    with open(target, "a", encoding="utf-8") as out:
        out.write(f"{title}\n" + "".join(f"   {line}\n" for line in lines) + "\n")


def site_config(port: int, tls: Optional[TlsFiles] = None) -> ServerConfig:
    config = ServerConfig(
        site=SITE, broker_port=port, broker_password=SERVER_PASSWORD, name="lab",
        agents={"1000": AgentRights((K,)), "1002": AgentRights((P,)),
                "1006": AgentRights((L,)), "sup": AgentRights((K, P, L), supervisor=True)})
    if tls is not None:
        config = dataclasses.replace(config, broker_tls=True, broker_ca_file=str(tls.ca_cert))
    return config


@dataclasses.dataclass
class Broker:
    port: int
    config: ServerConfig
    tls: Optional[TlsFiles]


def _broker(tmp_path: Path, tls: Optional[TlsFiles]) -> Iterator[Broker]:
    port = free_port()
    config = site_config(port, tls)
    files = write_mosquitto_config(
        tmp_path / "broker", config, PASSWORDS, port=port,
        run_as="root" if os.geteuid() == 0 else None,
        tls_certfile=tls.server_cert if tls else None,
        tls_keyfile=tls.server_key if tls else None)
    with running_mosquitto(files.conf, port, tmp_path / "mosquitto.log"):
        yield Broker(port, config, tls)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """mosquitto on a free 127.0.0.1 port with the site's generated rights (dynsec)."""
    yield from _broker(tmp_path, None)


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[Broker]:
    """mosquitto whose only listener speaks TLS with a throwaway CA (``broker.tls``)."""
    yield from _broker(tmp_path, make_tls(tmp_path / "tls"))


@pytest.fixture
def lab_phones(lab: Lab, phones: Dict[str, Phone]) -> Dict[str, Phone]:
    """The three phones, idle, on auto-answer (reset before and after the test)."""
    for phone in phones.values():
        phone.set_auto_answer(True)
    return phones


ServerFactory = Callable[..., CtiServer]


@pytest.fixture
def servers(lab: Lab, lab_phones: Dict[str, Phone]) -> Iterator[ServerFactory]:
    """``make(broker)``: a started CtiServer of the lab's Stasis application (the switch of
    ``7XXX``); all stopped after the test, their ARI subscriptions dropped."""
    made: List[CtiServer] = []
    ari = lab.ari_config

    def make(broker: Broker, **changes: Any) -> CtiServer:
        config = dataclasses.replace(broker.config, **changes) if changes else broker.config
        server = CtiServer(config, CtiConfig(
            url=ari.url, username=ari.user, password=ari.password, app=lab.config.app,
            reconnect_min=0.2, reconnect_max=2.0, request_timeout=5.0, connect_timeout=5.0))
        made.append(server)
        server.start()
        return server

    try:
        yield make
    finally:
        for server in made:
            server.stop()
        _drop_application(lab, lab.config.app)


Desk = Tuple[RemoteClient, Recorder]
DeskFactory = Callable[..., Desk]


def desk_config(broker: Broker, agent: str, *lines: str, **more: Any) -> RemoteConfig:
    if broker.tls is not None:
        more.setdefault("tls", True)
        more.setdefault("ca_file", str(broker.tls.ca_cert))
    return RemoteConfig(site=SITE, agent=agent, password=more.pop("password", PASSWORDS[agent]),
                        broker_port=broker.port, lines=lines or (f"PJSIP/{agent}",),
                        reconnect_min=1, reconnect_max=1, request_timeout=20.0, **more)


@pytest.fixture
def desks() -> Iterator[Callable[..., Desk]]:
    """``make(broker, agent, *lines, **config)``: a started RemoteClient with a Recorder
    added before start; every one stopped (threads joined) after the test."""
    made: List[RemoteClient] = []

    def make(broker: Broker, agent: str, *lines: str, **more: Any) -> Desk:
        client = RemoteClient(desk_config(broker, agent, *lines, **more))
        made.append(client)
        rec = Recorder()
        client.add_listener(rec)
        client.start()
        return client, rec

    yield make
    stopped = [c.stop() for c in made]
    assert all(stopped), "a desktop client's threads did not stop"


def drain(rec: Recorder) -> List[Tuple[str, Any]]:
    """Every callback the recorder has had so far (moved into ``seen``)."""
    while True:
        try:
            rec.seen.append(rec.items.get_nowait())
        except queue.Empty:
            return list(rec.seen)


def events_of(rec: Recorder) -> List[CallEvent]:
    return [e for n, e in drain(rec) if n == "event"]


def kinds(rec: Recorder) -> List[str]:
    return [e.kind.value for e in events_of(rec) if e.kind.value not in NOISE]


def wait_event(rec: Recorder, kind: str, line: str, timeout: float = WAIT) -> CallEvent:
    """The first ``kind`` event of ``line`` the desk got, seen already or still to come."""
    event: CallEvent = rec.first(lambda n, e: n == "event" and e.kind.value == kind
                                 and e.line == line, timeout)
    return event


def call_up(desk1000: Desk, desk1002: Desk, phones: Dict[str, Phone]) -> Tuple[str, str]:
    """Phone 1000 dials 7002 (the switch dials 1002, which answers); both desks see their
    side established. The connection ids of 1000 and 1002."""
    phones["1000"].dial("7002")
    phones["1002"].wait_for("CALL_ESTABLISHED")
    phones["1000"].wait_for("CALL_ESTABLISHED")
    kai = wait_event(desk1000[1], "established", K)
    ping = wait_event(desk1002[1], "established", P)
    return kai.connection_id, ping.connection_id


def channel_up(lab: Lab, channel_id: str) -> bool:
    return lab.ari("GET", f"/channels/{channel_id}").status_code == 200


def _hang_up_both(desk: RemoteClient, connection_id: str, rec1000: Recorder,
                  rec1002: Recorder, phones: Dict[str, Phone]) -> None:
    desk.control.hangup(connection_id)
    phones["1000"].wait_for("CALL_CLOSED")
    phones["1002"].wait_for("CALL_CLOSED")  # the switch ends the two-party call
    wait_event(rec1000, "call_cleared", K)
    wait_event(rec1002, "call_cleared", P)


# -- each desk its own line; the server's order; retained snapshots --------------------------


def test_each_desk_sees_its_own_line_in_order_and_holds_through_the_server(
        broker: Broker, servers: ServerFactory, desks: DeskFactory, lab: Lab,
        lab_phones: Dict[str, Phone]) -> None:
    server = servers(broker)
    assert server.role == "active"
    order = CallEvents()
    server.client.add_listener(order)
    assert server.client.wait_idle()  # both start from the same point (see test_remote)
    c1000, r1000 = desks(broker, "1000")
    c1002, r1002 = desks(broker, "1002")
    for rec, line in ((r1000, K), (r1002, P)):  # the retained snapshot, idle, on connect
        snap = rec.first(lambda n, e: n == "snapshot")
        assert snap.line.name == line and snap.line.is_idle and snap.reason == "connected"
        assert rec.first(lambda n, e: n == "connected").connected

    kai_id, ping_id = call_up((c1000, r1000), (c1002, r1002), lab_phones)
    assert c1000.wait_idle(5.0)
    line1000 = c1000.line(K)
    assert line1000 is not None and line1000.active_connection is not None
    assert line1000.active_connection.connection_id == kai_id
    assert line1000.active_connection.connected.number == "1002"

    # a desk that connects during the call gets the line's current state at once
    _late, late_rec = desks(broker, "1000")
    snap = late_rec.first(lambda n, e: n == "snapshot")
    assert snap.reason == "connected" and snap.line.active_connection is not None
    assert snap.line.active_connection.connection_id == kai_id
    assert snap.line.active_connection.state is ConnectionState.CONNECTED

    c1000.control.hold(kai_id)
    held = wait_event(r1000, "held", K)
    assert held.connection_id == kai_id and held.state is ConnectionState.HOLD
    assert wait_event(late_rec, "held", K).connection_id == kai_id
    assert c1000.wait_idle(5.0)
    conn = c1000.line(K).active_connection  # type: ignore[union-attr]
    assert conn is not None and conn.held
    c1000.control.retrieve(kai_id)
    retrieved = wait_event(r1000, "retrieved", K)
    assert not retrieved.held and retrieved.state is ConnectionState.CONNECTED
    _hang_up_both(c1000, kai_id, r1000, r1002, lab_phones)
    assert c1000.wait_idle(5.0) and c1002.wait_idle(5.0)
    assert c1000.line(K).is_idle  # type: ignore[union-attr]

    expected = {K: ["established", "held", "retrieved", "call_cleared"],
                P: ["delivered", "established", "call_cleared"]}
    observed = []
    for client, rec, name in ((c1000, r1000, K), (c1002, r1002, P)):
        events = events_of(rec)
        assert {e.line for e in events} == {name}, "another line's event reached the desk"
        # every event of the line, in the server's order (noise included)
        assert kind_and_id(events) == kind_and_id(order.of(name))
        assert_in_order(kinds(rec), expected[name], f"desk of {name}")
        assert client.stats()["bad_payloads"] == 0
        observed.append(f"{name}: {' '.join(kinds(rec))}")
    assert {e.connection_id for e in events_of(r1002)} == {ping_id}
    _observe("phone 1000 dials 7002 (switch -> 1002), desk 1000 holds, retrieves, hangs up",
             observed)


# -- transfers and conference through the server ----------------------------------------------


def test_blind_transfer_through_the_server(
        broker: Broker, servers: ServerFactory, desks: DeskFactory, lab: Lab,
        lab_phones: Dict[str, Phone]) -> None:
    servers(broker)
    d1000, d1002, d1006 = (desks(broker, a) for a in ("1000", "1002", "1006"))
    kai_id, ping_id = call_up(d1000, d1002, lab_phones)
    moved = d1000[0].control.transfer(kai_id, "1006", wait_for="established")
    assert moved.call_id
    lab_phones["1000"].wait_for("CALL_CLOSED")
    lab_phones["1006"].wait_for("CALL_ESTABLISHED")
    cleared = wait_event(d1000[1], "connection_cleared", K)
    assert cleared.connection_id == kai_id and cleared.reason == Reason.TRANSFERRED
    lee = wait_event(d1006[1], "established", L)
    assert channel_up(lab, ping_id) and channel_up(lab, lee.connection_id)
    assert d1002[0].wait_idle(5.0) and d1006[0].wait_idle(5.0)
    (ping,) = d1002[0].line(P).connections  # type: ignore[union-attr]
    (lee_conn,) = d1006[0].line(L).connections  # type: ignore[union-attr]
    assert ping.call_id == lee_conn.call_id and ping.state is ConnectionState.CONNECTED
    # 1000 no longer has a call to control; 1006's desk ends the transferred call
    d1006[0].control.hangup(lee.connection_id)
    lab_phones["1002"].wait_for("CALL_CLOSED")
    wait_event(d1002[1], "call_cleared", P)
    wait_event(d1006[1], "call_cleared", L)
    _observe("phone 1000 dials 7002, desk 1000 blind-transfers to 1006, desk 1006 hangs up",
             [f"{n}: {' '.join(kinds(r))}" for n, (_, r) in
              ((K, d1000), (P, d1002), (L, d1006))])


def test_consult_and_conference_through_the_server(
        broker: Broker, servers: ServerFactory, desks: DeskFactory, lab: Lab,
        lab_phones: Dict[str, Phone]) -> None:
    servers(broker)
    d1000, d1002, d1006 = (desks(broker, a) for a in ("1000", "1002", "1006"))
    kai_id, ping_id = call_up(d1000, d1002, lab_phones)
    consult = d1000[0].control.consult(kai_id, "1006", wait_for="established")
    lab_phones["1006"].wait_for("CALL_ESTABLISHED")
    wait_event(d1000[1], "held", K)
    lee = wait_event(d1006[1], "established", L)
    conference = d1000[0].control.conference(kai_id, consult)
    assert conference.bridge_id
    bridge = lab.ari("GET", f"/bridges/{conference.bridge_id}").json()
    names = {lab.ari("GET", f"/channels/{c}").json()["name"].rsplit("-", 1)[0]
             for c in bridge["channels"]}
    assert names == {K, P, L}, bridge
    for rec, line in ((d1000[1], K), (d1002[1], P), (d1006[1], L)):
        wait_event(rec, "conferenced", line)
    # 1000 leaves: 1002 and 1006 stay together
    d1000[0].control.hangup(kai_id)
    lab_phones["1000"].wait_for("CALL_CLOSED")
    wait_event(d1000[1], "call_cleared", K)
    assert channel_up(lab, ping_id) and channel_up(lab, lee.connection_id)
    d1006[0].control.hangup(lee.connection_id)
    lab_phones["1002"].wait_for("CALL_CLOSED")
    wait_event(d1002[1], "call_cleared", P)
    wait_event(d1006[1], "call_cleared", L)
    _observe("phone 1000 dials 7002, desk 1000 consults 1006 and conferences, leaves",
             [f"{n}: {' '.join(kinds(r))}" for n, (_, r) in
              ((K, d1000), (P, d1002), (L, d1006))])


# -- rights: the broker and the server refuse ---------------------------------------------


def _suback(broker: Broker, user: str, topic: str) -> List[int]:
    """Subscribe as ``user`` with a plain MQTT 5 client; the SUBACK's reason codes."""
    acks: queue.Queue[List[int]] = queue.Queue()
    connected: queue.Queue[int] = queue.Queue()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5,
                         client_id=f"lab-probe-{uuid.uuid4().hex[:6]}")
    client.username_pw_set(user, PASSWORDS[user])
    client.on_connect = lambda c, u, f, rc, p: connected.put(int(rc.value))
    client.on_subscribe = lambda c, u, mid, codes, p: acks.put([int(x.value) for x in codes])
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        assert connected.get(timeout=10) == 0
        client.subscribe(topic, qos=1)
        return acks.get(timeout=10)
    finally:
        client.disconnect()
        client.loop_stop()


def test_rights_broker_and_server_refuse_another_agents_line(
        broker: Broker, servers: ServerFactory, desks: DeskFactory, lab: Lab,
        lab_phones: Dict[str, Phone]) -> None:
    servers(broker)
    d1000, d1002 = desks(broker, "1000"), desks(broker, "1002")
    # the broker: SUBACK with a failure reason code (0x87 not authorized) for 1002's topics
    assert _suback(broker, "1000", f"cti/{SITE}/line/1002/#") == [0x87]
    assert _suback(broker, "1000", f"cti/{SITE}/line/+/state") == [0x87]
    assert _suback(broker, "1000", f"cti/{SITE}/line/1000/#") == [1]
    with pytest.raises(AccessDeniedError):
        d1000[0].monitor(P)
    assert P not in d1000[0].monitored
    with pytest.raises(AccessDeniedError):
        desks(broker, "1000", K, P)

    _kai_id, ping_id = call_up(d1000, d1002, lab_phones)
    # the server: 1000 may not control 1002's side of its own call
    for action in (lambda: d1000[0].control.hold(ping_id),
                   lambda: d1000[0].control.hangup(ping_id),
                   lambda: d1000[0].control.transfer(ping_id, "1006")):
        with pytest.raises(AccessDeniedError):
            action()
    assert channel_up(lab, ping_id) and lab_phones["1002"].state == "established", \
        lab_phones["1002"].state
    assert "held" not in kinds(d1002[1])
    # nor originate from another line
    with pytest.raises(AccessDeniedError):
        d1000[0].control.originate(P, "1006")
    _hang_up_both(d1002[0], ping_id, d1000[1], d1002[1], lab_phones)
    assert all(e.line == K for e in events_of(d1000[1]))

    # wrong credentials: a wrong password, an unknown agent
    with pytest.raises(BrokerRefusedError):
        desks(broker, "1000", password="not-the-password")
    with pytest.raises(BrokerRefusedError):
        RemoteClient(dataclasses.replace(desk_config(broker, "1000"),
                                         agent="9999")).start()


# -- TLS -------------------------------------------------------------------------------------


def test_tls_to_the_broker_is_verified(
        tls_broker: Broker, servers: ServerFactory, desks: DeskFactory, lab: Lab,
        lab_phones: Dict[str, Phone]) -> None:
    assert tls_broker.tls is not None
    server = servers(tls_broker)  # the server connects over TLS, trusting the CA
    assert server.role == "active" and server.config.broker_tls
    d1000 = desks(tls_broker, "1000")
    d1002 = desks(tls_broker, "1002")
    assert d1000[0].config.url.startswith("mqtts://")
    assert d1000[1].first(lambda n, e: n == "connected").connected
    kai_id, _ = call_up(d1000, d1002, lab_phones)
    d1000[0].control.hold(kai_id)
    wait_event(d1000[1], "held", K)
    _hang_up_both(d1000[0], kai_id, d1000[1], d1002[1], lab_phones)
    # without the CA (the system's store), or trusting another CA: refused
    with pytest.raises(TlsVerificationError):
        desks(tls_broker, "1000", ca_file=None)
    with pytest.raises(TlsVerificationError):
        desks(tls_broker, "1000", ca_file=str(tls_broker.tls.rogue_ca_cert))
    # a server trusting another CA is refused too (and never reaches Asterisk)
    with pytest.raises(BrokerTlsError):
        servers(tls_broker, broker_ca_file=str(tls_broker.tls.rogue_ca_cert))


# -- high availability -----------------------------------------------------------------------


def test_standby_takes_over_a_crashed_server_with_the_call_intact(
        broker: Broker, servers: ServerFactory, desks: DeskFactory, lab: Lab,
        lab_phones: Dict[str, Phone]) -> None:
    first = servers(broker)
    assert first.role == "active"
    second = servers(broker)
    assert second.role == "standby"
    d1000, d1002 = desks(broker, "1000"), desks(broker, "1002")
    kai_id, ping_id = call_up(d1000, d1002, lab_phones)
    mark = len(drain(d1000[1]))
    heard = {ext: len(phone.events) for ext, phone in lab_phones.items()}

    crashed = time.monotonic()
    first.crash()
    offline = d1000[1].wait(lambda n, e: n == "disconnected", WAIT)
    offline_at = time.monotonic()
    assert "offline" in offline.reason
    online = d1000[1].wait(lambda n, e: n == "connected", WAIT)
    assert online.connected
    back = time.monotonic()
    # the desk acts as soon as it hears the server online (the standby claimed the site and
    # may still be settling the claim or starting its clients): the request waits for it,
    # it is not refused
    d1000[0].control.hold(kai_id)
    assert wait_event(d1000[1], "held", K).connection_id == kai_id
    assert second.wait_active(WAIT), second.role
    active = time.monotonic()
    assert second.activations == 1

    # the call never dropped: both channels up, no phone saw its call close
    assert channel_up(lab, kai_id) and channel_up(lab, ping_id)
    for ext in ("1000", "1002"):
        assert lab_phones[ext].state == "established", (ext, lab_phones[ext].state)
        assert "CALL_CLOSED" not in [e.type for e in lab_phones[ext].events[heard[ext]:]]
    # the new server re-read the line from Asterisk: the desk's snapshot has the call
    snap = d1000[1].first(lambda n, e: n == "snapshot" and e.timestamp > online.timestamp,
                          WAIT)
    assert snap.line.active_connection is not None, snap.line
    assert snap.line.active_connection.connection_id == kai_id
    # and offers its control from that first snapshot on (the bridge adopted first)
    # (held meanwhile by the early request above: retrieve and transfer are offered)
    actions = d1000[0].control.actions(snap.line.active_connection)
    assert actions.can(Action.RETRIEVE) and actions.can(Action.TRANSFER), actions

    d1000[0].control.retrieve(kai_id)
    wait_event(d1000[1], "retrieved", K)
    _hang_up_both(d1000[0], kai_id, d1000[1], d1002[1], lab_phones)
    after = [n if n != "event" else e.kind.value for n, e in d1000[1].seen[mark:]
             if n != "event" or e.kind.value not in NOISE]
    _observe("the active server crashes during a call; the standby takes over", [
        f"desk sees the server offline {offline_at - crashed:.2f} s after the crash",
        f"desk hears the standby online {back - crashed:.2f} s after the crash; the desk's "
        f"hold sent then is done once the standby is active, {active - crashed:.2f} s "
        "after the crash",
        f"desk 1000 from the crash on: {' '.join(after)}"])


# -- one application for the PBX --------------------------------------------------------------


def test_the_pbx_sees_one_application_whatever_the_number_of_desktops(
        broker: Broker, servers: ServerFactory, desks: DeskFactory, lab: Lab,
        lab_phones: Dict[str, Phone]) -> None:
    servers(broker)
    apps_before = sorted(a["name"] for a in lab.ari("GET", "/applications").json())
    made = [desks(broker, agent) for agent in ("1000", "1002", "1006")]
    made.append(desks(broker, "sup", K, P, L))
    for client, rec in made:
        assert rec.first(lambda n, e: n == "connected").connected
        rec.first(lambda n, e: n == "snapshot")
        assert client.lines
    apps = lab.ari("GET", "/applications").json()
    assert sorted(a["name"] for a in apps) == apps_before
    watching = {line: [a["name"] for a in apps if f"{line}" in (a.get("endpoint_ids") or [])]
                for line in (K, P, L)}
    assert watching == {line: [lab.config.app] for line in (K, P, L)}, watching
    _observe("GET /applications with the server and 4 desktops (1000, 1002, 1006, sup)", [
        f"applications: {sorted(a['name'] for a in apps)}",
        f"watching each line: {watching}"])


# -- SIGKILL of an ``asterisk-cti serve`` process ----------------------------------------------


def _first_line(proc: subprocess.Popen[bytes], timeout: float = WAIT) -> str:
    """The next line the process prints, waited for with a deadline."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, f"the serve process printed nothing in {timeout} s"
    return proc.stdout.readline().decode()


def test_sigkill_of_the_active_serve_process_the_standby_keeps_the_call(
        tmp_path: Path, broker: Broker, desks: DeskFactory, lab: Lab,
        lab_phones: Dict[str, Phone]) -> None:
    """Two ``asterisk-cti serve`` processes with the same settings (default HA timings);
    SIGKILL of the active one during a call: the standby takes over, the call stays up and
    the desk controls it through the new server."""
    ari = lab.ari_config
    config = tmp_path / "server.json"
    config.write_text(json.dumps({
        "site": SITE, "broker": f"mqtt://127.0.0.1:{broker.port}",
        "agents": {a: {"lines": [f"PJSIP/{a}"]} for a in ("1000", "1002", "1006")}}))
    env = dict(os.environ, PYTHONPATH=str(REPO), ASTERISK_CTI_PASSWORD=ari.password,
               ASTERISK_CTI_BROKER_PASSWORD=SERVER_PASSWORD)
    procs: List[subprocess.Popen[bytes]] = []

    def serve(name: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "asterisk_cti.cli", "serve", "--config", str(config),
             "--url", ari.url, "--user", ari.user, "--app", lab.config.app, "--name", name],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=str(REPO))
        procs.append(proc)
        return proc

    try:
        d1000, d1002 = desks(broker, "1000"), desks(broker, "1002")
        east = serve("east")
        assert _first_line(east).startswith("active: serving 3 lines")
        d1000[1].wait(lambda n, e: n == "connected", WAIT)
        west = serve("west")
        assert _first_line(west).startswith("standby: serving 3 lines")
        kai_id, ping_id = call_up(d1000, d1002, lab_phones)
        heard = {ext: len(phone.events) for ext, phone in lab_phones.items()}
        mark = len(drain(d1000[1]))

        killed = time.monotonic()
        east.kill()
        east.wait(10)
        offline = d1000[1].wait(lambda n, e: n == "disconnected", WAIT)
        offline_at = time.monotonic()
        assert "offline" in offline.reason
        d1000[1].wait(lambda n, e: n == "connected", WAIT)
        online_at = time.monotonic()
        # the desk acts as soon as it hears the server online
        d1000[0].control.hold(kai_id)
        held_at = time.monotonic()
        wait_event(d1000[1], "held", K)
        assert _first_line(west).startswith("active (instance west-")
        snap = d1000[1].first(lambda n, e: n == "snapshot" and e.timestamp > offline.timestamp,
                              WAIT)
        assert snap.line.active_connection is not None
        assert snap.line.active_connection.connection_id == kai_id
        actions = d1000[0].control.actions(snap.line.active_connection)
        assert actions.can(Action.RETRIEVE) and actions.can(Action.TRANSFER), actions
        assert channel_up(lab, kai_id) and channel_up(lab, ping_id)
        for ext in ("1000", "1002"):
            assert "CALL_CLOSED" not in [e.type for e in lab_phones[ext].events[heard[ext]:]]

        d1000[0].control.retrieve(kai_id)
        wait_event(d1000[1], "retrieved", K)
        _hang_up_both(d1000[0], kai_id, d1000[1], d1002[1], lab_phones)
        after = [n if n != "event" else e.kind.value for n, e in d1000[1].seen[mark:]
                 if n != "event" or e.kind.value not in NOISE]
        _observe("SIGKILL of the active asterisk-cti serve during a call (default timings)", [
            f"desk sees the server offline {offline_at - killed:.2f} s after the SIGKILL, "
            f"online again (the standby's claim) after {online_at - killed:.2f} s; its hold "
            f"sent then was done {held_at - killed:.2f} s after the SIGKILL",
            f"desk 1000 from the kill on: {' '.join(after)}"])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
            if proc.stdout is not None:
                proc.stdout.close()
        _drop_application(lab, lab.config.app)
