"""What a phone bar may offer: ``Line.active_connection`` (the connection to act on) and
``control.actions(connection)`` (what can be done, and why not), for each connection state in
and out of the SDK's application."""

from __future__ import annotations

import threading
from typing import Iterator, Optional

import pytest

from asterisk_cti import CtiClient, CtiConfig
from asterisk_cti.control import Action, Actions, CallControl, actions_for
from asterisk_cti.model import (
    CallEvent,
    CallListener,
    Connection,
    ConnectionState,
    Direction,
    Line,
    Party,
    PhoneState,
)
from asterisk_cti.sim import AriSimulator

from .conftest import Pbx, answered_call

_STATE = {
    PhoneState.IDLE: ConnectionState.NULL,
    PhoneState.DIALING: ConnectionState.INITIATED,
    PhoneState.RINGBACK: ConnectionState.INITIATED,
    PhoneState.RINGING: ConnectionState.ALERTING,
    PhoneState.CONNECTED: ConnectionState.CONNECTED,
    PhoneState.HELD: ConnectionState.HOLD,
    PhoneState.FAILED: ConnectionState.FAIL,
    PhoneState.DISCONNECTED: ConnectionState.NULL,
}


def conn(cid: str, phone: PhoneState, start: float = 1.0, line: str = "PJSIP/1000") -> Connection:
    return Connection(
        connection_id=cid, line=line, call_id=cid, channel_name=f"{line}-0001",
        state=_STATE[phone], phone_state=phone,
        direction=Direction.INCOMING if phone == PhoneState.RINGING else Direction.OUTGOING,
        calling=Party("1002", ""), called=Party("1000", ""), connected=Party("1002", ""),
        held=phone == PhoneState.HELD, talking=False, cause=0, dialstatus="",
        start_time=start, answer_time=None, end_time=None)


def allowed(actions: Actions) -> set[str]:
    return {a.value for a in actions}


# -- Line.active_connection -----------------------------------------------------------------


def test_active_connection_of_an_idle_line_is_none() -> None:
    assert Line("PJSIP/1000", "online", ()).active_connection is None
    over = conn("a", PhoneState.DISCONNECTED)
    assert Line("PJSIP/1000", "online", (over,)).active_connection is None


@pytest.mark.parametrize("phones, expected", [
    # ringing beats everything: that is what Answer is for
    ((PhoneState.CONNECTED, PhoneState.RINGING, PhoneState.HELD), 1),
    # then the connected call
    ((PhoneState.HELD, PhoneState.CONNECTED, PhoneState.FAILED), 1),
    # then a call being placed (a consultation ringing while the call is held)
    ((PhoneState.HELD, PhoneState.RINGBACK), 1),
    ((PhoneState.DIALING, PhoneState.HELD), 0),
    # then held, then failed
    ((PhoneState.FAILED, PhoneState.HELD, PhoneState.DISCONNECTED), 1),
    ((PhoneState.DISCONNECTED, PhoneState.FAILED), 1),
])
def test_active_connection_follows_the_documented_order(
        phones: tuple[PhoneState, ...], expected: int) -> None:
    conns = tuple(conn(f"c{i}", p, start=float(i + 1)) for i, p in enumerate(phones))
    assert Line("PJSIP/1000", "online", conns).active_connection == conns[expected]


def test_active_connection_picks_the_oldest_ringing_and_the_newest_otherwise() -> None:
    old, new = conn("old", PhoneState.RINGING, 1.0), conn("new", PhoneState.RINGING, 2.0)
    line = Line("PJSIP/1000", "online", (new, old))
    assert line.active_connection == old
    held_old, held_new = conn("h1", PhoneState.HELD, 1.0), conn("h2", PhoneState.HELD, 2.0)
    assert Line("PJSIP/1000", "online", (held_new, held_old)).active_connection == held_new


def test_line_is_still_built_from_its_three_fields() -> None:
    line = Line("PJSIP/1000", "online", ())
    assert line._fields == ("name", "registration", "connections")


# -- the rule (pure) ------------------------------------------------------------------------


def test_an_observed_call_can_only_be_hung_up_and_the_reason_says_how_to_fix_the_dialplan(
        ) -> None:
    actions = actions_for(conn("o", PhoneState.CONNECTED), app="cti", in_stasis=False,
                          channel_state="Up", known_outside=True)
    assert allowed(actions) == {"hangup"} and not actions.in_stasis
    why = actions.why_not(Action.HOLD)
    assert "not in the SDK's application 'cti'" in why and "Stasis(cti,dial)" in why
    assert "observed call" in why
    assert actions.why_not(Action.HANGUP) == ""
    other = actions_for(conn("o", PhoneState.CONNECTED), app="cti", in_stasis=False,
                        other_app="ivr")
    assert "another Stasis application, 'ivr'" in other.why_not(Action.TRANSFER)


