"""Click-to-dial: controlled (into the SDK's app) and observed (dialplan) originates."""

from __future__ import annotations

import pytest

from asterisk_cti.control.calls import CallControl, CallFailedError
from asterisk_cti.control.options import party_of
from asterisk_cti.errors import CtiTimeoutError, InvalidRequestError
from asterisk_cti.model import Party

from .conftest import APP, Pbx, answered_call


def test_originate_established_bridges_agent_and_destination(pbx: Pbx,
                                                             control: CallControl) -> None:
    agent, peer, bridge = answered_call(pbx, control)
    first = pbx.originates()[0]
    assert first.params["endpoint"] == "PJSIP/1000"
    assert first.params["app"] == APP
    assert first.params["channelId"] == agent
    dest = next(r for r in pbx.originates() if r.params.get("channelId") == peer)
    assert dest.params["endpoint"] == "PJSIP/1002"
    assert dest.params["originator"] == agent
    assert dest.params["app"] == APP
    assert sorted(pbx.bridges[bridge]) == sorted([agent, peer])
    # ringback was played to the agent while the destination rang, and stopped on answer
    assert any(r.path.startswith(f"/channels/{agent}/play/") for r in pbx.requests("POST"))
    assert pbx.requests("DELETE", "/playbacks/")


def test_originate_delivered_returns_while_destination_rings(pbx: Pbx,
                                                             control: CallControl) -> None:
    pbx.behaviour["PJSIP/1002"] = "ring"
    call = control.originate("PJSIP/1000", "1002", timeout=5)
    assert call.controlled and call.peer_channel_id
    pbx.idle()
    assert pbx.channels[call.peer_channel_id]["state"] == "Ringing"
    assert not pbx.bridges
    pbx.answer(call.peer_channel_id)
    pbx.idle()
    assert sorted(pbx.bridges[call.bridge_id or ""]) == sorted(
        [call.channel_id, call.peer_channel_id])


def test_originate_originated_returns_after_the_request(pbx: Pbx,
                                                        control: CallControl) -> None:
    pbx.behaviour["PJSIP/1000"] = "silent"
    call = control.originate("PJSIP/1000", "1002", wait_for="originated")
    assert call.channel_id in pbx.channels
    assert call.call_id == call.channel_id


def test_busy_destination_raises_and_hangs_up_the_agent_with_busy(
        pbx: Pbx, control: CallControl) -> None:
    pbx.behaviour["PJSIP/1002"] = "busy"
    with pytest.raises(CallFailedError) as info:
        control.originate("PJSIP/1000", "1002", timeout=5)
    assert info.value.dialstatus == "BUSY"
    assert info.value.cause == 17
    pbx.idle()
    hangups = pbx.requests("DELETE", "/channels/")
    assert hangups and hangups[0].params["reason"] == "busy"
    assert not pbx.channels


def test_agent_not_answering_raises_noanswer(pbx: Pbx, control: CallControl) -> None:
    pbx.behaviour["PJSIP/1000"] = "noanswer"
    with pytest.raises(CallFailedError) as info:
        control.originate("PJSIP/1000", "1002", timeout=5)
    assert info.value.dialstatus == "NOANSWER"
    assert len(pbx.originates()) == 1


def test_originate_timeout_raises_and_hangs_up_what_it_started(pbx: Pbx,
                                                               control: CallControl) -> None:
    pbx.behaviour["PJSIP/1000"] = "ring"
    with pytest.raises(CtiTimeoutError):
        control.originate("PJSIP/1000", "1002", timeout=0.2)
    agent = pbx.originates()[0].params["channelId"]
    assert f"DELETE /channels/{agent}" in pbx.paths("DELETE")


def test_refused_originate_raises_typed_error_and_leaves_no_plan(pbx: Pbx,
                                                                 control: CallControl) -> None:
    pbx.fake.respond("POST", r"/channels", 400, {"message": "Endpoint must be specified"})
    with pytest.raises(InvalidRequestError):
        control.originate("PJSIP/1000", "1002")
    assert "legs=0" in repr(control)
    assert control._state.pending_plans() == 0
    assert len(pbx.client.waiters._waiters) == 0  # no wait left behind (the state has a tap)


def test_dialplan_originate_is_observed_and_waits_for_dial_answer(
        pbx: Pbx, control: CallControl) -> None:
    call = control.originate("PJSIP/1000", "1002", context="from-internal",
                             wait_for="established", timeout=5)
    assert not call.controlled and call.bridge_id is None
    assert call.peer_channel_id
    req = pbx.originates()[0]
    assert (req.params["extension"], req.params["context"], req.params["priority"]) == (
        "1002", "from-internal", "1")
    assert "app" not in req.params


def test_endpoint_mapping_is_configurable(pbx: Pbx, control: CallControl) -> None:
    control.configure(endpoint_for=lambda d: f"PJSIP/{d}@trunk" if len(d) > 4 else f"PJSIP/{d}")
    control.originate("PJSIP/1000", "0049301234", wait_for="delivered", timeout=5)
    assert any(r.params.get("endpoint") == "PJSIP/0049301234@trunk"
               for r in pbx.originates())


@pytest.mark.parametrize("kwargs", [
    {"endpoint": "", "destination": "1002"},
    {"endpoint": "PJSIP/1000", "destination": " "},
    {"endpoint": "PJSIP/1000", "destination": "1002", "wait_for": "answered"},
    {"endpoint": "PJSIP/1000", "destination": "1002", "timeout": 0},
])
def test_originate_validates_arguments_before_sending(pbx: Pbx, control: CallControl,
                                                      kwargs: dict) -> None:
    with pytest.raises(ValueError):
        control.originate(**kwargs)
    assert not pbx.requests()


def test_the_model_is_told_who_calls_whom_before_the_requests(
        pbx: Pbx, control: CallControl) -> None:
    """Click-to-dial hints: the agent's channel is an outgoing call of the agent, the leg is
    the destination dialled for it. Without the dynamic configuration route (this fake
    answers it 404, as a locked-down Asterisk does) the identities fall back on the
    endpoints' resources."""
    call = control.originate("PJSIP/1000", "1002", wait_for="established", timeout=5)
    pbx.idle()
    hints = pbx.model.hints
    agent, leg = hints[call.channel_id], hints[call.peer_channel_id]
    assert (agent.role, agent.calling, agent.called) == (
        "agent", Party("1000", ""), Party("1002", ""))
    assert (leg.role, leg.peer, leg.called, leg.purpose) == (
        "leg", call.channel_id, Party("1002", ""), "originate")


def test_identities_come_from_the_endpoint_configuration() -> None:
    assert party_of('"Kai" <1000>', "PJSIP/1000") == Party("1000", "Kai")
    assert party_of(None, "PJSIP/1000") == Party("1000", "")
    assert party_of(None, "PJSIP/2001@trunk") == Party("2001", "")
    assert party_of("1006", "PJSIP/1006") == Party("1006", "")
