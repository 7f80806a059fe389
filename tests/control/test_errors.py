"""Every error class an operation can raise, and URL encoding of hostile ids."""

from __future__ import annotations

import re
from typing import Any, Tuple

import pytest
import requests

from asterisk_cti.control.calls import CallControl
from asterisk_cti.errors import (
    AriHttpError,
    AuthenticationError,
    ChannelStateError,
    ConflictError,
    ForbiddenError,
    InvalidRequestError,
    NotFoundError,
    NotInStasisError,
    ServerError,
    TransportError,
)
from asterisk_cti.testing.fake_ari import RecordedRequest

from .conftest import Pbx


@pytest.mark.parametrize(("status", "message", "cls"), [
    (400, "Invalid direction", InvalidRequestError),
    (422, "Channel in invalid state", InvalidRequestError),
    (401, "Authentication required", AuthenticationError),
    (403, "Write access denied", ForbiddenError),
    (412, "Channel in invalid state", ChannelStateError),
    (404, "Channel not found", NotFoundError),
    (409, "Channel not in Stasis application", NotInStasisError),
    (422, "Channel not in Stasis application", NotInStasisError),
    (409, "Channel is busy", ConflictError),
    (500, "Internal Server Error", ServerError),
    (503, "Asterisk not booted", ServerError),
])
@pytest.mark.parametrize("op", ["mute", "hold", "hangup", "redirect", "dtmf"])
def test_http_errors_map_to_typed_exceptions(pbx: Pbx, control: CallControl, op: str,
                                             status: int, message: str, cls: type) -> None:
    pbx.fake.respond("POST", r"/channels/.+", status, {"message": message})
    pbx.fake.respond("DELETE", r"/channels/.+", status, {"message": message})
    call = {
        "mute": lambda: control.mute("c1"), "hold": lambda: control.hold("c1"),
        "hangup": lambda: control.hangup("c1"),
        "redirect": lambda: control.redirect("c1", "PJSIP/1006"),
        "dtmf": lambda: control.send_dtmf("c1", "5"),
    }[op]
    with pytest.raises(cls) as info:
        call()
    err = info.value
    assert isinstance(err, AriHttpError)
    assert type(err) is cls
    assert (err.status, err.message) == (status, message)
    if cls is NotInStasisError:
        assert "Stasis(<app>,dial)" in str(err)


def test_not_in_stasis_on_addchannel_is_mapped(pbx: Pbx, control: CallControl) -> None:
    control.configure(switch=False)
    caller = pbx.dialplan_call("PJSIP/1000", "7000", ["mine"])
    pbx.idle()
    pbx.fake.respond("POST", r"/bridges/.+/addChannel", 422,
                     {"message": "Channel not in Stasis application"})
    with pytest.raises(NotInStasisError):
        control._engine.add_to_bridge("b1", [caller])


@pytest.mark.parametrize("exc", [requests.ConnectionError("refused"),
                                 requests.Timeout("slow")])
@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_connection_errors_and_timeouts_raise_transport_error(
        pbx: Pbx, control: CallControl, exc: Exception, method: str) -> None:
    def boom(q: RecordedRequest, m: re.Match[str]) -> Tuple[int, Any]:
        raise exc
    pbx.fake.route(method, r"/channels/.+")(boom)
    with pytest.raises(TransportError):
        if method == "POST":
            control.mute("c1")
        else:
            control.hangup("c1")


def test_originate_transport_error(pbx: Pbx, control: CallControl) -> None:
    def boom(q: RecordedRequest, m: re.Match[str]) -> Tuple[int, Any]:
        raise requests.ConnectionError("reset")
    pbx.fake.route("POST", r"/channels")(boom)
    with pytest.raises(TransportError):
        control.originate("PJSIP/1000", "1002")
    assert control._state.pending_plans() == 0


HOSTILE = [
    ("../../asterisk/info", "..%2F..%2Fasterisk%2Finfo"),
    ("a b", "a%20b"),
    ("x?reason=busy", "x%3Freason%3Dbusy"),
    ("x#frag", "x%23frag"),
    ("ch\u00e9\u00efn\u2603", "ch%C3%A9%C3%AFn%E2%98%83"),
    ("a/b%2F", "a%2Fb%252F"),
]


@pytest.mark.parametrize(("raw", "encoded"), HOSTILE)
@pytest.mark.parametrize("op", ["hold", "mute", "hangup", "answer", "dtmf", "redirect"])
def test_hostile_ids_are_encoded_as_one_segment(pbx: Pbx, control: CallControl, op: str,
                                                raw: str, encoded: str) -> None:
    call = {
        "hold": lambda: control.hold(raw), "mute": lambda: control.mute(raw),
        "hangup": lambda: control.hangup(raw), "answer": lambda: control.answer(raw),
        "dtmf": lambda: control.send_dtmf(raw, "1"),
        "redirect": lambda: control.redirect(raw, "PJSIP/1006"),
    }[op]
    with pytest.raises(NotFoundError):
        call()
    sent = pbx.requests()[-1]
    suffix = {"hangup": ""}.get(op, "/" + {"dtmf": "dtmf"}.get(op, op))
    assert sent.path == f"/channels/{encoded}{suffix}"
    assert "?" not in sent.path and "#" not in sent.path
    assert sent.segments[1] == raw
    if op == "hangup":
        assert sent.params == {"reason": "normal"}


@pytest.mark.parametrize("raw", [".", ".."])
def test_dot_ids_are_refused_before_sending(pbx: Pbx, control: CallControl, raw: str) -> None:
    # requests un-escapes %2E back to "." (an unreserved character), so "/channels/%2E%2E"
    # would reach the server as "/channels/.."; such an id is refused instead.
    for call in (lambda: control.hold(raw), lambda: control.hangup(raw),
                 lambda: control.mute(raw)):
        with pytest.raises(ValueError):
            call()
    assert not pbx.requests()
