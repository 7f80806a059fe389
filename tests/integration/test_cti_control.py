"""Call control on a real Asterisk 22: click-to-dial, hold, DTMF, transfers, conference, the
switch (``7XXX`` into the SDK's application), and what an observed call refuses.

The clients here use the lab's Stasis application (``lab.config.app``), the one the ``7XXX``
dialplan sends calls to. Phones answer by themselves (baresip auto-answer).
"""

from __future__ import annotations

import re
import time
from typing import Any, Dict, List

import pytest

from asterisk_cti import ConnectionState, ControlledCall, CtiClient, CtiConfig, NotInStasisError
from asterisk_cti.sim import AriSimulator

from ..control.sdk_scenarios import (
    CALLER_PHONE_STATES,
    PATHS,
    REFER_EXPECTED,
    SDK_EXPECTED,
    SDK_SCENARIOS,
    Recorder,
    Scenario,
    SimDrive,
    caller_phone_states,
    refer_on_switch_call,
    run,
)
from .calls import NOISE, assert_no_duplicates, establish, keep_sequences
from .conftest import LAB_LINES, CtiFactory, LabCti
from .lab import Lab, Phone

K, P, L = "PJSIP/1000", "PJSIP/1002", "PJSIP/1006"


@pytest.fixture
def control(cti_factory: CtiFactory, lab: Lab, phones: Dict[str, Phone]) -> LabCti:
    """A started client of the lab's own application, every phone on auto-answer."""
    for phone in phones.values():
        phone.set_auto_answer(True)
    return cti_factory(app=lab.config.app)


def _wait_log(lab: Lab, pattern: str, timeout: float = 5.0) -> str:
    """Wait until Asterisk's log tail has a line matching ``pattern``; return it."""
    regex = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while True:
        for line in lab.log_tail(300).splitlines():
            if regex.search(line):
                return line
        if time.monotonic() >= deadline:
            raise AssertionError(f"no log line matching {pattern!r} within {timeout} s:\n"
                                 + lab.log_tail(40))
        time.sleep(0.05)


def _channel_name(lab: Lab, channel_id: str) -> str:
    return str(lab.ari("GET", f"/channels/{channel_id}").json()["name"])


def _click_to_dial(cti: LabCti, phones: Dict[str, Phone]) -> ControlledCall:
    call = cti.control.originate("PJSIP/1000", "1002", wait_for="established", timeout=10)
    assert call.controlled and call.bridge_id and call.peer_channel_id
    phones["1000"].wait_for("CALL_ESTABLISHED")
    phones["1002"].wait_for("CALL_ESTABLISHED")
    return call


def _bridge_lines(lab: Lab, bridge_id: str) -> set:
    bridge = lab.ari("GET", f"/bridges/{bridge_id}").json()
    return {_channel_name(lab, c).rsplit("-", 1)[0] for c in bridge["channels"]}


