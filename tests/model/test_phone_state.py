"""Every change of a connection's phone state is told by an event of that connection carrying
the new state: checked after every ARI event of every recorded trace and lab recording, and
for the ringing of a phone that identifies the far end in two steps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Mapping

import pytest

from asterisk_cti.events.catalogue import parse_event
from asterisk_cti.model import CallModel, PhoneState

from .helpers import SCENARIOS, load_trace, new_model

DATA = Path(__file__).resolve().parent / "data"


def _states(model: CallModel) -> Dict[str, PhoneState]:
    return {c.connection_id: c.phone_state for line in model.lines for c in line.connections}


def _check(frames: List[Mapping[str, Any]]) -> int:
    """Replay; after each event compare the snapshots; returns how many changes were told."""
    model = new_model()
    told = 0
    for frame in frames:
        before = _states(model)
        out = model.apply(parse_event(dict(frame)))
        after = _states(model)
        for cid, state in after.items():
            if before.get(cid, PhoneState.IDLE) is not state:
                assert any(e.connection_id == cid and e.phone_state is state for e in out), (
                    f"{cid} became {state.value} with no event saying so: "
                    f"{frame.get('type')} gave {[e.kind.value for e in out]}")
                told += 1
        for cid in before.keys() - after.keys():
            if before[cid] is not PhoneState.IDLE:
                assert any(e.connection_id == cid and e.phone_state is PhoneState.DISCONNECTED
                           for e in out), f"{cid} left the line untold"
                told += 1
    return told


@pytest.mark.parametrize("variant", ["rec", "all"])
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_phone_state_change_of_the_traces_is_told(scenario: str, variant: str) -> None:
    assert _check(load_trace(scenario, variant)) > 0


@pytest.mark.parametrize("name", sorted(p.stem for p in DATA.glob("lab_*.jsonl")))
def test_every_phone_state_change_of_the_lab_recordings_is_told(name: str) -> None:
    with (DATA / f"{name}.jsonl").open(encoding="utf-8") as fh:
        frames = [json.loads(line) for line in fh if line.strip()]
    assert _check(frames) > 0


def _chan(cid: str, name: str, state: str, caller: tuple, connected: tuple) -> Dict[str, Any]:
    return {"id": cid, "name": name, "state": state,
            "caller": {"number": caller[0], "name": caller[1]},
            "connected": {"number": connected[0], "name": connected[1]},
            "dialplan": {"context": "from-internal", "exten": "s", "priority": 1}}


def test_a_two_step_identification_while_ringing_is_not_a_party_change() -> None:
    """Asterisk updates a ringing channel's connected line with the number, then with number
    and name (P-Asserted-Identity phones): completing the identity is no party_changed."""
    model = new_model()
    ts = "2026-12-01T10:00:00.000+0000"
    events = []
    for etype, connected, state in (
        ("ChannelCreated", ("", ""), "Down"),
        ("ChannelConnectedLine", ("1000", ""), "Down"),
        ("ChannelStateChange", ("1000", ""), "Ringing"),
        ("ChannelConnectedLine", ("1000", "Kai"), "Ringing"),
    ):
        events += model.apply(parse_event({
            "type": etype, "timestamp": ts, "application": "cti",
            "channel": _chan("c1", "PJSIP/1002-00000001", state, ("1002", "Ping"), connected)}))
    assert [e.kind.value for e in events] == ["delivered"]
    (conn,) = model.line("PJSIP/1002").connections
    assert (conn.connected.number, conn.connected.name) == ("1000", "Kai")
    assert (conn.calling.number, conn.calling.name) == ("1000", "Kai")
    # a different party is a change
    events = model.apply(parse_event({
        "type": "ChannelConnectedLine", "timestamp": ts, "application": "cti",
        "channel": _chan("c1", "PJSIP/1002-00000001", "Ringing", ("1002", "Ping"),
                         ("1006", "Lee"))}))
    assert [e.kind.value for e in events] == ["party_changed"]
