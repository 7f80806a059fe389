"""Smoke tests that prove the lab itself: real Asterisk, real phones, raw ARI.

They use no SDK code, so a failure here is the lab's (or Asterisk's), never the SDK's.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Set, Tuple

import pytest

from .lab import (
    LAB_PHONES,
    AriConfig,
    AriEvent,
    AriEventRecorder,
    Lab,
    Phone,
    ari_request,
    channel_of,
)


def _on_channel_of(ext: str) -> Callable[[AriEvent], bool]:
    """A predicate: the event's channel is a PJSIP channel of extension ``ext``."""
    return lambda event: str(channel_of(event).get("name", "")).startswith(f"PJSIP/{ext}-")


def _on_channel(channel_id: str) -> Callable[[AriEvent], bool]:
    return lambda event: channel_of(event).get("id") == channel_id


def _establish(caller: Phone, callee: Phone, number: str = "") -> None:
    """``caller`` dials ``callee`` (or ``number``), ``callee`` answers, both established."""
    caller.dial(number or callee.ext)
    callee.wait_for("CALL_INCOMING")
    callee.answer()
    callee.wait_for("CALL_ESTABLISHED")
    caller.wait_for("CALL_ESTABLISHED")


@pytest.fixture
def endpoint_1000(ari_config: AriConfig, phones: Dict[str, Phone]) -> Iterator[AriEventRecorder]:
    """A raw ARI websocket of its own app, subscribed to ``endpoint:PJSIP/1000``."""
    with AriEventRecorder(ari_config, app="lab-smoke") as recorder:
        recorder.subscribe("endpoint:PJSIP/1000")
        yield recorder


def test_three_phones_register(lab: Lab) -> None:
    assert lab.endpoint_states() == {spec.ext: "online" for spec in LAB_PHONES}
    contacts = lab.asterisk_cli("pjsip show contacts")
    for index, spec in enumerate(LAB_PHONES):
        sip_port = lab.config.phone_ports(index)[0]
        assert f"{spec.ext}/sip:{spec.ext}" in contacts
        assert f"@127.0.0.1:{sip_port}" in contacts


def test_ari_answers_with_basic_auth_only(lab: Lab, ari_config: AriConfig) -> None:
    info = lab.ari("GET", "/asterisk/info").json()
    assert info["system"]["version"].startswith("22.")
    wrong = AriConfig(ari_config.url, ari_config.user, "not-the-password", ari_config.app)
    assert ari_request(wrong, "GET", "/asterisk/info").status_code == 401


def _sockets(pid: int) -> Set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _bound(table: str, inodes: Set[str]) -> List[Tuple[str, int, str]]:
    """(address, port, tcp state) of the sockets in ``/proc/net/<table>`` with these inodes."""
    found = []
    for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[9] not in inodes:
            continue
        address_hex, port_hex = fields[1].split(":")
        if len(address_hex) == 8:
            address = ".".join(str(int(address_hex[i : i + 2], 16)) for i in (6, 4, 2, 0))
        else:
            address = "::" if int(address_hex, 16) == 0 else address_hex
        found.append((address, int(port_hex, 16), fields[3]))
    return found


def test_lab_listens_on_loopback_only(lab: Lab) -> None:
    """Every TCP listener and every socket on a lab port is bound to 127.0.0.1.

    (The resolvers' client sockets on ephemeral ports, Asterisk's PJSIP DNS resolver and
    baresip's DNS client, bind the wildcard address; the root's resolv.conf points them at
    127.0.0.1 and the lab never resolves a name.)
    """
    lab_ports = {port for _, _, port in lab.config.listening_ports()}
    inodes: Set[str] = set()
    for pid in lab.running_processes().values():
        inodes |= _sockets(pid)
    tcp = _bound("tcp", inodes) + _bound("tcp6", inodes)
    udp = _bound("udp", inodes) + _bound("udp6", inodes)
    listeners = [(address, port) for address, port, state in tcp if state == "0A"]
    assert listeners, "no TCP listener found: the /proc scan is broken"
    assert all(address == "127.0.0.1" for address, _ in listeners), listeners
    on_lab_ports = [(a, p) for a, p, _ in udp + tcp if p in lab_ports]
    assert {p for _, p in on_lab_ports} >= {lab.config.sip_port, lab.config.http_port}
    assert all(address == "127.0.0.1" for address, _ in on_lab_ports), on_lab_ports
    rtp_low = lab.config.rtp_port
    assert all(
        address == "127.0.0.1" for address, port, _ in udp if rtp_low <= port < rtp_low + 160
    )


