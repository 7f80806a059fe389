"""The switch: calls the dialplan sends in with Stasis(cti,dial[,destination])."""

from __future__ import annotations

from typing import Optional

from asterisk_cti.control.calls import CallControl

from .conftest import Pbx


def _callee(pbx: Pbx, caller: str) -> Optional[str]:
    for r in pbx.originates():
        if r.params.get("originator") == caller:
            return r.params["channelId"]
    return None


def test_switch_dials_rings_back_answers_and_bridges(pbx: Pbx, control: CallControl) -> None:
    caller = pbx.dialplan_call("PJSIP/1000", "7002", ["dial", "1002"])
    pbx.idle()
    callee = _callee(pbx, caller)
    assert callee is not None
    req = next(r for r in pbx.originates() if r.params["channelId"] == callee)
    assert req.params["endpoint"] == "PJSIP/1002"
    assert req.params["app"] == "cti"
    assert req.params["timeout"] == "5"
    assert req.params["callerId"] == '"" <1000>'
    posts = pbx.paths("POST")
    assert posts.index(f"POST /channels/{caller}/ring") < posts.index("POST /channels")
    assert f"POST /channels/{caller}/answer" in posts
    (bridge,) = pbx.bridges
    assert sorted(pbx.bridges[bridge]) == sorted([caller, callee])
    assert pbx.channels[caller]["state"] == "Up"
    # from now on the call is fully controlled
    assert control.in_stasis(caller) and control.in_stasis(callee)
    control.hold(callee)
    assert f"POST /channels/{caller}/hold" in pbx.paths("POST")


def test_switch_default_destination_is_the_dialled_extension(pbx: Pbx,
                                                             control: CallControl) -> None:
    caller = pbx.dialplan_call("PJSIP/1000", "1006", ["dial"])
    pbx.idle()
    callee = _callee(pbx, caller)
    assert next(r for r in pbx.originates()
                if r.params["channelId"] == callee).params["endpoint"] == "PJSIP/1006"


def test_switch_busy_hangs_up_the_caller_with_busy(pbx: Pbx, control: CallControl) -> None:
    pbx.behaviour["PJSIP/1002"] = "busy"
    caller = pbx.dialplan_call("PJSIP/1000", "1002", ["dial"])
    pbx.idle()
    hangup = pbx.hangups(caller)
    assert hangup and hangup[0].params == {"reason": "busy"}
    assert not pbx.bridges and not pbx.channels


def test_switch_no_answer_hangs_up_with_no_answer(pbx: Pbx, control: CallControl) -> None:
    pbx.behaviour["PJSIP/1002"] = "noanswer"
    caller = pbx.dialplan_call("PJSIP/1000", "1002", ["dial"])
    pbx.idle()
    assert pbx.hangups(caller)[0].params == {"reason": "no_answer"}


def test_switch_can_continue_the_caller_in_the_dialplan(pbx: Pbx, control: CallControl) -> None:
    control.configure(on_failure="continue")
    pbx.behaviour["PJSIP/1002"] = "busy"
    caller = pbx.dialplan_call("PJSIP/1000", "1002", ["dial"])
    pbx.idle()
    var = [r for r in pbx.requests("POST", f"/channels/{caller}/variable")
           if r.params.get("variable") == "DIALSTATUS"]
    assert var[0].params == {"variable": "DIALSTATUS", "value": "BUSY"}
    assert f"POST /channels/{caller}/continue" in pbx.paths("POST")
    assert caller in pbx.channels and not control.in_stasis(caller)


def test_caller_hanging_up_while_ringing_cancels_the_callee(pbx: Pbx,
                                                           control: CallControl) -> None:
    pbx.behaviour["PJSIP/1002"] = "ring"
    caller = pbx.dialplan_call("PJSIP/1000", "1002", ["dial"])
    pbx.idle()
    callee = _callee(pbx, caller)
    assert callee in pbx.channels
    pbx.destroy(caller)
    pbx.idle()
    assert callee not in pbx.channels
    assert not pbx.bridges


def test_either_party_hanging_up_ends_the_call_and_destroys_the_bridge(
        pbx: Pbx, control: CallControl) -> None:
    caller = pbx.dialplan_call("PJSIP/1000", "1002", ["dial"])
    pbx.idle()
    callee = _callee(pbx, caller)
    (bridge,) = pbx.bridges
    pbx.destroy(callee or "")
    pbx.idle()
    assert caller not in pbx.channels
    assert not pbx.bridges
    assert f"DELETE /bridges/{bridge}" in pbx.paths("DELETE")
    assert "bridges=0" in repr(control)


def test_switch_refused_dial_hangs_up_the_caller(pbx: Pbx, control: CallControl) -> None:
    pbx.fake.respond("POST", r"/channels", 400, {"message": "Invalid endpoint"})
    caller = pbx.dialplan_call("PJSIP/1000", "1002", ["dial"])
    pbx.idle()
    assert caller not in pbx.channels


def test_switch_mapping_is_configurable_and_can_be_disabled(pbx: Pbx,
                                                           control: CallControl) -> None:
    control.configure(endpoint_for=lambda d: f"Local/{d}@agents")
    caller = pbx.dialplan_call("PJSIP/1000", "1002", ["dial"])
    pbx.idle()
    assert next(r for r in pbx.originates()
                if r.params.get("originator") == caller).params["endpoint"] == "Local/1002@agents"
    control.configure(switch=False)
    other = pbx.dialplan_call("PJSIP/1006", "1002", ["dial"])
    pbx.idle()
    assert _callee(pbx, other) is None


def test_other_stasis_arguments_are_left_alone(pbx: Pbx, control: CallControl) -> None:
    caller = pbx.dialplan_call("PJSIP/1000", "7000", ["ivr"])
    pbx.idle()
    assert _callee(pbx, caller) is None
    assert control.in_stasis(caller)
