"""What the SDK reports when real phones make calls through a real Asterisk 22.

Every test drives the lab's baresip phones (1000 "Kai", 1002 "Ping", 1006 "Lee") and checks
what the client delivered to its listeners: the channel events of the original design per line
and in order, and the CTI (call model) events. Waits are on conditions, each bounded.
"""

from __future__ import annotations

from typing import Any, Dict

from asterisk_cti import CallEvent, ConnectionState, PhoneState

from .calls import NOISE, assert_in_order, channel_steps, establish, keep_sequences
from .conftest import LAB_LINES, CtiFactory, LabCti
from .lab import Lab, Phone

K, P, L = "PJSIP/1000", "PJSIP/1002", "PJSIP/1006"


def _party(event: CallEvent, which: str) -> str:
    party = getattr(event, which)
    return f"{party.number}/{party.name}" if party is not None else "/"


def _settled(cti: LabCti, *lines: str, since: int = 0, timeout: float = 10.0) -> None:
    """Wait for call_cleared at every line, then for every delivery to end."""
    for line in lines:
        cti.events.wait_call("call_cleared", line, timeout, since)
    assert cti.wait_idle(5.0)


def test_basic_call(cti: LabCti, phones: Dict[str, Phone]) -> None:
    """1000 calls 1002, 1002 answers, 1000 hangs up."""
    kai, ping = phones["1000"], phones["1002"]
    start = cti.events.mark()
    establish(kai, ping)
    kai_up = cti.events.wait_call("established", K, since=start)
    ping_up = cti.events.wait_call("established", P, since=start)
    assert _party(kai_up, "connected") == "1002/Ping"
    assert _party(ping_up, "connected") == "1000/Kai"
    # the model's snapshots agree, on any thread
    assert cti.line(K).connections[0].state is ConnectionState.CONNECTED
    assert cti.line(P).phone_state is PhoneState.CONNECTED
    assert kai_up.call_id == ping_up.call_id
    kai.hangup()
    ping.wait_for("CALL_CLOSED")
    _settled(cti, K, P, since=start)

    ev = cti.events
    assert ev.kinds(K, start, skip=NOISE) == [
        "originated", "ringback", "established", "connection_cleared", "call_cleared"]
    assert ev.kinds(P, start, skip=NOISE) == [
        "delivered", "established", "connection_cleared", "call_cleared"]
    assert ev.kinds(L, start, skip=NOISE) == []
    delivered = ev.wait_call("delivered", P, since=start)
    assert _party(delivered, "calling") == "1000/Kai"
    for line in (K, P):
        cleared = ev.wait_call("connection_cleared", line, since=start)
        assert cleared.cause == 16 and cleared.reason.value == "normal"
    # the ten channel events of the original design, per line and in order
    assert_in_order(channel_steps(ev, K, start), [
        "ChannelCreated", "ChannelConnectedLine", "ChannelStateChange:Up",
        "ChannelEnteredBridge", "ChannelLeftBridge", "ChannelDestroyed"], K)
    assert_in_order(channel_steps(ev, P, start), [
        "ChannelCreated", "ChannelConnectedLine", "ChannelStateChange:Ringing",
        "ChannelStateChange:Up", "ChannelEnteredBridge", "ChannelLeftBridge",
        "ChannelDestroyed"], P)
    assert channel_steps(ev, L, start) == []
    # every line's events came on one lane at a time, in order: no duplicates either
    for line in (K, P):
        ids = [(r.name, r.event.timestamp) for r in ev.select("channel", line, start)]
        assert len(ids) == len(set(ids)), ids
    assert cti.line(K).is_idle and cti.line(P).is_idle
    keep_sequences("basic", ev, LAB_LINES, start)


def test_talking_started(cti: LabCti, phones: Dict[str, Phone]) -> None:
    """Both phones send a tone: talk detection (TALK_DETECT on both legs) reports speech."""
    kai, ping = phones["1000"], phones["1002"]
    start = cti.events.mark()
    establish(kai, ping)
    for line in (K, P):
        event = cti.events.wait_call("talking_started", line, since=start)
        assert event.talking and event.state is ConnectionState.CONNECTED
        cti.events.wait_channel("ChannelTalkingStarted", line, since=start)
    assert cti.wait_idle(5.0)
    assert all(c.talking for c in cti.line(K).connections + cti.line(P).connections)
    kai.hangup()
    ping.wait_for("CALL_CLOSED")
    _settled(cti, K, P, since=start)
    keep_sequences("talking", cti.events, LAB_LINES, start)


