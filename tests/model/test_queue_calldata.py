"""QUEUED and call data in the call model, from events shaped like Asterisk 22's.

A queue call as the lab's dialplan makes it (``Set(__CTI_DATA=...)`` then
``Queue(support,...)`` ringing PJSIP/1002 and PJSIP/1006): the caller's ChannelVarset and
ChannelDialplan, the agents' channels created with the inherited variable in ``channelvars``,
app_queue's Dial events whose caller object runs app Queue.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional

import pytest

from asterisk_cti.events.catalogue import parse_event
from asterisk_cti.model import (
    CALL_EVENT_KEYS,
    NO_DATA,
    CallEvent,
    CallModel,
    ConnectionState,
    EventKind,
    PhoneState,
    Reason,
)
from asterisk_cti.model import calldata as model_calldata

from .helpers import chan, ev, new_model

K, P, L = "PJSIP/1000", "PJSIP/1002", "PJSIP/1006"
DATA = "account=4711&choice=billing"
QUEUE_APP = {"app_name": "Queue", "app_data": "support,Tt,,,30,,lab-predial"}


def _chan(cid: str, ext: str, state: str, data: Optional[str] = "", *,
          caller: tuple[str, str] = ("", ""), connected: tuple[str, str] = ("", ""),
          exten: str = "s", app: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    c = chan(cid, ext, state, caller=caller, connected=connected, exten=exten)
    c["channelvars"] = {"CHANNEL(linkedid)": "k.1"}
    if data is not None:
        c["channelvars"]["CTI_DATA"] = data
    if app is not None:
        c["dialplan"] = {**c["dialplan"], **app}
    return c


def _apply(model: CallModel, *frames: Dict[str, Any]) -> List[CallEvent]:
    out: List[CallEvent] = []
    for frame in frames:
        out.extend(model.apply(parse_event(frame)))
    return out


def _kinds(events: List[CallEvent], line: str) -> List[str]:
    return [e.kind.value for e in events if e.line == line]


def _of(events: List[CallEvent], line: str, kind: str) -> CallEvent:
    for e in events:
        if e.line == line and e.kind.value == kind:
            return e
    raise AssertionError(f"no {kind} at {line}: {events}")


KAI = ("1000", "Kai")


def _caller(state: str = "Ring", data: str = DATA, queued: bool = True) -> Dict[str, Any]:
    return _chan("k.1", "1000", state, data, caller=KAI, exten="2000",
                 app=QUEUE_APP if queued else None)


def _agent(cid: str, ext: str, state: str, name: str, connected: Any = KAI) -> Dict[str, Any]:
    return _chan(cid, ext, state, DATA, caller=(ext, name), connected=connected)


def _queue_call_until_ringing(model: CallModel) -> List[CallEvent]:
    """1000 dials 2000: data set, queued, both agents ring."""
    return _apply(
        model,
        ev("ChannelCreated", channel=_chan("k.1", "1000", "Ring", "", caller=KAI,
                                            exten="2000")),
        ev("ChannelVarset", variable="__CTI_DATA", value=DATA,
           channel=_chan("k.1", "1000", "Ring", DATA, caller=KAI, exten="2000")),
        ev("ChannelDialplan", dialplan_app="Queue",
           dialplan_app_data="support,Tt,,,30,,lab-predial", channel=_caller()),
        ev("ChannelCreated", channel=_agent("p.1", "1002", "Down", "Ping")),
        ev("ChannelCreated", channel=_agent("l.1", "1006", "Down", "Lee")),
        ev("Dial", caller=_caller(), peer=_agent("p.1", "1002", "Down", "Ping"),
           dialstatus="", dialstring="PJSIP/1002"),
        ev("Dial", caller=_caller(), peer=_agent("l.1", "1006", "Down", "Lee"),
           dialstatus="", dialstring="PJSIP/1006"),
        ev("ChannelStateChange", channel=_agent("p.1", "1002", "Ringing", "Ping")),
        ev("Dial", caller=_caller(), peer=_agent("p.1", "1002", "Ringing", "Ping"),
           dialstatus="RINGING"),
        ev("ChannelStateChange", channel=_agent("l.1", "1006", "Ringing", "Lee")),
        ev("Dial", caller=_caller(), peer=_agent("l.1", "1006", "Ringing", "Lee"),
           dialstatus="RINGING"),
    )


def test_queue_call_queued_then_agent_answers_with_data_everywhere() -> None:
    model = new_model()
    out = _queue_call_until_ringing(model)
    assert _kinds(out, K) == ["originated", "queued"]
    queued = _of(out, K, "queued")
    assert queued.state is ConnectionState.QUEUED
    assert queued.previous_state is ConnectionState.INITIATED
    assert queued.phone_state is PhoneState.RINGBACK
    assert queued.queue == "support"
    assert dict(queued.data) == {"account": "4711", "choice": "billing"}
    for line in (P, L):
        delivered = _of(out, line, "delivered")
        assert delivered.queue == "support"
        assert dict(delivered.data) == {"account": "4711", "choice": "billing"}
        assert delivered.calling.number == "1000"
    conn = model.connection("k.1")
    assert conn is not None and conn.state is ConnectionState.QUEUED
    assert conn.queue == "support" and dict(conn.data) == {"account": "4711",
                                                            "choice": "billing"}
    call = model.find_call("k.1")
    assert call is not None and dict(call.data) == {"account": "4711", "choice": "billing"}
    # 1006 answers; app_queue answers the caller (Up) before its Dial ANSWER
    out = _apply(
        model,
        ev("ChannelStateChange", channel=_agent("l.1", "1006", "Up", "Lee")),
        ev("ChannelStateChange", channel=_caller("Up")),
        ev("Dial", caller=_caller("Up"), peer=_agent("l.1", "1006", "Up", "Lee"),
           dialstatus="ANSWER"),
        ev("Dial", caller=_caller("Up"), peer=_agent("p.1", "1002", "Ringing", "Ping"),
           dialstatus="CANCEL"),
        ev("ChannelDestroyed", cause=16, channel=_agent("p.1", "1002", "Ringing", "Ping")),
    )
    assert _kinds(out, K) == ["established"]
    est = _of(out, K, "established")
    assert est.previous_state is ConnectionState.QUEUED
    assert est.connected.number == "1006"
    assert est.queue == "support" and est.data["account"] == "4711"
    lee = _of(out, L, "established")
    assert lee.queue == "support" and lee.data["choice"] == "billing"
    assert _kinds(out, P) == ["connection_cleared", "call_cleared"]
    assert _of(out, P, "call_cleared").data["account"] == "4711"


def test_agent_ringing_before_its_dial_still_shows_the_queue() -> None:
    """Asterisk 22 publishes app_queue's Dial on the caller's topic and the agent leg's
    Ringing on the agent's; on the lab the Ringing came first now and then (the caller
    continued into the queue by the IVR). The leg runs ``AppQueue``; its call is the
    caller's (one linkedid): delivered names the queue all the same."""
    model = new_model()
    agent_app = {"app_name": "AppQueue", "app_data": "(Outgoing Line)"}

    def leg(state: str) -> Dict[str, Any]:
        c = _agent("p.1", "1002", state, "Ping")
        c["dialplan"] = {**c["dialplan"], "exten": "2000", **agent_app}
        return c

    out = _apply(
        model,
        ev("ChannelCreated", channel=_chan("k.1", "1000", "Up", DATA, caller=KAI,
                                            exten="2000")),
        ev("ChannelDialplan", dialplan_app="Queue",
           dialplan_app_data="support,Tt,,,30,,lab-predial", channel=_caller("Up")),
        ev("ChannelCreated", channel=leg("Down")),
        ev("ChannelStateChange", channel=leg("Ringing")),
        ev("Dial", caller=_caller("Up"), peer=leg("Ringing"), dialstatus="",
           dialstring="PJSIP/1002"),
        ev("Dial", caller=_caller("Up"), peer=leg("Ringing"), dialstatus="RINGING"),
    )
    delivered = _of(out, P, "delivered")
    assert delivered.queue == "support"
    assert dict(delivered.data) == {"account": "4711", "choice": "billing"}
    assert _kinds(out, P) == ["delivered"]
    # a leg that is not app_queue's learns no queue from its call
    other = new_model()
    out = _apply(
        other,
        ev("ChannelCreated", channel=_chan("k.1", "1000", "Up", DATA, caller=KAI,
                                            exten="2000")),
        ev("ChannelDialplan", dialplan_app="Queue",
           dialplan_app_data="support,Tt,,,30,,lab-predial", channel=_caller("Up")),
        ev("ChannelCreated", channel=_agent("p.1", "1002", "Down", "Ping")),
        ev("ChannelStateChange", channel=_agent("p.1", "1002", "Ringing", "Ping")),
    )
    assert _of(out, P, "delivered").queue == ""


