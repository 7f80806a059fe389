"""The status codes and messages the SDK's error classes are built on, confirmed on the real
Asterisk 22 of the lab (issue 10, class 9), and what the SDK makes of them."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Dict

import pytest

from asterisk_cti import CtiConfig
from asterisk_cti.ari.resources import Ari
from asterisk_cti.ari.rest import AriRest
from asterisk_cti.control.calls import CallFailedError
from asterisk_cti.errors import (
    AuthenticationError,
    ChannelStateError,
    ForbiddenError,
    NotFoundError,
    NotInStasisError,
    ServerError,
    UnknownSourceError,
)

from .conftest import CtiFactory, LabCti
from .lab import AriConfig, Lab, Phone


def rest_as(ari: AriConfig, user: str = "", password: str = "") -> AriRest:
    return AriRest(CtiConfig(url=ari.url, username=user or ari.user,
                             password=password or ari.password, request_timeout=5.0))


def _wait_in_stasis(cti: LabCti, cid: str, timeout: float = 10.0) -> None:
    """Wait until a channel from POST /channels/create has entered the application.

    Asterisk answers the create before the channel is in Stasis: a thread of its own runs
    the Stasis application on it afterwards (res/ari/resource_channels.c,
    ``ari_channel_thread``), and until then every channel operation is 409 "Channel not in
    Stasis application". No event tells when (StasisStart waits for the dial), so this asks
    with ``POST /channels/{id}/variable``, which needs the channel in Stasis and checks no
    channel state: 409 "not in Stasis" until it is in, any other error fails the test."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()  # never set: a bounded pause between two questions
    while True:
        try:
            cti.rest.post("channels", cid, "variable",
                          params={"variable": "CTI_TEST_IN_STASIS", "value": "1"})
            return
        except NotInStasisError as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"{cid} not in Stasis {timeout} s after its create") from exc
        pause.wait(0.02)


def test_412_channel_in_invalid_state(cti: LabCti) -> None:
    """A channel created in the application (POST /channels/create) is Down: Asterisk 22
    refuses hold, mute... with 412 "Channel in invalid state" (once the channel is in the
    application: before, 409 "not in Stasis")."""
    cid = f"it-412-{uuid.uuid4()}"
    cti.rest.post("channels", "create", params={"endpoint": "PJSIP/1002", "app": cti.app,
                                                "channelId": cid})
    try:
        _wait_in_stasis(cti, cid)
        # straight over REST: the SDK saw only ChannelCreated (no StasisStart before a created
        # channel is dialled), so its own pre-check would refuse before asking Asterisk
        for method, op, params in (("POST", "mute", None), ("POST", "hold", None),
                                   ("DELETE", "hold", None), ("POST", "dtmf", {"dtmf": "1"}),
                                   ("POST", "answer", None)):
            with pytest.raises(ChannelStateError) as info:
                cti.rest.request(method, f"/channels/{cid}/{op}", params=params)
            assert (info.value.status, info.value.message) == (412, "Channel in invalid state")
    finally:
        cti.rest.delete("channels", cid)


def test_403_read_only_user_is_forbidden_not_a_bad_password(lab: Lab,
                                                            ari_config: AriConfig) -> None:
    ro = rest_as(ari_config, user=f"{ari_config.user}-readonly")
    try:
        assert isinstance(ro.get("asterisk", "info"), dict)  # GET is allowed
        with pytest.raises(ForbiddenError) as info:
            ro.post("channels", "nobody", "hold")
        assert (info.value.status, info.value.message) == (403, "Write access denied")
        assert "password" not in str(info.value).lower()
    finally:
        ro.close()
    bad = rest_as(ari_config, password="wrong-password")
    try:
        with pytest.raises(AuthenticationError) as auth:
            bad.get("asterisk", "info")
        assert type(auth.value) is AuthenticationError and auth.value.status == 401
    finally:
        bad.close()


def test_originate_to_an_unknown_endpoint(cti: LabCti) -> None:
    with pytest.raises(ServerError) as raw:
        cti.rest.post("channels", params={"endpoint": "PJSIP/9999", "app": cti.app})
    assert (raw.value.status, raw.value.message) == (500, "Allocation failed")
    with pytest.raises(CallFailedError) as info:
        cti.control.originate("PJSIP/9999", "1002", timeout=5)
    assert info.value.dialstatus == "CHANUNAVAIL"


