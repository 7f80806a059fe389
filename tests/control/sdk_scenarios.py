"""The call-control scenarios of the integration suite, as plain functions over a started
client (``cti``, monitoring 1000/1002/1006, its app the one the ``7XXX`` extensions reach) and
phone drivers, so that the same operations run on the real lab and on the simulator and their
CTI sequences can be compared (``tests/control/test_sdk_story.py`` and
``tests/integration/test_cti_control.py``).

Threads: the test thread only.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, Iterable, List, Protocol, Tuple

from asterisk_cti import CallEvent
from asterisk_cti.model import CallListener
from asterisk_cti.sim import AriSimulator

K, P, L = "PJSIP/1000", "PJSIP/1002", "PJSIP/1006"
LINES = (K, P, L)

#: Kinds that come at any time (talk detection follows the audio; a registration refresh
#: gives line_state_changed), left out of the exact sequences.
NOISE = ("talking_started", "talking_stopped", "line_state_changed")


def _party(party: Any) -> str:
    return "/" if party is None else f"{party.number}/{party.name}"


def describe(event: CallEvent) -> str:
    """``established(connected 1002/Ping)``: the docs' notation, with the phone state."""
    kind = event.kind.value
    details: List[str] = []
    if kind in ("delivered", "service_initiated", "originated"):
        details.append(f"calling {_party(event.calling)}")
    if kind in ("service_initiated", "originated"):
        details.append(f"called {_party(event.called)}")
    if kind in ("established", "transferred", "party_changed", "held", "retrieved",
                "ringback"):
        details.append(f"connected {_party(event.connected)}")
    if kind == "conferenced":
        details.append("conference " + " ".join(_party(p) for p in event.conference))
    if kind in ("failed", "connection_cleared", "call_cleared") and event.reason.value not in (
            "normal", "transferred"):
        details.append(f"cause {event.cause}")
    if event.reason.value != "normal":
        details.append(event.reason.value)
    details.append(event.phone_state.value)
    return f"{kind}({', '.join(details)})"


class Recorder(CallListener):
    """Keeps every CTI event; ``wait`` for a condition on them (lane threads append)."""

    def __init__(self) -> None:
        self.events: List[CallEvent] = []
        self._cond = threading.Condition()

    def on_call_event(self, event: CallEvent) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def mark(self) -> int:
        with self._cond:
            return len(self.events)

    def wait(self, kind: str, line: str, since: int = 0, timeout: float = 15.0) -> CallEvent:
        def find() -> Any:
            for event in self.events[since:]:
                if event.kind.value == kind and event.line == line:
                    return event
            return None
        with self._cond:
            if not self._cond.wait_for(find, timeout):
                raise AssertionError(f"no {kind} at {line} within {timeout} s; got "
                                     f"{self.sequences(since)}")
            return find()  # type: ignore[no-any-return]

    def of(self, line: str, since: int = 0) -> List[CallEvent]:
        with self._cond:
            return [e for e in self.events[since:]
                    if e.line == line and e.kind.value not in NOISE]

    def sequences(self, since: int = 0, lines: Iterable[str] = LINES) -> Dict[str, List[str]]:
        return {line: [describe(e) for e in self.of(line, since)] for line in lines}


class Drive(Protocol):
    """The phones of a lab or of the simulator, on auto-answer."""

    def dial(self, ext: str, number: str) -> None: ...
    def hangup(self, ext: str) -> None: ...
    def dtmf(self, ext: str, digits: str) -> None: ...
    def refer(self, ext: str, number: str) -> None: ...


def settle(rec: Recorder, since: int, lines: Tuple[str, ...]) -> None:
    for line in lines:
        rec.wait("call_cleared", line, since)


def click_to_dial(cti: Any, rec: Recorder) -> Tuple[Any, int]:
    start = rec.mark()
    call = cti.control.originate(K, "1002", wait_for="established", timeout=10)
    rec.wait("established", K, start)
    rec.wait("established", P, start)
    return call, start


