"""Call control's state (control/state.py) on its own, and the tap that feeds it."""

from __future__ import annotations

from typing import Any, Dict, List

from asterisk_cti.control.state import Consult, Leg, OriginatePlan, StasisState
from asterisk_cti.events.catalogue import Event, parse_event
from asterisk_cti.pipeline.waiters import Waiters


def ev(etype: str, cid: str = "", **fields: Any) -> Event:
    raw: Dict[str, Any] = {"type": etype, "application": "cti",
                           "timestamp": "2026-11-26T03:56:00.000+0000", **fields}
    if cid:
        raw.setdefault("channel", {"id": cid, "name": f"PJSIP/1000-{cid}", "state": "Up"})
    return parse_event(raw)


def bridge(bid: str) -> Dict[str, Any]:
    return {"id": bid, "technology": "simple_bridge", "bridge_type": "mixing", "channels": []}


def leg(cid: str, peer: str, bid: str, create: bool = False) -> Leg:
    return Leg(channel_id=cid, endpoint="PJSIP/1002", purpose="transfer", peer_id=peer,
               bridge_id=bid, call_id=peer, create_bridge=create)


def test_stasis_start_end_and_outside_channels() -> None:
    state = StasisState()
    state.record(ev("ChannelCreated", "a"))
    assert state.known_outside("a") and not state.is_in_stasis("a")
    state.record(ev("StasisStart", "a", args=[]))
    assert state.is_in_stasis("a") and not state.known_outside("a")
    assert state.concerns("a") and state.visible("a") and state.state_of("a") == "Up"
    state.record(ev("StasisEnd", "a"))
    assert state.known_outside("a") and not state.concerns("a")
    state.record(ev("ChannelDestroyed", "a", cause=16))
    assert not state.known_outside("a") and not state.visible("a")


def test_other_application_is_read_from_the_dialplan_snapshot() -> None:
    state = StasisState()
    chan = {"id": "a", "name": "PJSIP/1000-1", "state": "Up",
            "dialplan": {"context": "c", "exten": "1", "priority": 1, "app_name": "Stasis",
                         "app_data": "other-app,x"}}
    state.record(ev("ChannelCreated", channel=chan))
    assert state.other_app("a", "cti") == "other-app"
    assert state.other_app("a", "other-app") is None


def test_bridge_membership_and_teardown_decision() -> None:
    state = StasisState()
    state.add_bridge("b", "call", protect=1)
    for cid in ("a", "c"):
        state.record(ev("ChannelEnteredBridge", cid, bridge=bridge("b")))
    assert state.bridge_members("a") == ("b", ("c",))
    assert state.members_of("b") == ("a", "c") and state.call_of_bridge("b") == "call"
    state.record(ev("ChannelLeftBridge", "c", bridge=bridge("b")))
    assert state.close_if_over("b") is None  # protected by a pending operation
    state.protect("b", -1)
    assert state.close_if_over("b") == ("a",)
    assert state.close_if_over("b") is None  # closing already: torn down once
    state.record(ev("BridgeDestroyed", bridge=bridge("b")))
    assert state.bridge_members("a") == (None, ()) and state.call_of_bridge("b") is None


def test_a_leg_into_a_bridge_protects_it_until_taken() -> None:
    state = StasisState()
    state.add_bridge("b", "call")
    state.record(ev("StasisStart", "peer", args=[]))
    state.add_leg(leg("x", "peer", "b"))
    assert state.is_leg("x") and state.concerns("x")
    state.record(ev("ChannelEnteredBridge", "peer", bridge=bridge("b")))
    assert state.close_if_over("b") is None  # one member, but a leg is being dialled into it
    state.note_dial("x", "BUSY")
    taken, consult, peer_alive = state.take_leg("x")
    assert taken is not None and taken.dialstatus == "BUSY" and consult is None and peer_alive
    assert state.take_leg("x") == (None, None, False)


def test_cancelled_legs_and_plans() -> None:
    state = StasisState()
    state.add_leg(leg("x", "p", "b"))
    state.add_leg(leg("y", "q", "b"))
    assert [lg.channel_id for lg in state.cancel_legs_of("p")] == ["x"]
    state.cancel_leg("y")
    for cid in ("x", "y"):
        taken = state.take_leg(cid)[0]
        assert taken is not None and taken.cancelled
    plan = OriginatePlan("agent", leg("z", "agent", "b", create=True), None, None, 5.0)
    state.add_plan(plan)
    assert state.pending_plans() == 1 and state.concerns("agent")
    assert state.take_plan("agent") is plan and state.pending_plans() == 0


def test_hold_bookkeeping() -> None:
    state = StasisState()
    assert not state.is_holding("a")
    state.note_held("a", ("b",))
    state.note_held("a", ("c",), replace=False)  # held already: kept
    assert state.is_holding("a") and state.take_held("a") == ("b",)
    assert state.take_held("a") == () and not state.is_holding("a")


def test_consultations_end_once() -> None:
    state = StasisState()
    record = Consult("d", "call", "agent", "d", "b1", "b2")
    state.add_consult(record)
    assert state.consult("d") is record and state.consults_of_agent("agent") == [record]
    state.mark_answered(record)
    assert record.answered
    assert state.end_consult("d") and not state.end_consult("d")
    assert state.consult("d") is None


def test_a_hostile_event_is_skipped_not_raised() -> None:
    state = StasisState()
    state.record(ev("ChannelEnteredBridge", "a", bridge=["not", "an", "object"]))
    state.record(ev("StasisStart", channel={"id": 5, "state": []}))
    assert state.counts() == (0, 0, 0)


def test_the_tap_sees_each_event_before_any_waiter() -> None:
    waiters = Waiters()
    order: List[str] = []
    state = StasisState()

    def tap(item: object) -> None:
        order.append("tap")
        if isinstance(item, Event):
            state.record(item)

    def predicate(item: object) -> bool:
        order.append("waiter")
        # what the waiter sees is already recorded
        return isinstance(item, Event) and state.is_in_stasis("a")

    waiter = waiters.expect(predicate)
    waiters.tap(tap)
    assert waiters  # a tap alone makes the processor offer events
    waiters.offer(ev("StasisStart", "a", args=[]))
    assert order == ["tap", "waiter"] and waiter.done
    waiters.close()  # stopping fails the waits, not the tap
    waiters.reopen()
    waiters.offer(ev("StasisEnd", "a"))
    assert order[-1] == "tap" and not state.is_in_stasis("a")
