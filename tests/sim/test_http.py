"""The simulator's ARI surface: auth, honest errors, subscriptions, filter, reconnect, restart."""

from __future__ import annotations

import socket
import threading
from typing import Any, Callable, Dict

import requests
import websocket

from asterisk_cti.sim import AriSimulator, scenarios
from asterisk_cti.sim.objects import BRIDGE_ALL

from .conftest import REC_SOURCES, Recorder, wait_for

Ari = Callable[..., requests.Response]


def test_bad_credentials_answer_401(sim: AriSimulator) -> None:
    r = requests.get(f"{sim.url}/ari/asterisk/info", auth=(sim.username, "wrong"), timeout=5)
    assert r.status_code == 401
    r = requests.get(f"{sim.url}/ari/asterisk/info", timeout=5)
    assert r.status_code == 401


def test_api_key_query_parameter_is_accepted(sim: AriSimulator) -> None:
    r = requests.get(
        f"{sim.url}/ari/asterisk/info",
        params={"api_key": f"{sim.username}:{sim.password}"},
        timeout=5,
    )
    assert r.status_code == 200
    assert r.json()["system"]["version"] == "22.10.1-sim"
    assert r.json()["status"]["startup_time"]


def test_websocket_with_bad_credentials_is_refused(sim: AriSimulator) -> None:
    try:
        websocket.create_connection(
            f"{sim.ws_url}?app=x", header=["Authorization: Basic eDp5"], timeout=5
        )
    except websocket.WebSocketBadStatusException as exc:
        assert exc.status_code == 401
    else:
        raise AssertionError("handshake accepted")


def test_listens_on_loopback_only(sim: AriSimulator) -> None:
    assert sim.url.startswith("http://127.0.0.1:")
    with socket.create_connection(("127.0.0.1", sim.port), timeout=2):
        pass


def test_endpoints_are_listed(ari: Ari) -> None:
    eps = ari("GET", "/endpoints").json()
    assert [e["resource"] for e in eps] == ["1000", "1002", "1006"]
    assert ari("GET", "/endpoints/PJSIP/1002").json()["state"] == "online"
    assert ari("GET", "/endpoints/PJSIP/9999").status_code == 404
    assert ari("GET", "/endpoints/SIP").status_code == 404


def test_unknown_channel_is_404(ari: Ari) -> None:
    r = ari("POST", "/channels/nope/answer")
    assert r.status_code == 404
    assert r.json() == {"message": "Channel not found"}


def test_control_of_dialplan_channel_needs_stasis(sim: AriSimulator, ari: Ari) -> None:
    sim.phone("1000").dial("1002")
    sim.phone("1002").wait_ringing()
    sim.phone("1002").answer()
    cid = sim.phone("1000").channel_id
    for method, op, params in [
        ("POST", "answer", {}),
        ("POST", "ring", {}),
        ("DELETE", "ring", {}),
        ("POST", "hold", {}),
        ("DELETE", "hold", {}),
        ("POST", "moh", {}),
        ("POST", "mute", {}),
        ("POST", "dtmf", {"dtmf": "1"}),
        ("POST", "redirect", {"endpoint": "PJSIP/1006"}),
        ("POST", "continue", {}),
        ("POST", "dial", {}),
        ("POST", "variable", {"variable": "X", "value": "1"}),
    ]:
        r = ari(method, f"/channels/{cid}/{op}", **params)
        assert (r.status_code, r.json()) == (
            409,
            {"message": "Channel not in Stasis application"},
        ), op
    bridge = ari("POST", "/bridges", type="mixing").json()
    for op in ("addChannel", "removeChannel"):
        r = ari("POST", f"/bridges/{bridge['id']}/{op}", channel=cid)
        assert r.status_code == 422, op
    # these work on any channel
    assert ari("GET", f"/channels/{cid}").json()["state"] == "Up"
    assert ari("GET", f"/channels/{cid}/variable", variable="CALLERID(num)").json() == {
        "value": "1000"
    }
    dialplan_bridge = [b for b in ari("GET", "/bridges").json() if b["bridge_class"] == "basic"]
    assert ari("DELETE", f"/bridges/{dialplan_bridge[0]['id']}").status_code == 409
    assert ari("POST", f"/channels/{cid}/snoop", app="spy").status_code == 200
    assert ari("DELETE", f"/channels/{cid}").status_code == 204
    wait_for(lambda: not sim.pbx.channels, what="all channels gone")


def test_missing_parameters_answer_400(ari: Ari) -> None:
    assert ari("POST", "/channels").status_code == 400
    assert ari("POST", "/channels", endpoint="PJSIP/1000").status_code == 400
    assert ari("GET", "/channels/x/variable").status_code in (400, 404)


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


def test_second_connection_replaces_the_first(sim: AriSimulator) -> None:
    first = Recorder(sim, "dup")
    second = None
    try:
        wait_for(lambda: "dup" in sim.pbx.apps)
        second = Recorder(sim, "dup")
        wait_for(lambda: any(e["type"] == "ApplicationReplaced" for e in first.events))
        assert not first.closed.is_set()  # Asterisk does not close it
    finally:
        first.close()
        if second is not None:
            second.close()


