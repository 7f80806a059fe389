"""The transition table, entry by entry, and how ARI events map onto its stimuli."""

from __future__ import annotations

from pathlib import Path
from typing import Tuple

import pytest

from asterisk_cti.events.catalogue import parse_event
from asterisk_cti.model import (
    TRANSITIONS,
    CallModel,
    ConnectionState,
    EventKind,
    PhoneState,
    Stimulus,
    phone_state_of,
    transition_table_rst,
)

from .helpers import chan, ev, new_model

ALL_PAIRS = [(s, st) for s in ConnectionState for st in Stimulus]


def _model_with(state: ConnectionState) -> Tuple[CallModel, str]:
    model = new_model()
    model.apply(parse_event(ev("ChannelCreated", channel=chan("9.1", "1000", "Down",
                                                              connected=("1002", "Ping")))))
    internal = model._chans["9.1"]
    internal.state = state
    internal.announced = state is not ConnectionState.NULL
    return model, "9.1"


@pytest.mark.parametrize(("state", "stimulus"), list(TRANSITIONS), ids=lambda v: str(v))
def test_each_transition(state: ConnectionState, stimulus: Stimulus) -> None:
    model, cid = _model_with(state)
    ch = model._chans[cid]
    model._begin()
    assert model._fire(ch, stimulus)
    expected = TRANSITIONS[(state, stimulus)]
    assert ch.state is expected.state
    assert [e.kind for e in model._out] == list(expected.emits)
    for e in model._out:
        assert e.previous_state is state
        assert e.state is expected.state
        assert e.line == "PJSIP/1000" and e.connection_id == cid
    assert model.needs_repair == set()


@pytest.mark.parametrize(
    ("state", "stimulus"), [p for p in ALL_PAIRS if p not in TRANSITIONS], ids=lambda v: str(v)
)
def test_each_missing_pair_is_unfit(state: ConnectionState, stimulus: Stimulus) -> None:
    model, cid = _model_with(state)
    ch = model._chans[cid]
    model._begin()
    assert not model._fire(ch, stimulus)
    assert ch.state is state
    assert model._out == []
    assert model.needs_repair == {cid}
    assert model.unfit_count == 1


def test_table_shape() -> None:
    for state in ConnectionState:
        assert (state, Stimulus.HANGUP) in TRANSITIONS, "every state can hang up"
    for (_, _stim), tr in TRANSITIONS.items():
        if EventKind.CONNECTION_CLEARED in tr.emits or EventKind.DIVERTED in tr.emits:
            assert tr.state is ConnectionState.NULL
    assert EventKind.CALL_CLEARED not in {k for tr in TRANSITIONS.values() for k in tr.emits}


def test_phone_states() -> None:
    assert phone_state_of(ConnectionState.INITIATED, False) is PhoneState.DIALING
    assert phone_state_of(ConnectionState.INITIATED, True) is PhoneState.RINGBACK
    assert phone_state_of(ConnectionState.ALERTING, False) is PhoneState.RINGING
    assert phone_state_of(ConnectionState.HOLD, False) is PhoneState.HELD
    assert phone_state_of(ConnectionState.FAIL, False) is PhoneState.FAILED
    assert phone_state_of(ConnectionState.NULL, False) is PhoneState.IDLE


def test_rst_table_lists_every_entry_and_docs_are_current() -> None:
    table = transition_table_rst()
    rows = [r for r in table.splitlines() if r and not r.startswith("=")][1:]
    assert len(rows) == len(TRANSITIONS)
    doc = Path(__file__).resolve().parents[2] / "docs" / "call-model.rst"
    if not doc.is_file():
        pytest.fail("docs/call-model.rst is missing")
    assert table in doc.read_text(encoding="utf-8"), "regenerate the table in the docs"


# -- ARI events -> stimuli ---------------------------------------------------------------


def _apply(model: CallModel, *frames: dict) -> list:
    out = []
    for f in frames:
        out.extend(model.apply(parse_event(f)))
    return out


