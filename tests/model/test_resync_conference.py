"""Resynchronisation from REST, conferences, and the memory / cost envelope."""

from __future__ import annotations

import tracemalloc
from typing import Any, Dict, List

from asterisk_cti.events.catalogue import parse_event
from asterisk_cti.model import CallEvent, CallModel, ConnectionState, EventKind, Reason

from .helpers import chan, ev, load_trace, new_model, replay, rest_at


def _apply(model: CallModel, *frames: Dict[str, Any]) -> List[CallEvent]:
    out: List[CallEvent] = []
    for f in frames:
        out.extend(model.apply(parse_event(f)))
    return out


def _kinds(events: List[CallEvent]) -> List[tuple]:
    return [(e.line, e.kind.value) for e in events]


def _basic_call(model: CallModel) -> None:
    a = chan("20.1", "1000", "Ring", exten="1002")
    b = chan("20.2", "1002", "Down", connected=("1000", "Kai"))
    _apply(model, ev("ChannelCreated", channel=a), ev("ChannelCreated", channel=b),
           ev("Dial", caller=a, peer=b, dialstatus="", dialstring="1002"),
           ev("ChannelStateChange", channel=dict(b, state="Ringing")))


def test_resync_clears_calls_that_ended_during_the_gap() -> None:
    model = new_model()
    _basic_call(model)
    out, report = model.resync(channels=[], bridges=[], endpoints=[])
    assert _kinds(out) == [
        ("PJSIP/1000", "connection_cleared"), ("PJSIP/1000", "call_cleared"),
        ("PJSIP/1002", "connection_cleared"), ("PJSIP/1002", "call_cleared"),
    ]
    assert all(e.reason is Reason.RESYNC for e in out)
    assert {c.connection_id for c in report.removed} == {"20.1", "20.2"}
    assert report.lines == ("PJSIP/1000", "PJSIP/1002")
    assert all(line.is_idle for line in model.lines)


def test_resync_adds_calls_that_started_and_reports_changes() -> None:
    model = new_model()
    _basic_call(model)
    # During the gap 1002 answered, and 1006 got a call from outside that it answered.
    channels = [
        chan("20.1", "1000", "Up", exten="1002", connected=("1002", "Ping")),
        chan("20.2", "1002", "Up", connected=("1000", "Kai")),
        chan("21.1", "1006", "Up", connected=("5551234", "Ada")),
        chan("21.2", "trunk", "Up", name="PJSIP/trunk-00000099", caller=("5551234", "Ada")),
    ]
    bridges = [{"id": "b1", "bridge_type": "mixing", "channels": ["20.1", "20.2"]},
               {"id": "b2", "bridge_type": "mixing", "channels": ["21.1", "21.2"]}]
    endpoints = [{"technology": "PJSIP", "resource": "1006", "state": "online",
                  "channel_ids": ["21.1"]}]
    out, report = model.resync(channels=channels, bridges=bridges, endpoints=endpoints)
    assert _kinds(out) == [
        ("PJSIP/1006", "line_state_changed"),
        ("PJSIP/1000", "established"),
        ("PJSIP/1002", "established"),
        ("PJSIP/1006", "delivered"),
        ("PJSIP/1006", "established"),
    ]
    delivered = out[3]
    assert (delivered.calling.number, delivered.calling.name) == ("5551234", "Ada")
    assert [c.connection_id for c in report.added] == ["21.1"]
    assert {c.connection_id for c in report.changed} == {"20.1", "20.2"}
    assert report.line_changes[0].current == "online"
    assert report.for_line("PJSIP/1006").added == report.added
    # Calling again with the same state changes nothing.
    out, report = model.resync(channels=channels, bridges=bridges, endpoints=endpoints)
    assert out == [] and report.is_empty


def test_resync_party_change_and_repair_queue_cleared() -> None:
    model = new_model()
    _basic_call(model)
    _apply(model, ev("ChannelHold", channel=chan("99.9", "1000")))  # unknown channel
    assert model.needs_repair == {"99.9"}
    channels = [
        chan("20.1", "1000", "Ring", exten="1002", connected=("1002", "Ping")),
        chan("20.2", "1002", "Ringing", connected=("1000", "Kai Renamed")),
    ]
    out, _ = model.resync(channels=channels, bridges=[], endpoints=[])
    assert _kinds(out) == [("PJSIP/1002", "party_changed")]
    assert model.needs_repair == set()


def test_resync_keeps_hold_which_rest_cannot_show() -> None:
    model = new_model()
    _basic_call(model)
    _apply(model, ev("ChannelStateChange", channel=chan("20.2", "1002", "Up")),
           ev("ChannelStateChange", channel=chan("20.1", "1000", "Up")),
           ev("ChannelHold", channel=chan("20.1", "1000")))
    channels = [chan("20.1", "1000", "Up", exten="1002"), chan("20.2", "1002", "Up")]
    out, report = model.resync(channels=channels, bridges=[], endpoints=[])
    assert out == [] and report.is_empty
    assert model.connection("20.1").state is ConnectionState.HOLD  # type: ignore[union-attr]