def test_hold_and_retrieve_from_the_phone(cti: LabCti, phones: Dict[str, Phone]) -> None:
    kai, ping = phones["1000"], phones["1002"]
    start = cti.events.mark()
    establish(kai, ping)
    cti.events.wait_call("established", K, since=start)
    kai.hold()
    held = cti.events.wait_call("held", K, since=start)
    assert held.held and held.state is ConnectionState.HOLD
    cti.events.wait_channel("ChannelHold", K, since=start)
    assert cti.wait_idle(5.0)
    assert cti.line(K).connections[0].held
    assert cti.line(K).phone_state is PhoneState.HELD
    kai.resume()
    retrieved = cti.events.wait_call("retrieved", K, since=start)
    assert not retrieved.held and retrieved.state is ConnectionState.CONNECTED
    cti.events.wait_channel("ChannelUnhold", K, since=start)
    kai.hangup()
    ping.wait_for("CALL_CLOSED")
    _settled(cti, K, P, since=start)
    assert cti.events.kinds(K, start, skip=NOISE) == [
        "originated", "ringback", "established", "held", "retrieved", "connection_cleared",
        "call_cleared"]
    # the held party's line is not told (documented limit)
    assert "held" not in cti.events.kinds(P, start, skip=NOISE)
    assert_in_order(channel_steps(cti.events, K, start),
                    ["ChannelStateChange:Up", "ChannelHold", "ChannelUnhold", "ChannelDestroyed"])
    keep_sequences("hold (phone)", cti.events, LAB_LINES, start)


def test_attended_transfer_by_dtmf(cti: LabCti, phones: Dict[str, Phone]) -> None:
    """1000 calls 1002, consults 1006 with ``*2`` ``1006``, 1006 answers, 1000 hangs up:
    1002 talks to 1006."""
    kai, ping, lee = phones["1000"], phones["1002"], phones["1006"]
    start = cti.events.mark()
    establish(kai, ping)
    kai.send_dtmf("*21006")
    lee.wait_for("CALL_INCOMING", 15)
    cti.events.wait_call("delivered", L, since=start)
    lee.answer()
    lee.wait_for("CALL_ESTABLISHED")
    cti.events.wait_call("established", L, since=start)
    kai.hangup()
    kai.wait_for("CALL_CLOSED")
    transferred = cti.events.wait_call("transferred", P, since=start)
    assert _party(transferred, "connected") == "1006/Lee"
    cleared = cti.events.wait_call("connection_cleared", K, since=start)
    assert cleared.reason.value == "transferred"
    assert cti.wait_idle(5.0)
    # the model now shows 1002 and 1006 connected to each other in one call
    ping_conn, lee_conn = cti.line(P).connections, cti.line(L).connections
    assert len(ping_conn) == 1 and len(lee_conn) == 1
    assert ping_conn[0].call_id == lee_conn[0].call_id
    assert ping_conn[0].state is ConnectionState.CONNECTED
    assert lee_conn[0].state is ConnectionState.CONNECTED
    assert ping_conn[0].connected.number == "1006"
    assert lee_conn[0].connected.number == "1002"
    assert cti.line(K).is_idle
    lee.hangup()
    ping.wait_for("CALL_CLOSED")
    _settled(cti, K, P, L, since=start)
    ev = cti.events
    assert_in_order(ev.kinds(K, start, skip=NOISE), ["originated", "established", "held",
                                         "connection_cleared", "call_cleared"], K)
    assert_in_order(ev.kinds(P, start, skip=NOISE), ["delivered", "established", "transferred",
                                         "connection_cleared", "call_cleared"], P)
    assert_in_order(ev.kinds(L, start, skip=NOISE),
                    ["delivered", "established", "connection_cleared", "call_cleared"], L)
    keep_sequences("attended transfer (*2 1006, 1000 hangs up)", ev, LAB_LINES, start)
    # SDK finding (intermittent, about one run in three): when 1000 hangs up, Asterisk may
    # publish BridgeMerged (bridge {1002}, bridge_from {1000, Local/1006;1}) before
    # BridgeAttendedTransfer; CallModel._on_bridge_merged counts the members of both bridges,
    # the departing transferer included, and emits conferenced(1002/Ping 1000/Kai) at 1000
    # and 1002 although nobody was ever in a conference.
    conferenced = [str(e) for e in ev.call_events(since=start) if e.kind.value == "conferenced"]
    assert not conferenced, f"an attended transfer is not a conference: {conferenced}"


