"""CtiClient end to end on the fakes: life cycle, subscriptions, reconnects, isolation."""

from __future__ import annotations

import logging
import threading
from typing import Any, List

import pytest

from asterisk_cti import (
    AuthenticationError,
    ChannelEventListener,
    ConnectionListener,
    CtiTimeoutError,
)
from asterisk_cti.events.catalogue import Event
from asterisk_cti.testing import FakeAsterisk


def chan(cid: str, name: str, state: str = "Ring") -> dict[str, Any]:
    return {"id": cid, "name": name, "state": state,
            "caller": {"name": "Kai", "number": "1000"}, "connected": {"name": "", "number": ""}}


def ev(etype: str, cid: str = "1.1", name: str = "PJSIP/1000-00000001", **extra: Any) -> dict:
    return {"type": etype, "timestamp": "2026-11-26T03:53:31.659+0000",
            "channel": chan(cid, name), "application": "cti-test", **extra}


class Recorder(ChannelEventListener, ConnectionListener):
    def __init__(self) -> None:
        self.events: List[Event] = []
        self.specific: List[str] = []
        self.connection: List[Any] = []
        self.cond = threading.Condition()

    def on_event(self, event: Event) -> None:
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    def on_channel_created(self, event: Any) -> None:
        self.specific.append("created:" + event.channel.id)

    def on_channel_destroyed(self, event: Any) -> None:
        self.specific.append("destroyed:" + event.channel.id)

    def _conn(self, event: Any) -> None:
        with self.cond:
            self.connection.append(event)
            self.cond.notify_all()

    on_connected = on_disconnected = on_resynced = on_events_lost = _conn

    def wait_for(self, pred: Any, timeout: float = 5.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: pred(self), timeout)


@pytest.fixture
def fake() -> FakeAsterisk:
    return FakeAsterisk(endpoints=["PJSIP/1000", "PJSIP/1002", "PJSIP/1006"])


def test_start_subscribes_endpoints_bridges_and_installs_a_disallowed_filter(
        fake: FakeAsterisk) -> None:
    client = fake.client(model=False)
    client.monitor("PJSIP/1000", "endpoint:PJSIP/1002")
    with client.start():
        app = fake.ari.app("cti-test")
        assert sorted(app["endpoint_ids"]) == ["PJSIP/1000", "PJSIP/1002"]
        assert app["bridge_ids"] == ["__AST_BRIDGE_ALL_TOPIC"]
        disallowed = {d["type"] for d in app["events_disallowed"]}
        assert app["events_allowed"] == []
        assert {"ChannelVarset", "ChannelDialplan", "DeviceStateChanged"} <= disallowed
        assert not disallowed & {"ChannelCreated", "ChannelDestroyed", "StasisStart",
                                 "ApplicationReplaced", "ChannelEnteredBridge"}
    assert not client.running


def test_whole_technology_subscription_replaces_overlapping_endpoints(fake: FakeAsterisk) -> None:
    client = fake.client(model=False)
    client.monitor("PJSIP/1000")
    with client.start():
        client.monitor("PJSIP")
        app = fake.ari.app("cti-test")
        assert app["endpoint_ids"] == ["PJSIP"]
        client.unmonitor("PJSIP")
        assert fake.ari.app("cti-test")["endpoint_ids"] == ["PJSIP/1000"]


def test_delivers_only_configured_types_of_monitored_lines_in_order(fake: FakeAsterisk) -> None:
    rec = Recorder()
    client = fake.client(model=False)
    client.add_listener(rec)
    client.monitor("PJSIP/1000")
    with client.start():
        fake.push(
            ev("ChannelCreated", "a"),
            ev("ChannelVarset", "a", variable="X", value="1"),
            ev("ChannelCreated", "b", "PJSIP/1002-00000002"),
            ev("ChannelStateChange", "a"),
            ev("ChannelDestroyed", "a", cause=16, cause_txt="Normal Clearing"),
        )
        assert fake.settle(client)
        assert [e.type for e in rec.events] == [
            "ChannelCreated", "ChannelStateChange", "ChannelDestroyed"]
        assert rec.specific == ["created:a", "destroyed:a"]
        stats = client.stats()
        assert stats["reactor"]["dropped_early"] == 1


