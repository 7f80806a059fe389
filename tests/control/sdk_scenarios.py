"""The call-control scenarios of the integration suite, as plain functions over a started
client (``cti``, monitoring 1000/1002/1006, its app the one the ``7XXX`` extensions reach) and
phone drivers, so that the same operations run on the real lab and on the simulator and their
CTI sequences can be compared (``tests/control/test_sdk_story.py`` and
``tests/integration/test_cti_control.py``).

Threads: the test thread only.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, Iterable, List, Tuple

from asterisk_cti import CallEvent
from asterisk_cti.model import CallListener

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


Phones = Callable[[str, str], None]  # phones(ext, action): "answer", "hangup"


def settle(rec: Recorder, since: int, lines: Tuple[str, ...]) -> None:
    for line in lines:
        rec.wait("call_cleared", line, since)


def click_to_dial(cti: Any, rec: Recorder) -> Tuple[Any, int]:
    start = rec.mark()
    call = cti.control.originate(K, "1002", wait_for="established", timeout=10)
    rec.wait("established", K, start)
    rec.wait("established", P, start)
    return call, start


def scenario_click_to_dial(cti: Any, rec: Recorder) -> int:
    """1000 clicks to dial 1002; 1002 answers; 1000 hangs up."""
    call, start = click_to_dial(cti, rec)
    cti.control.hangup(call)
    settle(rec, start, (K, P))
    return start


def scenario_blind_transfer(cti: Any, rec: Recorder) -> int:
    """Click-to-dial 1000 -> 1002, transfer(1006); 1006 answers and hangs up."""
    call, start = click_to_dial(cti, rec)
    moved = cti.control.transfer(call, "1006", wait_for="established")
    rec.wait("established", L, start)
    cti.control.hangup(moved.peer_channel_id)
    settle(rec, start, (K, P, L))
    return start


def scenario_attended_transfer(cti: Any, rec: Recorder) -> int:
    """Click-to-dial 1000 -> 1002, consult(1006), complete_transfer; 1006 hangs up."""
    call, start = click_to_dial(cti, rec)
    consult = cti.control.consult(call, "1006", wait_for="established")
    rec.wait("established", L, start)
    cti.control.complete_transfer(call, consult)
    rec.wait("call_cleared", K, start)
    cti.control.hangup(consult.peer_channel_id)
    settle(rec, start, (K, P, L))
    return start


def scenario_conference(cti: Any, rec: Recorder) -> int:
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


SCENARIOS: Dict[str, Callable[[Any, Recorder], int]] = {
    "click_to_dial": scenario_click_to_dial,
    "blind_transfer": scenario_blind_transfer,
    "attended_transfer": scenario_attended_transfer,
    "conference": scenario_conference,
}