def test_three_way_by_dtmf(cti: LabCti, phones: Dict[str, Phone]) -> None:
    """The same consultation, then ``*3``: a three-way call."""
    kai, ping, lee = phones["1000"], phones["1002"], phones["1006"]
    start = cti.events.mark()
    establish(kai, ping)
    kai.send_dtmf("*21006")
    lee.wait_for("CALL_INCOMING", 15)
    lee.answer()
    lee.wait_for("CALL_ESTABLISHED")
    cti.events.wait_call("established", L, since=start)
    kai.send_dtmf("*3")
    everyone = {"1000", "1002", "1006"}

    def full(event: CallEvent) -> bool:
        return {p.number for p in event.conference} >= everyone

    for line in (K, P):
        event = cti.events.wait_call("conferenced", line, since=start, where=full)
        assert event.state is ConnectionState.CONNECTED
    assert cti.wait_idle(5.0)
    assert not any(c.held for c in cti.line(K).connections)
    seen = cti.events.sequences(LAB_LINES, start)
    call_ids = {c.call_id for line in (K, P, L) for c in cti.line(line).connections}
    kai.hangup()
    kai.wait_for("CALL_CLOSED")
    lee.hangup()
    ping.wait_for("CALL_CLOSED")
    _settled(cti, K, P, L, since=start)
    keep_sequences("three-way (*2 1006, *3)", cti.events, LAB_LINES, start)
    assert len(call_ids) == 1, call_ids
    # SDK finding: 1006 talks in the three-way call through Local/1006@from-internal;2 (the
    # consultation's Local pair), but its line is never told it is conferenced, and the first
    # conferenced event at 1000 and 1002 lists only two parties (the Local channel counted as
    # the third member of the bridge).
    conferenced = [e for e in cti.events.call_events(since=start) if e.kind.value == "conferenced"]
    assert L in {e.line for e in conferenced}, f"no conferenced at {L}: {seen}"
    assert all(full(e) for e in conferenced), f"conferenced without all three parties: {seen}"


def test_blind_transfer_by_refer(cti: LabCti, phones: Dict[str, Phone]) -> None:
    """1000 transfers 1002 to 1006 with a SIP REFER (baresip ``transfer``)."""
    kai, ping, lee = phones["1000"], phones["1002"], phones["1006"]
    start = cti.events.mark()
    establish(kai, ping)
    cti.events.wait_call("established", K, since=start)
    kai.transfer("1006")
    kai.wait_for("CALL_CLOSED")
    lee.wait_for("CALL_INCOMING")
    delivered = cti.events.wait_call("delivered", L, since=start)
    assert _party(delivered, "calling").startswith("1002/")
    lee.answer()
    lee.wait_for("CALL_ESTABLISHED")
    transferred = cti.events.wait_call("transferred", P, since=start)
    assert transferred.connected.number == "1006"
    cleared = cti.events.wait_call("connection_cleared", K, since=start)
    assert cleared.reason.value == "transferred"
    cti.events.wait_call("established", L, since=start)
    assert cti.wait_idle(5.0)
    assert cti.line(P).connections[0].call_id == cti.line(L).connections[0].call_id
    lee.hangup()
    ping.wait_for("CALL_CLOSED")
    _settled(cti, K, P, L, since=start)
    keep_sequences("blind transfer (REFER)", cti.events, LAB_LINES, start)


def test_busy(cti: LabCti, phones: Dict[str, Phone]) -> None:
    """1002 is in a call with 1006; 1000 calls 1002 and gets busy (baresip: 486)."""
    kai, ping, lee = phones["1000"], phones["1002"], phones["1006"]
    establish(lee, ping)
    cti.events.wait_call("established", L)
    start = cti.events.mark()
    kai.dial("1002")
    failed = cti.events.wait_call("failed", K, since=start)
    assert failed.cause == 17 and failed.dialstatus == "BUSY" and failed.reason.value == "busy"
    kai.wait_for("CALL_CLOSED")
    cti.events.wait_call("call_cleared", K, since=start)
    # 1000's call may be cleared before Asterisk destroys the busy leg it dialled to 1002:
    # wait for that leg's end before reading 1002's snapshot.
    cti.events.wait_channel("ChannelDestroyed", P, since=start)
    assert cti.wait_idle(5.0)
    assert cti.events.kinds(K, start, skip=NOISE) == [
        "originated", "failed", "connection_cleared", "call_cleared"]
    # the busy phone's line only has its own call
    assert cti.events.kinds(P, start, skip=NOISE) == []
    assert len(cti.line(P).connections) == 1
    keep_sequences("busy (1000 calls 1002 while 1002 talks to 1006)", cti.events, [K], start)
    lee.hangup()
    ping.wait_for("CALL_CLOSED")


