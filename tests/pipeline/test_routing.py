"""pipeline/routing.py: lane keys and bridge membership, pure."""

from __future__ import annotations

from typing import Any, Dict

from asterisk_cti.pipeline import routing
from asterisk_cti.pipeline.routing import APP_KEY, LineFilter, Router


def ch(cid: str, name: str) -> Dict[str, Any]:
    return {"id": cid, "name": name}


def test_line_filter_knows_endpoints_and_whole_technologies() -> None:
    flt = LineFilter(["PJSIP/1000", "SIP"])
    assert flt.line_of(ch("1", "PJSIP/1000-00000001")) == "PJSIP/1000"
    assert flt.line_of(ch("2", "SIP/7-1")) == "SIP/7"
    assert flt.line_of(ch("3", "PJSIP/2000-1")) is None
    assert flt.line_of({"name": 5}) is None and flt.line_of("PJSIP/1000-1") is None
    assert flt.covers("PJSIP/1000") and flt.covers("SIP/9") and not flt.covers("PJSIP/2")


def test_line_of_remembers_names_with_bounds_and_gives_the_same_answers() -> None:
    flt = LineFilter(["PJSIP"])
    names = [f"PJSIP/{1000 + i % 50}-{i:08x}" for i in range(routing._LINE_CACHE * 2)]
    first = [flt.line_of(ch(str(i), n)) for i, n in enumerate(names)]
    again = [flt.line_of(ch(str(i), n)) for i, n in enumerate(names)]
    assert first == again == [n.rsplit("-", 1)[0] for n in names]
    assert len(flt._lines) <= routing._LINE_CACHE  # cleared when full, never past it
    # an unmonitored name is remembered as such; a hostile long name is answered, not kept
    assert flt.line_of(ch("x", "IAX2/9-1")) is None and flt.line_of(ch("x", "IAX2/9-1")) is None
    long_name = "PJSIP/" + "9" * 10000 + "-1"
    assert flt.line_of(ch("y", long_name)) == long_name[:-2]
    assert long_name not in flt._lines


def test_far_party_bridge_events_go_on_the_monitored_line() -> None:
    r = Router(["PJSIP/1000"])
    mine, far = ch("m", "PJSIP/1000-1"), ch("f", "PJSIP/2000-1")
    bridge = {"id": "b1"}
    assert r.key_for("ChannelEnteredBridge", {"channel": mine, "bridge": bridge}) == "PJSIP/1000"
    assert r.key_for("ChannelEnteredBridge", {"channel": far, "bridge": bridge}) == "PJSIP/1000"
    assert r.key_for("ChannelLeftBridge", {"channel": far, "bridge": bridge}) == "PJSIP/1000"
    assert r.key_for("ChannelLeftBridge", {"channel": mine, "bridge": bridge}) == "PJSIP/1000"
    assert r.filter.bridges == {}
    assert r.key_for("ChannelEnteredBridge", {"channel": far, "bridge": bridge}) is None


def test_merge_and_destroy_keep_the_membership_and_a_new_filter_keeps_the_bridges() -> None:
    r = Router(["PJSIP/1000"])
    r.track_bridges("ChannelEnteredBridge", {"channel": ch("m", "PJSIP/1000-1"),
                                             "bridge": {"id": "b1"}})
    r.track_bridges("BridgeMerged", {"bridge": {"id": "b2"}, "bridge_from": {"id": "b1"}})
    assert r.filter.bridges == {"b2": {"m": "PJSIP/1000"}}
    r.set_sources(["PJSIP/1000", "PJSIP/1002"])
    assert r.filter.bridges == {"b2": {"m": "PJSIP/1000"}} and r.filter.covers("PJSIP/1002")
    assert r.key_for("BridgeDestroyed", {"bridge": {"id": "b2"}}) == "PJSIP/1000"
    assert r.filter.bridges == {}


def test_dial_endpoint_and_app_events_get_their_keys() -> None:
    r = Router(["PJSIP/1000"])
    assert r.key_for("Dial", {"peer": ch("p", "PJSIP/1000-2"),
                              "caller": ch("c", "PJSIP/3-1")}) == "PJSIP/1000"
    assert r.key_for("Dial", {"channel": ch("x", "PJSIP/3-1"),
                              "caller": ch("c", "PJSIP/1000-1")}) == "PJSIP/1000"
    assert r.key_for("EndpointStateChange", {"endpoint": {"technology": "PJSIP",
                                                          "resource": "1000"}}) == "PJSIP/1000"
    assert r.key_for("EndpointStateChange", {"endpoint": "bad"}) is None
    assert r.key_for("ApplicationReplaced", {}) == APP_KEY


def test_rebuild_from_a_rest_snapshot() -> None:
    r = Router(["PJSIP/1000"])
    mine = r.rebuild([ch("m", "PJSIP/1000-1"), ch("f", "PJSIP/2000-1")],
                     [{"id": "b", "channels": ["m", "f"]}, {"id": "c", "channels": ["f"]},
                      {"id": "d", "channels": "bad"}])
    assert mine == {"m": "PJSIP/1000"}
    assert r.filter.bridges == {"b": {"m": "PJSIP/1000"}}
    assert r.covered_endpoints([{"technology": "PJSIP", "resource": "1000"},
                                {"technology": "PJSIP", "resource": "2"}]) == [
        {"technology": "PJSIP", "resource": "1000"}]
