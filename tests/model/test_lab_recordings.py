"""Recordings of the integration lab (Asterisk 22.10.1, three baresip phones) replayed through
the call model: the DTMF three-way call and the DTMF attended transfer in the orderings
Asterisk really publishes.

The files in ``data/`` were recorded with the live client's subscriptions (``endpoint:PJSIP``
plus ``bridge:``, all bridges), minus the types its server-side filter drops; see
``data/README.md``. With these subscriptions no event of a Local channel arrives except its
bridge events: no ChannelCreated, no Dial from ``;2``, no ChannelDestroyed.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from asterisk_cti.model import CallEvent, ConnectionState, EventKind

from .helpers import by_line, chan, compact, ev, new_model, replay

DATA = Path(__file__).resolve().parent / "data"
Seq = List[Tuple[Any, ...]]
K, P, L = "PJSIP/1000", "PJSIP/1002", "PJSIP/1006"


def load(name: str) -> List[Dict[str, Any]]:
    with (DATA / f"{name}.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


#: 1000 calls 1002, ``*2 1006``, 1006 answers, ``*3``; 1000 hangs up, then 1006.
THREEWAY: Dict[str, Seq] = {
    K: [
        ("line_state_changed", "online"),
        ("originated", "initiated", "1000/Kai", "/", 0, "normal"),
        ("ringback", "initiated", "1000/Kai", "1002/Ping", 0, "normal"),
        ("established", "connected", "1000/Kai", "1002/Ping", 0, "normal"),
        ("talking_started", "connected", "1000/Kai", "1002/Ping", 0, "normal"),
        ("held", "hold", "1000/Kai", "1002/Ping", 0, "normal"),
        ("party_changed", "hold", "1000/Kai", "1006/Lee", 0, "normal"),
        ("conferenced", "connected", "1000/Kai", "1006/Lee", 0, "normal"),
        ("connection_cleared", "null", "1000/Kai", "1006/Lee", 16, "normal"),
        ("call_cleared", "null", "1000/Kai", "1006/Lee", 16, "normal"),
    ],
    P: [
        ("line_state_changed", "online"),
        ("delivered", "alerting", "1000/Kai", "1000/Kai", 0, "normal"),
        ("established", "connected", "1000/Kai", "1000/Kai", 0, "normal"),
        ("talking_started", "connected", "1000/Kai", "1000/Kai", 0, "normal"),
        ("conferenced", "connected", "1000/Kai", "1000/Kai", 0, "normal"),
        # 1000 left the conference: 1002 and 1006 talk on, each told its new party.
        ("party_changed", "connected", "1000/Kai", "1006/Lee", 0, "normal"),
        ("connection_cleared", "null", "1000/Kai", "1006/Lee", 16, "normal"),
        ("call_cleared", "null", "1000/Kai", "1006/Lee", 16, "normal"),
    ],
    L: [
        ("line_state_changed", "online"),
        ("delivered", "alerting", "1000/Kai", "1000/Kai", 0, "normal"),
        ("established", "connected", "1000/Kai", "1000/Kai", 0, "normal"),
        ("talking_started", "connected", "1000/Kai", "1000/Kai", 0, "normal"),
        ("conferenced", "connected", "1000/Kai", "1000/Kai", 0, "normal"),
        ("party_changed", "connected", "1000/Kai", "1002/Ping", 0, "normal"),
        ("connection_cleared", "null", "1000/Kai", "1002/Ping", 16, "normal"),
        ("call_cleared", "null", "1000/Kai", "1002/Ping", 16, "normal"),
    ],
}

#: 1000 calls 1002, ``*2 1006``, 1006 answers, 1000 hangs up (the transfer), then 1002.
TRANSFER: Dict[str, Seq] = {
    K: [
        ("line_state_changed", "online"),
        ("originated", "initiated", "1000/Kai", "/", 0, "normal"),
        ("ringback", "initiated", "1000/Kai", "1002/Ping", 0, "normal"),
        ("established", "connected", "1000/Kai", "1002/Ping", 0, "normal"),
        ("talking_started", "connected", "1000/Kai", "1002/Ping", 0, "normal"),
        ("held", "hold", "1000/Kai", "1002/Ping", 0, "normal"),
        ("party_changed", "hold", "1000/Kai", "1006/Lee", 0, "normal"),
        ("connection_cleared", "null", "1000/Kai", "1006/Lee", 16, "transferred"),
        ("call_cleared", "null", "1000/Kai", "1006/Lee", 16, "transferred"),
    ],
    P: [
        ("line_state_changed", "online"),
        ("delivered", "alerting", "1000/Kai", "1000/Kai", 0, "normal"),
        ("established", "connected", "1000/Kai", "1000/Kai", 0, "normal"),
        ("talking_started", "connected", "1000/Kai", "1000/Kai", 0, "normal"),
        ("transferred", "connected", "1000/Kai", "1006/Lee", 0, "normal"),
        ("connection_cleared", "null", "1000/Kai", "1006/Lee", 16, "normal"),
        ("call_cleared", "null", "1000/Kai", "1006/Lee", 16, "normal"),
    ],
    L: [
        ("line_state_changed", "online"),
        ("delivered", "alerting", "1000/Kai", "1000/Kai", 0, "normal"),
        ("established", "connected", "1000/Kai", "1000/Kai", 0, "normal"),
        ("talking_started", "connected", "1000/Kai", "1000/Kai", 0, "normal"),
        ("transferred", "connected", "1000/Kai", "1002/Ping", 0, "normal"),
        ("connection_cleared", "null", "1000/Kai", "1002/Ping", 16, "normal"),
        ("call_cleared", "null", "1000/Kai", "1002/Ping", 16, "normal"),
    ],
}

#: The attended transfer recordings: 1000's ChannelLeftBridge before BridgeMerged (as in the
#: shared trace), BridgeMerged first with 1000 still in ``bridge_from`` (about one run in
#: three), and that ordering with 1002's ChannelConnectedLine before BridgeAttendedTransfer.
TRANSFERS = (
    "lab_attended_transfer",
    "lab_attended_transfer_merged_first",
    "lab_attended_transfer_merged_first_2",
)


def _replay_checked(frames: List[Dict[str, Any]]) -> List[CallEvent]:
    model = new_model()
    events = replay(model, frames)
    assert model.needs_repair == set()
    assert model.unfit_count == 0
    # The Local channels, whose ChannelDestroyed never arrives, are not kept either.
    assert model.tracked_channels == 0
    assert all(line.is_idle for line in model.lines)
    return events


def _sequences(events: List[CallEvent]) -> Dict[str, Seq]:
    return {line: [compact(e) for e in evs] for line, evs in by_line(events).items()}


def _numbers(event: CallEvent) -> List[str]:
    return [p.number for p in event.conference]


def test_threeway_sequences() -> None:
    events = _replay_checked(load("lab_threeway"))
    assert _sequences(events) == THREEWAY


def test_threeway_conference_names_the_three_real_parties_at_every_line() -> None:
    frames = load("lab_threeway")
    events = _replay_checked(frames)
    conf = [e for e in events if e.kind is EventKind.CONFERENCED]
    assert [e.line for e in conf] == [K, P, L]
    for e in conf:
        # 1006 is reached through the Local pair; the Local channel itself is nobody.
        assert _numbers(e) == ["1000", "1002", "1006"]
        assert [p.name for p in e.conference] == ["Kai", "Ping", "Lee"]
        assert e.state is ConnectionState.CONNECTED and not e.held
    assert len({e.call_id for e in events if e.call_id}) == 1
    # Right after the three-way starts: all connected, nobody held, one call.
    cut = next(i for i, f in enumerate(frames) if f["type"] == "BridgeAttendedTransfer") + 1
    model = new_model()
    replay(model, frames[:cut])
    conns = [c for line in (K, P, L) for c in model.line(line).connections]  # type: ignore[union-attr]
    assert len(conns) == 3
    assert all(c.state is ConnectionState.CONNECTED and not c.held for c in conns)
    assert len({c.call_id for c in conns}) == 1


def test_threeway_with_the_transfer_event_before_the_transferer_moves() -> None:
    """BridgeAttendedTransfer (threeway) before 1000's ChannelLeftBridge/EnteredBridge: the
    same single conferenced per line, from the event's destination_threeway_bridge."""
    frames = load("lab_threeway")
    types = [f["type"] for f in frames]
    merged = types.index("BridgeMerged")
    bat = types.index("BridgeAttendedTransfer")
    reordered = [*frames[:merged + 1], frames[bat], *frames[merged + 1:bat], *frames[bat + 1:]]
    events = _replay_checked(reordered)
    assert _sequences(events) == THREEWAY
    conf = [e for e in events if e.kind is EventKind.CONFERENCED]
    assert all(_numbers(e) == ["1000", "1002", "1006"] for e in conf)


