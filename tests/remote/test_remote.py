"""RemoteClient through a real mosquitto and a CtiServer on the embedded simulator: the same
listeners and control as CtiClient, only the agent's own lines, typed refusals."""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, List, Tuple

import pytest

from asterisk_cti import CallStateError, ConnectError, Reason
from asterisk_cti.control import Action, Consultation
from asterisk_cti.remote import BrokerRefusedError, RemoteClient, ServerUnavailableError
from asterisk_cti.server import AccessDeniedError, CtiServer
from asterisk_cti.sim import AriSimulator
from tests.call_events import CallEvents, kind_and_id

from .conftest import Broker, Recorder, remote_config

Desk = Callable[..., Tuple[RemoteClient, Recorder]]


def _snapshot(rec: Recorder) -> Any:
    return rec.first(lambda n, e: n == "snapshot")


def test_sees_its_line_only_in_the_servers_order_after_the_retained_snapshot(
        server: CtiServer, desk: Desk) -> None:
    local = CallEvents()
    server.client.add_listener(local)
    # everything the server's client had received is delivered (to the new listener: from its
    # snapshot on) before the desks subscribe, so that both start from the same point
    assert server.client.wait_idle()
    c1000, r1000 = desk("1000")
    c1002, r1002 = desk("1002")
    first = _snapshot(r1000)
    assert first.line.name == "PJSIP/1000" and first.line.is_idle
    assert first.reason == "connected"
    assert _snapshot(r1002).line.name == "PJSIP/1002"
    r1000.first(lambda n, e: n == "connected")

    call = c1000.control.originate("PJSIP/1000", "1002", wait_for="established")
    assert call.controlled and call.peer_channel_id
    est = r1000.event("established", "PJSIP/1000")
    assert est.connection_id == call.channel_id and est.called.number == "1002"
    r1002.event("established", "PJSIP/1002")
    # the line snapshot is current when the listener gets the event
    line = c1000.line("PJSIP/1000")
    assert line is not None and line.active_connection is not None
    assert line.active_connection.connection_id == call.channel_id
    c1000.control.hangup(call)
    r1000.event("call_cleared", "PJSIP/1000")
    r1002.event("call_cleared", "PJSIP/1002")
    assert c1000.wait_idle() and c1002.wait_idle()

    for client, rec, line_name in ((c1000, r1000, "PJSIP/1000"), (c1002, r1002, "PJSIP/1002")):
        while not rec.items.empty():
            rec.seen.append(rec.items.get())
        events = [e for n, e in rec.seen if n == "event"]
        assert {e.line for e in events} == {line_name}, "another line's event leaked"
        assert kind_and_id(events) == kind_and_id(local.of(line_name))
        assert all(t.startswith("asterisk-cti-remote-") for t in rec.threads)
        assert client.stats()["bad_payloads"] == 0


def test_a_listener_added_later_gets_the_current_state_first(
        server: CtiServer, desk: Desk) -> None:
    c1000, r1000 = desk("1000")
    call = c1000.control.originate("PJSIP/1000", "1002", wait_for="established")
    r1000.event("established")
    late = Recorder()
    c1000.add_listener(late)
    assert late.first(lambda n, e: n == "connected").current
    snap = _snapshot(late)
    assert snap.reason == "listener_added"
    assert snap.line.active_connection.connection_id == call.channel_id
    c1000.control.hangup(call)
    late.event("call_cleared")


def test_hold_retrieve_and_actions(server: CtiServer, desk: Desk) -> None:
    c1000, r1000 = desk("1000")
    call = c1000.control.originate("PJSIP/1000", "1002", wait_for="established")
    r1000.event("established")
    conn = c1000.line("PJSIP/1000").active_connection
    assert c1000.control.actions(conn).can(Action.HOLD)
    c1000.control.hold(conn)
    held = r1000.wait(lambda n, e: n == "on_held")  # the per-kind method too
    assert held.connection_id == call.channel_id
    conn = c1000.line("PJSIP/1000").active_connection
    assert conn.held
    actions = c1000.control.actions(conn)
    assert actions.can(Action.RETRIEVE) and not actions.can(Action.HOLD)
    assert actions.why_not(Action.HOLD)
    c1000.control.retrieve(call)
    r1000.event("retrieved")
    c1000.control.hangup(call)


