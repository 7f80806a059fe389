"""``/channels`` routes: honest errors, Stasis-only operations, originate."""

from __future__ import annotations

from asterisk_cti.sim import AriSimulator

from ..conftest import Ari, Recorder, wait_for


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