@pytest.mark.parametrize("name", TRANSFERS)
def test_attended_transfer_sequences(name: str) -> None:
    events = _replay_checked(load(name))
    assert _sequences(events) == TRANSFER
    assert not [e for e in events if e.kind is EventKind.CONFERENCED]
    assert len({e.call_id for e in events if e.call_id}) == 1
    xfer = next(e for e in events if e.line == P and e.kind is EventKind.TRANSFERRED)
    assert xfer.transferring is not None and xfer.transferring.number == "1000"
    assert xfer.transfer_target is not None and xfer.transfer_target.number == "1006"


def test_the_recordings_hold_the_orderings_they_are_named_for() -> None:
    def order(name: str) -> Tuple[bool, bool]:
        frames = load(name)
        types = [f["type"] for f in frames]
        merged, bat = types.index("BridgeMerged"), types.index("BridgeAttendedTransfer")
        transferer = frames[bat]["transferer_first_leg"]["id"]
        in_from = transferer in frames[merged]["bridge_from"]["channels"]
        tee = frames[bat]["transferee"]["id"]
        early_cl = any(
            f["type"] == "ChannelConnectedLine" and f["channel"]["id"] == tee
            for f in frames[merged:bat]
        )
        return in_from, early_cl

    assert order("lab_attended_transfer") == (False, False)
    assert order("lab_attended_transfer_merged_first") == (True, False)
    assert order("lab_attended_transfer_merged_first_2") == (True, True)


