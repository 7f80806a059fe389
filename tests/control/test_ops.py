"""Single-channel operations, hold/retrieve, and the not-in-Stasis pre-check."""

from __future__ import annotations

import pytest

from asterisk_cti.control.calls import CallControl, ControlledCall
from asterisk_cti.errors import CtiTimeoutError, NotFoundError, NotInStasisError

from .conftest import Pbx, answered_call


def test_answer_sends_answer_and_waits_for_up(pbx: Pbx, control: CallControl) -> None:
    control.configure(switch=False)
    cid = pbx.dialplan_call("PJSIP/1000", "7000", ["mine"])
    pbx.idle()
    control.answer(cid)
    assert pbx.channels[cid]["state"] == "Up"
    assert f"POST /channels/{cid}/answer" in pbx.paths("POST")


def test_answer_times_out_without_state_change(pbx: Pbx, control: CallControl) -> None:
    control.configure(switch=False)
    cid = pbx.dialplan_call("PJSIP/1000", "7000", ["mine"])
    pbx.idle()
    pbx.fake.respond("POST", r"/channels/[^/]+/answer", 204)
    with pytest.raises(CtiTimeoutError):
        control.answer(cid, timeout=0.2)


def test_hangup_waits_for_channel_destroyed_and_passes_the_reason(
        pbx: Pbx, control: CallControl) -> None:
    cid = pbx.observed_channel("PJSIP/1000")
    pbx.idle()
    control.hangup(cid, reason="busy")
    assert cid not in pbx.channels
    assert pbx.requests("DELETE", "/channels/")[0].params == {"reason": "busy"}
    assert any(e["type"] == "ChannelDestroyed" for e in pbx.seen.events)


def test_hangup_of_a_gone_channel_raises_not_found(pbx: Pbx, control: CallControl) -> None:
    with pytest.raises(NotFoundError):
        control.hangup("1795665339.99")


def test_hangup_rejects_unknown_reason(pbx: Pbx, control: CallControl) -> None:
    with pytest.raises(ValueError):
        control.hangup("x", reason="because")
    assert not pbx.requests()


def test_hangup_of_the_agent_ends_the_two_party_call(pbx: Pbx, control: CallControl) -> None:
    agent, peer, bridge = answered_call(pbx, control)
    control.hangup(ControlledCall(agent, agent, peer, bridge))
    pbx.idle()
    assert not pbx.channels
    assert bridge not in pbx.bridges
    assert f"DELETE /bridges/{bridge}" in pbx.paths("DELETE")


def test_hold_plays_moh_to_the_other_party_mutes_it_and_marks_the_model(
        pbx: Pbx, control: CallControl) -> None:
    agent, peer, _ = answered_call(pbx, control)
    control.hold(agent)
    posts = pbx.paths("POST")
    assert f"POST /channels/{peer}/hold" in posts
    mute = [r for r in pbx.requests("POST", f"/channels/{peer}/mute")]
    assert mute and mute[0].params == {"direction": "in"}
    assert f"POST /channels/{agent}/hold" not in posts
    assert pbx.model.held == [(agent, True)]
    control.retrieve(agent)
    deletes = pbx.paths("DELETE")
    assert f"DELETE /channels/{peer}/hold" in deletes
    assert pbx.requests("DELETE", f"/channels/{peer}/mute")[0].params == {"direction": "in"}
    assert pbx.model.held == [(agent, True), (agent, False)]


def test_hold_twice_sends_once(pbx: Pbx, control: CallControl) -> None:
    agent, peer, _ = answered_call(pbx, control)
    control.hold(agent)
    control.hold(agent)
    assert pbx.paths("POST").count(f"POST /channels/{peer}/hold") == 1


def test_hold_with_a_moh_class_uses_moh(pbx: Pbx, control: CallControl) -> None:
    control.configure(moh_class="jazz")
    agent, peer, _ = answered_call(pbx, control)
    control.hold(agent)
    assert pbx.requests("POST", f"/channels/{peer}/moh")[0].params == {"mohClass": "jazz"}
    control.retrieve(agent)
    assert f"DELETE /channels/{peer}/moh" in pbx.paths("DELETE")