def test_click_to_dial_hold_retrieve_dtmf_hangup(
        control: LabCti, lab: Lab, phones: Dict[str, Phone]) -> None:
    cti = control
    start = cti.events.mark()
    call = _click_to_dial(cti, phones)
    assert _bridge_lines(lab, call.bridge_id) == {K, P}
    cti.events.wait_call("established", K, since=start)
    cti.events.wait_call("established", P, since=start)
    peer_name = _channel_name(lab, call.peer_channel_id)

    cti.control.hold(call)
    held = cti.events.wait_call("held", K, since=start)
    assert held.connection_id == call.channel_id and held.state is ConnectionState.HOLD
    assert cti.wait_idle(5.0)
    assert cti.line(K).connections[0].held
    # ARI accepted the hold: Asterisk plays the default class to the held party
    _wait_log(lab, rf"Started music on hold, class 'default', on channel '{re.escape(peer_name)}'")

    cti.control.retrieve(call)
    retrieved = cti.events.wait_call("retrieved", K, since=start)
    assert not retrieved.held and retrieved.state is ConnectionState.CONNECTED
    _wait_log(lab, rf"Stopped music on hold on {re.escape(peer_name)}")

    cti.control.send_dtmf(call, "19")  # to the other party: 1002's phone hears the digits
    first = phones["1002"].wait_for("CALL_DTMF_START")
    second = phones["1002"].wait_for("CALL_DTMF_START")
    assert (first.param, second.param) == ("1", "9")

    cti.control.hangup(call)
    phones["1000"].wait_for("CALL_CLOSED")
    phones["1002"].wait_for("CALL_CLOSED")
    for line in (K, P):
        cti.events.wait_call("call_cleared", line, since=start)
    assert cti.wait_idle(5.0)
    assert cti.line(K).is_idle and cti.line(P).is_idle
    assert {"held", "retrieved"} <= set(cti.events.kinds(K, start))
    keep_sequences("click-to-dial 1000 -> 1002, hold, retrieve, DTMF, hangup (ARI)",
                   cti.events, LAB_LINES, start)
    # The destination's screen-pop names the agent (its configured caller id), and once
    # bridged each side names the other.
    delivered = cti.events.wait_call("delivered", P, since=start)
    assert (delivered.calling.number, delivered.calling.name) == ("1000", "Kai"), delivered
    parties = [(e.line, e.connected.number, e.connected.name)
               for e in cti.events.call_events(since=start) if e.kind.value == "established"]
    assert (K, "1002", "Ping") in parties or any(
        e.line == K and e.connected.number == "1002" and e.connected.name == "Ping"
        for e in cti.events.call_events(since=start)), parties


def test_controlled_calls_deliver_each_channel_event_once(
        control: LabCti, phones: Dict[str, Phone]) -> None:
    """A channel in the SDK's application is also subscribed by Stasis itself; listeners must
    still get each of its channel events once (they do for observed calls)."""
    cti = control
    start = cti.events.mark()
    call = _click_to_dial(cti, phones)
    cti.events.wait_call("established", P, since=start)
    cti.control.hangup(call)
    for line in (K, P):
        cti.events.wait_call("call_cleared", line, since=start)
    assert cti.wait_idle(5.0)
    for line in (K, P):
        assert_no_duplicates(cti.events, line, start)


def test_blind_transfer_by_ari(control: LabCti, lab: Lab, phones: Dict[str, Phone]) -> None:
    cti = control
    start = cti.events.mark()
    call = _click_to_dial(cti, phones)
    moved = cti.control.transfer(call, "1006", wait_for="established")
    phones["1000"].wait_for("CALL_CLOSED")
    phones["1006"].wait_for("CALL_ESTABLISHED")
    assert _bridge_lines(lab, call.bridge_id) == {P, L}
    cti.events.wait_call("connection_cleared", K, since=start)
    cti.events.wait_call("established", L, since=start)
    assert cti.wait_idle(5.0)
    assert cti.line(K).is_idle
    (ping,), (lee,) = cti.line(P).connections, cti.line(L).connections
    assert ping.call_id == lee.call_id
    assert lee.state is ConnectionState.CONNECTED and ping.state is ConnectionState.CONNECTED
    cti.control.hangup(moved.peer_channel_id)
    phones["1002"].wait_for("CALL_CLOSED")
    for line in (K, P, L):
        cti.events.wait_call("call_cleared", line, since=start)
    keep_sequences("blind transfer by ARI (click-to-dial 1000 -> 1002, transfer to 1006)",
                   cti.events, LAB_LINES, start)


def test_consult_and_complete_transfer(control: LabCti, lab: Lab,
                                       phones: Dict[str, Phone]) -> None:
    cti = control
    start = cti.events.mark()
    call = _click_to_dial(cti, phones)
    consult = cti.control.consult(call, "1006", wait_for="established")
    cti.events.wait_call("held", K, since=start)
    cti.events.wait_call("established", L, since=start)
    assert _bridge_lines(lab, consult.bridge_id) == {K, L}
    assert _bridge_lines(lab, call.bridge_id) == {P}
    cti.control.complete_transfer(call, consult)
    phones["1000"].wait_for("CALL_CLOSED")
    assert _bridge_lines(lab, call.bridge_id) == {P, L}
    cti.events.wait_call("call_cleared", K, since=start)
    assert cti.wait_idle(5.0)
    (ping,), (lee,) = cti.line(P).connections, cti.line(L).connections
    assert ping.call_id == lee.call_id and not ping.held
    cti.control.hangup(lee.connection_id)
    phones["1002"].wait_for("CALL_CLOSED")
    for line in (P, L):
        cti.events.wait_call("call_cleared", line, since=start)
    keep_sequences("consult 1006 + complete_transfer (ARI)", cti.events, LAB_LINES, start)


