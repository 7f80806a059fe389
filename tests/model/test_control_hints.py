"""What call control tells the model (``CallModel.expect``) and what the model makes of it:
click-to-dial is an outgoing call of the agent, legs join the call they are dialled for and
are established when bridged with their party, SDK transfers are transfers; and
``call_id_changed`` when two calls turn out to be one. Pure model, synthetic ARI events."""

from __future__ import annotations

import itertools
from typing import Any, Dict, List, Tuple

from asterisk_cti.events.catalogue import parse_event
from asterisk_cti.model import NOBODY, CallEvent, CallModel, ControlHint, Party

from .helpers import new_model

K, P, L = "PJSIP/1000", "PJSIP/1002", "PJSIP/1006"
KAI, PING, LEE = Party("1000", "Kai"), Party("1002", "Ping"), Party("1006", "Lee")
_seq = itertools.count(1)


class Feed:
    """Builds Asterisk-like events for a few channels and applies them."""

    def __init__(self, model: CallModel) -> None:
        self.model = model
        self.chans: Dict[str, Dict[str, Any]] = {}
        self.out: List[CallEvent] = []

    def apply(self, etype: str, **fields: Any) -> List[CallEvent]:
        ts = f"2026-12-01T10:00:{next(_seq) % 60:02d}.000+0000"
        got = self.model.apply(parse_event({"type": etype, "timestamp": ts,
                                            "application": "cti", **fields}))
        self.out += got
        return got

    def create(self, cid: str, endpoint: str, state: str, caller: Party,
               connected: Party = NOBODY) -> List[CallEvent]:
        self.chans[cid] = {
            "id": cid, "name": f"{endpoint}-{next(_seq):08x}", "state": state,
            "caller": {"number": caller.number, "name": caller.name},
            "connected": {"number": connected.number, "name": connected.name},
            "dialplan": {"context": "from-internal", "exten": "s", "priority": 1}}
        return self.apply("ChannelCreated", channel=dict(self.chans[cid]))

    def state(self, cid: str, state: str) -> List[CallEvent]:
        self.chans[cid]["state"] = state
        return self.apply("ChannelStateChange", channel=dict(self.chans[cid]))

    def connected(self, cid: str, party: Party) -> List[CallEvent]:
        self.chans[cid]["connected"] = {"number": party.number, "name": party.name}
        return self.apply("ChannelConnectedLine", channel=dict(self.chans[cid]))

    def enter(self, cid: str, bid: str, members: Tuple[str, ...]) -> List[CallEvent]:
        return self.apply("ChannelEnteredBridge", channel=dict(self.chans[cid]),
                          bridge={"id": bid, "technology": "simple_bridge",
                                  "bridge_type": "mixing", "bridge_class": "stasis",
                                  "channels": list(members)})

    def destroy(self, cid: str, cause: int = 16) -> List[CallEvent]:
        return self.apply("ChannelDestroyed", channel=dict(self.chans[cid]), cause=cause)


def kinds(events: List[CallEvent], line: str) -> List[str]:
    return [f"{e.kind.value}:{e.phone_state.value}" for e in events if e.line == line]


def click_to_dial(feed: Feed) -> None:
    model = feed.model
    # the agent's phone is shown the destination while it rings
    model.expect("agent", ControlHint("agent", calling=KAI, called=PING, purpose="originate"))
    feed.create("agent", K, "Down", caller=PING, connected=PING)
    feed.state("agent", "Ringing")
    feed.state("agent", "Up")
    model.expect("dest", ControlHint("leg", peer="agent", called=PING, purpose="originate"))
    feed.create("dest", P, "Down", caller=KAI, connected=KAI)
    feed.state("dest", "Ringing")
    feed.state("dest", "Up")
    feed.enter("dest", "b1", ("dest",))
    feed.enter("agent", "b1", ("dest", "agent"))


def test_click_to_dial_is_an_outgoing_call_of_the_agent() -> None:
    feed = Feed(new_model())
    click_to_dial(feed)
    assert kinds(feed.out, K) == ["service_initiated:dialing", "originated:dialing",
                                  "ringback:ringback", "established:connected"]
    assert kinds(feed.out, P) == ["delivered:ringing", "established:connected"]
    # who called whom is the same at both lines, whatever caller ids the channels carry
    assert {(e.calling, e.called) for e in feed.out} == {(KAI, PING)}
    assert {e.call_id for e in feed.out} == {"agent"}
    assert all(e.client_originated for e in feed.out)
    (agent,) = feed.model.line(K).connections
    assert agent.direction.value == "outgoing" and agent.connected == PING


