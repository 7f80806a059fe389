"""Call data and QUEUED end to end: the simulator (with the lab's channelvars) -> a client ->
the CTI events a listener receives."""

from __future__ import annotations

from typing import Iterator

import pytest

from asterisk_cti import CtiClient, CtiConfig
from asterisk_cti.model import ConnectionState
from asterisk_cti.sim import AriSimulator
from tests.call_events import CallEvents

K, P, L = "PJSIP/1000", "PJSIP/1002", "PJSIP/1006"
DATA = {"account": "4711", "choice": "billing"}


@pytest.fixture
def sim() -> Iterator[AriSimulator]:
    with AriSimulator(speed=20, channelvars=True) as s:
        yield s


def _client(sim: AriSimulator, rec: CallEvents) -> CtiClient:
    config = CtiConfig(url=sim.url, username=sim.username, password=sim.password,
                       app=sim.pbx.config.stasis_app)
    cti = CtiClient(config)
    cti.add_listener(rec)
    cti.monitor(K, P, L)
    return cti


def test_queue_call_with_data_from_the_dialplan(sim: AriSimulator) -> None:
    rec = CallEvents()
    with _client(sim, rec) as cti:
        assert cti.wait_idle(5)
        sim.phone("1000").dial(sim.pbx.config.queue_data_extension)
        queued = rec.wait("queued", K)
        assert queued.queue == "support" and dict(queued.data) == DATA
        for line in (P, L):
            delivered = rec.wait("delivered", line)
            assert delivered.queue == "support" and dict(delivered.data) == DATA
            assert delivered.calling.number == "1000"
        sim.phone("1006").wait_ringing()
        sim.phone("1006").answer()
        established = rec.wait("established", K)
        assert established.previous_state is ConnectionState.QUEUED
        assert established.connected.number == "1006" and dict(established.data) == DATA
        agent = rec.wait("established", L)
        assert agent.queue == "support" and dict(agent.data) == DATA
        sim.phone("1000").hangup()
        rec.wait("call_cleared", L)
        assert rec.kinds(K)[:3] == ["originated", "queued", "established"]
        assert cti.stats()["model"]["call_data_errors"] == 0


def test_caller_hangs_up_while_queued(sim: AriSimulator) -> None:
    rec = CallEvents()
    with _client(sim, rec) as cti:
        assert cti.wait_idle(5)
        sim.phone("1000").dial(sim.pbx.config.queue_extension)
        rec.wait("queued", K)
        line = cti.line(K)
        assert line is not None and line.connections[0].state is ConnectionState.QUEUED
        assert line.connections[0].queue == "support"
        rec.wait("delivered", P)
        sim.phone("1000").hangup()
        cleared = rec.wait("connection_cleared", K)
        assert cleared.previous_state is ConnectionState.QUEUED
        for line_name in (K, P, L):
            rec.wait("call_cleared", line_name)
        assert rec.kinds(K) == ["originated", "queued", "connection_cleared", "call_cleared"]


def test_data_set_through_call_control_shows_on_the_next_events(sim: AriSimulator) -> None:
    """control.set_call_data on a call in the application: the server-side filter keeps
    ChannelVarset away, so call control tells the model in order with the events; the next
    events of every line of the call carry it, and the snapshots too."""
    for ext in ("1000", "1002"):
        sim.phone(ext).auto_answer = 0.05
    rec = CallEvents()
    with _client(sim, rec) as cti:
        call = cti.control.originate(K, "1002", wait_for="established", timeout=10)
        rec.wait("established", P)
        assert cti.wait_idle(5)
        cti.control.set_call_data(call, {"ticket": "T-1"})
        # the held event is the first one that must carry the data
        cti.control.hold(call)
        held = rec.wait("held", K)
        assert dict(held.data) == {"ticket": "T-1"}
        snap = cti.model.connection(call.channel_id) if cti.model else None
        assert snap is not None and dict(snap.data) == {"ticket": "T-1"}
        peer = cti.line(P)
        assert peer is not None and dict(peer.connections[0].data) == {"ticket": "T-1"}
        found = cti.model.find_call(held.call_id) if cti.model else None
        assert found is not None and dict(found.data) == {"ticket": "T-1"}
        cti.control.hangup(call, timeout=10)
        cleared = rec.wait("call_cleared", P)
        assert dict(cleared.data) == {"ticket": "T-1"}


def test_trunk_caller_to_the_queue_with_data(sim: AriSimulator) -> None:
    """An outside caller (not on a monitored line: no connection of its own) calls the
    queue-with-data extension: the agents ring with the data (their own channels inherited
    it). The queue's name is not known: Asterisk publishes app_queue's Dial on the caller's
    topic only, and the client does not receive the trunk channel's events."""
    rec = CallEvents()
    with _client(sim, rec) as cti:
        assert cti.wait_idle(5)
        sim.trunk_call("+33123456789", sim.pbx.config.queue_data_extension)
        for line in (P, L):
            delivered = rec.wait("delivered", line)
            assert delivered.queue == "" and dict(delivered.data) == DATA
            assert delivered.calling.number == "+33123456789"
        sim.phone("1002").wait_ringing()
        sim.phone("1002").answer()
        answered = rec.wait("established", P)
        assert dict(answered.data) == DATA
        sim.phone("1002").hangup()
        rec.wait("call_cleared", P)
        assert rec.kinds(K) == []
