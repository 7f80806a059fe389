"""The simulator's admin REST (/sim/...), its client SimAdmin, and the outside caller (trunk)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, List

import pytest
import requests

from asterisk_cti.sim import AriSimulator, SimAdmin, SimAdminError
from asterisk_cti.sim.server import PortInUseError
from tests.conftest import REPO
from tests.sim.conftest import Ari, Recorder, wait_for


@pytest.fixture
def admin(sim: AriSimulator) -> SimAdmin:
    return sim.admin_client(timeout=5)


def _chan_events(rec: Recorder, channel_id: str) -> List[Dict[str, Any]]:
    """The events of one channel, with the Dial events it makes as the caller."""
    return [e for e in rec.events
            if e.get("channel", e.get("caller", {})).get("id") == channel_id]


def _live(admin: SimAdmin) -> Dict[str, Dict[str, Any]]:
    """The live PJSIP channels by endpoint (Local channels of a transfer left out)."""
    return {c["endpoint"]: c for c in admin.calls() if c["name"].startswith("PJSIP/")}


# -- the REST itself --------------------------------------------------------------------------


def test_admin_rest_takes_the_ari_credentials_only(sim: AriSimulator) -> None:
    url = f"{sim.url}/sim/phones"
    assert requests.get(url, timeout=5).status_code == 401
    assert requests.get(url, auth=(sim.username, "wrong"), timeout=5).status_code == 401
    ok = requests.get(url, auth=(sim.username, sim.password), timeout=5)
    assert ok.status_code == 200
    assert [p["endpoint"] for p in ok.json()] == ["PJSIP/1000", "PJSIP/1002", "PJSIP/1006"]
    assert ok.json()[0] == {"extension": "1000", "endpoint": "PJSIP/1000", "name": "Kai",
                            "state": "online", "channel_ids": []}


def test_a_form_or_json_body_carries_the_parameters(sim: AriSimulator) -> None:
    auth = (sim.username, sim.password)
    r = requests.post(f"{sim.url}/sim/phones/1000/dial", data={"to": "1002"}, auth=auth,
                      timeout=5)
    assert r.status_code == 200, r.text
    sim.phone("1002").wait_ringing()
    r = requests.post(f"{sim.url}/sim/phones/1002/answer", auth=auth, timeout=5)
    assert r.status_code == 204
    r = requests.post(f"{sim.url}/sim/phones/1000/dtmf", json={"digits": "12#"}, auth=auth,
                      timeout=5)
    assert r.status_code == 204


def test_call_answer_hold_resume_hangup_from_another_client(admin: SimAdmin) -> None:
    cid = admin.dial("1000", "1002")
    assert admin.wait_ringing("1002") != cid
    assert {c["state"] for c in admin.calls()} == {"Ring", "Ringing"}
    admin.answer("1002")
    calls = _live(admin)
    assert calls["PJSIP/1000"]["state"] == calls["PJSIP/1002"]["state"] == "Up"
    assert calls["PJSIP/1000"]["bridge_id"] == calls["PJSIP/1002"]["bridge_id"] is not None
    assert calls["PJSIP/1002"]["connected"] == {"name": "Kai", "number": "1000"}
    admin.hold("1000")
    assert _live(admin)["PJSIP/1000"]["held"] is True
    admin.resume("1000")
    assert _live(admin)["PJSIP/1000"]["held"] is False
    admin.hangup("1002")
    assert admin.calls() == []
    assert all(p["channel_ids"] == [] for p in admin.phones())


def test_reject_and_blind_transfer(admin: SimAdmin) -> None:
    admin.dial("1000", "1002")
    admin.wait_ringing("1002")
    admin.reject("1002")
    wait_for(lambda: admin.calls() == [], what="the rejected call to end")
    admin.dial("1000", "1002")
    admin.wait_ringing("1002")
    admin.answer("1002")
    admin.transfer("1002", "1006")
    admin.wait_ringing("1006")
    admin.answer("1006")
    calls = _live(admin)
    assert set(calls) == {"PJSIP/1000", "PJSIP/1006"}
    assert calls["PJSIP/1000"]["bridge_id"] == calls["PJSIP/1006"]["bridge_id"]
    admin.hangup("1000")
    assert admin.calls() == []


def test_dtmf_drives_the_attended_transfer_feature(admin: SimAdmin) -> None:
    admin.dial("1000", "1002")
    admin.wait_ringing("1002")
    admin.answer("1002")
    admin.dtmf("1000", "*21006")
    admin.wait_ringing("1006")
    admin.answer("1006")
    admin.hangup("1000")  # completes the transfer: 1002 talks to 1006
    calls = _live(admin)
    assert set(calls) == {"PJSIP/1002", "PJSIP/1006"}
    admin.hangup("1006")
    wait_for(lambda: admin.calls() == [], what="every channel gone")


@pytest.mark.parametrize(
    ("method", "path", "params", "status", "message"),
    [
        ("POST", "phones/1999/answer", {}, 404, "Phone not found"),
        ("POST", "phones/1000/dial", {}, 400, "Missing parameter to"),
        ("POST", "phones/1000/dial", {"to": "10 02"}, 400, "Invalid parameter to"),
        ("POST", "phones/1000/dtmf", {"digits": "1;rm"}, 400, "Invalid parameter digits"),
        ("POST", "phones/1000/answer", {}, 409, "phone 1000 has no ringing call"),
        ("POST", "phones/1000/hangup", {}, 409, "phone 1000 has no call"),
        ("POST", "phones/1000/resume", {}, 409, "phone 1000 has no held call"),
        ("POST", "phones/1000/fly", {}, 404, "Not Found"),
        ("GET", "phones/1000/answer", {}, 405, "Method Not Allowed"),
        ("POST", "phones", {}, 405, "Method Not Allowed"),
        ("POST", "calls/nope/hangup", {}, 404, "Call not found"),
        ("POST", "trunk/call", {"to": "1002"}, 400, "Missing parameter from"),
        ("POST", "trunk/call", {"from": "+33 abc", "to": "1002"}, 400, "Invalid parameter from"),
        ("POST", "trunk/call", {"from": "+331", "to": "1002", "name": "a\nb"}, 400,
         "Invalid parameter name"),
        ("POST", "phones/1000/wait_ringing", {"timeout": "31"}, 400,
         "Invalid parameter timeout (0 to 30 s)"),
        ("POST", "phones/1000/wait_ringing", {"timeout": "x"}, 400, "Invalid parameter timeout"),
        ("GET", "", {}, 404, "Not Found"),
    ],
)
def test_bad_requests_get_a_typed_answer_and_change_nothing(
    sim: AriSimulator, method: str, path: str, params: Dict[str, str], status: int,
    message: str,
) -> None:
    r = requests.request(method, f"{sim.url}/sim/{path}", params=params,
                         auth=(sim.username, sim.password), timeout=5)
    assert (r.status_code, r.json()) == (status, {"message": message})
    assert sim.pbx.channels == {}


def test_wait_ringing_times_out_with_409(admin: SimAdmin) -> None:
    with pytest.raises(SimAdminError) as info:
        admin.wait_ringing("1006", timeout=0.05)
    assert info.value.status == 409
    assert "no call rang" in info.value.message


def test_ari_is_unchanged_beside_the_admin_rest(sim: AriSimulator, ari: Ari) -> None:
    assert ari("GET", "/endpoints").status_code == 200
    r = requests.get(f"{sim.url}/simx/phones", auth=(sim.username, sim.password), timeout=5)
    assert r.status_code == 404


# -- the outside caller -----------------------------------------------------------------------


def test_trunk_call_looks_like_an_asterisk_trunk_call(sim: AriSimulator, ari: Ari,
                                                      admin: SimAdmin) -> None:
    rec = Recorder(sim, "trunkwatch")
    try:
        wait_for(lambda: "trunkwatch" in sim.pbx.apps)
        assert ari("POST", "/applications/trunkwatch/subscription",
                   eventSource="endpoint:PJSIP").ok
        trunk = admin.trunk_call("+33 1 23 45 67 89", "1002")
        agent = admin.wait_ringing("1002")
        admin.answer("1002")
        admin.hangup_call(trunk)  # the outside caller hangs up
        wait_for(lambda: admin.calls() == [], what="the call to end")
        rec.settle()
    finally:
        rec.close()
    events = _chan_events(rec, trunk)
    created = events[0]
    assert created["type"] == "ChannelCreated"
    ch = created["channel"]
    assert re.fullmatch(r"PJSIP/trunk-[0-9a-f]{8}", ch["name"])
    assert ch["caller"] == {"name": "", "number": "+33123456789"}
    assert ch["dialplan"]["context"] == "from-trunk" and ch["dialplan"]["exten"] == "1002"
    assert ch["state"] == "Ring"
    dial = [e for e in rec.events if e["type"] == "Dial" and e.get("dialstatus") == "ANSWER"]
    assert len(dial) == 1
    assert dial[0]["peer"]["id"] == agent and dial[0]["caller"]["id"] == trunk
    answered = [e for e in _chan_events(rec, agent) if e["type"] == "ChannelStateChange"]
    assert answered[-1]["channel"]["state"] == "Up"
    assert answered[-1]["channel"]["connected"]["number"] == "+33123456789"
    assert events[-1]["type"] == "ChannelDestroyed" and events[-1]["cause"] == 16
    # the trunk endpoint exists once it carried a call, like a configured PJSIP trunk
    assert ari("GET", "/endpoints/PJSIP/trunk").json()["state"] == "online"
    types = [e["type"] for e in rec.events if e["type"] == "EndpointStateChange"
             and e["endpoint"]["resource"] == "trunk"]
    assert types


def test_trunk_call_follows_the_same_event_flow_as_a_phone_call(sim: AriSimulator,
                                                                   ari: Ari) -> None:
    """The inbound context routes like from-internal: the calling channel's events (types,
    in order) are the same as when phone 1000 calls; only name, caller and context differ."""
    rec = Recorder(sim, "flow")
    try:
        wait_for(lambda: "flow" in sim.pbx.apps)
        assert ari("POST", "/applications/flow/subscription", eventSource="endpoint:PJSIP").ok
        flows = []
        for start in (lambda: sim.phone("1000").dial("1002"),
                      lambda: sim.trunk_call("+15551234567", "1002")):
            cid = start()
            sim.phone("1002").wait_ringing()
            sim.phone("1002").answer()
            sim.phone("1002").hangup()
            wait_for(lambda: not sim.pbx.channels, what="the call to end")
            rec.settle()
            flows.append([e["type"] for e in _chan_events(rec, cid)])
    finally:
        rec.close()
    assert flows[0] == flows[1]
    assert "Dial" in flows[1] and flows[1][-1] == "ChannelDestroyed"


def test_trunk_call_to_the_queue_rings_its_members(admin: SimAdmin) -> None:
    admin.trunk_call("+33123456789", "2000", name="ACME")
    admin.wait_ringing("1002")
    admin.wait_ringing("1006")
    admin.answer("1006")
    calls = _live(admin)
    assert set(calls) == {"PJSIP/trunk", "PJSIP/1006"}
    assert calls["PJSIP/trunk"]["caller"] == {"name": "ACME", "number": "+33123456789"}
    admin.hangup("1006")
    wait_for(lambda: admin.calls() == [], what="the call to end")


def test_trunk_call_to_an_unknown_number_is_hung_up(admin: SimAdmin) -> None:
    admin.trunk_call("+33123456789", "999")
    assert admin.calls() == []


# -- the client ---------------------------------------------------------------------------------


def test_client_keeps_the_password_out_of_repr_and_errors(sim: AriSimulator) -> None:
    admin = SimAdmin(sim.url + "/ari", sim.username, sim.password)
    assert admin.url == sim.url
    assert sim.password not in repr(admin)
    bad = SimAdmin(sim.url, sim.username, "not-the-password")
    with pytest.raises(SimAdminError) as info:
        bad.phones()
    assert info.value.status == 401 and "not-the-password" not in str(info.value)


def test_client_refuses_bad_urls() -> None:
    with pytest.raises(ValueError):
        SimAdmin("ftp://127.0.0.1:1", "u", "p")
    with pytest.raises(ValueError):
        SimAdmin("http://u:p@127.0.0.1:1", "u", "p")


def test_client_reports_an_unreachable_simulator() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SimAdminError) as info:
        SimAdmin(f"http://127.0.0.1:{port}", "u", "p", timeout=2).phones()
    assert info.value.status == 0 and "unreachable" in info.value.message


class _Redirector(BaseHTTPRequestHandler):
    seen: List[str] = []
    target = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization") or "")
        if self.target:
            self.send_response(302)
            self.send_header("Location", self.target)
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def http_pair() -> Iterator[List[ThreadingHTTPServer]]:
    class Other(_Redirector):
        seen: List[str] = []
        target = ""

    other = ThreadingHTTPServer(("127.0.0.1", 0), Other)

    class First(_Redirector):
        seen: List[str] = []
        target = f"http://127.0.0.1:{other.server_address[1]}/sim/phones"

    first = ThreadingHTTPServer(("127.0.0.1", 0), First)
    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05})
               for s in (first, other)]
    for t in threads:
        t.start()
    yield [first, other]
    for s in (first, other):
        s.shutdown()
        s.server_close()
    for t in threads:
        t.join(5)


def test_client_never_follows_a_redirect_with_the_credentials(
    http_pair: List[ThreadingHTTPServer],
) -> None:
    first, other = http_pair
    admin = SimAdmin(f"http://127.0.0.1:{first.server_address[1]}", "u", "secret")
    with pytest.raises(SimAdminError) as info:
        admin.phones()
    assert info.value.status == 302
    assert first.RequestHandlerClass.seen  # type: ignore[attr-defined]
    assert other.RequestHandlerClass.seen == []  # type: ignore[attr-defined]


# -- the port -----------------------------------------------------------------------------------


def test_a_taken_port_raises_port_in_use_and_starts_nothing() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        sim = AriSimulator(port=port)
        with pytest.raises(PortInUseError) as info:
            sim.start()
        assert info.value.port == port and str(port) in str(info.value)
        assert not [t for t in threading.enumerate() if t.name.startswith("asterisk-cti-sim")]
        sim.stop()


def test_python_m_sim_on_a_taken_port_is_one_line_and_exit_code_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "asterisk_cti.sim", "--port", str(port)],
                           capture_output=True, text=True, timeout=30, cwd=str(REPO))
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr == (f"python -m asterisk_cti.sim: error: port {port} on 127.0.0.1 is "
                        "already in use; choose another with --port (0: any free port)\n")


# -- the PBX side: registration, restart, network blips -----------------------------------------


def test_unregister_and_register_a_phone(sim: AriSimulator, ari: Ari, admin: SimAdmin) -> None:
    admin.set_registered("1006", False)
    assert ari("GET", "/endpoints/PJSIP/1006").json()["state"] == "offline"
    with pytest.raises(SimAdminError) as info:
        admin.dial("1006", "1000")
    assert (info.value.status, info.value.message) == (409, "phone 1006 is not registered")
    admin.set_registered("1006", True)
    assert ari("GET", "/endpoints/PJSIP/1006").json()["state"] == "online"
    r = requests.post(f"{sim.url}/sim/phones/1006/register", params={"registered": "maybe"},
                      auth=(sim.username, sim.password), timeout=5)
    assert r.status_code == 400


def test_restart_from_another_client_takes_the_pbx_down_then_back(
        sim: AriSimulator, ari: Ari, admin: SimAdmin) -> None:
    before = ari("GET", "/asterisk/info").json()["status"]["startup_time"]
    admin.dial("1000", "1002")
    admin.restart(boot_time=1.0)
    assert not sim.booted
    wait_for(lambda: sim.booted, 5, "the simulator to boot again")
    assert admin.calls() == []
    assert ari("GET", "/asterisk/info").json()["status"]["startup_time"] != before
    with pytest.raises(SimAdminError) as info:
        admin.restart(boot_time=61)
    assert info.value.status == 400 and sim.booted


def test_drop_websockets_from_another_client(sim: AriSimulator, admin: SimAdmin) -> None:
    rec = Recorder(sim, "blip")
    try:
        wait_for(lambda: "blip" in sim.pbx.apps)
        admin.drop_websockets()
        assert rec.closed.wait(5)
    finally:
        rec.close()


def test_stop_ends_a_pending_wait_ringing_at_once() -> None:
    sim = AriSimulator().start()
    admin = sim.admin_client()
    errors: List[SimAdminError] = []

    def wait() -> None:
        try:
            admin.wait_ringing("1000", timeout=30)
        except SimAdminError as exc:
            errors.append(exc)

    t = threading.Thread(target=wait, name="test-wait-ringing")
    t.start()
    wait_for(lambda: len(sim._threads) >= 1, what="the request to arrive")
    sim.stop(timeout=5)
    t.join(5)
    assert not t.is_alive() and len(errors) == 1
    assert not [x for x in threading.enumerate() if x.name.startswith("asterisk-cti-sim")]