def sdk_click_to_dial(cti: Any, rec: Recorder, drive: Drive) -> int:
    """1000 clicks to dial 1002; 1002 answers; the SDK hangs 1000 up."""
    call, start = click_to_dial(cti, rec)
    cti.control.hangup(call)
    settle(rec, start, (K, P))
    return start


def sdk_blind_transfer(cti: Any, rec: Recorder, drive: Drive) -> int:
    """Click-to-dial 1000 -> 1002, transfer(1006); 1006 answers; 1006 is hung up."""
    call, start = click_to_dial(cti, rec)
    moved = cti.control.transfer(call, "1006", wait_for="established")
    rec.wait("established", L, start)
    cti.control.hangup(moved.peer_channel_id)
    settle(rec, start, (K, P, L))
    return start


def sdk_attended_transfer(cti: Any, rec: Recorder, drive: Drive) -> int:
    """Click-to-dial 1000 -> 1002, consult(1006), complete_transfer; 1006 is hung up."""
    call, start = click_to_dial(cti, rec)
    consult = cti.control.consult(call, "1006", wait_for="established")
    rec.wait("established", L, start)
    cti.control.complete_transfer(call, consult)
    rec.wait("call_cleared", K, start)
    cti.control.hangup(consult.peer_channel_id)
    settle(rec, start, (K, P, L))
    return start


def sdk_conference(cti: Any, rec: Recorder, drive: Drive) -> int:
    """Click-to-dial 1000 -> 1002, consult(1006), conference; 1000 leaves, then 1006."""
    call, start = click_to_dial(cti, rec)
    consult = cti.control.consult(call, "1006", wait_for="established")
    rec.wait("established", L, start)
    cti.control.conference(call, consult)
    for line in (K, P, L):
        rec.wait("conferenced", line, start)
    cti.control.hangup(call.channel_id)
    rec.wait("call_cleared", K, start)
    cti.control.hangup(consult.peer_channel_id)
    settle(rec, start, (K, P, L))
    return start


def switch_call(cti: Any, rec: Recorder, drive: Drive) -> int:
    """1000 dials 7002: the switch dials 1002, which answers; 1000 hangs up."""
    start = rec.mark()
    drive.dial("1000", "7002")
    rec.wait("established", K, start)
    rec.wait("established", P, start)
    drive.hangup("1000")
    settle(rec, start, (K, P))
    return start


def phone_basic(cti: Any, rec: Recorder, drive: Drive) -> int:
    """1000 dials 1002 (plain dialplan call), 1002 answers, 1000 hangs up."""
    start = rec.mark()
    drive.dial("1000", "1002")
    rec.wait("established", K, start)
    rec.wait("established", P, start)
    drive.hangup("1000")
    settle(rec, start, (K, P))
    return start


def phone_blind_transfer(cti: Any, rec: Recorder, drive: Drive) -> int:
    """1000 calls 1002, transfers it to 1006 with a REFER; 1006 answers, then hangs up."""
    start = rec.mark()
    drive.dial("1000", "1002")
    rec.wait("established", K, start)
    rec.wait("established", P, start)
    drive.refer("1000", "1006")
    rec.wait("established", L, start)
    rec.wait("call_cleared", K, start)
    drive.hangup("1006")
    settle(rec, start, (K, P, L))
    return start


def phone_attended_transfer(cti: Any, rec: Recorder, drive: Drive) -> int:
    """1000 calls 1002, consults 1006 with ``*2 1006``, 1006 answers, 1000 hangs up."""
    start = rec.mark()
    drive.dial("1000", "1002")
    rec.wait("established", K, start)
    rec.wait("established", P, start)
    drive.dtmf("1000", "*21006")
    rec.wait("established", L, start)
    drive.hangup("1000")
    rec.wait("call_cleared", K, start)
    drive.hangup("1006")
    settle(rec, start, (K, P, L))
    return start