def test_rejected(cti: LabCti, phones: Dict[str, Phone]) -> None:
    kai, ping = phones["1000"], phones["1002"]
    start = cti.events.mark()
    kai.dial("1002")
    ping.wait_for("CALL_INCOMING")
    cti.events.wait_call("delivered", P, since=start)
    ping.reject()
    failed = cti.events.wait_call("failed", K, since=start)
    assert failed.cause == 17 and failed.dialstatus == "BUSY"
    kai.wait_for("CALL_CLOSED")
    _settled(cti, K, P, since=start)
    assert cti.events.kinds(K, start, skip=NOISE) == [
        "originated", "ringback", "failed", "connection_cleared", "call_cleared"]
    assert cti.events.kinds(P, start, skip=NOISE) == [
        "delivered", "connection_cleared", "call_cleared"]
    keep_sequences("rejected", cti.events, LAB_LINES, start)


def test_no_answer(cti: LabCti, phones: Dict[str, Phone]) -> None:
    """Nobody answers: the dialplan gives up after 15 s (DIALSTATUS NOANSWER)."""
    kai, ping = phones["1000"], phones["1002"]
    start = cti.events.mark()
    kai.dial("1002")
    ping.wait_for("CALL_INCOMING")
    failed = cti.events.wait_call("failed", K, timeout=20.0, since=start)
    assert failed.dialstatus == "NOANSWER" and failed.cause == 19
    assert failed.reason.value == "no_answer"
    _settled(cti, K, P, since=start)
    assert cti.events.kinds(K, start, skip=NOISE) == [
        "originated", "ringback", "failed", "connection_cleared", "call_cleared"]
    assert cti.events.kinds(P, start, skip=NOISE) == [
        "delivered", "connection_cleared", "call_cleared"]
    keep_sequences("no answer", cti.events, LAB_LINES, start)


def test_queue_screen_pop(lab: Lab, cti: LabCti, phones: Dict[str, Phone]) -> None:
    """1000 calls the queue 2000 (ringall 1002, 1006): both agents get ``delivered`` with the
    caller, 1006 answers, 1002 stops ringing."""
    kai, lee = phones["1000"], phones["1006"]
    start = cti.events.mark()
    kai.dial(lab.config.queue_exten)
    for line in (P, L):
        delivered = cti.events.wait_call("delivered", line, since=start)
        assert _party(delivered, "calling") == "1000/Kai", delivered
    lee.wait_for("CALL_INCOMING")
    lee.answer()
    lee.wait_for("CALL_ESTABLISHED")
    established = cti.events.wait_call("established", L, since=start)
    assert established.connected.number == "1000"
    # the caller rings until an agent answers; its established names the agent who did
    # (not the first ringing one, and no party_changed follows)
    answered = cti.events.wait_call("established", K, since=start)
    assert _party(answered, "connected") == "1006/Lee", answered
    assert cti.wait_idle(5.0)
    assert cti.line(K).connections[0].connected.number == "1006"
    cti.events.wait_call("call_cleared", P, since=start)  # ringall: 1002 stops ringing
    kai.hangup()
    lee.wait_for("CALL_CLOSED")
    _settled(cti, K, L, since=start)
    assert "established" not in cti.events.kinds(P, start, skip=NOISE)
    assert "party_changed" not in cti.events.kinds(K, start, skip=NOISE)
    keep_sequences("queue 2000 (1006 answers)", cti.events, LAB_LINES, start)


