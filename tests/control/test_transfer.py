"""Blind transfer, attended transfer (consult, complete, cancel) and conference."""

from __future__ import annotations

import pytest

from asterisk_cti.control.calls import (
    CallControl,
    CallFailedError,
    CallStateError,
    Consultation,
    ControlledCall,
)

from .conftest import Pbx, answered_call


def _bridge_of(pbx: Pbx, cid: str) -> str:
    return next(b for b, members in pbx.bridges.items() if cid in members)


def test_blind_transfer_drops_the_agent_and_bridges_the_destination(
        pbx: Pbx, control: CallControl) -> None:
    agent, peer, bridge = answered_call(pbx, control)
    result = control.transfer(agent, "1006", wait_for="established", timeout=5)
    pbx.idle()
    assert agent not in pbx.channels
    assert result.channel_id == peer and result.bridge_id == bridge
    dest = result.peer_channel_id or ""
    assert sorted(pbx.bridges[bridge]) == sorted([peer, dest])
    req = next(r for r in pbx.originates() if r.params["channelId"] == dest)
    assert (req.params["endpoint"], req.params["originator"]) == ("PJSIP/1006", peer)
    assert any(r.path.startswith(f"/bridges/{bridge}/play/") for r in pbx.requests("POST"))


def test_blind_transfer_to_a_busy_destination_hangs_up_the_transferee(
        pbx: Pbx, control: CallControl) -> None:
    agent, peer, bridge = answered_call(pbx, control)
    pbx.behaviour["PJSIP/1006"] = "busy"
    with pytest.raises(CallFailedError) as info:
        control.transfer(agent, "1006", timeout=5)
    assert info.value.dialstatus == "BUSY"
    pbx.idle()
    assert pbx.hangups(peer)[0].params == {"reason": "busy"}
    assert not pbx.channels and bridge not in pbx.bridges


def test_transfer_needs_a_bridged_call(pbx: Pbx, control: CallControl) -> None:
    control.configure(switch=False)
    cid = pbx.dialplan_call("PJSIP/1000", "7000", ["mine"])
    pbx.idle()
    with pytest.raises(CallStateError):
        control.transfer(cid, "1006")


def _consult(pbx: Pbx, control: CallControl) -> tuple:
    agent, peer, bridge = answered_call(pbx, control)
    consult = control.consult(ControlledCall(agent, agent, peer, bridge), "1006",
                              wait_for="established", timeout=5)
    pbx.idle()
    return agent, peer, bridge, consult


def test_consult_holds_the_call_and_talks_to_the_destination(pbx: Pbx,
                                                             control: CallControl) -> None:
    agent, peer, bridge, consult = _consult(pbx, control)
    assert isinstance(consult, Consultation)
    assert pbx.bridges[bridge] == [peer]
    assert sorted(pbx.bridges[consult.bridge_id]) == sorted([agent, consult.peer_channel_id])
    assert f"POST /channels/{peer}/hold" in pbx.paths("POST")
    assert pbx.model.held == [(agent, True)]


def test_complete_transfer_joins_destination_with_the_held_party(
        pbx: Pbx, control: CallControl) -> None:
    agent, peer, bridge, consult = _consult(pbx, control)
    result = control.complete_transfer(consult.call, consult)
    pbx.idle()
    dest = consult.peer_channel_id
    assert sorted(pbx.bridges[bridge]) == sorted([peer, dest])
    assert agent not in pbx.channels
    assert consult.bridge_id not in pbx.bridges
    assert f"DELETE /channels/{peer}/hold" in pbx.paths("DELETE")
    assert result.bridge_id == bridge and set(result.channel_ids) == {peer, dest}
    with pytest.raises(CallStateError):
        control.complete_transfer(consult.call, consult)


def test_cancel_transfer_returns_the_agent_and_retrieves(pbx: Pbx,
                                                         control: CallControl) -> None:
    agent, peer, bridge, consult = _consult(pbx, control)
    result = control.cancel_transfer(consult.call, consult)
    pbx.idle()
    assert sorted(pbx.bridges[bridge]) == sorted([agent, peer])
    assert consult.peer_channel_id not in pbx.channels
    assert consult.bridge_id not in pbx.bridges
    assert f"DELETE /channels/{peer}/hold" in pbx.paths("DELETE")
    assert pbx.model.held[-1] == (agent, False)
    assert result.peer_channel_id == peer


def test_failed_consult_puts_the_agent_back_with_the_held_call(pbx: Pbx,
                                                              control: CallControl) -> None:
    agent, peer, bridge = answered_call(pbx, control)
    pbx.behaviour["PJSIP/1006"] = "noanswer"
    with pytest.raises(CallFailedError) as info:
        control.consult(agent, "1006", wait_for="established", timeout=5)
    assert info.value.dialstatus == "NOANSWER"
    pbx.idle()
    assert sorted(pbx.bridges[bridge]) == sorted([agent, peer])
    assert len(pbx.bridges) == 1
    control.retrieve(agent)
    assert f"DELETE /channels/{peer}/hold" in pbx.paths("DELETE")


def test_agent_hanging_up_during_consultation_completes_the_transfer(
        pbx: Pbx, control: CallControl) -> None:
    agent, peer, bridge, consult = _consult(pbx, control)
    pbx.destroy(agent)
    pbx.idle()
    assert sorted(pbx.bridges[bridge]) == sorted([peer, consult.peer_channel_id])
    assert consult.bridge_id not in pbx.bridges