def test_consult_and_cancel_transfer(control: LabCti, lab: Lab,
                                     phones: Dict[str, Phone]) -> None:
    cti = control
    start = cti.events.mark()
    call = _click_to_dial(cti, phones)
    consult = cti.control.consult(call, "1006", wait_for="established")
    cti.events.wait_call("held", K, since=start)
    back = cti.control.cancel_transfer(call, consult)
    phones["1006"].wait_for("CALL_CLOSED")
    cti.events.wait_call("retrieved", K, since=start)
    cti.events.wait_call("call_cleared", L, since=start)
    assert _bridge_lines(lab, call.bridge_id) == {K, P}
    assert back.bridge_id == call.bridge_id
    assert cti.wait_idle(5.0)
    (kai,) = cti.line(K).connections
    assert kai.state is ConnectionState.CONNECTED and not kai.held
    assert cti.line(L).is_idle
    cti.control.hangup(call)
    phones["1002"].wait_for("CALL_CLOSED")
    for line in (K, P):
        cti.events.wait_call("call_cleared", line, since=start)
    keep_sequences("consult 1006 + cancel_transfer (ARI)", cti.events, LAB_LINES, start)


def test_conference(control: LabCti, lab: Lab, phones: Dict[str, Phone]) -> None:
    cti = control
    start = cti.events.mark()
    call = _click_to_dial(cti, phones)
    consult = cti.control.consult(call, "1006", wait_for="established")
    conf = cti.control.conference(call, consult)
    assert _bridge_lines(lab, call.bridge_id) == {K, P, L}
    assert set(conf.channel_ids) >= {call.channel_id, call.peer_channel_id, consult.peer_channel_id}
    for line in (K, P, L):
        event = cti.events.wait_call("conferenced", line, since=start,
                                     where=lambda e: len(e.conference) >= 3)
        assert event.state is ConnectionState.CONNECTED
        assert {p.number for p in event.conference} >= {"1002", "1006"}
    assert cti.wait_idle(5.0)
    assert not cti.line(K).connections[0].held
    assert len({c.call_id for line in (K, P, L) for c in cti.line(line).connections}) == 1
    # 1000 leaves: 1002 and 1006 go on talking
    cti.control.hangup(call.channel_id)
    phones["1000"].wait_for("CALL_CLOSED")
    cti.events.wait_call("call_cleared", K, since=start)
    assert phones["1002"].state == "established" and phones["1006"].state == "established"
    cti.control.hangup(consult.peer_channel_id)
    phones["1002"].wait_for("CALL_CLOSED")
    for line in (P, L):
        cti.events.wait_call("call_cleared", line, since=start)
    keep_sequences("consult 1006 + conference (ARI)", cti.events, LAB_LINES, start)


def test_the_switch(control: LabCti, lab: Lab, phones: Dict[str, Phone]) -> None:
    """1000 dials 7002: the call enters the SDK's application, the switch dials 1002, bridges
    both on answer; hold and hangup work on it."""
    cti = control
    start = cti.events.mark()
    phones["1000"].dial("7002")
    phones["1002"].wait_for("CALL_ESTABLISHED")
    phones["1000"].wait_for("CALL_ESTABLISHED")
    cti.events.wait_call("established", P, since=start)
    kai_up = cti.events.wait_call("established", K, since=start)
    assert cti.control.in_stasis(kai_up.connection_id)
    bridges = [b for b in lab.ari("GET", "/bridges").json() if len(b["channels"]) == 2]
    assert len(bridges) == 1
    assert _bridge_lines(lab, bridges[0]["id"]) == {K, P}
    assert cti.wait_idle(5.0)
    (kai,) = cti.line(K).connections
    cti.control.hold(kai)
    cti.events.wait_call("held", K, since=start)
    cti.control.retrieve(kai)
    cti.events.wait_call("retrieved", K, since=start)
    cti.control.hangup(kai)
    phones["1000"].wait_for("CALL_CLOSED")
    phones["1002"].wait_for("CALL_CLOSED")  # the switch ends the two-party call
    for line in (K, P):
        cti.events.wait_call("call_cleared", line, since=start)
    assert not [b for b in lab.ari("GET", "/bridges").json() if b["id"] == bridges[0]["id"]]
    keep_sequences("the switch: 1000 dials 7002, hold, retrieve, hangup (ARI)",
                   cti.events, LAB_LINES, start)
    # The caller's connection names 1002 as the connected party (the bridge hands the
    # dialled leg's own caller id to the caller).
    assert kai.connected.number == "1002", f"1000 is shown connected to {kai.connected}"