def test_technology_subscription(cti_factory: CtiFactory, lab: Lab,
                                 phones: Dict[str, Phone]) -> None:
    """``monitor("PJSIP")``: one subscription for the whole technology; events of all three
    lines arrive, none twice."""
    cti = cti_factory(monitor=("PJSIP",))
    app = lab.ari("GET", f"/applications/{cti.app}").json()
    assert [e.rstrip("/") for e in app["endpoint_ids"]] == ["PJSIP"], app
    kai, lee = phones["1000"], phones["1006"]
    start = cti.events.mark()
    kai.dial(lab.config.queue_exten)
    for line in (P, L):
        cti.events.wait_call("delivered", line, since=start)
    lee.wait_for("CALL_INCOMING")
    lee.answer()
    lee.wait_for("CALL_ESTABLISHED")
    cti.events.wait_call("established", L, since=start)
    kai.hangup()
    lee.wait_for("CALL_CLOSED")
    _settled(cti, K, P, L, since=start)
    ev = cti.events
    for line in (K, P, L):
        channel = [(r.name, r.event.timestamp, r.event.channel.id)
                   for r in ev.select("channel", line, start)]
        assert channel, f"no channel events at {line}"
        assert len(channel) == len(set(channel)), f"duplicates at {line}: {channel}"
        kinds = ev.kinds(line, start, skip=NOISE)
        assert kinds.count("call_cleared") == 1, kinds
        assert kinds.count("connection_cleared") == 1, kinds
    # the caller waits in the queue (queued), then learns the agent who answered with
    # established (no party_changed after it)
    assert ev.kinds(K, start, skip=NOISE) == [
        "originated", "queued", "established", "connection_cleared", "call_cleared"]
    assert ev.wait_call("established", K, since=start).connected.number in ("1002", "1006")
    assert ev.kinds(P, start, skip=NOISE) == ["delivered", "connection_cleared", "call_cleared"]
    keep_sequences("queue 2000, monitor('PJSIP')", ev, LAB_LINES, start)


def _dropped_early(stats: Dict[str, Any]) -> int:
    """Frames the client dropped by type before parsing (the counter lives in the processor's
    stats, or in the reactor's once the transport filters them)."""
    return int(stats.get("processor", {}).get("dropped_early", 0)) + int(
        stats.get("reactor", {}).get("dropped_early", 0))


def test_server_side_filter(cti_factory: CtiFactory, lab: Lab,
                            phones: Dict[str, Phone]) -> None:
    """The event filter is in force on the server: Asterisk drops the types nobody reads
    (ChannelVarset, DTMF, user events, device states...); the ChannelDialplan frames the call
    model does not read (all but app Queue's) are dropped by the transport unparsed. A client
    without the filter drops much more (the varsets)."""
    cti = cti_factory()
    unfiltered = cti_factory(server_filter=False)
    app = lab.ari("GET", f"/applications/{cti.app}").json()
    disallowed = {entry["type"] for entry in app.get("events_disallowed", [])}
    allowed = {entry["type"] for entry in app.get("events_allowed", [])}
    # the call model reads the ChannelDialplan of app Queue: Asterisk's filter matches the
    # type only, so the type passes it and the transport keeps only those frames (the others
    # are dropped unparsed: counted in dropped_early). Call data comes from channelvars.
    assert "ChannelDialplan" not in disallowed, app
    assert {"ChannelVarset", "ChannelDtmfReceived", "ChannelUserevent",
            "DeviceStateChanged"} <= disallowed, app
    assert not {"ChannelCreated", "ChannelDestroyed", "Dial", "StasisStart",
                "ChannelEnteredBridge"} & disallowed
    assert not allowed, app
    plain = lab.ari("GET", f"/applications/{unfiltered.app}").json()
    assert not plain.get("events_disallowed"), plain
    kai, ping = phones["1000"], phones["1002"]
    before = cti.stats()
    establish(kai, ping)
    kai.hangup()
    ping.wait_for("CALL_CLOSED")
    for client in (cti, unfiltered):
        client.events.wait_call("call_cleared", P)
        client.events.wait_call("call_cleared", K)
        assert client.wait_idle(5.0)
    after = cti.stats()
    frames = after["processor"]["frames"] - before["processor"]["frames"]
    dropped = _dropped_early(after) - _dropped_early(before)
    raw = _dropped_early(unfiltered.stats())
    assert frames >= 10, after
    # a basic call on the lab: the non-Queue ChannelDialplan frames are dropped unparsed by
    # the transport; without the server filter the ChannelVarset flood is too
    assert dropped > 0 and raw > 2 * dropped, (unfiltered.stats(), after)
    # the same CTI events either way
    assert cti.events.kinds(K, skip=NOISE) == unfiltered.events.kinds(K, skip=NOISE)