def test_caller_hangs_up_while_queued() -> None:
    model = new_model()
    _queue_call_until_ringing(model)
    out = _apply(
        model,
        ev("ChannelHangupRequest", cause=16, channel=_caller()),
        ev("Dial", caller=_caller(), peer=_agent("p.1", "1002", "Ringing", "Ping"),
           dialstatus="CANCEL"),
        ev("Dial", caller=_caller(), peer=_agent("l.1", "1006", "Ringing", "Lee"),
           dialstatus="CANCEL"),
        ev("ChannelDestroyed", cause=16, channel=_caller()),
        ev("ChannelDestroyed", cause=16, channel=_agent("p.1", "1002", "Ringing", "Ping")),
        ev("ChannelDestroyed", cause=16, channel=_agent("l.1", "1006", "Ringing", "Lee")),
    )
    assert _kinds(out, K) == ["connection_cleared", "call_cleared"]
    cleared = _of(out, K, "connection_cleared")
    assert cleared.previous_state is ConnectionState.QUEUED
    assert cleared.reason is Reason.NORMAL and cleared.cause == 16
    assert cleared.queue == "support"
    for line in (P, L):
        assert _kinds(out, line) == ["connection_cleared", "call_cleared"]
        assert _of(out, line, "connection_cleared").reason is Reason.CANCELLED
    assert model.unfit_count == 0