def test_observed_call_refuses_control(control: LabCti, phones: Dict[str, Phone]) -> None:
    """A plain dialplan call (1000 dials 1002) is only observed: hold raises
    NotInStasisError before any request; hangup works."""
    cti = control
    for phone in phones.values():
        phone.set_auto_answer(False)
    start = cti.events.mark()
    establish(phones["1000"], phones["1002"])
    cti.events.wait_call("established", K, since=start)
    assert cti.wait_idle(5.0)
    (kai,) = cti.line(K).connections
    with pytest.raises(NotInStasisError):
        cti.control.hold(kai)
    with pytest.raises(NotInStasisError):
        cti.control.send_dtmf(kai, "1")
    with pytest.raises(NotInStasisError):
        cti.control.answer(kai)
    assert "held" not in cti.events.kinds(K, start, skip=NOISE)
    cti.control.hangup(kai)
    phones["1002"].wait_for("CALL_CLOSED")
    for line in (K, P):
        cti.events.wait_call("call_cleared", line, since=start)


def test_mute_and_unmute_keep_the_call(control: LabCti, phones: Dict[str, Phone]) -> None:
    """mute / unmute in each direction are accepted for a controlled call and leave it up;
    on an observed call they refuse before any request (covered above for hold)."""
    cti = control
    start = cti.events.mark()
    call = _click_to_dial(cti, phones)
    for direction in ("in", "out", "both"):
        cti.control.mute(call, direction)
        cti.control.unmute(call, direction)
    assert cti.wait_idle(5.0)
    (kai,) = cti.line(K).connections
    assert kai.state is ConnectionState.CONNECTED
    assert "connection_cleared" not in cti.events.kinds(K, start, skip=NOISE)
    cti.control.hangup(call)
    for line in (K, P):
        cti.events.wait_call("call_cleared", line, since=start)


def test_redirect_of_an_answered_channel_makes_the_phone_call_the_target(
        control: LabCti, phones: Dict[str, Phone]) -> None:
    """redirect on an answered PJSIP channel: Asterisk sends the phone a REFER and the phone
    calls the target itself, straight to its contact, past Asterisk (documented: that call is
    invisible to the SDK, which is why transfer() is the primitive for transfers)."""
    cti = control
    start = cti.events.mark()
    call = _click_to_dial(cti, phones)
    cti.control.redirect(call.peer_channel_id, "PJSIP/1006")
    # 1002's phone follows the REFER and calls 1006 itself (1006 answers on its own: the
    # fixture puts the phones on auto-answer for call control)
    phones["1006"].wait_for("established", 15)
    assert cti.wait_idle(5.0)
    assert not cti.line(L).connections, "the REFERred call went through Asterisk"
    cti.control.hangup(call)
    for line in (K, P):
        cti.events.wait_call("call_cleared", line, since=start)
    for ext in ("1000", "1002", "1006"):
        phones[ext].reset()


# -- every operation's exact CTI sequence, compared with the simulator -------------------------


class LabDrive:
    """The lab's phones behind the shared scenarios' ``Drive`` (auto-answer is on)."""

    def __init__(self, phones: Dict[str, Phone]) -> None:
        self.phones = phones

    def dial(self, ext: str, number: str) -> None:
        self.phones[ext].dial(number)

    def hangup(self, ext: str) -> None:
        self.phones[ext].hangup()

    def dtmf(self, ext: str, digits: str) -> None:
        self.phones[ext].send_dtmf(digits)

    def refer(self, ext: str, number: str) -> None:
        self.phones[ext].transfer(number)


