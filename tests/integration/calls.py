"""Helpers shared by the SDK's integration tests: driving phones into a call, checking orders,
and keeping the observed CTI sequences for the docs.

Threads: called from the test thread only.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Callable, Dict, Iterable, List, Optional, Sequence

from asterisk_cti import CallEvent, ConnectionState, PhoneState

from .cti_recorder import CtiRecorder
from .lab import Phone

if TYPE_CHECKING:
    from .conftest import LabCti

#: Kinds that come at any time (talk detection follows the audio; a phone's registration
#: refresh gives line_state_changed), left out of exact sequence checks.
NOISE = ("talking_started", "talking_stopped", "line_state_changed")


def establish(caller: Phone, callee: Phone, number: str = "") -> None:
    """``caller`` dials ``callee`` (or ``number``), ``callee`` answers, both established."""
    caller.dial(number or callee.ext)
    callee.wait_for("CALL_INCOMING")
    callee.answer()
    callee.wait_for("CALL_ESTABLISHED")
    caller.wait_for("CALL_ESTABLISHED")


def assert_in_order(seen: Sequence[str], expected: Iterable[str], what: str = "") -> None:
    """``expected`` is a subsequence of ``seen`` (other items may come in between)."""
    position = 0
    for item in expected:
        try:
            position = list(seen).index(item, position) + 1
        except ValueError:
            raise AssertionError(
                f"{what}: {item!r} missing or out of order (expected {list(expected)} in that "
                f"order) in {list(seen)}") from None


def channel_steps(recorder: CtiRecorder, line: str, since: int = 0) -> List[str]:
    """The channel events of ``line`` as ``Type`` or ``ChannelStateChange:<state>``."""
    steps = []
    for item in recorder.select("channel", line, since):
        if item.name == "ChannelStateChange" and item.event.channel is not None:
            steps.append(f"ChannelStateChange:{item.event.channel.state}")
        else:
            steps.append(item.name)
    return steps


def keep_sequences(scenario: str, recorder: CtiRecorder, lines: Iterable[str],
                   since: int = 0) -> None:
    """Append the CTI sequences of a scenario to ``$ASTERISK_CTI_SEQUENCES`` (when set), the
    raw material of the docs' *observed sequences*."""
    target = os.environ.get("ASTERISK_CTI_SEQUENCES")
    if not target:
        return
    with open(target, "a", encoding="utf-8") as out:
        out.write(f"``{scenario}``\n\n::\n\n")
        for line, sequence in recorder.sequences(lines, since).items():
            if sequence:
                out.write(f"   {line}  {sequence}\n")
        out.write("\n")


def assert_no_duplicates(recorder: CtiRecorder, line: str, since: int = 0) -> None:
    """No channel event reached the listeners of ``line`` twice: the same event in every
    field (two connected-line changes within one millisecond are two events)."""
    seen = [json.dumps(item.event.raw, sort_keys=True)
            for item in recorder.select("channel", line, since)]
    twice = sorted({key[:300] for key in seen if seen.count(key) > 1})
    assert not twice, f"{line}: channel events delivered twice: {twice}"


def expect_queued(recorder: CtiRecorder, start: int, caller: str, agents: Iterable[str],
                  data: Dict[str, str], timeout: float = 10.0) -> None:
    """The caller's line is ``queued`` in queue ``support`` with the call data, and every
    agent's line gets ``delivered`` from that queue with the same data."""
    queued = recorder.wait_call("queued", caller, since=start, timeout=timeout)
    assert queued.state is ConnectionState.QUEUED and queued.queue == "support"
    assert queued.phone_state is PhoneState.RINGBACK
    assert dict(queued.data) == data
    for line in agents:
        delivered = recorder.wait_call("delivered", line, since=start)
        assert delivered.queue == "support", delivered
        assert dict(delivered.data) == data, delivered
        assert delivered.calling.number == caller.split("/", 1)[1]


def agent_answers_queued(cti: LabCti, agent: Phone, agent_line: str, caller: str,
                         start: int, data: Dict[str, str],
                         where: Optional[Callable[[CallEvent], bool]] = None) -> CallEvent:
    """With the caller still queued (its snapshot says so), ``agent`` answers: its line is
    ``established`` from the queue and so is the caller's, both with the call data. Returns
    the caller's ``established`` (the first one, or the first for which ``where`` holds)."""
    assert cti.wait_idle(5.0)
    waiting = cti.line(caller).connections[0]
    assert waiting.state is ConnectionState.QUEUED and waiting.queue == "support"
    assert dict(waiting.data) == data
    agent.wait_for("CALL_INCOMING")
    agent.answer()
    agent.wait_for("CALL_ESTABLISHED")
    answered_agent = cti.events.wait_call("established", agent_line, since=start)
    assert answered_agent.queue == "support" and dict(answered_agent.data) == data
    answered = cti.events.wait_call("established", caller, since=start, where=where)
    assert answered.connected.number == agent_line.split("/", 1)[1]
    assert dict(answered.data) == data
    return answered