def test_websocket_drop_keeps_endpoint_subscriptions_and_filter(
    sim: AriSimulator, ari: Ari
) -> None:
    rec = Recorder(sim, "keep")
    wait_for(lambda: "keep" in sim.pbx.apps)
    ari("POST", "/applications/keep/subscription", eventSource=f"{REC_SOURCES},bridge:")
    ari("PUT", "/applications/keep/eventFilter", json_body={"disallowed": [{"type": "Dial"}]})
    sim.drop_websockets()
    assert rec.closed.wait(5)
    rec.close()
    wait_for(lambda: sim.pbx.apps.get("keep") is not None and sim.pbx.apps["keep"].sink is None)
    app = ari("GET", "/applications/keep").json()
    assert app["endpoint_ids"] == ["PJSIP/1000", "PJSIP/1002", "PJSIP/1006"]
    assert app["bridge_ids"] == []
    assert app["events_disallowed"] == [{"type": "Dial"}]


def test_app_without_subscriptions_is_deleted_on_drop(sim: AriSimulator, ari: Ari) -> None:
    rec = Recorder(sim, "gone", subscribe_all=True)
    wait_for(lambda: "gone" in sim.pbx.apps)
    rec.close()
    wait_for(lambda: "gone" not in sim.pbx.apps)
    assert ari("GET", "/applications/gone").status_code == 404


def test_restart_refuses_then_404_then_503_then_serves(sim: AriSimulator, ari: Ari) -> None:
    before = ari("GET", "/asterisk/info").json()["status"]["startup_time"]
    rec = Recorder(sim, "r1")
    wait_for(lambda: "r1" in sim.pbx.apps)
    seen = []
    lock = threading.Lock()

    def status() -> Any:
        try:
            code = ari("GET", "/asterisk/info").status_code
        except requests.ConnectionError:
            code = "refused"
        with lock:
            if not seen or seen[-1] != code:
                seen.append(code)
        return code

    sim.restart(boot_time=0.45)
    assert rec.closed.wait(5)
    rec.close()
    wait_for(lambda: status() == 200, timeout=5)
    assert seen[0] == "refused"
    assert [c for c in seen if c != "refused"] == [404, 503, 200]
    assert ari("GET", "/applications").json() == []
    assert ari("GET", "/asterisk/info").json()["status"]["startup_time"] != before


def test_originate_into_app_starts_stasis(sim: AriSimulator, ari: Ari) -> None:
    rec = Recorder(sim, "ctl")
    try:
        wait_for(lambda: "ctl" in sim.pbx.apps)
        sim.phone("1002").auto_answer = 0.1
        ch = ari("POST", "/channels", endpoint="PJSIP/1002", app="ctl", appArgs="a,b").json()
        assert ch["state"] == "Down"
        wait_for(lambda: any(e["type"] == "StasisStart" for e in rec.events))
        start = next(e for e in rec.events if e["type"] == "StasisStart")
        assert start["args"] == ["a", "b"]
        assert ari("POST", f"/channels/{ch['id']}/hold").status_code == 204
        b = ari("POST", "/bridges", type="mixing").json()
        assert ari("POST", f"/bridges/{b['id']}/addChannel", channel=ch["id"]).status_code == 204
        wait_for(lambda: any(e["type"] == "ChannelEnteredBridge" for e in rec.events))
        assert not any(e["type"] == "ChannelHold" for e in rec.events)
        assert ari("DELETE", f"/channels/{ch['id']}", reason_code="17").status_code == 204
        wait_for(lambda: any(e["type"] == "ChannelDestroyed" for e in rec.events))
        destroyed = next(e for e in rec.events if e["type"] == "ChannelDestroyed")
        assert destroyed["cause"] == 17
        types = [e["type"] for e in rec.events]
        assert types.index("StasisEnd") < types.index("ChannelDestroyed")
    finally:
        rec.close()


def test_set_registered_emits_endpoint_state(sim: AriSimulator, ari: Ari) -> None:
    rec = Recorder(sim, "reg")
    try:
        wait_for(lambda: "reg" in sim.pbx.apps)
        ari("POST", "/applications/reg/subscription", eventSource="endpoint:PJSIP/1006")
        sim.set_registered("PJSIP/1006", False)
        wait_for(lambda: any(e["type"] == "EndpointStateChange" for e in rec.events))
        assert rec.events[-1]["endpoint"]["state"] == "offline"
        assert ari("GET", "/endpoints/PJSIP/1006").json()["state"] == "offline"
    finally:
        rec.close()


def test_channelvars_carry_linkedid() -> None:
    with AriSimulator(channelvars=True, speed=50) as sim:
        sim.phone("1000").dial("1002")
        sim.phone("1002").wait_ringing()
        chans = requests.get(
            f"{sim.url}/ari/channels", auth=(sim.username, sim.password), timeout=5
        ).json()
        linked = {c["channelvars"]["CHANNEL(linkedid)"] for c in chans}
        assert len(chans) == 2 and len(linked) == 1


def test_stop_is_idempotent_and_leaves_no_thread() -> None:
    sim = AriSimulator().start()
    rec = Recorder(sim, "x")
    wait_for(lambda: "x" in sim.pbx.apps)
    sim.stop()
    sim.stop()
    assert rec.closed.wait(5)
    rec.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("asterisk-cti-sim")]


def test_scenarios_without_traces_run_to_the_end(
    sim: AriSimulator, recorders: Dict[str, Recorder]
) -> None:
    for name in ("conference", "queue", "stasis_control"):
        scenarios.SCENARIOS[name](sim)
    recorders["all"].settle()
    types = [e["type"] for e in recorders["all"].events]
    assert "BridgeAttendedTransfer" in types
    assert types.count("ChannelCreated") == types.count("ChannelDestroyed")


def test_load_mode_places_calls() -> None:
    with AriSimulator(speed=20) as sim:
        placed = scenarios.load(
            sim, calls_per_second=50, extensions=20, duration=0.4, talk_time=1.0
        )
        assert placed >= 10
        assert not sim.pbx.channels