def test_basic_call_phone_events_and_endpoint_subscription(
    phones: Dict[str, Phone], endpoint_1000: AriEventRecorder
) -> None:
    kai, ping = phones["1000"], phones["1002"]
    kai.dial("1002")
    incoming = ping.wait_for("CALL_INCOMING")
    assert incoming is not None and incoming.data.get("peerdisplayname") == "Kai"
    kai.wait_for("ringing", 5)
    ping.answer()
    ping.wait_for("CALL_ESTABLISHED")
    kai.wait_for("CALL_ESTABLISHED")
    assert (kai.state, ping.state) == ("established", "established")

    created = endpoint_1000.wait_for("ChannelCreated", _on_channel_of("1000"))
    channel = channel_of(created)
    assert channel["state"] == "Ring"
    assert channel["caller"] == {"name": "Kai", "number": "1000"}
    assert channel["dialplan"]["exten"] == "1002"
    # ari.conf channelvars: the caller's linkedid is its own id
    assert channel.get("channelvars", {}).get("CHANNEL(linkedid)") == channel["id"]
    up = endpoint_1000.wait_for(
        "ChannelStateChange",
        lambda e: _on_channel(channel["id"])(e) and channel_of(e).get("state") == "Up",
    )
    assert channel_of(up)["connected"]["number"] == "1002"

    kai.hangup()
    kai.wait_for("CALL_CLOSED")
    closed = ping.wait_for("CALL_CLOSED")
    assert closed is not None
    endpoint_1000.wait_for("ChannelDestroyed", _on_channel(channel["id"]))
    assert (kai.state, ping.state) == ("idle", "idle")


def test_dial_event_reports_busy_when_callee_rejects(
    phones: Dict[str, Phone], endpoint_1000: AriEventRecorder
) -> None:
    kai, ping = phones["1000"], phones["1002"]
    kai.dial("1002")
    ping.wait_for("CALL_INCOMING")
    ping.reject()
    ping.wait_for("CALL_CLOSED")
    kai.wait_for("CALL_CLOSED")
    dial = endpoint_1000.wait_for("Dial", lambda e: e.get("dialstatus") not in ("", "RINGING"))
    assert dial["dialstatus"] == "BUSY"


def test_caller_cancels_while_ringing(
    phones: Dict[str, Phone], endpoint_1000: AriEventRecorder
) -> None:
    kai, ping = phones["1000"], phones["1002"]
    kai.dial("1002")
    ping.wait_for("CALL_INCOMING")
    kai.hangup()
    kai.wait_for("CALL_CLOSED")
    ping.wait_for("CALL_CLOSED")
    dial = endpoint_1000.wait_for("Dial", lambda e: e.get("dialstatus") not in ("", "RINGING"))
    assert dial["dialstatus"] == "CANCEL"


def test_hold_from_phone_emits_channel_hold_and_unhold(
    phones: Dict[str, Phone], endpoint_1000: AriEventRecorder
) -> None:
    kai, ping = phones["1000"], phones["1002"]
    _establish(kai, ping)
    channel_id = channel_of(endpoint_1000.wait_for("ChannelCreated", _on_channel_of("1000")))["id"]
    kai.hold()
    assert kai.state == "held"
    hold = endpoint_1000.wait_for("ChannelHold", _on_channel(channel_id))
    assert hold.get("musicclass", "default") == "default"
    kai.resume()
    assert kai.state == "established"
    endpoint_1000.wait_for("ChannelUnhold", _on_channel(channel_id))
    kai.hangup()
    ping.wait_for("CALL_CLOSED")


def test_queue_rings_both_agents(lab: Lab, phones: Dict[str, Phone]) -> None:
    kai, ping, lee = phones["1000"], phones["1002"], phones["1006"]
    kai.dial(lab.config.queue_exten)
    ping.wait_for("CALL_INCOMING")
    lee.wait_for("CALL_INCOMING")
    lee.answer()
    lee.wait_for("CALL_ESTABLISHED")
    kai.wait_for("CALL_ESTABLISHED")
    ping.wait_for("CALL_CLOSED")  # ringall: the other agent stops ringing
    kai.hangup()
    lee.wait_for("CALL_CLOSED")


def test_stasis_extension_enters_the_app(
    lab: Lab, ari_config: AriConfig, phones: Dict[str, Phone]
) -> None:
    kai = phones["1000"]
    with AriEventRecorder(ari_config) as app:
        kai.dial("7002")
        start = app.wait_for("StasisStart")
        assert start["application"] == ari_config.app
        assert start["args"] == ["dial", "1002"]
        channel = channel_of(start)
        assert channel["caller"]["number"] == "1000"
        assert lab.ari("POST", f"/channels/{channel['id']}/answer").status_code == 204
        kai.wait_for("CALL_ESTABLISHED")
        assert lab.ari("DELETE", f"/channels/{channel['id']}").status_code == 204
        kai.wait_for("CALL_CLOSED")
        app.wait_for("StasisEnd", _on_channel(channel["id"]))