def test_resync_from_a_trace_midway_recovers_the_call() -> None:
    """Start a model in the middle of the attended transfer: REST alone rebuilds it."""
    frames = load_trace("attended_transfer", "all")
    cut = next(i for i, f in enumerate(frames) if f["type"] == "BridgeMerged") - 3
    rest = rest_at(frames, cut)
    model = new_model()
    out, report = model.resync(**rest.args())
    assert {c.connection_id for c in report.added} == {
        "1795665237.4", "1795665237.5", "1795665244.8"
    }
    # Bridges and the Local channel pair put all three in one call.
    assert len({c.call_id for c in report.added}) == 1
    assert {e.kind for e in out} == {EventKind.ORIGINATED, EventKind.DELIVERED,
                                     EventKind.ESTABLISHED}
    rest_events = replay(model, frames[cut:])
    assert model.tracked_channels == 0
    assert any(e.kind is EventKind.TRANSFERRED for e in rest_events)


def _answered_bridge(model: CallModel) -> None:
    a = chan("30.1", "1000", "Up", exten="1002", connected=("1002", "Ping"))
    b = chan("30.2", "1002", "Up", connected=("1000", "Kai"))
    _apply(model, ev("ChannelCreated", channel=a), ev("ChannelCreated", channel=b),
           ev("Dial", caller=a, peer=b, dialstatus="ANSWER"),
           ev("ChannelEnteredBridge", channel=a,
              bridge={"id": "B", "bridge_type": "mixing", "channels": ["30.1"]}),
           ev("ChannelEnteredBridge", channel=b,
              bridge={"id": "B", "bridge_type": "mixing", "channels": ["30.1", "30.2"]}))


def test_third_party_in_a_mixing_bridge_is_a_conference() -> None:
    model = new_model()
    _answered_bridge(model)
    c = chan("31.1", "1006", "Up", connected=("7000", "Conf"))
    _apply(model, ev("ChannelCreated", channel=c))
    out = _apply(model, ev("ChannelEnteredBridge", channel=c, bridge={
        "id": "B", "bridge_type": "mixing", "technology": "softmix",
        "channels": ["30.1", "30.2", "31.1"]}))
    conf = [e for e in out if e.kind is EventKind.CONFERENCED]
    assert sorted(e.line for e in conf) == ["PJSIP/1000", "PJSIP/1002", "PJSIP/1006"]
    assert {p.number for p in conf[0].conference} == {"1000", "1002", "1006"}
    assert len({e.call_id for e in conf}) == 1
    # The same membership again is not a new conference; a party leaving is not either.
    assert _apply(model, ev("ChannelEnteredBridge", channel=c, bridge={
        "id": "B", "bridge_type": "mixing", "channels": ["30.1", "30.2", "31.1"]})) == []
    assert _apply(model, ev("ChannelLeftBridge", channel=c, bridge={
        "id": "B", "bridge_type": "mixing", "channels": ["30.1", "30.2"]})) == []


def test_threeway_attended_transfer_is_a_conference_not_a_transfer() -> None:
    model = new_model()
    _answered_bridge(model)
    _apply(model, ev("ChannelHold", channel=chan("30.1", "1000")))
    c = chan("32.1", "1006", "Up", connected=("1000", "Kai"))
    _apply(model, ev("ChannelCreated", channel=c))
    out = _apply(model, ev(
        "BridgeAttendedTransfer", result="Success", destination_type="threeway",
        transferer_first_leg=chan("30.1", "1000"), transferer_second_leg=chan("30.1", "1000"),
        transferee=chan("30.2", "1002"), transfer_target=c,
        destination_threeway_bridge={"id": "B", "bridge_type": "mixing",
                                     "technology": "softmix",
                                     "channels": ["30.1", "30.2", "32.1"]}))
    assert sorted((e.line, e.kind.value) for e in out) == [
        ("PJSIP/1000", "conferenced"), ("PJSIP/1002", "conferenced"),
        ("PJSIP/1006", "conferenced"),
    ]
    # The transferer was holding: the conference takes it off hold.
    assert model.connection("30.1").state is ConnectionState.CONNECTED  # type: ignore[union-attr]


def test_memory_per_active_call_is_small() -> None:
    model = CallModel(clock=lambda: 1.0)
    model.set_monitored(["PJSIP"])
    frames = []
    for i in range(500):
        a = chan(f"{i}.1", f"a{i}", "Ring", exten=f"b{i}")
        b = chan(f"{i}.2", f"b{i}", "Down", connected=(f"a{i}", "A"))
        frames += [ev("ChannelCreated", channel=a), ev("ChannelCreated", channel=b),
                   ev("Dial", caller=a, peer=b, dialstatus=""),
                   ev("ChannelStateChange", channel=dict(b, state="Up")),
                   ev("Dial", caller=a, peer=b, dialstatus="ANSWER")]
    parsed = [parse_event(f) for f in frames]
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for p in parsed:
        model.apply(p)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert grown / 500 < 4096, f"{grown / 500:.0f} bytes per call"


def test_newly_monitored_line_gets_its_calls_on_resync() -> None:
    model = CallModel(clock=lambda: 1.0)
    model.set_monitored(["PJSIP/1000"])
    a = chan("40.1", "1000", "Ring", exten="1002")
    b = chan("40.2", "1002", "Down", connected=("1000", "Kai"))
    _apply(model, ev("ChannelCreated", channel=a), ev("ChannelCreated", channel=b),
           ev("Dial", caller=a, peer=b, dialstatus=""))
    assert model.line("PJSIP/1002") is None
    model.set_monitored(["PJSIP/1000", "PJSIP/1002"])
    out, report = model.resync(channels=[a, dict(b, state="Ringing")], bridges=[], endpoints=[])
    assert _kinds(out) == [("PJSIP/1002", "delivered")]
    assert [c.connection_id for c in report.added] == ["40.2"]
    assert model.connection("40.2").call_id == "40.1"  # type: ignore[union-attr]