@pytest.mark.parametrize("phone, channel_state, bridged, expected", [
    (PhoneState.RINGING, "Ring", False, {"answer", "hangup"}),
    (PhoneState.RINGING, "Ringing", False, {"hangup"}),
    (PhoneState.RINGBACK, "Up", False, {"hangup"}),
    (PhoneState.DIALING, "Down", False, {"hangup"}),
    (PhoneState.CONNECTED, "Up", True,
     {"hangup", "hold", "dtmf", "transfer", "consult", "conference"}),
    (PhoneState.CONNECTED, "Up", False, {"hangup", "hold", "dtmf"}),
    (PhoneState.HELD, "Up", True, {"hangup", "retrieve", "transfer", "consult", "conference"}),
    (PhoneState.HELD, "Up", False, {"hangup", "retrieve"}),
    (PhoneState.FAILED, "Up", True, {"hangup"}),
    (PhoneState.DISCONNECTED, "Up", True, set()),
    # the ARI state unknown: the model's state decides
    (PhoneState.CONNECTED, "", True,
     {"hangup", "hold", "dtmf", "transfer", "consult", "conference"}),
])
def test_each_state_in_stasis_allows_what_asterisk_accepts(
        phone: PhoneState, channel_state: str, bridged: bool, expected: set[str]) -> None:
    actions = actions_for(conn("c", phone), app="cti", in_stasis=True,
                          channel_state=channel_state, bridged=bridged)
    assert allowed(actions) == expected
    assert actions.allowed == frozenset(Action(a) for a in expected)
    for action in Action:
        assert (action in actions) == (action.value in expected)
        assert bool(actions.why_not(action)) == (action.value not in expected)


def test_the_reasons_say_what_to_do() -> None:
    ringing = actions_for(conn("c", PhoneState.RINGING), app="cti", in_stasis=True,
                          channel_state="Ringing")
    assert "pick up on the phone" in ringing.why_not(Action.ANSWER)
    held = actions_for(conn("c", PhoneState.HELD), app="cti", in_stasis=True,
                       channel_state="Up", bridged=True)
    assert held.why_not(Action.HOLD) == "the call is already held"
    assert "retrieve it first" in held.why_not(Action.DTMF)
    lonely = actions_for(conn("c", PhoneState.CONNECTED), app="cti", in_stasis=True,
                         channel_state="Up")
    assert "not talking to anybody in a bridge of the SDK" in lonely.why_not(Action.CONSULT)
    assert "already answered" in lonely.why_not(Action.ANSWER)
    over = actions_for(conn("c", PhoneState.DISCONNECTED), app="cti", in_stasis=True)
    assert over.why_not(Action.HANGUP) == "the connection is over"


# -- control.actions() against the Stasis state the SDK keeps -------------------------------


def test_actions_of_a_bridged_call_then_held(pbx: Pbx, control: CallControl) -> None:
    agent, _, _ = answered_call(pbx, control)
    actions = control.actions(conn(agent, PhoneState.CONNECTED))
    assert actions.in_stasis
    assert allowed(actions) == {"hangup", "hold", "dtmf", "transfer", "consult", "conference"}
    control.hold(agent)
    assert allowed(control.actions(conn(agent, PhoneState.HELD))) == {
        "hangup", "retrieve", "transfer", "consult", "conference"}


def test_actions_of_a_channel_ringing_into_the_application(
        pbx: Pbx, control: CallControl) -> None:
    control.configure(switch=False)
    cid = pbx.dialplan_call("PJSIP/1000", "7000", ["mine"])
    pbx.idle()
    actions = control.actions(conn(cid, PhoneState.RINGING))
    assert allowed(actions) == {"answer", "hangup"}
    control.answer(cid)  # what the helper promised works
    pbx.idle()
    answered = control.actions(conn(cid, PhoneState.CONNECTED))
    assert allowed(answered) == {"hangup", "hold", "dtmf"}  # in no SDK bridge
    assert "bridge of the SDK" in answered.why_not(Action.TRANSFER)