@pytest.mark.parametrize("defer", [False, True])
def test_a_hangup_requests_cause_reaches_the_connection_snapshot_at_once(defer: bool) -> None:
    model = new_model()
    _queue_call_until_ringing(model)
    model.defer_publish = defer
    conn = model.line(K).connections[0]  # type: ignore[union-attr]
    assert conn.cause == 0
    _apply(model, ev("ChannelHangupRequest", cause=17, channel=_caller()))
    model.flush()
    after = model.line(K).connections[0]  # type: ignore[union-attr]
    assert after.cause == 17 and model.connection(after.connection_id) == after
    assert model.find_call(after.call_id).connections[0].cause == 17  # type: ignore[union-attr]


def test_agent_no_answer_does_not_fail_a_queued_caller() -> None:
    """app_queue's ring timeout ends an agent's Dial NOANSWER and rings again: the caller
    waits on (no failed), and hanging up later is a normal clearing."""
    model = new_model()
    _queue_call_until_ringing(model)
    out = _apply(
        model,
        ev("Dial", caller=_caller(), peer=_agent("p.1", "1002", "Ringing", "Ping"),
           dialstatus="NOANSWER"),
        ev("Dial", caller=_caller(), peer=_agent("l.1", "1006", "Ringing", "Lee"),
           dialstatus="NOANSWER"),
        ev("ChannelTalkingStarted", channel=_caller()),
        ev("ChannelDestroyed", cause=16, channel=_caller()),
    )
    assert _kinds(out, K) == ["talking_started", "connection_cleared", "call_cleared"]
    assert _of(out, K, "connection_cleared").reason is Reason.NORMAL
    assert model.unfit_count == 0


def test_queued_missed_dialplan_event_is_learned_from_the_dial() -> None:
    """Without the ChannelDialplan (a server-side filter, a gap), app_queue's Dial, whose
    caller object runs app Queue, queues the caller first."""
    model = new_model()
    out = _apply(
        model,
        ev("ChannelCreated", channel=_chan("k.1", "1000", "Ring", "", caller=KAI,
                                            exten="2000")),
        ev("ChannelCreated", channel=_agent("p.1", "1002", "Down", "Ping")),
        ev("Dial", caller=_caller(), peer=_agent("p.1", "1002", "Down", "Ping"),
           dialstatus=""),
        ev("ChannelStateChange", channel=_agent("p.1", "1002", "Ringing", "Ping")),
    )
    assert _kinds(out, K) == ["originated", "queued"]
    assert _of(out, P, "delivered").queue == "support"


def test_resync_shows_a_caller_waiting_in_a_queue() -> None:
    model = new_model()
    out, report = model.resync([_caller("Up")], [], [])
    assert [e.kind for e in out if e.line == K] == [EventKind.ORIGINATED, EventKind.QUEUED]
    conn = model.connection("k.1")
    assert conn is not None and conn.state is ConnectionState.QUEUED
    assert conn.queue == "support" and conn.data["account"] == "4711"
    assert report.added and report.added[0].state is ConnectionState.QUEUED