def phone_conference(cti: Any, rec: Recorder, drive: Drive) -> int:
    """1000 calls 1002, ``*2 1006``, 1006 answers, ``*3``: three-way; 1000 then 1006 hang up."""
    start = rec.mark()
    drive.dial("1000", "1002")
    rec.wait("established", K, start)
    rec.wait("established", P, start)
    drive.dtmf("1000", "*21006")
    rec.wait("established", L, start)
    drive.dtmf("1000", "*3")
    for line in (K, P, L):
        rec.wait("conferenced", line, start)
    drive.hangup("1000")
    rec.wait("call_cleared", K, start)
    drive.hangup("1006")
    settle(rec, start, (K, P, L))
    return start


def queue_call(cti: Any, rec: Recorder, drive: Drive) -> int:
    """1000 dials the queue ``2000`` (members 1002 and 1006, ring all); one answers; 1000
    hangs up."""
    start = rec.mark()
    drive.dial("1000", "2000")
    rec.wait("established", K, start)
    drive.hangup("1000")
    rec.wait("call_cleared", K, start)
    return start


#: The calling line's phone state until it talks, per path (docs/call-model.rst).
CALLER_PHONE_STATES: Dict[str, List[str]] = {
    "dialplan": ["originated:dialing", "ringback:ringback", "established:connected"],
    "switch": ["originated:dialing", "ringback:ringback", "established:connected"],
    "click_to_dial": ["service_initiated:dialing", "originated:dialing", "ringback:ringback",
                      "established:connected"],
    "queue": ["originated:dialing", "queued:ringback", "established:connected"],
}


def caller_phone_states(rec: Recorder, since: int) -> List[str]:
    """``kind:phone_state`` of the calling line (1000) up to its ``established``."""
    states = []
    for event in rec.of(K, since):
        states.append(f"{event.kind.value}:{event.phone_state.value}")
        if event.kind.value == "established":
            break
    return states


Scenario = Callable[[Any, Recorder, Drive], int]

#: The paths of the phone-state table, as scenarios.
PATHS: Dict[str, Callable[[Any, Recorder, Drive], int]] = {}

#: The operations call control offers, driven by the SDK.
SDK_SCENARIOS: Dict[str, Scenario] = {
    "click_to_dial": sdk_click_to_dial,
    "blind_transfer": sdk_blind_transfer,
    "attended_transfer": sdk_attended_transfer,
    "conference": sdk_conference,
    "switch": switch_call,
}

#: The same calls made on the phones.
PHONE_SCENARIOS: Dict[str, Scenario] = {
    "basic": phone_basic,
    "blind_transfer": phone_blind_transfer,
    "attended_transfer": phone_attended_transfer,
    "conference": phone_conference,
}

_KAI, _PING, _LEE = "1000/Kai", "1002/Ping", "1006/Lee"