def simulator_sequences(scenario: Scenario) -> Dict[str, List[str]]:
    """Run ``scenario`` on a fresh simulator (same phones, same dialplan) and return its
    CTI sequences."""
    with AriSimulator(speed=20) as sim:
        for ext in ("1000", "1002", "1006"):
            sim.phone(ext).auto_answer = True
        rec = Recorder()
        config = CtiConfig(url=sim.url, username=sim.username, password=sim.password,
                           app="cti-ctl")
        with CtiClient(config) as cti:
            cti.add_listener(rec)
            cti.monitor(*LAB_LINES)
            start, _ = run(scenario, cti, rec, SimDrive(sim))
            return rec.sequences(start)


@pytest.mark.parametrize("name", sorted(SDK_EXPECTED))
def test_each_operation_gives_the_documented_sequence_as_on_the_simulator(
        control: LabCti, phones: Dict[str, Phone], name: str) -> None:
    """Click-to-dial, blind transfer, consult + complete, consult + conference and the switch:
    the exact CTI sequence at every line (talk detection left out) is the documented one,
    one call id from first to last event, and the simulator gives the same sequences."""
    rec = Recorder()
    control.add_listener(rec)
    start, end = run(SDK_SCENARIOS[name], control, rec, LabDrive(phones))
    on_lab = rec.sequences(start)
    assert on_lab == SDK_EXPECTED[name], control.events.format_sequences(LAB_LINES, start)
    events = [e for e in rec.events[start:end] if e.kind.value != "line_state_changed"]
    assert len({e.call_id for e in events}) == 1, {e.call_id for e in events}
    agent = [e for e in events if e.line == K]
    assert all(e.client_originated for e in agent) is (name != "switch")
    assert all(line.is_idle for line in control.lines)
    assert simulator_sequences(SDK_SCENARIOS[name]) == on_lab


def test_a_phone_transfer_on_a_controlled_call(
        control: LabCti, lab: Lab, phones: Dict[str, Phone]) -> None:
    """1000 dials 7002 (switch), then its phone blind-transfers 1002 to 1006 with a REFER:
    Asterisk 22 hands it to the SDK (PJSIP_TRANSFER_HANDLING(ari-only), ChannelTransfer),
    which dials 1006 into its bridge and answers the REFER; reported like a phone transfer."""
    rec = Recorder()
    control.add_listener(rec)
    refers: List[Dict[str, Any]] = []

    class Refers:
        def on_event(self, event: Any) -> None:  # lane thread
            refers.append(event.raw)

    control.add_raw_listener(Refers(), ["ChannelTransfer"])
    start, end = run(refer_on_switch_call, control, rec, LabDrive(phones))
    assert rec.sequences(start) == REFER_EXPECTED, control.events.format_sequences(
        LAB_LINES, start)
    # Asterisk handed the REFER to the application, which carried it out
    # (Asterisk 22.10 publishes it a second time once the transferer left the bridge)
    assert {r["refer_to"]["requested_destination"]["destination"] for r in refers} == {"1006"}
    assert refers[0]["referred_by"]["source_channel"]["name"].startswith("PJSIP/1000-")
    events = [e for e in rec.events[start:end] if e.kind.value != "line_state_changed"]
    assert len({e.call_id for e in events}) == 1


@pytest.mark.parametrize("path", sorted(CALLER_PHONE_STATES))
def test_the_phone_state_of_the_caller_on_each_path(
        control: LabCti, phones: Dict[str, Phone], path: str) -> None:
    """docs/call-model.rst's table: the calling line's phone state per path (dialplan call,
    switch, click-to-dial, queue), each change told by an event carrying it."""
    rec = Recorder()
    control.add_listener(rec)
    start, _ = run(PATHS[path], control, rec, LabDrive(phones))
    assert caller_phone_states(rec, start) == CALLER_PHONE_STATES[path], rec.sequences(start)
