"""High availability: a standby with the same settings takes over when the active server
dies, calls in progress survive (Asterisk keeps them in the application's bridge), and
never two servers are active. Real mosquitto, the embedded simulator."""

from __future__ import annotations

import dataclasses
import time
from contextlib import ExitStack
from typing import Any, Callable, Iterator, List

import pytest

from asterisk_cti.server import CtiServer, ServerConfig
from asterisk_cti.sim import AriSimulator
from tests.mqtt_fixtures import TcpProxy

from .conftest import SITE, Agent, Broker, cti_config

MakeAgent = Callable[..., Agent]
APP = "cti-ha"




def _ha_config(broker: Broker) -> ServerConfig:
    # a short keepalive and takeover delay keep the tests quick; the defaults are 10 s / 2 s
    return dataclasses.replace(broker.config, keepalive=2, takeover_delay=1.5, settle=0.3)


@pytest.fixture
def servers(broker: Broker, sim: AriSimulator) -> Iterator[Callable[..., CtiServer]]:
    made: List[CtiServer] = []

    def make(**changes: Any) -> CtiServer:
        server = CtiServer(dataclasses.replace(_ha_config(broker), **changes), cti_config(sim, APP))
        made.append(server)
        return server.start()

    yield make
    for s in made:
        s.stop()


def _status(agent: Agent) -> Callable[[str, Any], bool]:
    return lambda t, p: t.endswith("/server/status")


def _in_bridge(sim: AriSimulator, *channel_ids: str) -> bool:
    with sim.pbx.lock:
        chans = [sim.pbx.channels.get(c) for c in channel_ids]
        return all(c is not None and c.bridge is not None and c.stasis_app == APP
                   for c in chans)


def test_standby_takes_over_a_crashed_active_with_the_call_intact(
        servers: Callable[..., CtiServer], agents: MakeAgent, sim: AriSimulator) -> None:
    first = servers()
    assert first.role == "active"
    second = servers(settle=1.5)  # a claim long enough for a desktop's request to come in it
    assert second.role == "standby" and not second.clients  # no ARI app while standby
    agent = agents("1000")
    assert agent.subscribe(f"cti/{SITE}/server/status") == [1]
    _, status, _, _ = agent.wait(_status(agent))
    assert status["status"] == "online" and status["instance"] == first.instance
    assert agent.subscribe(f"cti/{SITE}/line/1000/#") == [1]
    call = agent.request({"version": 1, "op": "originate", "line": "PJSIP/1000",
                          "destination": "1002"})
    assert call["ok"], call
    mine, theirs = call["result"]["connection_id"], call["result"]["peer_connection_id"]
    assert _in_bridge(sim, mine, theirs)

    first.crash()  # its socket closes without DISCONNECT: the broker publishes its will
    died = time.monotonic()
    _, will, _, _ = agent.wait(lambda t, p: t.endswith("/server/status")
                               and p["status"] == "offline")
    assert will["instance"] == first.instance
    agent.wait(lambda t, p: t.endswith("/server/status") and p["status"] == "online"
               and p["instance"] == second.instance)
    # a desktop acts as soon as it hears "online" (the new server is still settling its
    # claim, then starts its clients): the request waits for it, it is not refused
    # (found on the lab)
    early = agent.request({"version": 1, "op": "hold", "connection_id": mine})
    assert early["ok"], early
    assert agent.request({"version": 1, "op": "retrieve", "connection_id": mine})["ok"]
    assert second.wait_active(10)
    took = time.monotonic() - died
    assert took < 5.0, took
    # the call stayed up in the application's bridge while nobody watched
    assert _in_bridge(sim, mine, theirs)
    # the new active re-read it from Asterisk and published it, controllable from its first
    # snapshot on (it adopted the bridge before publishing: found on the lab)
    _, state, _, _ = agent.wait(lambda t, p: t.endswith("/state") and any(
        c["connection_id"] == mine for c in p["connections"]))
    (conn,) = [c for c in state["connections"] if c["connection_id"] == mine]
    assert conn["phone_state"] == "connected"
    assert "hold" in conn["actions"]["allowed"], conn["actions"]
    # and controls it
    held = agent.request({"version": 1, "op": "hold", "connection_id": mine})
    assert held["ok"], held
    agent.wait(lambda t, p: t.endswith("/events") and p["kind"] == "held")
    assert agent.request({"version": 1, "op": "retrieve", "connection_id": mine})["ok"]
    # the new active adopted the bridge: when the far end hangs up, it ends the agent's leg
    # and destroys the bridge, as the first one would have
    sim.phone("1002").hangup()
    agent.wait(lambda t, p: t.endswith("/events") and p["kind"] == "connection_cleared")
    assert _gone(sim, mine)
    assert first.activations == 1 and second.activations == 1