def test_conference_with_a_consultation_puts_three_parties_in_one_bridge(
        pbx: Pbx, control: CallControl) -> None:
    agent, peer, bridge, consult = _consult(pbx, control)
    conf = control.conference(consult.call, consult)
    pbx.idle()
    assert sorted(pbx.bridges[bridge]) == sorted([agent, peer, consult.peer_channel_id])
    assert consult.bridge_id not in pbx.bridges
    assert set(conf.channel_ids) == {agent, peer, consult.peer_channel_id}
    assert f"DELETE /channels/{peer}/hold" in pbx.paths("DELETE")
    # one party leaving does not end a conference of three
    pbx.destroy(peer)
    pbx.idle()
    assert sorted(pbx.bridges[bridge]) == sorted([agent, consult.peer_channel_id])


def test_conference_dials_new_parties_into_the_bridge(pbx: Pbx, control: CallControl) -> None:
    agent, _peer, bridge = answered_call(pbx, control)
    conf = control.conference(agent, "1006", "1008", timeout=5)
    pbx.idle()
    assert len(pbx.bridges[bridge]) == 4
    assert len(conf.channel_ids) == 4


def test_conference_reports_a_party_that_fails(pbx: Pbx, control: CallControl) -> None:
    agent, peer, bridge = answered_call(pbx, control)
    pbx.behaviour["PJSIP/1008"] = "busy"
    with pytest.raises(CallFailedError):
        control.conference(agent, "1006", "1008", timeout=5)
    pbx.idle()
    assert len(pbx.bridges[bridge]) == 3
    assert agent in pbx.channels and peer in pbx.channels


def test_conference_merges_another_controlled_call(pbx: Pbx, control: CallControl) -> None:
    agent, peer, bridge = answered_call(pbx, control)
    other = control.originate("PJSIP/1006", "1008", wait_for="established", timeout=5)
    pbx.idle()
    control.conference(agent, other)
    pbx.idle()
    assert sorted(pbx.bridges[bridge]) == sorted(
        [agent, peer, other.channel_id, other.peer_channel_id])
    assert other.bridge_id not in pbx.bridges
    assert _bridge_of(pbx, other.channel_id) == bridge


# -- a phone's own transfer on a controlled call (REFER -> ChannelTransfer) ----------------------


def _refer(pbx: Pbx, source: str, **refer_to: object) -> None:
    """Asterisk 22's ChannelTransfer: no top-level channel, the data in refer_to/referred_by."""
    pbx.emit("ChannelTransfer", refer_to=refer_to,
             referred_by={"source_channel": pbx.chan(source)})


def test_controlled_channels_hand_their_refer_to_the_application(
        pbx: Pbx, control: CallControl) -> None:
    agent, peer, _ = answered_call(pbx, control)
    for cid in (agent, peer):
        assert any(r.params == {"variable": "PJSIP_TRANSFER_HANDLING()", "value": "ari-only"}
                   for r in pbx.requests("POST", f"/channels/{cid}/variable")), cid


def test_a_phone_blind_transfer_is_carried_out_in_the_sdk_bridge(
        pbx: Pbx, control: CallControl) -> None:
    agent, peer, bridge = answered_call(pbx, control)
    _refer(pbx, agent, requested_destination={"destination": "1006"})
    _refer(pbx, agent, requested_destination={"destination": "1006"})  # published twice
    pbx.idle()
    dest = [r.params["channelId"] for r in pbx.originates()
            if r.params["endpoint"] == "PJSIP/1006"]
    assert len(dest) == 1, "one REFER, one call to the target"
    req = next(r for r in pbx.originates() if r.params["channelId"] == dest[0])
    assert req.params["originator"] == peer
    assert sorted(pbx.bridges[bridge]) == sorted([peer, dest[0]])
    assert agent not in pbx.channels
    progress = pbx.requests("POST", f"/channels/{agent}/transfer_progress")
    assert [r.params for r in progress] == [{"states": "channel_answered"}]


def test_a_phone_blind_transfer_to_a_busy_target_tells_the_phone(
        pbx: Pbx, control: CallControl) -> None:
    agent, peer, _ = answered_call(pbx, control)
    pbx.behaviour["PJSIP/1006"] = "busy"
    _refer(pbx, agent, requested_destination={"destination": "1006"})
    pbx.idle()
    progress = pbx.requests("POST", f"/channels/{agent}/transfer_progress")
    assert [r.params for r in progress] == [{"states": "channel_declined"}]
    assert agent not in pbx.channels and peer not in pbx.channels


def test_a_refer_outside_an_sdk_bridge_is_declined(pbx: Pbx, control: CallControl) -> None:
    caller = pbx.dialplan_call("PJSIP/1000", "1002", ["other"])
    pbx.idle()
    _refer(pbx, caller, requested_destination={"destination": "1006"})
    pbx.idle()
    progress = pbx.requests("POST", f"/channels/{caller}/transfer_progress")
    assert [r.params for r in progress] == [{"states": "channel_declined"}]
    assert not [r for r in pbx.originates() if r.params["endpoint"] == "PJSIP/1006"]


def test_a_phone_attended_transfer_joins_the_two_other_parties(
        pbx: Pbx, control: CallControl) -> None:
    first, held, bridge1 = answered_call(pbx, control)
    second = control.originate("PJSIP/1000", "1006", wait_for="established", timeout=5)
    pbx.idle()
    assert second.peer_channel_id and second.bridge_id
    # REFER with Replaces on the second call, naming the first
    _refer(pbx, second.channel_id, requested_destination={"protocol_id": "abc"},
           destination_channel=pbx.chan(first), bridge=pbx.bridge_json(bridge1))
    pbx.idle()
    assert sorted(pbx.bridges[bridge1]) == sorted([held, second.peer_channel_id])
    assert second.bridge_id not in pbx.bridges
    assert first not in pbx.channels and second.channel_id not in pbx.channels
    progress = pbx.requests("POST", f"/channels/{second.channel_id}/transfer_progress")
    assert [r.params for r in progress] == [{"states": "channel_answered"}]