def test_outgoing_created_ring_is_originated_with_dialled_number() -> None:
    model = new_model()
    (e,) = _apply(model, ev("ChannelCreated", channel=chan("1.1", "1000", "Ring", exten="1002")))
    assert (e.kind, e.state, e.called.number, e.direction.value) == (
        EventKind.ORIGINATED, ConnectionState.INITIATED, "1002", "outgoing"
    )
    assert model.line("PJSIP/1000").phone_state is PhoneState.DIALING  # type: ignore[union-attr]


def test_incoming_ringing_is_delivered_with_calling_from_connected_line() -> None:
    """A queue/IVR agent channel: no Dial caller visible, the connected line names the caller."""
    model = new_model()
    out = _apply(
        model,
        ev("ChannelCreated", channel=chan("2.1", "1002", "Down", connected=("5551234", "Ada"))),
        ev("ChannelStateChange", channel=chan("2.1", "1002", "Ringing",
                                              connected=("5551234", "Ada"))),
    )
    (e,) = out
    assert e.kind is EventKind.DELIVERED
    assert (e.calling.number, e.calling.name) == ("5551234", "Ada")
    assert e.called.number == "1002"
    assert e.phone_state is PhoneState.RINGING


def test_hold_retrieve_and_set_held() -> None:
    model = new_model()
    _apply(model, ev("ChannelCreated", channel=chan("3.1", "1000", "Ring", exten="1002")),
           ev("ChannelStateChange", channel=chan("3.1", "1000", "Up")))
    kinds = [e.kind for e in _apply(model, ev("ChannelHold", channel=chan("3.1", "1000")))]
    assert kinds == [EventKind.HELD]
    assert model.connection("3.1").held  # type: ignore[union-attr]
    kinds = [e.kind for e in _apply(model, ev("ChannelUnhold", channel=chan("3.1", "1000")))]
    assert kinds == [EventKind.RETRIEVED]
    # A lone unhold (blind transfer by REFER) changes nothing.
    assert _apply(model, ev("ChannelUnhold", channel=chan("3.1", "1000"))) == []
    # Call control's ARI hold emits no ChannelHold: set_held tells the model.
    (h,) = model.set_held("3.1", True)
    assert (h.kind, h.held, h.raw) == (EventKind.HELD, True, ())
    assert h.timestamp == 1000.0
    (r,) = model.set_held("3.1", False)
    assert r.kind is EventKind.RETRIEVED
    assert model.needs_repair == set()


def test_hold_while_ringing_is_unfit_and_needs_repair() -> None:
    model = new_model()
    _apply(model, ev("ChannelCreated", channel=chan("4.1", "1002", "Ringing")))
    assert _apply(model, ev("ChannelHold", channel=chan("4.1", "1002", "Ringing"))) == []
    assert model.needs_repair == {"4.1"}
    assert model.unfit_count == 1
    # Repair from REST: still ringing, nothing to emit; the channel leaves needs_repair.
    assert model.repair("4.1", chan("4.1", "1002", "Ringing")) == []
    assert model.needs_repair == set()


def test_talking_flags() -> None:
    model = new_model()
    _apply(model, ev("ChannelCreated", channel=chan("5.1", "1000", "Up", exten="1002")))
    (s,) = _apply(model, ev("ChannelTalkingStarted", channel=chan("5.1", "1000")))
    assert s.kind is EventKind.TALKING_STARTED and s.talking
    (f,) = _apply(model, ev("ChannelTalkingFinished", channel=chan("5.1", "1000"), duration=5))
    assert f.kind is EventKind.TALKING_STOPPED and not f.talking


def test_diverted_by_dial_forward() -> None:
    model = new_model()
    caller = chan("6.1", "1000", "Ring", exten="1002")
    peer = chan("6.2", "1002", "Ringing", connected=("1000", "Kai"))
    _apply(model, ev("ChannelCreated", channel=caller), ev("ChannelCreated", channel=peer),
           ev("Dial", caller=caller, peer=peer, dialstatus="", dialstring="1002"))
    out = _apply(model, ev("Dial", caller=caller, peer=peer, dialstatus="CANCEL",
                           forward="1006"))
    kinds = [(e.line, e.kind) for e in out]
    assert kinds == [("PJSIP/1002", EventKind.DIVERTED), ("PJSIP/1002", EventKind.CALL_CLEARED)]
    assert out[0].reason.value == "diverted"
    # The channel's later destruction says nothing more.
    assert _apply(model, ev("ChannelDestroyed", channel=peer, cause=16)) == []