def _gone(sim: AriSimulator, channel_id: str, timeout: float = 10.0) -> bool:
    """Wait (a condition, with a deadline) until the channel and every bridge are gone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sim.pbx.lock:
            if channel_id not in sim.pbx.channels and not sim.pbx.bridges:
                return True
        time.sleep(0.02)
    return False


def test_the_standby_never_takes_over_a_live_active(
        servers: Callable[..., CtiServer], agents: MakeAgent) -> None:
    first = servers()
    second = servers()
    agent = agents("1000")
    assert agent.subscribe(f"cti/{SITE}/server/status") == [1]
    agent.wait(lambda t, p: p.get("instance") == first.instance and p["status"] == "online")
    # the standby's own connection drops: it carries no will, the status does not move
    second.drop_broker_connection()
    # the active's connection drops (a blip): its will fires, it reconnects within the
    # takeover delay and says online again; the standby stays a standby
    first.drop_broker_connection()
    agent.wait(lambda t, p: p["status"] == "offline" and p["instance"] == first.instance)
    agent.wait(lambda t, p: p["status"] == "online" and p["instance"] == first.instance)
    assert not second.wait_active(2.0)
    assert first.role == "active" and second.role == "standby"
    assert (first.activations, second.activations) == (1, 0)
    # even the standby's crash leaves the status alone: it carries no will
    second.crash()
    assert agent.request({"version": 1, "op": "explode"})["error"]["type"] == \
        "BadRequestError"  # the active still serves
    assert first.role == "active"
    # nothing the standby said reached the status topic
    assert all(item[1].get("instance") != second.instance for item in list(
        agent.messages.queue))


def test_one_of_two_standbys_takes_over(servers: Callable[..., CtiServer],
                                        agents: MakeAgent) -> None:
    first = servers()
    others = [servers(), servers()]
    assert [s.role for s in others] == ["standby", "standby"]
    first.crash()
    deadline = time.monotonic() + 10
    while not any(s.role == "active" for s in others):  # a condition, with a deadline
        assert time.monotonic() < deadline, [s.role for s in others]
        others[0].wait_active(0.05)
    winner = next(s for s in others if s.role == "active")
    loser = next(s for s in others if s is not winner)
    assert loser.wait_standby(10)
    assert winner.role == "active" and not loser.clients
    agent = agents("1000")
    assert agent.subscribe(f"cti/{SITE}/server/status") == [1]
    _, status, _, _ = agent.wait(lambda t, p: True)
    assert status["status"] == "online" and status["instance"] == winner.instance


def test_an_active_that_loses_the_broker_steps_down(
        servers: Callable[..., CtiServer], broker: Broker, sim: AriSimulator) -> None:
    server = servers(fence_timeout=1.0)
    assert server.clients
    with sim.pbx.lock:
        assert sim.pbx.apps[APP].sink is not None
    broker.stop()
    lost = time.monotonic()
    while server.role == "active":  # fencing: a condition with a deadline
        assert time.monotonic() - lost < 6, "the active did not step down"
        server.wait_standby(0.05)
    assert not server.clients
    with sim.pbx.lock:  # its ARI websocket is closed: no application held any more
        assert sim.pbx.apps[APP].sink is None


def test_restarting_the_only_server_keeps_the_call_and_controls_it(
        broker: Broker, sim: AriSimulator, agents: MakeAgent) -> None:
    agent = agents("1000")
    assert agent.subscribe(f"cti/{SITE}/line/1000/events") == [1]
    with ExitStack() as stack:
        server = stack.enter_context(CtiServer(_ha_config(broker), cti_config(sim, APP)))
        call = agent.request({"version": 1, "op": "originate", "line": "PJSIP/1000",
                              "destination": "1002"})
        assert call["ok"], call
    assert server.role == "stopped"
    mine, theirs = call["result"]["connection_id"], call["result"]["peer_connection_id"]
    assert _in_bridge(sim, mine, theirs)  # a clean stop leaves the call up
    with CtiServer(_ha_config(broker), cti_config(sim, APP)):
        assert agent.request({"version": 1, "op": "hold", "connection_id": mine})["ok"]
        agent.wait(lambda t, p: p.get("kind") == "held")
        assert agent.request({"version": 1, "op": "hangup", "connection_id": mine})["ok"]
        agent.wait(lambda t, p: p.get("kind") == "connection_cleared")
        assert _gone(sim, theirs)  # the adopted bridge's call ended as a whole


def test_a_call_that_ended_on_one_side_while_no_server_ran_is_ended(
        broker: Broker, sim: AriSimulator, agents: MakeAgent) -> None:
    agent = agents("1000")
    with CtiServer(_ha_config(broker), cti_config(sim, APP)):
        call = agent.request({"version": 1, "op": "originate", "line": "PJSIP/1000",
                              "destination": "1002"})
        assert call["ok"], call
    mine = call["result"]["connection_id"]
    sim.phone("1002").hangup()  # nobody watches: Asterisk leaves 1000 alone in the bridge
    assert not _gone(sim, mine, timeout=0.3)
    with CtiServer(_ha_config(broker), cti_config(sim, APP)):
        assert _gone(sim, mine)  # adopted, found over, ended


def test_a_partitioned_active_is_fenced_and_the_two_never_take_turns(
        broker: Broker, sim: AriSimulator, agents: MakeAgent) -> None:
    """The active server loses the broker but not Asterisk: the standby takes over (its
    websocket replaces the application's), the old one steps down at its fence timeout
    without taking the application back, and rejoins as a standby when the network heals."""
    proxy = TcpProxy(broker.port)
    agent = agents("1000")
    assert agent.subscribe(f"cti/{SITE}/server/status") == [1]
    old = CtiServer(dataclasses.replace(_ha_config(broker), broker_port=proxy.port,
                                        fence_timeout=6.0), cti_config(sim, APP))
    new = CtiServer(_ha_config(broker), cti_config(sim, APP))
    try:
        old.start()
        new.start()
        assert (old.role, new.role) == ("active", "standby")
        call = agent.request({"version": 1, "op": "originate", "line": "PJSIP/1000",
                              "destination": "1002"})
        assert call["ok"], call
        proxy.cut()  # the broker sees the connection close: the old active's will fires
        assert new.wait_active(10)
        with sim.pbx.lock:
            sink = sim.pbx.apps[APP].sink  # the new active's websocket holds the application
        assert old.role == "active"  # still fencing: it cannot know yet
        deadline = time.monotonic() + 10
        while old.role == "active":  # steps down at its fence timeout
            assert time.monotonic() < deadline
            old.wait_standby(0.05)
        assert not old.clients
        with sim.pbx.lock:  # the old client never took the application back
            assert sim.pbx.apps[APP].sink is sink
        proxy.restore()
        assert old.wait_standby(15)  # back on the broker: the status names the new active
        assert new.role == "active" and (old.activations, new.activations) == (1, 1)
        with sim.pbx.lock:
            assert sim.pbx.apps[APP].sink is sink
        # the call crossed all of it and the new active controls it
        mine = call["result"]["connection_id"]
        assert _in_bridge(sim, mine, call["result"]["peer_connection_id"])
        assert agent.request({"version": 1, "op": "hangup", "connection_id": mine})["ok"]
        assert _gone(sim, mine)
    finally:
        old.stop()
        new.stop()
        proxy.close()