#: The exact CTI sequence per line of every SDK operation (talk detection and registration
#: left out), the same on the real Asterisk 22 lab and on the simulator.
SDK_EXPECTED: Dict[str, Dict[str, List[str]]] = {
    "click_to_dial": {
        K: [f"service_initiated(calling {_KAI}, called {_PING}, dialing)",
            f"originated(calling {_KAI}, called {_PING}, dialing)",
            f"ringback(connected {_PING}, ringback)",
            f"established(connected {_PING}, connected)",
            "connection_cleared(disconnected)", "call_cleared(disconnected)"],
        P: [f"delivered(calling {_KAI}, ringing)",
            f"established(connected {_KAI}, connected)",
            "connection_cleared(disconnected)", "call_cleared(disconnected)"],
        L: [],
    },
    "blind_transfer": {
        K: [f"service_initiated(calling {_KAI}, called {_PING}, dialing)",
            f"originated(calling {_KAI}, called {_PING}, dialing)",
            f"ringback(connected {_PING}, ringback)",
            f"established(connected {_PING}, connected)",
            "connection_cleared(transferred, disconnected)",
            "call_cleared(transferred, disconnected)"],
        P: [f"delivered(calling {_KAI}, ringing)",
            f"established(connected {_KAI}, connected)",
            f"transferred(connected {_LEE}, connected)",
            "connection_cleared(disconnected)", "call_cleared(disconnected)"],
        L: [f"delivered(calling {_PING}, ringing)",
            f"established(connected {_PING}, connected)",
            "connection_cleared(disconnected)", "call_cleared(disconnected)"],
    },
    "attended_transfer": {
        K: [f"service_initiated(calling {_KAI}, called {_PING}, dialing)",
            f"originated(calling {_KAI}, called {_PING}, dialing)",
            f"ringback(connected {_PING}, ringback)",
            f"established(connected {_PING}, connected)",
            f"held(connected {_PING}, held)",
            f"party_changed(connected {_LEE}, held)",
            "connection_cleared(transferred, disconnected)",
            "call_cleared(transferred, disconnected)"],
        P: [f"delivered(calling {_KAI}, ringing)",
            f"established(connected {_KAI}, connected)",
            f"transferred(connected {_LEE}, connected)",
            "connection_cleared(disconnected)", "call_cleared(disconnected)"],
        L: [f"delivered(calling {_KAI}, ringing)",
            f"established(connected {_KAI}, connected)",
            f"transferred(connected {_PING}, connected)",
            "connection_cleared(disconnected)", "call_cleared(disconnected)"],
    },
    "conference": {
        K: [f"service_initiated(calling {_KAI}, called {_PING}, dialing)",
            f"originated(calling {_KAI}, called {_PING}, dialing)",
            f"ringback(connected {_PING}, ringback)",
            f"established(connected {_PING}, connected)",
            f"held(connected {_PING}, held)",
            f"party_changed(connected {_LEE}, held)",
            f"conferenced(conference {_KAI} {_PING} {_LEE}, connected)",
            "connection_cleared(disconnected)", "call_cleared(disconnected)"],
        P: [f"delivered(calling {_KAI}, ringing)",
            f"established(connected {_KAI}, connected)",
            f"party_changed(connected {_LEE}, connected)",
            f"conferenced(conference {_KAI} {_PING} {_LEE}, connected)",
            "connection_cleared(disconnected)", "call_cleared(disconnected)"],
        L: [f"delivered(calling {_KAI}, ringing)",
            f"established(connected {_KAI}, connected)",
            f"party_changed(connected {_PING}, connected)",
            f"conferenced(conference {_KAI} {_PING} {_LEE}, connected)",
            "connection_cleared(disconnected)", "call_cleared(disconnected)"],
    },
    "switch": {
        K: [f"originated(calling {_KAI}, called 7002/, dialing)",
            f"ringback(connected {_PING}, ringback)",
            f"established(connected {_PING}, connected)",
            "connection_cleared(disconnected)", "call_cleared(disconnected)"],
        P: [f"delivered(calling {_KAI}, ringing)",
            f"established(connected {_KAI}, connected)",
            "connection_cleared(disconnected)", "call_cleared(disconnected)"],
        L: [],
    },
}


