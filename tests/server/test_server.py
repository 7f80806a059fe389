"""CtiServer on the embedded simulator, through a real mosquitto with the generated rights."""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Iterator, Optional

import pytest

from asterisk_cti import ConnectError
from asterisk_cti.server import CtiServer, ServerConfig
from asterisk_cti.sim import AriSimulator

from .conftest import SITE, Agent, Broker, cti_config

MakeAgent = Callable[..., Agent]




@pytest.fixture
def server(broker: Broker, sim: AriSimulator) -> Iterator[CtiServer]:
    with CtiServer(broker.config, cti_config(sim, "cti-srv")) as s:
        yield s


def _is(kind: str, line: Optional[str] = None) -> Callable[[str, Any], bool]:
    return lambda topic, p: (topic.endswith("/events") and p.get("kind") == kind
                             and (line is None or p.get("line") == line))


def test_agent_gets_its_line_events_and_retained_snapshot(
        server: CtiServer, agents: MakeAgent) -> None:
    # the server publishes the first snapshot once its client has synchronised
    probe = agents("1000")
    assert probe.subscribe(f"cti/{SITE}/line/1000/state") == [1]
    probe.wait(lambda t, p: t.endswith("/state"))
    # an agent that subscribes later gets it at once, retained, before any call
    agent = agents("1000")
    assert agent.subscribe(f"cti/{SITE}/line/1000/#") == [1]
    topic, snap, _, retained = agent.wait(lambda t, p: t.endswith("/state"))
    assert topic == f"cti/{SITE}/line/1000/state" and retained
    assert snap["version"] == 1 and snap["line"] == "PJSIP/1000"
    assert snap["phone_state"] == "idle" and snap["connections"] == []

    answer = agent.request({"version": 1, "op": "originate", "line": "PJSIP/1000",
                            "destination": "1002"})
    assert answer["ok"], answer
    _, est, _, _ = agent.wait(_is("established", "PJSIP/1000"))
    assert est["version"] == 1 and est["connection_id"] == answer["result"]["connection_id"]
    assert est["called"]["number"] == "1002" and est["direction"] == "outgoing"
    for key in ("call_id", "state", "phone_state", "calling", "connected", "cause", "reason",
                "timestamp"):
        assert key in est
    # once the broker holds the connected state, a later subscriber gets it first, retained
    agent.wait(lambda t, p: t.endswith("/state") and p["phone_state"] == "connected")
    late = agents("1000")
    assert late.subscribe(f"cti/{SITE}/line/1000/state") == [1]
    _, snap, _, retained = late.wait(lambda t, p: True)
    assert retained and snap["connections"][0]["phone_state"] == "connected"
    assert snap["connections"][0]["connection_id"] == est["connection_id"]


def test_agent_holds_its_own_call_but_not_another_agents(
        server: CtiServer, agents: MakeAgent, sim: AriSimulator) -> None:
    a1000, a1002 = agents("1000"), agents("1002")
    assert a1000.subscribe(f"cti/{SITE}/line/1000/events") == [1]
    call = a1000.request({"version": 1, "op": "originate", "line": "PJSIP/1000",
                          "destination": "1002"})
    assert call["ok"], call
    mine, theirs = call["result"]["connection_id"], call["result"]["peer_connection_id"]
    assert a1000.request({"version": 1, "op": "hold", "connection_id": mine}) == {
        "version": 1, "ok": True, "result": {"connection_id": mine}}
    a1000.wait(_is("held", "PJSIP/1000"))
    # 1002's leg of the same call is not on 1000's line: the server refuses, typed
    refused = a1000.request({"version": 1, "op": "hangup", "connection_id": theirs})
    assert not refused["ok"] and refused["error"]["type"] == "AccessDeniedError"
    # nor may 1000 dial from 1002's line
    refused = a1000.request({"version": 1, "op": "originate", "line": "PJSIP/1002",
                             "destination": "1000"})
    assert refused["error"]["type"] == "AccessDeniedError"
    assert a1002.request({"version": 1, "op": "hangup", "connection_id": theirs})["ok"]
    a1000.wait(_is("connection_cleared", "PJSIP/1000"))


def test_bad_requests_get_typed_errors(server: CtiServer, agents: MakeAgent) -> None:
    agent = agents("1000")
    assert agent.request({"version": 1, "op": "explode"})["error"]["type"] == \
        "BadRequestError"
    assert agent.request({"version": 7, "op": "hold"})["error"]["type"] == "BadRequestError"
    assert agent.request({"version": 1, "op": "hold"})["error"]["type"] == "BadRequestError"
    assert agent.request({"version": 1, "op": "hold", "connection_id": "nope"})[
        "error"]["type"] == "AccessDeniedError"


def test_broker_refuses_other_agents_subscriptions(server: CtiServer,
                                                   agents: MakeAgent) -> None:
    agent = agents("1000")
    # dynamic security: MQTT 5 SUBACK reason code 0x87, not authorized
    assert agent.subscribe(f"cti/{SITE}/line/1002/#") == [0x87]
    assert agent.subscribe(f"cti/{SITE}/line/1002/state") == [0x87]
    assert agent.subscribe(f"cti/{SITE}/agent/1002/response") == [0x87]
    assert agent.subscribe(f"cti/{SITE}/agent/1000/request") == [0x87]
    assert agent.subscribe(f"cti/{SITE}/#") == [0x87]
    assert agent.subscribe("#") == [0x87]
    assert agent.subscribe(f"cti/{SITE}/line/1000/events") == [1]
    assert agent.subscribe(f"cti/{SITE}/server/status") == [1]