def test_blind_transfer_by_refer(phones: Dict[str, Phone]) -> None:
    kai, ping, lee = phones["1000"], phones["1002"], phones["1006"]
    _establish(kai, ping)
    kai.transfer("1006")
    kai.wait_for("CALL_CLOSED")
    lee.wait_for("CALL_INCOMING")
    lee.answer()
    lee.wait_for("CALL_ESTABLISHED")
    assert ping.state == "established"
    lee.hangup()
    ping.wait_for("CALL_CLOSED")


def test_attended_transfer_by_dtmf_features(lab: Lab, phones: Dict[str, Phone]) -> None:
    kai, ping, lee = phones["1000"], phones["1002"], phones["1006"]
    _establish(kai, ping)
    kai.send_dtmf("*21006")  # features.conf atxfer, then the target
    lee.wait_for("CALL_INCOMING", 15)
    lee.answer()
    lee.wait_for("CALL_ESTABLISHED")
    kai.hangup()  # the transferer leaves: 1002 and 1006 are connected
    kai.wait_for("CALL_CLOSED")

    def bridged() -> Set[str]:
        # The consultation's Local channels may still be listed in a bridge for a moment
        # after they are gone (GET /channels/{id} then answers 404): skip those.
        names = set()
        for bridge in lab.ari("GET", "/bridges").json():
            for channel_id in bridge["channels"]:
                channel = lab.ari("GET", f"/channels/{channel_id}")
                if channel.status_code == 200:
                    names.add(channel.json()["name"].split("-")[0])
        return names

    deadline = time.monotonic() + 5
    names = bridged()
    while not {"PJSIP/1002", "PJSIP/1006"} <= names and time.monotonic() < deadline:
        time.sleep(0.05)
        names = bridged()
    assert {"PJSIP/1002", "PJSIP/1006"} <= names
    assert ping.state == "established" and lee.state == "established"
    lee.hangup()
    ping.wait_for("CALL_CLOSED")


def test_three_way_by_dtmf_features(ari_config: AriConfig, phones: Dict[str, Phone]) -> None:
    kai, ping, lee = phones["1000"], phones["1002"], phones["1006"]
    with AriEventRecorder(ari_config, app="lab-threeway", subscribe_all=True) as events:
        _establish(kai, ping)
        kai.send_dtmf("*21006")
        lee.wait_for("CALL_INCOMING", 15)
        lee.answer()
        lee.wait_for("CALL_ESTABLISHED")
        kai.send_dtmf("*3")  # during the consultation: three-way
        transfer = events.wait_for("BridgeAttendedTransfer")
        assert transfer["destination_type"] == "threeway"
        assert transfer["result"] == "Success"
        assert (kai.state, ping.state, lee.state) == ("established",) * 3
        kai.hangup()
        kai.wait_for("CALL_CLOSED")
        lee.hangup()
        ping.wait_for("CALL_CLOSED")


def test_click_to_dial_with_auto_answer(lab: Lab, phones: Dict[str, Phone]) -> None:
    kai, ping = phones["1000"], phones["1002"]
    kai.set_auto_answer(True)
    ping.set_auto_answer(True)
    response = lab.ari(
        "POST",
        "/channels",
        params={
            "endpoint": "PJSIP/1000",
            "extension": "1002",
            "context": "from-internal",
            "priority": "1",
            "callerId": "Click <1000>",
        },
    )
    assert response.status_code == 200, response.text
    kai.wait_for("CALL_ESTABLISHED")
    ping.wait_for("CALL_ESTABLISHED")
    assert lab.ari("DELETE", f"/channels/{response.json()['id']}").status_code == 204
    kai.wait_for("CALL_CLOSED")
    ping.wait_for("CALL_CLOSED")


def test_restart_asterisk_brings_ari_and_phones_back(lab: Lab, phones: Dict[str, Phone]) -> None:
    before = lab.ari("GET", "/asterisk/info").json()["status"]["startup_time"]
    pid = lab.running_processes()["asterisk"]
    info = lab.restart_asterisk()
    assert info["status"]["startup_time"] != before
    assert lab.running_processes()["asterisk"] == pid
    assert lab.endpoint_states() == {spec.ext: "online" for spec in LAB_PHONES}
    _establish(phones["1000"], phones["1002"])
    phones["1000"].hangup()
    phones["1002"].wait_for("CALL_CLOSED")