def _swap_merge_direction(frames: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The merge the other way round (which Asterisk's bridge_do_merge may choose): 1002 moves
    into the consultation bridge while 1000 is still in it, and 1000 is kicked only after
    that. The moment 1002 enters, that bridge holds 1000, 1002 and (through the Local pair)
    1006."""
    frames = copy.deepcopy(frames)
    types = [f["type"] for f in frames]
    merged, bat = types.index("BridgeMerged"), types.index("BridgeAttendedTransfer")
    m = frames[merged]
    transferer, transferee = (frames[bat]["transferer_first_leg"],
                              frames[bat]["transferee"])
    target = frames[bat]["transfer_target"]
    dst, src = m["bridge_from"], m["bridge"]  # the consultation bridge absorbs 1002's
    dst_ids = [transferer["id"], target["id"]]
    new_merge = dict(m, bridge=dict(dst, channels=list(dst_ids)),
                     bridge_from=dict(src, channels=[transferee["id"]]))
    stamp = m["timestamp"]
    moves = [
        dict(m, type="ChannelLeftBridge", channel=transferee, bridge=dict(src, channels=[])),
        dict(m, type="ChannelEnteredBridge", channel=transferee,
             bridge=dict(dst, channels=[*dst_ids, transferee["id"]])),
        dict(m, type="ChannelLeftBridge", channel=transferer,
             bridge=dict(dst, channels=[target["id"], transferee["id"]])),
    ]
    for f in moves:
        f.pop("bridge_from", None)
        f["timestamp"] = stamp
    # Drop the recorded moves between the merge and the transfer; keep everything else.
    between = [f for f in frames[merged + 1 : bat]
               if f["type"] not in ("ChannelLeftBridge", "ChannelEnteredBridge")]
    xfer = dict(frames[bat], destination_bridge=dst["id"])
    return [*frames[:merged], new_merge, *moves, *between, xfer, *frames[bat + 1:]]


def test_transferer_still_in_the_destination_bridge_is_no_conference() -> None:
    frames = _swap_merge_direction(load("lab_attended_transfer_merged_first"))
    model = new_model()
    events = replay(model, frames)
    assert not [e for e in events if e.kind is EventKind.CONFERENCED]
    lines = by_line(events)
    assert [e.kind.value for e in lines[P] if e.kind is EventKind.TRANSFERRED] == ["transferred"]
    cleared = next(e for e in lines[K] if e.kind is EventKind.CONNECTION_CLEARED)
    assert cleared.reason.value == "transferred"
    assert model.unfit_count == 0


# -- synthetic: a merge that no transfer explains (a Local channel optimised away)


def _at(frame: Dict[str, Any], second: int) -> Dict[str, Any]:
    frame["timestamp"] = f"2026-11-26T04:00:{second:02d}.000+0000"
    return frame


def test_a_merge_without_transfer_settles_after_a_while() -> None:
    """BridgeMerged with no BridgeAttendedTransfer: the bridge settles after two seconds of ARI
    time; a connected-line change held back meanwhile is told then, and a third party joining
    later is a conference."""
    model = new_model()
    a = chan("50.1", "1000", "Up", exten="1002", connected=("1002", "Ping"))
    b = chan("50.2", "1002", "Up", connected=("1000", "Kai"))
    for f in (ev("ChannelCreated", channel=a), ev("ChannelCreated", channel=b),
              ev("Dial", caller=a, peer=b, dialstatus="ANSWER"),
              ev("ChannelEnteredBridge", channel=a,
                 bridge={"id": "B", "bridge_type": "mixing", "channels": ["50.1"]}),
              ev("ChannelEnteredBridge", channel=b,
                 bridge={"id": "B", "bridge_type": "mixing", "channels": ["50.1", "50.2"]})):
        replay(model, [_at(f, 1)])
    merge = _at(ev("BridgeMerged", bridge={"id": "B", "bridge_type": "mixing",
                                           "channels": ["50.1", "50.2"]},
                   bridge_from={"id": "X", "bridge_type": "mixing", "channels": []}), 2)
    renamed = _at(ev("ChannelConnectedLine", channel=dict(b, connected={
        "number": "1000", "name": "Kai Office"})), 2)
    assert replay(model, [merge, renamed]) == []
    c = chan("51.1", "1006", "Up", connected=("1000", "Kai"))
    later = [
        _at(ev("ChannelCreated", channel=c), 5),
        _at(ev("ChannelEnteredBridge", channel=c, bridge={
            "id": "B", "bridge_type": "mixing", "channels": ["50.1", "50.2", "51.1"]}), 5),
    ]
    out = replay(model, later)
    assert [(e.line, e.kind.value) for e in out] == [
        (P, "party_changed"),
        (L, "originated"), (L, "established"),
        (K, "conferenced"), (P, "conferenced"), (L, "conferenced"),
    ]
    assert out[0].connected.name == "Kai Office"