def test_bridge_add_remove_of_a_gone_channel_is_not_found(cti: LabCti) -> None:
    bid = f"it-br-{uuid.uuid4()}"
    cti.rest.post("bridges", params={"type": "mixing", "bridgeId": bid})
    try:
        for op in ("addChannel", "removeChannel"):
            with pytest.raises(NotFoundError) as info:
                cti.rest.post("bridges", bid, op, params={"channel": "gone-channel"})
            assert (info.value.status, info.value.message) == (400, "Channel not found")
    finally:
        cti.rest.delete("bridges", bid)


def test_unknown_event_source_stops_asterisk_at_the_first(cti: LabCti) -> None:
    rest, app = cti.rest, cti.app
    Ari(rest).applications.unsubscribe(app, ["endpoint:PJSIP/1000", "endpoint:PJSIP/1006"])
    with pytest.raises(UnknownSourceError) as info:
        Ari(rest).applications.subscribe(
            app, ["endpoint:PJSIP/1000", "endpoint:1000", "endpoint:PJSIP/1006"])
    assert (info.value.status, info.value.message) == (422, "Event source does not exist")
    held = set(Ari(rest).applications.get(app)["endpoint_ids"])
    assert "PJSIP/1000" in held and "PJSIP/1006" not in held  # stopped at the bad one
    Ari(rest).applications.subscribe(app, ["endpoint:PJSIP/1006"])


def test_monitor_of_an_unknown_source_raises_and_keeps_the_rest(cti_factory: CtiFactory,
                                                                phones: Dict[str, Phone]) -> None:
    cti = cti_factory(monitor=("PJSIP/1000",))
    with pytest.raises(UnknownSourceError) as info:
        cti.monitor("1002", "PJSIP/1006")
    assert info.value.sources == ("1002",)
    assert "'1002' -> 'PJSIP/1002'" in str(info.value)
    held = set(Ari(cti.rest).applications.get(cti.app)["endpoint_ids"])
    assert {"PJSIP/1000", "PJSIP/1006"} <= held
    assert cti.monitored == ("PJSIP/1000", "PJSIP/1006")
    assert cti.connected


def test_start_with_an_unknown_source_fails_fast(cti_factory: CtiFactory) -> None:
    cti = cti_factory(monitor=("PJSIP/1000", "PJSIP/9999"), start=False)
    start = time.monotonic()
    with pytest.raises(UnknownSourceError) as info:
        cti.start(timeout=15)
    assert time.monotonic() - start < 10
    assert info.value.sources == ("PJSIP/9999",)
    assert not cti.running


def test_control_on_unknown_channels(cti: LabCti) -> None:
    with pytest.raises(NotFoundError):
        cti.control.retrieve("no-such-channel")
    with pytest.raises(NotFoundError):
        cti.control.hangup("no-such-channel")
    # a DELETE of a gone channel
    with pytest.raises(NotFoundError) as info:
        cti.rest.delete("channels", "no-such-channel")
    assert info.value.status == 404


def test_retrieve_of_a_call_held_from_the_desk_phone_is_prompt(
        cti_factory: CtiFactory, lab: Lab, phones: Dict[str, Phone]) -> None:
    """1000 dials 7002 (the switch bridges it with 1002), then puts it on hold from its own
    phone: retrieve() from the SDK, twice, returns promptly and the client stays usable."""
    for phone in phones.values():
        phone.set_auto_answer(True)
    cti = cti_factory(app=lab.config.app)
    start = cti.events.mark()
    phones["1000"].dial("7002")
    phones["1002"].wait_for("CALL_ESTABLISHED")
    phones["1000"].wait_for("CALL_ESTABLISHED")
    cti.events.wait_call("established", "PJSIP/1000", since=start)
    assert cti.wait_idle(5.0)
    (kai,) = cti.line("PJSIP/1000").connections
    phones["1000"].hold()
    for _ in range(2):
        began = time.monotonic()
        cti.control.retrieve(kai)
        assert time.monotonic() - began < 3.0
    assert cti.control.in_stasis(kai.connection_id)
    cti.control.hangup(kai)
    phones["1000"].wait_for("CALL_CLOSED")
    phones["1002"].wait_for("CALL_CLOSED")
