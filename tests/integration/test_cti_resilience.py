"""Resilience on a real Asterisk 22: the event websocket cut while a call is up (by the client,
and by the kernel from outside, as a server or network failure looks), and Asterisk restarted
while a call is up. The client must reconnect, resubscribe only what Asterisk lost, and make
its model match Asterisk again.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any, Dict, List
from urllib.parse import quote

import pytest

from asterisk_cti import ConnectionState

from .calls import establish, keep_sequences
from .conftest import LAB_LINES, LabCti
from .lab import Lab, Phone

K, P, L = "PJSIP/1000", "PJSIP/1002", "PJSIP/1006"


def _application(lab: Lab, app: str) -> Dict[str, Any]:
    response = lab.ari("GET", f"/applications/{quote(app)}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _assert_subscribed(lab: Lab, app: str) -> Dict[str, Any]:
    """Each line subscribed exactly once, every bridge, and the server-side filter."""
    body = _application(lab, app)
    assert sorted(body["endpoint_ids"]) == sorted(LAB_LINES), body
    assert "__AST_BRIDGE_ALL_TOPIC" in body["bridge_ids"] or "" in body["bridge_ids"], body
    disallowed = {e["type"] for e in body.get("events_disallowed", [])}
    # (ChannelDialplan passes it: the call model reads app Queue's, the transport drops the
    # others unparsed; call data comes from channelvars, so ChannelVarset stays away)
    assert {"ChannelDtmfReceived", "ChannelVarset"} <= disallowed, body
    assert not {"ChannelCreated", "ChannelDialplan"} & disallowed, body
    return body


def _assert_refcount_one(lab: Lab, app: str) -> None:
    """One unsubscribe removes each endpoint: the client never subscribed one twice
    (Asterisk reference-counts subscriptions)."""
    for line in LAB_LINES:
        lab.ari("DELETE", f"/applications/{quote(app)}/subscription",
                params={"eventSource": f"endpoint:{line}"})
    left = _application(lab, app)["endpoint_ids"]
    assert left == [], f"still subscribed after one unsubscribe each: {left}"


def _call_up(cti: LabCti, phones: Dict[str, Phone]) -> Dict[str, Any]:
    start = cti.events.mark()
    establish(phones["1000"], phones["1002"])
    cti.events.wait_call("established", K, since=start)
    cti.events.wait_call("established", P, since=start)
    assert cti.wait_idle(5.0)
    return {line: cti.line(line).connections[0] for line in (K, P)}


def _assert_model_matches(cti: LabCti, before: Dict[str, Any]) -> None:
    for line, old in before.items():
        (now,) = cti.line(line).connections
        assert now.connection_id == old.connection_id and now.call_id == old.call_id
        assert now.state is ConnectionState.CONNECTED, now


def _after_reconnect(cti: LabCti, phones: Dict[str, Phone], mark: int) -> None:
    """Events keep arriving: hold from the phone, then hang up."""
    phones["1000"].hold()
    cti.events.wait_call("held", K, since=mark)
    phones["1000"].hangup()
    phones["1002"].wait_for("CALL_CLOSED")
    for line in (K, P):
        cleared = cti.events.wait_call("connection_cleared", line, since=mark)
        assert cleared.reason.value == "normal"
        cti.events.wait_call("call_cleared", line, since=mark)


def test_reconnect_after_the_client_drops_the_websocket(
        cti: LabCti, lab: Lab, phones: Dict[str, Phone]) -> None:
    _assert_subscribed(lab, cti.app)
    before = _call_up(cti, phones)
    mark = cti.events.mark()
    cti._reactor.reconnect("integration test: drop the websocket")
    cti.events.wait_connection("disconnected", since=mark)
    connected = cti.events.wait_connection("connected", since=mark)
    assert not connected.restarted
    resynced = cti.events.wait_connection("resynced", since=mark)
    assert resynced.reason == "connected" and resynced.channels == 2
    assert resynced.report is not None and not resynced.report.removed
    _assert_subscribed(lab, cti.app)
    _assert_model_matches(cti, before)
    _after_reconnect(cti, phones, mark)
    keep_sequences("websocket dropped by the client during a call", cti.events, LAB_LINES, mark)
    _assert_refcount_one(lab, cti.app)


def _kill_websocket(lab: Lab) -> List[str]:
    """Destroy the established TCP connections to Asterisk's HTTP port from outside the client
    (``ss -K``: the kernel resets them, as a dying server or network would)."""
    port = lab.config.http_port
    result = subprocess.run(
        ["ss", "-K", "-tn", "state", "established", f"( dport = :{port} )"],
        capture_output=True, text=True, timeout=10, check=False)
    return [line for line in result.stdout.splitlines()[1:] if line.strip()]


def test_reconnect_after_the_connection_is_reset_from_outside(
        cti: LabCti, lab: Lab, phones: Dict[str, Phone]) -> None:
    if shutil.which("ss") is None:
        pytest.fail("ss (iproute2) is needed to reset the connection")
    before = _call_up(cti, phones)
    mark = cti.events.mark()
    killed = _kill_websocket(lab)
    assert killed, "ss -K destroyed no connection (kernel without INET_DIAG_DESTROY?)"
    disconnected = cti.events.wait_connection("disconnected", since=mark)
    assert disconnected.reason
    cti.events.wait_connection("connected", since=mark)
    cti.events.wait_connection("resynced", since=mark)
    _assert_subscribed(lab, cti.app)
    _assert_model_matches(cti, before)
    _after_reconnect(cti, phones, mark)
    _assert_refcount_one(lab, cti.app)


def test_asterisk_restart_during_a_call(cti: LabCti, lab: Lab,
                                        phones: Dict[str, Phone]) -> None:
    before = _call_up(cti, phones)
    mark = cti.events.mark()
    lab.restart_asterisk()
    connected = cti.events.wait_connection("connected", timeout=30.0, since=mark,
                                           where=lambda e: e.restarted)
    assert connected.restarted
    cti.events.wait_connection("resynced", since=mark)
    # the call died with the old Asterisk: both connections are reported cleared
    for line, old in before.items():
        cleared = cti.events.wait_call(
            "connection_cleared", line, since=mark,
            where=lambda e, cid=old.connection_id: e.connection_id == cid)
        assert cleared.reason.value in ("resync", "normal"), cleared
        cti.events.wait_call("call_cleared", line, since=mark)
    assert cti.wait_idle(5.0)
    assert all(cti.line(line).is_idle for line in LAB_LINES)
    # subscriptions and the filter were rebuilt, without the app doing anything
    _assert_subscribed(lab, cti.app)
    for phone in phones.values():
        phone.wait_for("idle", 10)
    # and the new Asterisk's events arrive
    after = cti.events.mark()
    establish(phones["1000"], phones["1002"])
    cti.events.wait_call("established", P, since=after)
    phones["1000"].hangup()
    phones["1002"].wait_for("CALL_CLOSED")
    cti.events.wait_call("call_cleared", K, since=after)
    keep_sequences("Asterisk restarted during a call", cti.events, LAB_LINES, mark)
    _assert_refcount_one(lab, cti.app)