@pytest.mark.parametrize("broker", ["dynsec", "acl_file"], indirect=True)
def test_broker_never_delivers_other_agents_topics(server: CtiServer,
                                                  agents: MakeAgent, broker: Broker) -> None:
    """Whatever 1000 manages to subscribe to, it receives its own line and nothing of
    1002's (nor its retained state, nor 1002's responses). mosquitto's acl_file grants every
    SUBSCRIBE and checks read rights per message; dynamic security refuses the SUBSCRIBE."""
    a1000, sup = agents("1000"), agents("sup")
    wide = f"cti/{SITE}/#" if broker.mode == "acl_file" else f"cti/{SITE}/line/+/events"
    assert a1000.subscribe(wide) == ([1] if broker.mode == "acl_file" else [0x87])
    assert a1000.subscribe(f"cti/{SITE}/line/1000/#") == [1]
    for line in ("1000", "1002"):
        assert sup.subscribe(f"cti/{SITE}/line/{line}/#") == [1]
    call = a1000.request({"version": 1, "op": "originate", "line": "PJSIP/1000",
                          "destination": "1002"})
    assert call["ok"], call
    assert a1000.request({"version": 1, "op": "hangup",
                          "connection_id": call["result"]["connection_id"]})["ok"]
    sup.wait(_is("connection_cleared", "PJSIP/1002"))
    # a barrier: the broker handled every 1002 message before this round trip
    assert a1000.request({"version": 1, "op": "explode"})["error"]["type"] == \
        "BadRequestError"
    seen = list(a1000.topics)
    assert any("/line/1000/" in t for t in seen)
    assert not [t for t in seen if "/1002/" in t], seen


def test_broker_drops_requests_on_another_agents_topic(server: CtiServer,
                                                       agents: MakeAgent) -> None:
    a1000, a1002 = agents("1000"), agents("1002")
    assert a1002.subscribe(f"cti/{SITE}/agent/1002/response") == [1]
    # 1000 publishes as if it were 1002: the broker drops it, the server never answers 1002
    a1000.client.publish(f"cti/{SITE}/agent/1002/request",
                         '{"version": 1, "op": "explode"}', qos=1).wait_for_publish(5)
    # barrier: 1002's own request is answered, and it is the only response 1002 got
    own = a1002.request({"version": 1, "op": "explode"})
    assert own["error"]["type"] == "BadRequestError"
    assert a1002.responses.empty() and a1002.topics == [f"cti/{SITE}/agent/1002/response"]


def test_supervisor_sees_and_controls_every_line(server: CtiServer,
                                                 agents: MakeAgent) -> None:
    a1000, sup = agents("1000"), agents("sup")
    assert sup.subscribe(f"cti/{SITE}/line/1002/#") == [1]
    call = a1000.request({"version": 1, "op": "originate", "line": "PJSIP/1000",
                          "destination": "1002"})
    assert call["ok"], call
    sup.wait(_is("established", "PJSIP/1002"))
    answer = sup.request({"version": 1, "op": "hangup",
                          "connection_id": call["result"]["peer_connection_id"]})
    assert answer["ok"], answer
    sup.wait(_is("connection_cleared", "PJSIP/1002"))


def test_wrong_credentials_are_refused(server: CtiServer, agents: MakeAgent,
                                       broker: Broker, sim: AriSimulator,
                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    intruder = agents("1000", "not-the-password")
    assert intruder.connect_code.is_failure
    assert int(intruder.connect_code.value) in (0x86, 0x87)  # bad user/password, not authorized
    nobody = agents("mallory", "x")
    assert nobody.connect_code.is_failure
    wrong = ServerConfig(site=SITE, broker_port=broker.port, broker_password="Zq9-bad-secret",
                         connect_timeout=3)
    bad = CtiServer(wrong, cti_config(sim, "cti-srv"))
    started = time.monotonic()
    with pytest.raises(ConnectError) as info:
        bad.start()
    assert time.monotonic() - started < 2.5  # the CONNACK's refusal, not the 3 s timeout
    assert "Not authorized" in str(info.value) or "password" in str(info.value)
    assert "Zq9" not in str(info.value) and "Zq9" not in repr(bad)
    assert "Zq9" not in caplog.text and "secret" not in caplog.text
    assert "secret" not in broker.log.read_text()


def test_liveness_and_last_will(server: CtiServer, agents: MakeAgent) -> None:
    agent = agents("1000")
    assert agent.subscribe(f"cti/{SITE}/server/status") == [1]
    _, status, _, retained = agent.wait(lambda t, p: t.endswith("/server/status"))
    assert retained and status["status"] == "online" and status["version"] == 1
    server.drop_broker_connection()
    _, will, _, _ = agent.wait(lambda t, p: p.get("status") == "offline")
    assert will["server"] == "server"
    # paho reconnects: the server says online again
    agent.wait(lambda t, p: p.get("status") == "online")
    server.stop()
    _, bye, _, _ = agent.wait(lambda t, p: p.get("status") == "offline")
    assert bye["status"] == "offline"