def test_blind_transfer(server: CtiServer, desk: Desk) -> None:
    c1000, r1000 = desk("1000")
    call = c1000.control.originate("PJSIP/1000", "1002", wait_for="established")
    r1000.event("established")
    moved = c1000.control.transfer(call, "1006", wait_for="established")
    assert moved.call_id and "1006" not in (moved.channel_id or "")
    cleared = r1000.event("connection_cleared")
    assert cleared.reason == Reason.TRANSFERRED


def test_attended_transfer_completed_and_cancelled(server: CtiServer, desk: Desk) -> None:
    c1000, r1000 = desk("1000")
    call = c1000.control.originate("PJSIP/1000", "1002", wait_for="established")
    r1000.event("established")
    consult = c1000.control.consult(call, "1006", wait_for="established")
    assert isinstance(consult, Consultation) and consult.call.channel_id == call.channel_id
    back = c1000.control.cancel_transfer(call, consult)
    assert back.channel_id == call.channel_id
    r1000.event("retrieved")
    # a consultation that is over is refused as locally
    with pytest.raises(CallStateError):
        c1000.control.complete_transfer(call, consult)
    consult = c1000.control.consult(call, "1006", wait_for="established")
    done = c1000.control.complete_transfer(call, consult)
    assert consult.peer_channel_id in done.channel_ids
    cleared = r1000.event("connection_cleared")
    assert cleared.reason == Reason.TRANSFERRED


def test_conference_with_a_consultation(server: CtiServer, desk: Desk) -> None:
    c1000, r1000 = desk("1000")
    call = c1000.control.originate("PJSIP/1000", "1002", wait_for="established")
    r1000.event("established")
    consult = c1000.control.consult(call, "1006", wait_for="established")
    conf = c1000.control.conference(call, consult)
    assert len(conf.channel_ids) == 3 and call.channel_id in conf.channel_ids
    r1000.event("conferenced")
    c1000.control.hangup(call)


def test_another_agents_call_and_consultation_are_refused(
        server: CtiServer, desk: Desk) -> None:
    c1000, r1000 = desk("1000")
    c1002, r1002 = desk("1002")
    call = c1000.control.originate("PJSIP/1000", "1002", wait_for="established")
    theirs = r1002.event("established", "PJSIP/1002")
    # 1000 may not touch 1002's leg of the same call: the class of the server's error
    with pytest.raises(AccessDeniedError):
        c1000.control.hold(theirs.connection_id)
    with pytest.raises(AccessDeniedError):
        c1000.control.originate("PJSIP/1002", "1000")
    consult = c1002.control.consult(theirs, "1006", wait_for="established")
    with pytest.raises(AccessDeniedError):
        c1000.control.cancel_transfer(call, consult)
    c1002.control.cancel_transfer(theirs, consult)
    c1000.control.hangup(call)
    r1000.event("call_cleared")


def test_server_liveness_reaches_connection_listeners(
        broker: Broker, sim: Any, desk: Desk) -> None:
    from .conftest import cti_config

    client, rec = desk("1000")
    first = CtiServer(broker.config, cti_config(sim)).start()
    try:
        assert not rec.first(lambda n, e: n == "connected").current
        rec.first(lambda n, e: n == "snapshot")
    finally:
        first.stop()
    down = rec.wait(lambda n, e: n == "disconnected")
    assert "offline" in down.reason and not down.gave_up
    assert not client.connected
    rec.seen.clear()  # what follows must be new
    with pytest.raises(ServerUnavailableError):
        client.control.hold("anything")
    with CtiServer(broker.config, cti_config(sim)):
        rec.wait(lambda n, e: n == "connected")
        # the server is back: a fresh snapshot of the line before its next events
        assert rec.first(lambda n, e: n == "snapshot").reason == "connected"
        call = client.control.originate("PJSIP/1000", "1002", wait_for="established")
        rec.event("established")
        client.control.hangup(call)