def test_malformed_frames_are_counted_and_skipped(fake: FakeAsterisk,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    rec = Recorder()
    client = fake.client(model=False)
    client.add_listener(rec)
    client.monitor("PJSIP")
    with caplog.at_level(logging.WARNING), client.start():
        fake.push(b"{not json", b"\xff\xfe", "[1,2]", '{"type": 3}',
                  ev("ChannelFromTheFuture", "a"), ev("ChannelCreated", "a"))
        assert fake.settle(client)
        assert [e.type for e in rec.events] == ["ChannelCreated"]
        assert client.stats()["processor"]["malformed"] == 4
    assert "malformed ARI frame" in caplog.text


def test_wildcard_delivers_unknown_types_as_generic_events(fake: FakeAsterisk) -> None:
    rec = Recorder()
    client = fake.client(fake.config(event_types=("*",)), model=False)
    client.add_listener(rec)
    client.monitor("PJSIP")
    with client.start():
        fake.push(ev("ChannelFromTheFuture", "a", novelty=1))
        assert fake.settle(client)
    assert rec.events[0].type == "ChannelFromTheFuture" and rec.events[0].raw["novelty"] == 1


def test_raising_listener_does_not_stop_dispatch(fake: FakeAsterisk) -> None:
    class Bad(ChannelEventListener):
        def on_channel_created(self, event: Any) -> None:
            raise ValueError("listener bug")

    errors: List[Any] = []
    rec = Recorder()
    client = fake.client(model=False, error_hook=lambda lst, e, exc: errors.append(exc))
    client.add_listener(Bad())
    client.add_listener(rec)
    client.monitor("PJSIP")
    with client.start():
        fake.push(ev("ChannelCreated", "a"), ev("ChannelCreated", "b"))
        assert fake.settle(client)
    assert rec.specific == ["created:a", "created:b"]
    assert [str(e) for e in errors] == ["listener bug", "listener bug"]


def test_listener_handle_removes_and_a_listener_can_remove_itself(fake: FakeAsterisk) -> None:
    got: List[str] = []

    class Once(ChannelEventListener):
        def on_channel_created(self, event: Any) -> None:
            got.append(event.channel.id)
            handle.remove()

    client = fake.client(model=False)
    handle = client.add_listener(Once())
    client.monitor("PJSIP")
    with client.start():
        fake.push(ev("ChannelCreated", "a"))
        assert fake.settle(client)
        fake.push(ev("ChannelCreated", "b"))
        assert fake.settle(client)
    assert got == ["a"]
    with pytest.raises(TypeError):
        client.add_listener(object())


def test_reconnect_after_drop_resubscribes_only_what_is_missing(fake: FakeAsterisk) -> None:
    rec = Recorder()
    client = fake.client(model=False)
    client.add_listener(rec)
    client.monitor("PJSIP/1000", "PJSIP/1002")
    with client.start():
        assert fake.ari.subscription_count("cti-test", "bridge:") == 1
        fake.ari.drop_connection()  # Asterisk drops bridge: on disconnect, keeps endpoints
        fake.ws.drop()
        assert fake.ws.wait_connections(2)
        assert rec.wait_for(lambda r: sum(
            1 for e in r.connection if getattr(e, "connected", False)) == 2)
        assert fake.settle(client)
        posts = fake.ari.calls("POST", "/applications/cti-test/subscription")
        assert [p.params["eventSource"] for p in posts] == [
            "endpoint:PJSIP/1000,endpoint:PJSIP/1002,bridge:", "bridge:"]
        for source in ("endpoint:PJSIP/1000", "endpoint:PJSIP/1002", "bridge:"):
            assert fake.ari.subscription_count("cti-test", source) == 1
        kinds = [type(e).__name__ + ":" + str(getattr(e, "connected", getattr(e, "reason", "")))
                 for e in rec.connection]
        assert kinds == ["ConnectionEvent:True", "ResyncEvent:connected",
                         "ConnectionEvent:False", "ConnectionEvent:True", "ResyncEvent:connected"]


def test_asterisk_restart_rebuilds_everything_and_is_reported(fake: FakeAsterisk) -> None:
    rec = Recorder()
    client = fake.client(model=False)
    client.add_listener(rec)
    client.monitor("PJSIP/1000")
    with client.start():
        fake.ari.restart()
        fake.ws.refuse(2)
        fake.ws.drop()
        assert fake.ws.wait_connections(2)
        assert rec.wait_for(lambda r: any(getattr(e, "restarted", False) for e in r.connection))
        assert fake.ari.subscription_count("cti-test", "endpoint:PJSIP/1000") == 1
        assert fake.ari.app("cti-test")["events_disallowed"]


def test_ring_overflow_triggers_loss_notice_and_resync(fake: FakeAsterisk) -> None:
    rec = Recorder()
    gate = threading.Event()

    client = fake.client(fake.config(ring_capacity=16), model=False)
    client.add_listener(rec)
    client.monitor("PJSIP")
    with client.start():
        resyncs = client.stats()["processor"]["resyncs"]
        # Hold the processor in a monitor change whose REST call blocks, then flood the ring.
        blocked = threading.Event()

        @fake.ari.route("GET", "/applications/cti-test")
        def slow_app(req: Any, m: Any) -> Any:
            blocked.set()
            gate.wait(5)
            return 200, fake.ari.app("cti-test")

        t = threading.Thread(target=client.monitor, args=("PJSIP/2000",), name="test-monitor")
        t.start()
        assert blocked.wait(5)
        fake.push(*[ev("ChannelStateChange", str(i)) for i in range(100)])
        assert fake.ws.wait_connections(1)
        gate.set()
        t.join(5)
        assert rec.wait_for(lambda r: any(type(e).__name__ == "EventsLostEvent"
                                          for e in r.connection))
        lost = next(e for e in rec.connection if type(e).__name__ == "EventsLostEvent")
        assert lost.count > 0 and lost.reason == "ring_overflow"
        assert fake.settle(client)
        assert client.stats()["processor"]["resyncs"] > resyncs
        assert any(getattr(e, "reason", "") == "events_lost" for e in rec.connection)
        assert client.stats()["ring"]["overwritten"] == lost.count


def test_stop_is_idempotent_bounded_and_restartable(fake: FakeAsterisk) -> None:
    client = fake.client(model=False)
    client.monitor("PJSIP")
    client.start()
    assert client.stop(3) is True
    assert client.stop(3) is True
    client.start()
    assert client.connected
    client.stop()


def test_stop_from_a_listener_works(fake: FakeAsterisk) -> None:
    done = threading.Event()

    class Stopper(ChannelEventListener):
        def on_channel_created(self, event: Any) -> None:
            client.stop(2)
            done.set()

    client = fake.client(model=False)
    client.add_listener(Stopper())
    client.monitor("PJSIP")
    client.start()
    fake.push(ev("ChannelCreated", "a"))
    assert done.wait(5)
    assert not client.running


def test_bad_credentials_fail_start_with_authentication_error(fake: FakeAsterisk) -> None:
    fake.ws.refuse(5, status=401)
    client = fake.client(model=False)
    with pytest.raises(AuthenticationError):
        client.start(timeout=5)
    assert not client.running


def test_start_times_out_with_the_last_error(fake: FakeAsterisk) -> None:
    fake.ws.refuse(1000)
    client = fake.client(model=False)
    with pytest.raises(CtiTimeoutError, match="last error: refused"):
        client.start(timeout=0.3)


def test_server_refusing_the_filter_falls_back_to_client_side(fake: FakeAsterisk) -> None:
    fake.ari.event_filter_supported = False
    rec = Recorder()
    client = fake.client(model=False)
    client.add_listener(rec)
    client.monitor("PJSIP")
    with client.start():
        assert client.subscriptions.filter_supported is False
        fake.push(ev("ChannelDialplan", "a"), ev("ChannelCreated", "a"))
        assert fake.settle(client)
    assert [e.type for e in rec.events] == ["ChannelCreated"]


def test_credentials_never_in_logs_urls_or_repr(fake: FakeAsterisk,
                                                caplog: pytest.LogCaptureFixture) -> None:
    client = fake.client(fake.config(password="secret"), model=False)
    fake.ws.refuse(1)
    client.monitor("PJSIP")
    with caplog.at_level(logging.DEBUG), client.start():
        fake.ws.drop()
        assert fake.ws.wait_connections(2)
        assert fake.settle(client)
    assert "secret" not in caplog.text and "c2VjcmV0" not in caplog.text
    assert "secret" not in repr(client)
    for attempt in fake.ws.attempts:
        assert "secret" not in attempt.url and "api_key" not in attempt.url
        assert attempt.headers["Authorization"].startswith("Basic ")
    for req in fake.ari.requests:
        assert "secret" not in req.url and "api_key" not in req.url


def test_bridge_events_of_monitored_channels_and_their_peers_are_delivered(
        fake: FakeAsterisk) -> None:
    rec = Recorder()
    client = fake.client(model=False)
    client.add_listener(rec)
    client.monitor("PJSIP/1000")
    bridge = {"id": "br1", "technology": "simple_bridge", "channels": []}
    with client.start():
        fake.push(
            ev("ChannelEnteredBridge", "other", "PJSIP/1006-00000009", bridge=bridge),
            ev("ChannelEnteredBridge", "a", bridge=bridge),
            ev("ChannelEnteredBridge", "loc", "Local/1006@from-internal-00000000;1",
               bridge=bridge),
            ev("ChannelLeftBridge", "a", bridge=bridge),
            ev("ChannelLeftBridge", "loc", "Local/1006@from-internal-00000000;1", bridge=bridge),
        )
        assert fake.settle(client)
    assert [(e.type, e.channel.id) for e in rec.events] == [
        ("ChannelEnteredBridge", "a"), ("ChannelEnteredBridge", "loc"),
        ("ChannelLeftBridge", "a")]


def test_quiet_connection_is_pinged_and_a_dead_one_is_replaced(fake: FakeAsterisk) -> None:
    rec = Recorder()
    client = fake.client(fake.config(ping_interval=0.1), model=False)
    client.add_listener(rec)
    client.monitor("PJSIP")
    with client.start():
        # The fake answers no ping: after twice the interval the reactor gives up on it.
        assert rec.wait_for(lambda r: any(
            getattr(e, "reason", "") == "no answer to the keep-alive ping"
            for e in r.connection))
        assert fake.ws.wait_connections(2)
    assert fake.ws.attempts[0].headers["Authorization"].startswith("Basic ")


def test_raw_listener_gets_stasis_start_and_only_the_channels_it_follows(
        fake: FakeAsterisk) -> None:
    got: List[tuple[str, str]] = []
    followed = {"s1"}

    class Raw:
        def on_event(self, event: Event) -> None:
            got.append((event.type, event.channel.id if event.channel else ""))

    client = fake.client(model=False)
    client.add_raw_listener(Raw(), ["StasisStart", "ChannelStateChange", "Dial"],
                            followed.__contains__)
    client.monitor("PJSIP/1000")
    with client.start():
        fake.push(ev("StasisStart", "new", "PJSIP/2000-1", args=["dial"]),
                  ev("ChannelStateChange", "other", "PJSIP/3000-1"),
                  ev("ChannelStateChange", "s1", "PJSIP/3000-2"),
                  {"type": "Dial", "dialstatus": "RINGING",
                   "caller": chan("s1", "PJSIP/3000-2"), "peer": chan("p", "PJSIP/4000-1")},
                  ev("ChannelCreated", "s1", "PJSIP/3000-2"))
        assert fake.settle(client)
    assert sorted(got) == sorted([("StasisStart", "new"), ("ChannelStateChange", "s1"),
                                  ("Dial", "p")])


def test_duplicate_deliveries_of_one_event_are_dropped(fake: FakeAsterisk) -> None:
    # A channel in the app's Stasis is also on a monitored endpoint: Asterisk forwards each
    # of its events once per subscription.
    rec = Recorder()
    client = fake.client(model=False)
    client.add_listener(rec)
    client.monitor("PJSIP")
    with client.start():
        up = ev("ChannelStateChange", "a")
        up["channel"]["state"] = "Up"
        fake.push(ev("ChannelCreated", "a"), ev("ChannelCreated", "a"), up, up,
                  ev("ChannelDestroyed", "a", cause=16))
        assert fake.settle(client)
        assert client.stats()["processor"]["duplicates"] == 2
    assert [e.type for e in rec.events] == [
        "ChannelCreated", "ChannelStateChange", "ChannelDestroyed"]


def test_asterisk_still_booting_is_retried_until_subscribed(fake: FakeAsterisk) -> None:
    # While Asterisk boots it answers 404 and then 503 "Asterisk not booted": the sync after
    # connect fails, the client drops the websocket and tries again with backoff.
    fake.ari.respond("GET", "/asterisk/info", 404, {"message": "Resource not found"}, times=1)
    fake.ari.respond("GET", "/asterisk/info", 503, {"message": "Asterisk not booted"}, times=3)
    client = fake.client(model=False)
    client.monitor("PJSIP/1000")
    with client.start(timeout=10):
        assert fake.ws.connections >= 2
        assert fake.ari.subscription_count("cti-test", "endpoint:PJSIP/1000") == 1


def test_application_replaced_is_reported_and_not_fought_over(fake: FakeAsterisk) -> None:
    rec = Recorder()
    client = fake.client(model=False)
    client.add_listener(rec)
    client.monitor("PJSIP")
    with client.start():
        fake.push({"type": "ApplicationReplaced", "application": "cti-test",
                   "timestamp": "2026-11-26T03:53:31.659+0000"})
        assert rec.wait_for(lambda r: any(
            getattr(e, "reason", "") == "application replaced by another client"
            for e in r.connection))
        assert not client.connected
        assert fake.ws.connections == 1  # no reconnect: two clients would take turns
