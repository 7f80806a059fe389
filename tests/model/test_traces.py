"""Every recorded Asterisk 22 trace, replayed through the call model: the exact CTI events per line.

``NAME.jsonl`` is replayed for application ``cti-rec`` (endpoint subscriptions: no bridge
events, but EndpointStateChange), ``NAME.all.jsonl`` for ``cti-all`` (subscribeAll: bridge and
transfer events, no EndpointStateChange). Each event is compared as
``(kind, state, calling, connected, cause, reason)`` with parties as ``number/name``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

import pytest

from asterisk_cti.model import EventKind

from .helpers import SCENARIOS, by_line, compact, load_trace, new_model, replay

Seq = List[Tuple[Any, ...]]

#: The CTI events per line of every ``NAME.jsonl`` trace (application cti-rec).
EXPECTED_REC: Dict[str, Dict[str, Seq]] = {
    "basic": {
        "PJSIP/1000": [
            ('line_state_changed', 'online'),
            ('originated', 'initiated', '1000/Kai', '/', 0, 'normal'),
            ('ringback', 'initiated', '1000/Kai', '1002/Ping', 0, 'normal'),
            ('established', 'connected', '1000/Kai', '1002/Ping', 0, 'normal'),
            ('talking_started', 'connected', '1000/Kai', '1002/Ping', 0, 'normal'),
            ('talking_stopped', 'connected', '1000/Kai', '1002/Ping', 0, 'normal'),
            ('talking_started', 'connected', '1000/Kai', '1002/Ping', 0, 'normal'),
            ('connection_cleared', 'null', '1000/Kai', '1002/Ping', 16, 'normal'),
            ('call_cleared', 'null', '1000/Kai', '1002/Ping', 16, 'normal'),
        ],
        "PJSIP/1002": [
            ('line_state_changed', 'online'),
            ('delivered', 'alerting', '1000/Kai', '1000/Kai', 0, 'normal'),
            ('established', 'connected', '1000/Kai', '1000/Kai', 0, 'normal'),
            ('talking_started', 'connected', '1000/Kai', '1000/Kai', 0, 'normal'),
            ('connection_cleared', 'null', '1000/Kai', '1000/Kai', 16, 'normal'),
            ('call_cleared', 'null', '1000/Kai', '1000/Kai', 16, 'normal'),
        ],
    },
    "hold": {
        "PJSIP/1000": [
            ('line_state_changed', 'online'),
            ('originated', 'initiated', '1000/Kai', '/', 0, 'normal'),
            ('ringback', 'initiated', '1000/Kai', '1002/Ping', 0, 'normal'),
            ('established', 'connected', '1000/Kai', '1002/Ping', 0, 'normal'),
            ('talking_started', 'connected', '1000/Kai', '1002/Ping', 0, 'normal'),
            ('held', 'hold', '1000/Kai', '1002/Ping', 0, 'normal'),
            ('retrieved', 'connected', '1000/Kai', '1002/Ping', 0, 'normal'),
            ('connection_cleared', 'null', '1000/Kai', '1002/Ping', 16, 'normal'),
            ('call_cleared', 'null', '1000/Kai', '1002/Ping', 16, 'normal'),
        ],
        "PJSIP/1002": [
            ('line_state_changed', 'online'),
            ('delivered', 'alerting', '1000/Kai', '1000/Kai', 0, 'normal'),
            ('established', 'connected', '1000/Kai', '1000/Kai', 0, 'normal'),
            ('talking_started', 'connected', '1000/Kai', '1000/Kai', 0, 'normal'),
            ('connection_cleared', 'null', '1000/Kai', '1000/Kai', 16, 'normal'),
            ('call_cleared', 'null', '1000/Kai', '1000/Kai', 16, 'normal'),
        ],
    },
    "attended_transfer": {
        "PJSIP/1000": [
            ('line_state_changed', 'online'),
            ('originated', 'initiated', '1000/Kai', '/', 0, 'normal'),
            ('ringback', 'initiated', '1000/Kai', '1002/Ping', 0, 'normal'),
            ('established', 'connected', '1000/Kai', '1002/Ping', 0, 'normal'),
            ('talking_started', 'connected', '1000/Kai', '1002/Ping', 0, 'normal'),
            ('held', 'hold', '1000/Kai', '1002/Ping', 0, 'normal'),
            ('party_changed', 'hold', '1000/Kai', '1006/Lee', 0, 'normal'),
            ('connection_cleared', 'null', '1000/Kai', '1006/Lee', 16, 'transferred'),
            ('call_cleared', 'null', '1000/Kai', '1006/Lee', 16, 'transferred'),
        ],
        "PJSIP/1002": [
            ('line_state_changed', 'online'),
            ('delivered', 'alerting', '1000/Kai', '1000/Kai', 0, 'normal'),
            ('established', 'connected', '1000/Kai', '1000/Kai', 0, 'normal'),
            ('talking_started', 'connected', '1000/Kai', '1000/Kai', 0, 'normal'),
            ('transferred', 'connected', '1000/Kai', '1006/Lee', 0, 'normal'),
            ('connection_cleared', 'null', '1000/Kai', '1006/Lee', 16, 'normal'),
            ('call_cleared', 'null', '1000/Kai', '1006/Lee', 16, 'normal'),
        ],
        "PJSIP/1006": [
            ('line_state_changed', 'online'),
            ('delivered', 'alerting', '1000/Kai', '1000/Kai', 0, 'normal'),
            ('established', 'connected', '1000/Kai', '1000/Kai', 0, 'normal'),
            ('talking_started', 'connected', '1000/Kai', '1000/Kai', 0, 'normal'),
            ('transferred', 'connected', '1000/Kai', '1002/Ping', 0, 'normal'),
            ('connection_cleared', 'null', '1000/Kai', '1002/Ping', 16, 'normal'),
            ('call_cleared', 'null', '1000/Kai', '1002/Ping', 16, 'normal'),
        ],
    },
    "blind_transfer": {
        "PJSIP/1000": [
            ('line_state_changed', 'online'),
            ('originated', 'initiated', '1000/Kai', '/', 0, 'normal'),
            ('ringback', 'initiated', '1000/Kai', '1002/Ping', 0, 'normal'),
            ('established', 'connected', '1000/Kai', '1002/Ping', 0, 'normal'),
            ('talking_started', 'connected', '1000/Kai', '1002/Ping', 0, 'normal'),
            ('connection_cleared', 'null', '1000/Kai', '1002/Ping', 16, 'normal'),
            ('call_cleared', 'null', '1000/Kai', '1002/Ping', 16, 'normal'),
        ],
        "PJSIP/1002": [
            ('line_state_changed', 'online'),
            ('delivered', 'alerting', '1000/Kai', '1000/Kai', 0, 'normal'),
            ('established', 'connected', '1000/Kai', '1000/Kai', 0, 'normal'),
            ('talking_started', 'connected', '1000/Kai', '1000/Kai', 0, 'normal'),
            ('transferred', 'connected', '1000/Kai', '1006/Lee', 0, 'normal'),
            ('connection_cleared', 'null', '1000/Kai', '1006/Lee', 16, 'normal'),
            ('call_cleared', 'null', '1000/Kai', '1006/Lee', 16, 'normal'),
        ],
        "PJSIP/1006": [
            ('line_state_changed', 'online'),
            ('delivered', 'alerting', '1002/Ping', '1002/Ping', 0, 'normal'),
            ('established', 'connected', '1002/Ping', '1002/Ping', 0, 'normal'),
            ('talking_started', 'connected', '1002/Ping', '1002/Ping', 0, 'normal'),
            ('connection_cleared', 'null', '1002/Ping', '1002/Ping', 16, 'normal'),
            ('call_cleared', 'null', '1002/Ping', '1002/Ping', 16, 'normal'),
        ],
    },
    "no_answer": {
        "PJSIP/1000": [
            ('line_state_changed', 'online'),
            ('originated', 'initiated', '1000/Kai', '/', 0, 'normal'),
            ('ringback', 'initiated', '1000/Kai', '1002/Ping', 0, 'normal'),
            ('failed', 'fail', '1000/Kai', '1002/Ping', 19, 'no_answer'),
            ('connection_cleared', 'null', '1000/Kai', '1002/Ping', 19, 'no_answer'),
            ('call_cleared', 'null', '1000/Kai', '1002/Ping', 19, 'no_answer'),
        ],
        "PJSIP/1002": [
            ('line_state_changed', 'online'),
            ('delivered', 'alerting', '1000/Kai', '1000/Kai', 0, 'normal'),
            ('connection_cleared', 'null', '1000/Kai', '1000/Kai', 19, 'no_answer'),
            ('call_cleared', 'null', '1000/Kai', '1000/Kai', 19, 'no_answer'),
        ],
    },
    "busy": {
        "PJSIP/1006": [
            ('line_state_changed', 'online'),
            ('originated', 'initiated', '1006/Lee', '/', 0, 'normal'),
            ('ringback', 'initiated', '1006/Lee', '1002/Ping', 0, 'normal'),
            ('established', 'connected', '1006/Lee', '1002/Ping', 0, 'normal'),
            ('talking_started', 'connected', '1006/Lee', '1002/Ping', 0, 'normal'),
            ('connection_cleared', 'null', '1006/Lee', '1002/Ping', 16, 'normal'),
            ('call_cleared', 'null', '1006/Lee', '1002/Ping', 16, 'normal'),
        ],
        "PJSIP/1002": [
            ('line_state_changed', 'online'),
            ('delivered', 'alerting', '1006/Lee', '1006/Lee', 0, 'normal'),
            ('established', 'connected', '1006/Lee', '1006/Lee', 0, 'normal'),
            ('talking_started', 'connected', '1006/Lee', '1006/Lee', 0, 'normal'),
            ('connection_cleared', 'null', '1006/Lee', '1006/Lee', 16, 'normal'),
            ('call_cleared', 'null', '1006/Lee', '1006/Lee', 16, 'normal'),
        ],
        "PJSIP/1000": [
            ('line_state_changed', 'online'),
            ('originated', 'initiated', '1000/Kai', '/', 0, 'normal'),
            ('failed', 'fail', '1000/Kai', '1002/Ping', 17, 'busy'),
            ('connection_cleared', 'null', '1000/Kai', '1002/Ping', 17, 'busy'),
            ('call_cleared', 'null', '1000/Kai', '1002/Ping', 17, 'busy'),
        ],
    },
    "rejected": {
        "PJSIP/1000": [
            ('line_state_changed', 'online'),
            ('originated', 'initiated', '1000/Kai', '/', 0, 'normal'),
            ('ringback', 'initiated', '1000/Kai', '1002/Ping', 0, 'normal'),
            ('failed', 'fail', '1000/Kai', '1002/Ping', 17, 'busy'),
            ('connection_cleared', 'null', '1000/Kai', '1002/Ping', 17, 'busy'),
            ('call_cleared', 'null', '1000/Kai', '1002/Ping', 17, 'busy'),
        ],
        "PJSIP/1002": [
            ('line_state_changed', 'online'),
            ('delivered', 'alerting', '1000/Kai', '1000/Kai', 0, 'normal'),
            ('connection_cleared', 'null', '1000/Kai', '1000/Kai', 17, 'busy'),
            ('call_cleared', 'null', '1000/Kai', '1000/Kai', 17, 'busy'),
        ],
    },
    "ari_originate": {
        "PJSIP/1000": [
            ('line_state_changed', 'online'),
            ('delivered', 'alerting', '1002/Click2Dial', '1002/Click2Dial', 0, 'normal'),
            ('established', 'connected', '1002/Click2Dial', '1002/Click2Dial', 0, 'normal'),
            ('originated', 'connected', '1002/Click2Dial', '1002/Click2Dial', 0, 'normal'),
            ('party_changed', 'connected', '1002/Click2Dial', '1002/Ping', 0, 'normal'),
            ('talking_started', 'connected', '1002/Click2Dial', '1002/Ping', 0, 'normal'),
            ('connection_cleared', 'null', '1002/Click2Dial', '1002/Ping', 16, 'normal'),
            ('call_cleared', 'null', '1002/Click2Dial', '1002/Ping', 16, 'normal'),
        ],
        "PJSIP/1002": [
            ('line_state_changed', 'online'),
            ('delivered', 'alerting', '1002/Click2Dial', '1002/Click2Dial', 0, 'normal'),
            ('established', 'connected', '1002/Click2Dial', '1002/Click2Dial', 0, 'normal'),
            ('talking_started', 'connected', '1002/Click2Dial', '1002/Click2Dial', 0, 'normal'),
            ('connection_cleared', 'null', '1002/Click2Dial', '1002/Click2Dial', 16, 'normal'),
            ('call_cleared', 'null', '1002/Click2Dial', '1002/Click2Dial', 16, 'normal'),
        ],
    },
    "stasis_control": {
        "PJSIP/1000": [
            ('line_state_changed', 'online'),
            ('originated', 'initiated', '1000/Kai', '/', 0, 'normal'),
            ('ringback', 'initiated', '1000/Kai', '1002/Ping', 0, 'normal'),
            ('established', 'connected', '1000/Kai', '1002/Ping', 0, 'normal'),
            ('talking_started', 'connected', '1000/Kai', '1002/Ping', 0, 'normal'),
            ('connection_cleared', 'null', '1000/Kai', '1002/Ping', 16, 'normal'),
            ('call_cleared', 'null', '1000/Kai', '1002/Ping', 16, 'normal'),
            ('originated', 'initiated', '1000/Kai', '/', 0, 'normal'),
            ('established', 'connected', '1000/Kai', '/', 0, 'normal'),
            ('talking_started', 'connected', '1000/Kai', '/', 0, 'normal'),
            # the Stasis app named the far end only after answering: a change of party
            ('party_changed', 'connected', '1000/Kai', '1000/Kai via ARI', 0, 'normal'),
            ('connection_cleared', 'null', '1000/Kai', '1000/Kai via ARI', 16, 'normal'),
            ('call_cleared', 'null', '1000/Kai', '1000/Kai via ARI', 16, 'normal'),
        ],
        "PJSIP/1002": [
            ('line_state_changed', 'online'),
            ('delivered', 'alerting', '1000/Kai', '1000/Kai', 0, 'normal'),
            ('established', 'connected', '1000/Kai', '1000/Kai', 0, 'normal'),
            ('talking_started', 'connected', '1000/Kai', '1000/Kai', 0, 'normal'),
            ('connection_cleared', 'null', '1000/Kai', '1000/Kai', 16, 'normal'),
            ('call_cleared', 'null', '1000/Kai', '1000/Kai', 16, 'normal'),
            ('delivered', 'alerting', '1000/Kai via ARI', '1000/Kai via ARI', 0, 'normal'),
            ('established', 'connected', '1000/Kai via ARI', '1000/Kai via ARI', 0, 'normal'),
            ('party_changed', 'connected', '1000/Kai via ARI', '1000/Kai', 0, 'normal'),
            ('held', 'hold', '1000/Kai via ARI', '1000/Kai', 0, 'normal'),
            ('connection_cleared', 'null', '1000/Kai via ARI', '1000/Kai', 16, 'normal'),
            ('call_cleared', 'null', '1000/Kai via ARI', '1000/Kai', 16, 'normal'),
        ],
    },
}

#: Where the subscribeAll trace differs from the endpoint one beyond the missing
#: line_state_changed: with BridgeBlindTransfer the transfer is known before 1000 hangs up
#: (so 1000 is cleared as transferred, before any hangup cause) and 1002 learns the target's
#: name only from the later connected line (the identity completed: no party_changed).
ALL_OVERRIDES: Dict[str, Dict[str, Seq]] = {
    "blind_transfer": {
        "PJSIP/1000": [
            ("originated", "initiated", "1000/Kai", "/", 0, "normal"),
            ("ringback", "initiated", "1000/Kai", "1002/Ping", 0, "normal"),
            ("established", "connected", "1000/Kai", "1002/Ping", 0, "normal"),
            ("talking_started", "connected", "1000/Kai", "1002/Ping", 0, "normal"),
            ("connection_cleared", "null", "1000/Kai", "1002/Ping", 0, "transferred"),
            ("call_cleared", "null", "1000/Kai", "1002/Ping", 0, "transferred"),
        ],
        "PJSIP/1002": [
            ("delivered", "alerting", "1000/Kai", "1000/Kai", 0, "normal"),
            ("established", "connected", "1000/Kai", "1000/Kai", 0, "normal"),
            ("talking_started", "connected", "1000/Kai", "1000/Kai", 0, "normal"),
            ("transferred", "connected", "1000/Kai", "1006/", 0, "normal"),
            ("connection_cleared", "null", "1000/Kai", "1006/Lee", 16, "normal"),
            ("call_cleared", "null", "1000/Kai", "1006/Lee", 16, "normal"),
        ],
    },
}


def expected(scenario: str, variant: str) -> Dict[str, Seq]:
    """The expected per-line sequences of one trace variant."""
    exp = EXPECTED_REC[scenario]
    if variant == "rec":
        return exp
    res = {
        line: [e for e in seq if e[0] != "line_state_changed"] for line, seq in exp.items()
    }
    res.update(ALL_OVERRIDES.get(scenario, {}))
    return {line: seq for line, seq in res.items() if seq}


@pytest.mark.parametrize("variant", ["rec", "all"])
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_trace_sequences(scenario: str, variant: str) -> None:
    model = new_model()
    events = replay(model, load_trace(scenario, variant))
    got = {line: [compact(e) for e in evs] for line, evs in by_line(events).items()}
    assert got == expected(scenario, variant)
    # Nothing left over, nothing the model could not fit.
    assert model.needs_repair == set()
    assert model.unfit_count == 0
    assert model.tracked_channels == 0
    assert all(line.is_idle for line in model.lines)


@pytest.mark.parametrize("variant", ["rec", "all"])
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_trace_invariants(scenario: str, variant: str) -> None:
    """Per line: events carry the line as key, times never go back, every connection that was
    announced is cleared once and followed by call_cleared when it was the last of its call."""
    model = new_model()
    frames = load_trace(scenario, variant)
    events = replay(model, frames)
    for line, evs in by_line(events).items():
        assert all(e.key == line for e in evs)
        times = [e.timestamp for e in evs]
        assert times == sorted(times)
        announced = {e.connection_id for e in evs if e.connection_id}
        cleared = [e.connection_id for e in evs if e.kind is EventKind.CONNECTION_CLEARED]
        assert sorted(cleared) == sorted(announced)
        for e in evs:
            assert e.raw and all(isinstance(r, dict) for r in e.raw)
            assert 1.7e9 < e.timestamp < 1.9e9


def test_attended_transfer_parties() -> None:
    """1002 ends up with 1006 and hears it from a transferred event naming 1000 as transferer."""
    for variant in ("rec", "all"):
        events = replay(new_model(), load_trace("attended_transfer", variant))
        lines = by_line(events)
        xfer_1002 = next(e for e in lines["PJSIP/1002"] if e.kind is EventKind.TRANSFERRED)
        assert xfer_1002.connected.number == "1006"
        assert xfer_1002.transferring is not None and xfer_1002.transferring.number == "1000"
        assert xfer_1002.transfer_target is not None
        assert xfer_1002.transfer_target.number == "1006"
        cleared_1000 = next(
            e for e in lines["PJSIP/1000"] if e.kind is EventKind.CONNECTION_CLEARED
        )
        assert cleared_1000.reason.value == "transferred"
        # One conversation: the same call id on all three lines.
        assert len({e.call_id for e in events if e.call_id}) == 1


def test_failed_causes() -> None:
    for scenario, status, cause in (
        ("busy", "BUSY", 17),
        ("rejected", "BUSY", 17),
        ("no_answer", "NOANSWER", 19),
    ):
        for variant in ("rec", "all"):
            events = replay(new_model(), load_trace(scenario, variant))
            failed = [e for e in events if e.kind is EventKind.FAILED]
            assert len(failed) == 1
            assert (failed[0].line, failed[0].dialstatus, failed[0].cause) == (
                "PJSIP/1000", status, cause,
            )


def test_timestamps_are_ari_times() -> None:
    events = replay(new_model(), load_trace("basic", "rec"))
    first = events[0]
    # 2026-11-26T03:53:31.659+0000
    assert first.timestamp == pytest.approx(1795665211.659, abs=1e-6)