def test_actions_of_a_phone_the_sdk_is_still_calling(pbx: Pbx, control: CallControl) -> None:
    pbx.behaviour["PJSIP/1002"] = "ring"
    call = control.originate("PJSIP/1000", "1002", timeout=5)
    pbx.idle()
    assert call.peer_channel_id is not None
    ringing = control.actions(conn(call.peer_channel_id, PhoneState.RINGING, line="PJSIP/1002"))
    assert allowed(ringing) == {"hangup"}
    assert "pick up on the phone" in ringing.why_not(Action.ANSWER)
    agent = control.actions(conn(call.channel_id, PhoneState.RINGBACK))
    assert allowed(agent) == {"hangup"}
    assert agent.why_not(Action.HOLD) == "the call is not connected yet"


def test_actions_of_an_observed_call(pbx: Pbx, control: CallControl) -> None:
    cid = pbx.observed_channel("PJSIP/1000")
    pbx.idle()
    actions = control.actions(conn(cid, PhoneState.CONNECTED))
    assert allowed(actions) == {"hangup"} and not actions.in_stasis
    assert "Stasis(cti,dial)" in actions.why_not(Action.HOLD)
    with pytest.raises(TypeError):
        control.actions(cid)  # type: ignore[arg-type]


# -- on the simulator, through the call model, as a phone bar would -------------------------


@pytest.fixture
def sim() -> Iterator[AriSimulator]:
    with AriSimulator(speed=20) as s:
        yield s


class Changes(CallListener):
    """Wakes the test on every CTI event (a lane thread calls it)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()

    def on_call_event(self, event: CallEvent) -> None:
        with self.cond:
            self.cond.notify_all()


def _active(cti: CtiClient, line: str) -> Optional[Connection]:
    assert cti.wait_idle(5)
    snapshot = cti.line(line)
    assert snapshot is not None
    return snapshot.active_connection


def _wait_phone(cti: CtiClient, changes: Changes, line: str,
                phone: Optional[PhoneState]) -> Optional[Connection]:
    """The line's active connection once its phone state is ``phone`` (None: no active
    connection left), waiting on CTI events for at most 10 s."""
    def reached() -> bool:
        snapshot = cti.line(line)
        active = snapshot.active_connection if snapshot is not None else None
        return (active is None if phone is None
                else active is not None and active.phone_state == phone)

    with changes.cond:
        assert changes.cond.wait_for(reached, 10), f"{line} never reached {phone}"
    return _active(cti, line)


def test_phone_bar_flow_on_the_simulator(sim: AriSimulator) -> None:
    sim.phone("1000").auto_answer = True
    config = CtiConfig(url=sim.url, username=sim.username, password=sim.password, app="bar")
    changes = Changes()
    with CtiClient(config) as cti:
        cti.add_listener(changes)
        cti.monitor("PJSIP/1000", "PJSIP/1002")
        nb = cti.control.nonblocking()
        dialled = nb.originate("PJSIP/1000", "1002", wait_for="established", timeout=10)
        ringing = _wait_phone(cti, changes, "PJSIP/1002", PhoneState.RINGING)
        assert ringing is not None
        assert not dialled.done()
        assert allowed(cti.control.actions(ringing)) == {"hangup"}
        sim.phone("1002").answer()
        call = dialled.result(10)
        agent = _wait_phone(cti, changes, "PJSIP/1000", PhoneState.CONNECTED)
        assert agent is not None
        assert agent.connection_id == call.channel_id
        assert {"hold", "transfer", "consult", "conference"} <= allowed(cti.control.actions(agent))
        nb.hold(agent).result(5)
        held = _wait_phone(cti, changes, "PJSIP/1000", PhoneState.HELD)
        assert held is not None
        assert allowed(cti.control.actions(held)) >= {"retrieve", "hangup"}
        assert Action.HOLD not in cti.control.actions(held)
        nb.hangup(held).result(10)
        assert _wait_phone(cti, changes, "PJSIP/1000", None) is None


def test_an_observed_call_on_the_simulator_offers_only_hangup(sim: AriSimulator) -> None:
    sim.phone("1002").auto_answer = True
    config = CtiConfig(url=sim.url, username=sim.username, password=sim.password, app="bar")
    changes = Changes()
    with CtiClient(config) as cti:
        cti.add_listener(changes)
        cti.monitor("PJSIP/1000")
        sim.phone("1000").dial("1002")  # plain dialplan Dial(): observed
        active = _wait_phone(cti, changes, "PJSIP/1000", PhoneState.CONNECTED)
        assert active is not None
        actions = cti.control.actions(active)
        assert allowed(actions) == {"hangup"}
        assert "Stasis(bar,dial)" in actions.why_not(Action.HOLD)
        cti.control.nonblocking().hangup(active).result(10)
        assert _wait_phone(cti, changes, "PJSIP/1000", None) is None