def test_hold_of_a_lone_stasis_channel_plays_moh_to_it(pbx: Pbx, control: CallControl) -> None:
    control.configure(switch=False)
    cid = pbx.dialplan_call("PJSIP/1000", "7000", ["mine"])
    pbx.idle()
    control.hold(cid)
    assert f"POST /channels/{cid}/hold" in pbx.paths("POST")
    assert not pbx.requests("POST", f"/channels/{cid}/mute")


def test_model_connection_objects_are_accepted(pbx: Pbx, control: CallControl) -> None:
    agent, peer, _ = answered_call(pbx, control)

    class Conn:
        connection_id = agent
        call_id = agent

    control.hold(Conn())
    assert f"POST /channels/{peer}/hold" in pbx.paths("POST")
    with pytest.raises(TypeError):
        control.hold(object())


@pytest.mark.parametrize("direction", ["both", "in", "out"])
def test_mute_and_unmute_pass_the_direction(pbx: Pbx, control: CallControl,
                                            direction: str) -> None:
    agent, _, _ = answered_call(pbx, control)
    control.mute(agent, direction)
    control.unmute(agent, direction)
    assert pbx.requests("POST", f"/channels/{agent}/mute")[0].params == {"direction": direction}
    assert pbx.requests("DELETE", f"/channels/{agent}/mute")[0].params == {
        "direction": direction}


def test_mute_rejects_a_bad_direction(pbx: Pbx, control: CallControl) -> None:
    with pytest.raises(ValueError):
        control.mute("x", "sideways")


def test_dtmf_goes_to_the_other_party_of_a_call(pbx: Pbx, control: CallControl) -> None:
    agent, peer, bridge = answered_call(pbx, control)
    control.send_dtmf(ControlledCall(agent, agent, peer, bridge), "12*#a")
    req = pbx.requests("POST", f"/channels/{peer}/dtmf")[0]
    assert req.params["dtmf"] == "12*#A"
    with pytest.raises(ValueError):
        control.send_dtmf(agent, "12x")


def test_redirect_sends_the_endpoint(pbx: Pbx, control: CallControl) -> None:
    agent, _, _ = answered_call(pbx, control)
    control.redirect(agent, "PJSIP/1006")
    assert pbx.requests("POST", f"/channels/{agent}/redirect")[0].params == {
        "endpoint": "PJSIP/1006"}


@pytest.mark.parametrize("op", ["answer", "hold", "retrieve", "mute", "unmute", "dtmf",
                                "redirect", "transfer"])
def test_known_observed_channel_raises_not_in_stasis_before_sending(
        pbx: Pbx, control: CallControl, op: str) -> None:
    cid = pbx.observed_channel("PJSIP/1000")
    pbx.idle()
    before = len(pbx.requests())
    calls = {
        "answer": lambda: control.answer(cid), "hold": lambda: control.hold(cid),
        "retrieve": lambda: control.retrieve(cid), "mute": lambda: control.mute(cid),
        "unmute": lambda: control.unmute(cid), "dtmf": lambda: control.send_dtmf(cid, "1"),
        "redirect": lambda: control.redirect(cid, "PJSIP/1006"),
        "transfer": lambda: control.transfer(cid, "1006"),
    }
    with pytest.raises(NotInStasisError) as info:
        calls[op]()
    assert len(pbx.requests()) == before
    assert "Stasis(<app>,dial)" in str(info.value)
    assert not control.in_stasis(cid)


def test_channel_that_left_stasis_is_known_outside(pbx: Pbx, control: CallControl) -> None:
    control.configure(switch=False)
    cid = pbx.dialplan_call("PJSIP/1000", "7000", ["mine"])
    pbx.idle()
    assert control.in_stasis(cid)
    pbx.emit("StasisEnd", channel=pbx.chan(cid))
    pbx.stasis.discard(cid)
    pbx.idle()
    with pytest.raises(NotInStasisError):
        control.hold(cid)


def test_unknown_channel_is_tried_and_asterisk_409_maps_to_not_in_stasis(
        pbx: Pbx, control: CallControl) -> None:
    cid = pbx.new_channel("PJSIP/1000", state="Up")  # no event seen: the SDK cannot know
    with pytest.raises(NotInStasisError) as info:
        control.hold(cid)
    assert info.value.status == 409
    assert f"POST /channels/{cid}/hold" in pbx.paths("POST")
    assert "route the call through it" in str(info.value)