def test_broker_loss_and_reconnect(mosquitto: Any, sim: Any) -> None:
    from .conftest import cti_config

    with CtiServer(mosquitto.config, cti_config(sim)) as server:
        client = RemoteClient(remote_config(mosquitto.port, "1000"))
        rec = Recorder()
        client.add_listener(rec)
        with client:
            rec.first(lambda n, e: n == "connected")
            rec.first(lambda n, e: n == "snapshot")
            mosquitto.stop()
            lost = rec.wait(lambda n, e: n == "disconnected")
            assert "broker" in lost.reason and not lost.gave_up
            rec.seen.clear()  # what follows must be new
            with pytest.raises(ServerUnavailableError):
                client.control.hold("x")
            mosquitto.start()
            rec.wait(lambda n, e: n == "connected", timeout=30)
            # snapshots are read again (the server republishes them on reconnecting)
            assert _snapshot(rec).line.name == "PJSIP/1000"
            call = client.control.originate("PJSIP/1000", "1002", wait_for="established")
            rec.event("established")
            client.control.hangup(call)
            assert client.stats()["broker_connects"] == 2
        assert server.client.running


def test_wrong_password_is_refused_typed(broker: Broker,
                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    from asterisk_cti.remote import RemoteConfig

    bad = RemoteClient(RemoteConfig(site="paris", agent="1000", password="Zq9-wrong-pw",
                                    broker_port=broker.port, lines=("PJSIP/1000",)))
    with pytest.raises(BrokerRefusedError) as info:
        bad.start()
    assert isinstance(info.value, ConnectError) and info.value.reason_code in (0x86, 0x87)
    assert not bad.running
    assert "Zq9" not in str(info.value) and "Zq9" not in repr(bad)
    assert "Zq9" not in repr(bad.config) and "Zq9" not in caplog.text
    # started in the background, a listener hears it gave up
    later = RemoteClient(RemoteConfig(site="paris", agent="1000", password="Zq9-wrong-pw",
                                      broker_port=broker.port, lines=("PJSIP/1000",)))
    rec = Recorder()
    later.add_listener(rec)
    later.start(wait=False)
    try:
        gone = rec.wait(lambda n, e: n == "disconnected")
        assert gone.gave_up and isinstance(gone.error, BrokerRefusedError)
    finally:
        later.stop()
    assert "Zq9" not in caplog.text


def test_the_broker_refuses_another_agents_line(server: CtiServer, broker: Broker,
                                                desk: Desk) -> None:
    with pytest.raises(AccessDeniedError):
        RemoteClient(remote_config(broker.port, "1000", "PJSIP/1002")).start()
    client, _ = desk("1000")
    with pytest.raises(AccessDeniedError):
        client.monitor("PJSIP/1002")
    assert client.monitored == ("PJSIP/1000",)


def test_an_unreachable_broker_is_reported_and_retried() -> None:
    from .conftest import _free_port

    port = _free_port()  # nothing listens there
    client = RemoteClient(remote_config(port, "1000", connect_timeout=2))
    with pytest.raises(ConnectError):
        client.start()
    assert not client.running
    rec = Recorder()
    client.add_listener(rec)
    client.start(wait=False)  # keeps trying in the background
    try:
        down = rec.wait(lambda n, e: n == "disconnected")
        assert not down.gave_up and "cannot reach" in down.reason
        with pytest.raises(ServerUnavailableError):
            client.control.hangup("x")
    finally:
        assert client.stop()


def test_a_supervisor_desk_sees_and_controls_both_lines(server: CtiServer, desk: Desk) -> None:
    c1000, r1000 = desk("1000")
    sup, rsup = desk("sup", "PJSIP/1000", "PJSIP/1002")
    call = c1000.control.originate("PJSIP/1000", "1002", wait_for="established")
    theirs = rsup.first(lambda n, e: n == "event" and e.kind.value == "established"
                        and e.line == "PJSIP/1002")
    rsup.first(lambda n, e: n == "event" and e.kind.value == "established"
               and e.line == "PJSIP/1000")
    assert {ln.name for ln in sup.lines} == {"PJSIP/1000", "PJSIP/1002"}
    sup.control.hangup(theirs)  # a supervisor controls every line the server watches
    r1000.event("call_cleared", "PJSIP/1000")
    assert call.channel_id


def test_a_request_in_flight_when_the_broker_dies_fails_typed(
        mosquitto: Any, sim: Any) -> None:
    from .conftest import cti_config

    with CtiServer(mosquitto.config, cti_config(sim)) as server:
        entered, release = threading.Event(), threading.Event()
        real = server._execute

        def slow(agent: str, payload: bytes) -> Any:
            entered.set()
            release.wait(10)
            return real(agent, payload)

        server._execute = slow  # type: ignore[method-assign]
        client = RemoteClient(remote_config(mosquitto.port, "1000"))
        rec = Recorder()
        client.add_listener(rec)
        outcome: List[BaseException] = []

        def hold() -> None:
            try:
                client.control.hold("some-call")
            except BaseException as exc:
                outcome.append(exc)

        with client:
            worker = threading.Thread(target=hold)
            worker.start()
            assert entered.wait(10)
            mosquitto.stop()
            worker.join(10)
            release.set()
            # CtiServer.stop() raises while its broker connection is down: wait until the
            # server is back (the desk hears it) before leaving
            rec.wait(lambda n, e: n == "disconnected")  # the queue is read up to the loss
            mosquitto.start()
            rec.wait(lambda n, e: n == "connected", timeout=30)
        assert len(outcome) == 1 and isinstance(outcome[0], ServerUnavailableError)
        assert "may or may not" in str(outcome[0])


def test_stop_and_start_again_and_no_wait_idle_from_a_listener(
        server: CtiServer, broker: Broker) -> None:
    from asterisk_cti import WouldDeadlockError

    client = RemoteClient(remote_config(broker.port, "1000"))
    errors: List[BaseException] = []

    class Waits(Recorder):
        def on_line_snapshot(self, event: Any) -> None:
            try:
                client.wait_idle(1)
            except BaseException as exc:
                errors.append(exc)
            super().on_line_snapshot(event)

    rec = Waits()
    client.add_listener(rec)
    for _ in range(2):  # a stopped client starts again
        with client:
            rec.wait(lambda n, e: n == "snapshot")
            call = client.control.originate("PJSIP/1000", "1002", wait_for="established")
            client.control.hangup(call)
            rec.event("call_cleared")
    assert len(errors) == 2 and all(isinstance(e, WouldDeadlockError) for e in errors)


def test_mute_and_dtmf_round_trip_and_what_is_not_remote(server: CtiServer, desk: Desk) -> None:
    c1000, r1000 = desk("1000")
    call = c1000.control.originate("PJSIP/1000", "1002", wait_for="established")
    conn = r1000.event("established").connection_id
    c1000.control.mute(conn, "in")
    c1000.control.unmute(conn, "in")
    c1000.control.send_dtmf(conn, "12#")
    with pytest.raises(ValueError):  # the local API's error for a bad direction
        c1000.control.mute(conn, "sideways")
    with pytest.raises(ValueError):
        c1000.control.send_dtmf(call, "1")
    with pytest.raises(ValueError):
        c1000.control.originate("PJSIP/1000", "1002", context="from-internal")
    c1000.control.hangup(call)


def test_a_registration_change_reaches_the_desk(server: CtiServer, desk: Desk,
                                                sim: AriSimulator) -> None:
    """line_state_changed has no call: the desk must not drop it as malformed (found on the
    lab, where the server's start reports each line's registration)."""
    c1000, r1000 = desk("1000")
    r1000.first(lambda n, e: n == "snapshot")
    sim.admin_client().set_registered("1000", False)
    # (the server's start may report the line's first registration, unknown -> online,
    # after the desk's snapshot: wait for the change this test makes)
    event = r1000.wait(lambda n, e: n == "event" and e.kind.value == "line_state_changed"
                       and e.line == "PJSIP/1000" and e.line_state == "offline")
    assert event.previous_line_state == "online"
    assert event.call_id == "" and event.connection_id == ""
    assert c1000.stats()["bad_payloads"] == 0