class CallRecords(CallListener):
    """What a call logger does: one record per ``call_id``. A record's ``calling`` is who
    placed the call: the calling party of its outgoing connections (all of them must agree);
    every incoming connection's calling party must be that caller, or a party the call was
    transferred from (the transferee calls the target in a blind transfer). Order-independent:
    the lanes deliver the lines' events in any interleaving. Lane threads write."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.first: Dict[str, Dict[str, CallEvent]] = {}
        self.transferees: Dict[str, set] = {}
        self.renamed: Dict[str, str] = {}

    def _id(self, call_id: str) -> str:
        while call_id in self.renamed:
            call_id = self.renamed[call_id]
        return call_id

    def on_call_event(self, event: CallEvent) -> None:
        if event.kind.value in NOISE:
            return
        with self._lock:
            if event.kind.value == "call_id_changed":
                # the two calls are one: the old record joins the new one
                old, new = self._id(event.previous_call_id), self._id(event.call_id)
                if old != new:
                    self.renamed[old] = new
                    self.first.setdefault(new, {}).update(self.first.pop(old, {}))
                    self.transferees.setdefault(new, set()).update(
                        self.transferees.pop(old, set()))
                return
            conns = self.first.setdefault(self._id(event.call_id), {})
            conns.setdefault(event.connection_id, event)
            if event.transferred is not None:
                self.transferees.setdefault(self._id(event.call_id), set()).add(
                    event.transferred.number)

    def records(self) -> Dict[str, str]:
        """``{call_id: calling number}``; raises AssertionError on a contradiction."""
        out: Dict[str, str] = {}
        with self._lock:
            for call_id, conns in self.first.items():
                outgoing = {e.calling.number for e in conns.values()
                            if e.direction is not None and e.direction.value == "outgoing"}
                assert len(outgoing) <= 1, f"call {call_id}: outgoing sides disagree {outgoing}"
                incoming = [e for e in conns.values()
                            if e.direction is None or e.direction.value != "outgoing"]
                caller = next(iter(outgoing)) if outgoing else (
                    incoming[0].calling.number if incoming else "")
                allowed = {caller} | self.transferees.get(call_id, set())
                for e in incoming:
                    assert e.calling.number in allowed, (
                        f"call {call_id}: {e.line} says {e.calling} called, the record says "
                        f"{caller} ({e!r})")
                out[call_id] = caller
        return out


def run(scenario: Scenario, cti: Any, rec: Recorder, drive: Drive) -> Tuple[int, int]:
    """Run one scenario; returns (first, last) indexes of its events in ``rec``."""
    start = scenario(cti, rec, drive)
    assert cti.wait_idle(5.0)
    return start, rec.mark()


def refer_on_switch_call(cti: Any, rec: Recorder, drive: Drive) -> int:
    """1000 dials 7002 (the switch bridges 1002), then 1000's phone transfers 1002 to 1006
    with a SIP REFER: Asterisk hands it to the application (ChannelTransfer), the SDK
    carries it out in its bridge; 1006 answers, then hangs up."""
    start = rec.mark()
    drive.dial("1000", "7002")
    rec.wait("established", K, start)
    rec.wait("established", P, start)
    drive.refer("1000", "1006")
    rec.wait("established", L, start)
    rec.wait("call_cleared", K, start)
    drive.hangup("1006")
    settle(rec, start, (K, P, L))
    return start


#: What a phone's REFER on a controlled call reports (real Asterisk 22 only: the simulator
#: has no ChannelTransfer).
REFER_EXPECTED: Dict[str, List[str]] = {
    K: [f"originated(calling {_KAI}, called 7002/, dialing)",
        f"ringback(connected {_PING}, ringback)",
        f"established(connected {_PING}, connected)",
        "connection_cleared(transferred, disconnected)",
        "call_cleared(transferred, disconnected)"],
    P: [f"delivered(calling {_KAI}, ringing)",
        f"established(connected {_KAI}, connected)",
        f"transferred(connected {_LEE}, connected)",
        "connection_cleared(disconnected)", "call_cleared(disconnected)"],
    L: [f"delivered(calling {_PING}, ringing)",
        f"established(connected {_PING}, connected)",
        "connection_cleared(disconnected)", "call_cleared(disconnected)"],
}


PATHS.update({
    "dialplan": phone_basic,
    "switch": switch_call,
    "click_to_dial": sdk_click_to_dial,
    "queue": queue_call,
})


class SimDrive:
    """The simulator's phones behind the scenarios' :class:`Drive`."""

    def __init__(self, sim: AriSimulator) -> None:
        self.sim = sim

    def dial(self, ext: str, number: str) -> None:
        self.sim.phone(ext).dial(number)

    def hangup(self, ext: str) -> None:
        self.sim.phone(ext).hangup()

    def dtmf(self, ext: str, digits: str) -> None:
        self.sim.phone(ext).dtmf(digits)

    def refer(self, ext: str, number: str) -> None:
        self.sim.phone(ext).blind_transfer(number)