def test_a_leg_is_established_only_with_its_party_in_the_bridge() -> None:
    feed = Feed(new_model())
    model = feed.model
    model.expect("agent", ControlHint("agent", calling=KAI, called=PING, purpose="originate"))
    feed.create("agent", K, "Down", caller=PING)
    feed.state("agent", "Up")
    model.expect("dest", ControlHint("leg", peer="agent", called=PING, purpose="originate"))
    feed.create("dest", P, "Down", caller=KAI)
    feed.state("dest", "Ringing")
    assert feed.state("dest", "Up") == []  # answered, not yet talking to the agent
    assert feed.enter("dest", "b1", ("dest",)) == []
    assert [e.kind.value for e in feed.enter("agent", "b1", ("dest", "agent"))] == [
        "established", "established"]


def test_an_unanswered_destination_fails_the_agent_call() -> None:
    feed = Feed(new_model())
    model = feed.model
    model.expect("agent", ControlHint("agent", calling=KAI, called=PING, purpose="originate"))
    feed.create("agent", K, "Down", caller=PING)
    feed.state("agent", "Up")
    model.expect("dest", ControlHint("leg", peer="agent", called=PING, purpose="originate"))
    feed.create("dest", P, "Down", caller=KAI)
    feed.state("dest", "Ringing")
    failed = [e for e in feed.destroy("dest", cause=17) if e.line == K]
    assert [(e.kind.value, e.dialstatus, e.cause, e.reason.value) for e in failed] == [
        ("failed", "BUSY", 17, "busy")]


def test_an_sdk_blind_transfer() -> None:
    feed = Feed(new_model())
    click_to_dial(feed)
    model = feed.model
    start = len(feed.out)
    model.expect("agent", ControlHint("transfer", transferees=("dest",), called=LEE))
    feed.destroy("agent")
    model.expect("lee", ControlHint("leg", peer="dest", called=LEE, purpose="transfer"))
    feed.create("lee", L, "Down", caller=PING)
    feed.state("lee", "Ringing")
    feed.state("lee", "Up")
    feed.enter("lee", "b1", ("dest", "lee"))
    new = feed.out[start:]
    assert [(e.kind.value, e.reason.value) for e in new if e.line == K] == [
        ("connection_cleared", "transferred"), ("call_cleared", "transferred")]
    (xfer,) = [e for e in new if e.line == P]
    assert (xfer.kind.value, xfer.connected, xfer.transferring, xfer.transfer_target) == (
        "transferred", LEE, KAI, LEE)
    assert [(e.kind.value, e.calling) for e in new if e.line == L] == [
        ("delivered", PING), ("established", PING)]
    assert {e.call_id for e in new} == {"agent"}


def test_an_sdk_attended_transfer_is_told_when_the_target_joins() -> None:
    feed = Feed(new_model())
    click_to_dial(feed)
    model = feed.model
    model.set_held("agent", True)
    model.expect("lee", ControlHint("leg", peer="agent", called=LEE, purpose="consult"))
    feed.create("lee", L, "Down", caller=KAI)
    feed.state("lee", "Ringing")
    feed.state("lee", "Up")
    feed.enter("agent", "b2", ("agent",))
    feed.enter("lee", "b2", ("agent", "lee"))
    feed.connected("agent", LEE)
    start = len(feed.out)
    model.expect("agent", ControlHint("transfer", transferees=("dest",), target="lee"))
    assert model.set_held("agent", False) == []  # no retrieved: it leaves by the transfer
    feed.enter("lee", "b1", ("dest", "lee"))
    new = feed.out[start:]
    assert [(e.line, e.kind.value, e.connected) for e in new] == [
        (K, "connection_cleared", LEE), (K, "call_cleared", LEE),
        (P, "transferred", LEE), (L, "transferred", PING)]
    assert new[0].reason.value == "transferred"
    assert feed.destroy("agent") == []


def test_two_calls_found_to_be_one_tell_the_new_call_id() -> None:
    feed = Feed(new_model())
    feed.create("x", K, "Ring", caller=KAI)
    feed.create("y", P, "Down", caller=PING, connected=Party("2000", "Queue"))
    feed.state("y", "Ringing")
    assert {e.call_id for e in feed.out} == {"x", "y"}
    feed.state("x", "Up")
    feed.state("y", "Up")
    feed.enter("x", "b", ("x",))
    (changed,) = [e for e in feed.enter("y", "b", ("x", "y"))
                  if e.kind.value == "call_id_changed"]
    assert (changed.line, changed.previous_call_id, changed.call_id) == (P, "y", "x")
    assert feed.model.line(P).connections[0].call_id == "x"


def test_a_refer_blind_transfer_is_told_when_the_target_rings() -> None:
    """Phone REFER (no bridge events): the transferee's new Dial is the transfer, but it is
    told when the target rings, not before; the target's identity comes with it."""
    from .helpers import load_trace, replay

    events = replay(new_model(), load_trace("blind_transfer", "rec"))
    order = [(e.line, e.kind.value) for e in events]
    transferred = order.index((P, "transferred"))
    assert order.index((L, "delivered")) < transferred
    assert events[transferred].connected == LEE
    assert (P, "party_changed") not in order
