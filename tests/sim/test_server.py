"""The simulator's serving: auth, loopback only, websocket life cycle, restart, stop."""

from __future__ import annotations

import socket
import threading
from typing import Any

import requests
import websocket

from asterisk_cti.sim import AriSimulator

from .conftest import REC_SOURCES, Ari, Recorder, wait_for


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
