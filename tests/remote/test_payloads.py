"""Hostile payloads: what a desktop reads from the broker is validated whole, counted and
dropped when bad, never delivered half-built; the server's errors come back as the same
exception classes, over a fixed allow-list."""

from __future__ import annotations

import json
import math
import time
from typing import Any, Dict, List

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from asterisk_cti import (
    CallEvent,
    CallFailedError,
    CallStateError,
    Connection,
    ConnectionState,
    Direction,
    EventKind,
    EventParseError,
    Line,
    NotFoundError,
    NotInStasisError,
    Party,
    PhoneState,
    Reason,
)
from asterisk_cti.remote import RemoteClient, RemoteError, error_from_payload
from asterisk_cti.server import AccessDeniedError, BadRequestError, ServerBusyError
from asterisk_cti.server.schema import error_payload, event_payload, line_payload

from .conftest import SITE, Broker, Recorder, remote_config

SERVER_PASSWORD = "pw-server-secret"


def _conn(line: str = "PJSIP/1000", cid: str = "c1") -> Connection:
    return Connection(cid, line, "call-1", f"{line}-0001", ConnectionState.CONNECTED,
                      PhoneState.CONNECTED, Direction.INCOMING, Party("555", "Ann"),
                      Party("1000", ""), Party("555", "Ann"), False, False, 0, "", 10.0,
                      11.0, None)


def _event(line: str = "PJSIP/1000", **changes: Any) -> CallEvent:
    e = CallEvent(EventKind.ESTABLISHED, line, "call-1", "c1", ConnectionState.CONNECTED,
                  ConnectionState.ALERTING, PhoneState.CONNECTED, Direction.INCOMING,
                  Party("555", "Ann"), Party("1000", ""), Party("555", "Ann"), 0, "",
                  Reason.NORMAL, 12.5, (), False, False,
                  conference=(Party("1", "a"),), client_originated=True)
    return e._replace(**changes)


def test_json_forms_read_back_whole() -> None:
    event = _event(transferring=Party("9", "x"))
    line = Line("PJSIP/1000", "online", (_conn(),))
    body = json.loads(json.dumps(event_payload(event, line)))
    assert CallEvent.from_dict(body) == event
    assert Line.from_dict(body["snapshot"]) == line
    assert Line.from_dict(json.loads(json.dumps(line_payload(line)))) == line


@pytest.mark.parametrize("change", [
    {"kind": "explode"}, {"kind": None}, {"line": 7}, {"line": ""}, {"state": "dancing"},
    {"calling": {"number": 5, "name": ""}}, {"calling": ["555"]}, {"cause": "17"},
    {"cause": 2 ** 40}, {"held": "yes"}, {"timestamp": math.nan}, {"timestamp": None},
    {"connection_id": "x" * 5000}, {"conference": [{"number": "1", "name": "a"}] * 100},
    {"direction": "sideways"},
])
def test_a_malformed_event_is_refused_whole(change: Dict[str, Any]) -> None:
    body = {**json.loads(json.dumps(event_payload(_event()))), **change}
    with pytest.raises(EventParseError):
        CallEvent.from_dict(body)


@pytest.mark.parametrize("change", [
    {"connections": "none"}, {"connections": [{"connection_id": "c1"}]},
    {"connections": [{**_conn().as_dict(), "line": "PJSIP/1002"}]}, {"line": None},
    {"connections": [_conn().as_dict()] * 65},
])
def test_a_malformed_line_is_refused_whole(change: Dict[str, Any]) -> None:
    body = {**line_payload(Line("PJSIP/1000", "online", (_conn(),))), **change}
    with pytest.raises(EventParseError):
        Line.from_dict(body)


