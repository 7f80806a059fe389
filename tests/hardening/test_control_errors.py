"""Errors tell the truth (issue 10, class 9), as Asterisk 22.10.1 answers them
(``res/ari/resource_channels.c``, ``resource_bridges.c``, ``res_ari.c``)."""

from __future__ import annotations

import re
from typing import Any, Tuple

import pytest

from asterisk_cti.control.calls import CallControl, CallFailedError
from asterisk_cti.errors import (
    AuthenticationError,
    ChannelStateError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    NotInStasisError,
    ServerError,
    http_error,
)
from asterisk_cti.testing.fake_ari import RecordedRequest
from tests.control.conftest import Pbx, answered_call

ALLOC = {"error": "Allocation failed"}  # ast_ari_response_alloc_failed()'s body


# -- 412 / 403 ---------------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["answer", "hold", "mute", "unmute", "dtmf", "redirect"])
def test_412_channel_in_invalid_state_has_its_own_class(pbx: Pbx, control: CallControl,
                                                        op: str) -> None:
    pbx.fake.respond("POST", r"/channels/[^/]+/\w+", 412, {"message": "Channel in invalid state"})
    pbx.fake.respond("DELETE", r"/channels/[^/]+/\w+", 412,
                     {"message": "Channel in invalid state"})
    fn = {"answer": lambda: control.answer("c1", timeout=1), "hold": lambda: control.hold("c1"),
          "mute": lambda: control.mute("c1"), "unmute": lambda: control.unmute("c1"),
          "dtmf": lambda: control.send_dtmf("c1", "1"),
          "redirect": lambda: control.redirect("c1", "PJSIP/1006")}[op]
    with pytest.raises(ChannelStateError) as info:
        fn()
    assert type(info.value) is ChannelStateError
    assert isinstance(info.value, ConflictError)
    assert (info.value.status, info.value.message) == (412, "Channel in invalid state")


@pytest.mark.parametrize("message", ["Write access denied", "Access denied by ACL"])
def test_403_is_forbidden_not_a_refused_password(message: str) -> None:
    err = http_error("POST", "/channels/c1/hold", 403, message)
    assert type(err) is ForbiddenError
    assert isinstance(err, AuthenticationError)  # existing handlers still catch it
    assert "password" not in str(err).lower()
    assert message in str(err)
    assert type(http_error("GET", "/channels", 401, "Authentication required")) \
        is AuthenticationError


# -- 500 "Allocation failed" on originate -------------------------------------------------------

@pytest.mark.parametrize("context", [None, "from-internal"])
def test_originate_to_an_unavailable_endpoint_is_a_failed_call(pbx: Pbx, control: CallControl,
                                                               context: Any) -> None:
    pbx.fake.respond("POST", r"/channels", 500, ALLOC)
    with pytest.raises(CallFailedError) as info:
        control.originate("PJSIP/9999", "1002", context=context, timeout=2)
    err = info.value
    assert err.dialstatus == "CHANUNAVAIL"
    assert "PJSIP/9999" in str(err)
    assert isinstance(err.__cause__, ServerError) and err.__cause__.status == 500
    assert control._state.pending_plans() == 0


def test_transfer_to_an_unavailable_destination_is_a_failed_call(pbx: Pbx,
                                                                 control: CallControl) -> None:
    agent, _, _ = answered_call(pbx, control)
    previous = next(h for m, p, h in pbx.fake._overrides
                    if m == "POST" and p.pattern == r"/channels\Z")

    def originate(q: RecordedRequest, m: re.Match[str]) -> Tuple[int, Any]:
        if q.params.get("endpoint") == "PJSIP/9999":
            return 500, ALLOC
        return previous(q, m)
    pbx.fake.route("POST", r"/channels")(originate)
    with pytest.raises(CallFailedError) as info:
        control.transfer(agent, "9999", timeout=2)
    assert info.value.dialstatus == "CHANUNAVAIL"


def test_other_server_errors_stay_server_errors(pbx: Pbx, control: CallControl) -> None:
    pbx.fake.respond("POST", r"/channels", 500, {"message": "Internal Server Error"})
    with pytest.raises(ServerError):
        control.originate("PJSIP/1000", "1002", timeout=2)


# -- 400 "Channel not found" from a bridge -------------------------------------------------------

@pytest.mark.parametrize("op", ["addChannel", "removeChannel"])
def test_bridge_400_channel_not_found_is_not_found(pbx: Pbx, control: CallControl,
                                                   op: str) -> None:
    pbx.fake.respond("POST", rf"/bridges/[^/]+/{op}", 400, {"message": "Channel not found"})
    engine = control._engine
    if op == "addChannel":
        with pytest.raises(NotFoundError) as info:
            engine.add_to_bridge("b1", ["gone"])
        assert info.value.status == 400
    else:
        # best effort: a gone channel is quietly "not removed", not a warning
        assert engine.remove_from_bridge("b1", "gone") is False
    assert type(http_error("POST", "/bridges/b1/addChannel", 400,
                           "Missing parameter channel")) is not NotFoundError


# -- NotInStasisError says where the channel is -----------------------------------------------

def test_not_in_stasis_names_the_other_application(pbx: Pbx, control: CallControl) -> None:
    cid = pbx.new_channel("PJSIP/1000", state="Up")
    pbx.channels[cid]["dialplan"].update(app_name="Stasis", app_data="otherapp,dial")
    pbx.emit("ChannelCreated", channel=pbx.chan(cid))
    pbx.idle()
    with pytest.raises(NotInStasisError) as info:
        control.hold(cid)
    err = info.value
    assert err.other_app == "otherapp"
    assert "in another application 'otherapp'" in str(err)
    assert "Stasis(<app>,dial)" not in str(err)
    assert not pbx.requests("POST")  # refused before any request


def test_not_in_stasis_outside_any_application_keeps_the_routing_hint(
        pbx: Pbx, control: CallControl) -> None:
    cid = pbx.observed_channel("PJSIP/1000")
    pbx.idle()
    with pytest.raises(NotInStasisError) as info:
        control.mute(cid)
    assert info.value.other_app is None
    assert "outside application 'cti'" in str(info.value)
    assert "Stasis(<app>,dial)" in str(info.value)