def test_ring_group_fails_only_when_the_last_peer_fails() -> None:
    model = new_model()
    caller = chan("7.1", "1000", "Ring", exten="600")
    p1 = chan("7.2", "1002", "Ringing", connected=("1000", "Kai"))
    p2 = chan("7.3", "1006", "Ringing", connected=("1000", "Kai"))
    _apply(model, ev("ChannelCreated", channel=caller), ev("ChannelCreated", channel=p1),
           ev("ChannelCreated", channel=p2),
           ev("Dial", caller=caller, peer=p1, dialstatus=""),
           ev("Dial", caller=caller, peer=p2, dialstatus=""))
    out = _apply(model, ev("Dial", caller=caller, peer=p1, dialstatus="BUSY"))
    assert [e.kind for e in out if e.line == "PJSIP/1000"] == []
    out = _apply(model, ev("Dial", caller=caller, peer=p2, dialstatus="NOANSWER"))
    (failed,) = [e for e in out if e.line == "PJSIP/1000"]
    assert (failed.kind, failed.cause, failed.dialstatus) == (EventKind.FAILED, 19, "NOANSWER")


def test_endpoint_state_changes_and_technology_monitoring() -> None:
    model = CallModel(clock=lambda: 5.0)
    model.set_monitored(["PJSIP"])
    assert model.lines == ()
    frame = ev("EndpointStateChange", endpoint={"technology": "PJSIP", "resource": "2000",
                                                "state": "offline", "channel_ids": []})
    (e,) = _apply(model, frame)
    assert (e.kind, e.line, e.line_state, e.previous_line_state) == (
        EventKind.LINE_STATE_CHANGED, "PJSIP/2000", "offline", "unknown"
    )
    assert _apply(model, frame) == []
    assert model.line("PJSIP/2000").registration == "offline"  # type: ignore[union-attr]
    # Other technologies are not monitored.
    assert _apply(model, ev("ChannelCreated", channel=chan("8.1", "x", "Ring",
                                                           name="IAX2/x-1"))) == []
    assert model.tracked_channels == 0
    model.set_monitored(["PJSIP/1000"])
    assert [line.name for line in model.lines] == ["PJSIP/1000"]


def test_unmonitored_channels_are_dropped_cheaply() -> None:
    model = new_model()
    c = chan("10.1", "2000", "Ring", exten="2001")
    for kind in ("ChannelCreated", "ChannelStateChange", "ChannelHold", "ChannelDestroyed"):
        assert _apply(model, ev(kind, channel=c)) == []
    assert model.tracked_channels == 0
    assert model.needs_repair == set()


def test_event_for_unknown_monitored_channel_needs_repair_and_repair_adds_it() -> None:
    model = new_model()
    c = chan("11.1", "1002", "Up", connected=("1000", "Kai"))
    assert _apply(model, ev("ChannelHold", channel=c)) == []
    assert model.needs_repair == {"11.1"}
    out = model.repair("11.1", c)
    assert [e.kind for e in out] == [EventKind.DELIVERED, EventKind.ESTABLISHED]
    assert model.connection("11.1").state is ConnectionState.CONNECTED  # type: ignore[union-attr]
    out = model.repair("11.1", None)
    assert [e.kind for e in out] == [EventKind.CONNECTION_CLEARED, EventKind.CALL_CLEARED]
    assert out[0].reason.value == "resync"
    assert model.connection("11.1") is None


def test_linkedid_groups_channels() -> None:
    model = new_model()
    a = chan("12.1", "1000", "Ring", exten="1002", linkedid="12.1")
    b = chan("12.2", "1002", "Down", linkedid="12.1")
    _apply(model, ev("ChannelCreated", channel=a), ev("ChannelCreated", channel=b))
    call = model.find_call("12.1")
    assert call is not None and call.lines == ("PJSIP/1000", "PJSIP/1002")
    assert model.connection("12.2").call_id == "12.1"  # type: ignore[union-attr]