def _publisher(port: int) -> mqtt.Client:
    """The server's broker user, which may write every cti/SITE topic: the worst case of a
    compromised or buggy server."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="hostile",
                         protocol=mqtt.MQTTv5)
    client.username_pw_set("cti-server", SERVER_PASSWORD)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def test_bad_payloads_are_counted_logged_and_never_delivered(broker: Broker) -> None:
    client = RemoteClient(remote_config(broker.port, "1000"))
    rec = Recorder()
    client.add_listener(rec)
    good = event_payload(_event(), Line("PJSIP/1000", "online", (_conn(),)))
    bad: List[bytes] = [
        b"not json", b"[1, 2]", json.dumps({**good, "version": 2}).encode(),
        json.dumps({**good, "kind": "explode"}).encode(),
        json.dumps({**good, "line": "PJSIP/1002"}).encode(),  # not the topic's line
        json.dumps({**good, "snapshot": line_payload(Line("PJSIP/1002", "online", ()))})
        .encode(),
        json.dumps({**good, "timestamp": math.nan}).encode(),
        json.dumps({**good, "calling": {"number": "1", "name": "x" * 5000}}).encode(),
        json.dumps({**good, "snapshot": {**good["snapshot"], "connections": [  # type: ignore
            {**_conn().as_dict(), "actions": {"allowed": ["explode"], "reasons": {},
                                              "in_stasis": True}}]}}).encode(),
        b"{" + b" " * (300 * 1024) + b"}",
    ]
    state_bad = json.dumps({**line_payload(Line("PJSIP/1000", "online", ())),
                            "connections": "none"}).encode()
    publisher = _publisher(broker.port)
    try:
        with client:
            for payload in bad:
                publisher.publish(f"cti/{SITE}/line/1000/events", payload, qos=1)
            publisher.publish(f"cti/{SITE}/line/1000/state", state_bad, qos=1)
            publisher.publish(f"cti/{SITE}/server/status", b'{"version": 1, "status": 3}',
                              qos=1)
            publisher.publish(f"cti/{SITE}/line/1000/events", json.dumps(good), qos=1)
            got = rec.event("established")
            assert got == _event()  # the one good event, whole
            deadline = time.monotonic() + 5
            while client.stats()["bad_payloads"] < len(bad) + 2:
                assert time.monotonic() < deadline, client.stats()
                time.sleep(0.01)
            assert client.stats()["bad_payloads"] == len(bad) + 2
            assert client.stats()["events"] == 1
            assert client.wait_idle()
            delivered = [e for n, e in rec.seen if n == "event"]
            while not rec.items.empty():
                delivered.append(rec.items.get()[1])
            assert delivered == [got]
            line = client.line("PJSIP/1000")  # from the good event's snapshot only
            assert line is not None and line.connections == (_conn(),)
            assert client.server_online is None
    finally:
        publisher.disconnect()
        publisher.loop_stop()


def test_server_errors_come_back_as_the_same_classes() -> None:
    errors: List[BaseException] = [
        AccessDeniedError("not yours"), BadRequestError("bad"), ServerBusyError("busy"),
        CallStateError("over"), ValueError("digits"),
        NotInStasisError("POST", "/channels/c1/hold", 409, "Channel not in Stasis",
                         "other-app"),
        NotFoundError("DELETE", "/channels/c1", 404, "Channel not found"),
        CallFailedError("busy", dialstatus="BUSY", cause=17, channel_id="c2"),
    ]
    for error in errors:
        back = error_from_payload(json.loads(json.dumps(error_payload(error))))
        assert type(back) is type(error) and str(back) == str(error)
    failed = error_from_payload(error_payload(errors[-1]))
    assert isinstance(failed, CallFailedError) and (failed.dialstatus, failed.cause) == (
        "BUSY", 17)
    stasis = error_from_payload(error_payload(errors[5]))
    assert isinstance(stasis, NotInStasisError) and stasis.status == 409
    assert stasis.other_app == "other-app"


@pytest.mark.parametrize("body", [
    {"type": "SystemExit", "message": "bye"}, {"type": "KeyboardInterrupt"},
    {"type": "RemoteError"}, {"type": "__class__"}, {"type": 7}, "NotFoundError", None,
    {"type": "NotFoundError", "status": "x", "method": ["POST"]},
])
def test_unknown_or_hostile_error_types_become_remote_errors(body: Any) -> None:
    error = error_from_payload(body)
    assert isinstance(error, (RemoteError, NotFoundError))
    assert not isinstance(error, (SystemExit, KeyboardInterrupt))
    if isinstance(error, NotFoundError):
        assert error.status == 0 and error.method == ""


def test_a_line_state_change_has_no_call_and_reads_back() -> None:
    """Found on the lab: a registration change (line_state_changed) carries no call or
    connection id; a desk read it as malformed and dropped it."""
    event = _event(kind=EventKind.LINE_STATE_CHANGED, call_id="", connection_id="",
                   line_state="offline", previous_line_state="online")
    body = json.loads(json.dumps(event_payload(event)))
    assert CallEvent.from_dict(body) == event
    with pytest.raises(EventParseError):  # a call's event still needs its ids
        CallEvent.from_dict({**body, "kind": "established"})
