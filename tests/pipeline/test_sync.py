"""pipeline/sync.py end to end on the fakes: the connect handshake (subscriptions, event
filter), reconnects, restarts and ApplicationReplaced."""

from __future__ import annotations

from asterisk_cti.testing import FakeAsterisk

from .helpers import Recorder, ev


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
