"""``/applications`` routes: subscriptions and the event filter."""

from __future__ import annotations

from asterisk_cti.sim import AriSimulator, scenarios
from asterisk_cti.sim.objects import BRIDGE_ALL

from ..conftest import Ari, Recorder, wait_for


def test_subscriptions_are_reference_counted(sim: AriSimulator, ari: Ari) -> None:
    rec = Recorder(sim, "refc")
    try:
        wait_for(lambda: "refc" in sim.pbx.apps)
        src = "endpoint:PJSIP/1000"
        assert ari("POST", "/applications/refc/subscription", eventSource=src).ok
        app = ari("POST", "/applications/refc/subscription", eventSource=src).json()
        assert app["endpoint_ids"] == ["PJSIP/1000"]
        assert ari("DELETE", "/applications/refc/subscription", eventSource=src).ok
        assert ari("GET", "/applications/refc").json()["endpoint_ids"] == ["PJSIP/1000"]
        assert ari("DELETE", "/applications/refc/subscription", eventSource=src).ok
        r = ari("DELETE", "/applications/refc/subscription", eventSource=src)
        assert r.status_code == 422
        assert ari("POST", "/applications/refc/subscription").status_code == 400
        assert ari("POST", "/applications/nope/subscription", eventSource=src).status_code == 404
        assert (
            ari(
                "POST", "/applications/refc/subscription", eventSource="endpoint:PJSIP/4444"
            ).status_code
            == 422
        )
    finally:
        rec.close()


def test_whole_technology_and_all_bridges_are_listed_like_asterisk(
    sim: AriSimulator, ari: Ari
) -> None:
    rec = Recorder(sim, "lister")
    try:
        wait_for(lambda: "lister" in sim.pbx.apps)
        app = ari(
            "POST", "/applications/lister/subscription", eventSource="endpoint:PJSIP,bridge:"
        ).json()
        assert app["endpoint_ids"] == ["PJSIP"]
        assert app["bridge_ids"] == [BRIDGE_ALL]
        assert list(app) == [
            "name",
            "channel_ids",
            "bridge_ids",
            "endpoint_ids",
            "device_names",
            "events_allowed",
            "events_disallowed",
        ]
    finally:
        rec.close()


def test_event_filter_disallowed_wins(sim: AriSimulator, ari: Ari) -> None:
    rec = Recorder(sim, "filt")
    try:
        wait_for(lambda: "filt" in sim.pbx.apps)
        ari("POST", "/applications/filt/subscription", eventSource="endpoint:PJSIP")
        r = ari(
            "PUT",
            "/applications/filt/eventFilter",
            json_body={
                "allowed": [{"type": "ChannelCreated"}, {"type": "ChannelVarset"}],
                "disallowed": [{"type": "ChannelVarset"}],
            },
        )
        assert r.ok and r.json()["events_disallowed"] == [{"type": "ChannelVarset"}]
        scenarios.rejected(sim)
        rec.settle()
        assert {e["type"] for e in rec.events} == {"ChannelCreated"}
    finally:
        rec.close()