def test_later_change_on_the_caller_shows_on_the_next_events_of_every_line() -> None:
    model = new_model()
    _queue_call_until_ringing(model)
    _apply(model,
           ev("Dial", caller=_caller("Up"), peer=_agent("l.1", "1006", "Up", "Lee"),
              dialstatus="ANSWER"))
    changed = "account=4711&choice=billing&vip=yes"
    out = _apply(
        model,
        ev("ChannelVarset", variable="CTI_DATA", value=changed,
           channel=_chan("k.1", "1000", "Up", DATA, caller=KAI, exten="2000")),
        # the agent's own copy (inherited at creation) still says the old value
        ev("ChannelHold", channel=_agent("l.1", "1006", "Up", "Lee")),
    )
    held = _of(out, L, "held")
    assert dict(held.data) == {"account": "4711", "choice": "billing", "vip": "yes"}
    conn = model.connection("l.1")
    assert conn is not None and conn.data["vip"] == "yes"
    call = model.find_call("k.1")
    assert call is not None and call.data["vip"] == "yes"
    # an explicit empty value clears it
    out = _apply(
        model,
        ev("ChannelVarset", variable="__CTI_DATA", value="",
           channel=_chan("k.1", "1000", "Up", changed, caller=KAI, exten="2000")),
        ev("ChannelUnhold", channel=_agent("l.1", "1006", "Up", "Lee")),
    )
    assert _of(out, L, "retrieved").data == {}


def test_a_channel_without_data_does_not_erase_the_call_data() -> None:
    model = new_model()
    _queue_call_until_ringing(model)
    out = _apply(
        model,
        ev("ChannelCreated", channel=_chan("x.1", "1002", "Down", "", caller=("1002", "Ping"),
                                            connected=KAI)),
        ev("ChannelStateChange", channel=_chan("x.1", "1002", "Ringing", "",
                                                caller=("1002", "Ping"), connected=KAI)),
    )
    assert _of(out, P, "delivered").data["account"] == "4711"


def test_calls_without_data_carry_the_empty_mapping() -> None:
    model = new_model()
    out = _apply(model,
                 ev("ChannelCreated", channel=_chan("k.1", "1000", "Ring", "", caller=KAI,
                                                     exten="1002")),
                 ev("ChannelCreated", channel=chan("z.1", "1002", "Ring", exten="1003")))
    assert [e.data for e in out] == [NO_DATA, NO_DATA]
    assert all(e.queue == "" for e in out)
    with pytest.raises(TypeError):
        out[0].data["x"] = "y"  # type: ignore[index]
    d = out[0].as_dict()
    assert tuple(d) == CALL_EVENT_KEYS
    assert d["data"] == {} and d["queue"] == ""


@pytest.mark.parametrize("bad", [
    "%zz=1&&",                      # not a form
    "1key=x",                       # a key that breaks the pattern
    "a=" + "x" * 300,               # a value too long
    "&".join(f"k{i}=v" for i in range(40)),  # too many items
    "a=" + "x" * 5000,              # too long encoded
    {"account": "4711"},            # not a string at all
    12,
])
def test_hostile_values_are_counted_and_the_previous_data_kept(bad: Any) -> None:
    model = new_model()
    _queue_call_until_ringing(model)
    before = model.call_data_errors
    out = _apply(
        model,
        ev("ChannelVarset", variable="__CTI_DATA", value=bad,
           channel=_chan("k.1", "1000", "Ring", DATA, caller=KAI, exten="2000")),
        ev("ChannelTalkingStarted", channel=_chan("k.1", "1000", "Ring", bad, caller=KAI,
                                                  exten="2000", app=QUEUE_APP)),
        ev("ChannelTalkingFinished", channel=_chan("k.1", "1000", "Ring", bad, caller=KAI,
                                                   exten="2000", app=QUEUE_APP)),
    )
    assert model.call_data_errors == before + 1  # the same bad value is decoded once
    assert [e.kind.value for e in out] == ["talking_started", "talking_stopped"]
    assert all(dict(e.data) == {"account": "4711", "choice": "billing"} for e in out)


def test_hostile_values_are_logged_at_most_once_per_interval(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    model = new_model()
    _queue_call_until_ringing(model)
    clock = [1000.0]
    monkeypatch.setattr(model_calldata.time, "monotonic", lambda: clock[0])
    caplog.set_level(logging.WARNING, logger="asterisk_cti.model.calldata")
    for i in range(5):
        _apply(model, ev("ChannelVarset", variable="CTI_DATA", value=f"bad {i}%%",
                         channel=_chan("k.1", "1000", "Ring", DATA, caller=KAI)))
    assert model.call_data_errors == 5
    assert len(caplog.records) == 1
    assert "bad" not in caplog.records[0].getMessage()  # the value itself is never logged
    clock[0] += model_calldata.DATA_LOG_INTERVAL
    _apply(model, ev("ChannelVarset", variable="CTI_DATA", value="again%%",
                     channel=_chan("k.1", "1000", "Ring", DATA, caller=KAI)))
    assert len(caplog.records) == 2


def test_other_variables_and_dialplan_apps_are_ignored() -> None:
    model = new_model()
    _queue_call_until_ringing(model)
    out = _apply(
        model,
        ev("ChannelVarset", variable="XCTI_DATA", value="a=1",
           channel=_chan("k.1", "1000", "Ring", DATA, caller=KAI)),
        ev("ChannelDialplan", dialplan_app="Playback", dialplan_app_data="x",
           channel=_chan("k.1", "1000", "Ring", DATA, caller=KAI)),
        ev("ChannelTalkingStarted", channel=_caller()),
    )
    assert _kinds(out, K) == ["talking_started"]
    assert out[0].state is ConnectionState.QUEUED
    assert dict(out[0].data) == {"account": "4711", "choice": "billing"}


def test_a_second_queue_is_told() -> None:
    model = new_model()
    _queue_call_until_ringing(model)
    out = _apply(model, ev("ChannelDialplan", dialplan_app="Queue",
                           dialplan_app_data="billing", channel=_caller()))
    assert _kinds(out, K) == ["queued"]
    assert out[0].queue == "billing" and out[0].previous_state is ConnectionState.QUEUED
    # the same queue again (a duplicate) is not news
    assert _apply(model, ev("ChannelDialplan", dialplan_app="Queue",
                            dialplan_app_data="billing", channel=_caller())) == []


def test_recorded_lab_queue_call_is_queued_then_established() -> None:
    """The lab's queue call as Asterisk 22.10.1 published it (tests/sim/data/queue.jsonl, a
    subscription to everything): 1000 calls the support queue, 1006 answers."""
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "sim" / "data" / "queue.jsonl"
    with path.open(encoding="utf-8") as fh:
        frames = [json.loads(line) for line in fh if line.strip()]
    model = new_model()
    out = _apply(model, *frames)
    assert _kinds(out, K) == ["line_state_changed", "originated", "queued", "established",
                              "talking_started", "connection_cleared", "call_cleared"]
    assert _of(out, K, "queued").queue == "support"
    est = _of(out, K, "established")
    assert est.connected.number == "1006" and est.queue == "support"
    assert [e.kind.value for e in out if e.line == L][:3] == [
        "line_state_changed", "delivered", "established"]
    for line in (P, L):
        assert _of(out, line, "delivered").queue == "support"
        assert _of(out, line, "delivered").calling.number == "1000"
    assert _of(out, L, "established").queue == "support"
    assert "established" not in _kinds(out, P)
    assert all(e.data == {} for e in out)
    assert model.unfit_count == 0


def test_recorded_lab_queue_call_with_dialplan_data() -> None:
    """The lab's queue-with-data call as Asterisk 22.10.1 published it (every event, with
    ``channelvars = CHANNEL(linkedid),CTI_DATA``): the caller's ChannelCreated carries an
    empty CTI_DATA, its ChannelVarset ``__CTI_DATA`` the value; the agents' legs are created
    empty, then inherit (a ChannelVarset ``__CTI_DATA`` of their own)."""
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parent / "data" / "lab_queue_calldata.jsonl"
    with path.open(encoding="utf-8") as fh:
        frames = [json.loads(line) for line in fh if line.strip()]
    model = new_model()
    out = [e for e in _apply(model, *frames) if e.kind.value not in (
        "line_state_changed", "talking_started", "talking_stopped")]
    seq = [(e.line, e.kind.value, e.queue, dict(e.data)) for e in out]
    assert seq[:6] == [
        (K, "originated", "", {}),
        (K, "queued", "support", DATA_DICT),
        (L, "delivered", "support", DATA_DICT),
        (P, "delivered", "support", DATA_DICT),
        (L, "established", "support", DATA_DICT),
        (K, "established", "support", DATA_DICT),
    ]
    for line in (K, P, L):
        assert [s[1:] for s in seq[6:] if s[0] == line] == [
            ("connection_cleared", "support", DATA_DICT),
            ("call_cleared", "support", DATA_DICT)]
    assert _of(out, K, "established").connected.number == "1006"
    assert model.unfit_count == 0 and model.call_data_errors == 0


DATA_DICT = {"account": "4711", "choice": "billing"}
