"""Class 6 of the hardening issue (pipeline side): no REST request blocks the delivery of
events on other lines. Resynchronisation and repair reads run on the REST worker thread; their
answers come back through the ring and are applied in order, corrected with the events that
arrived while the request was out (a channel destroyed meanwhile is not brought back, one
created meanwhile is not cleared)."""

from __future__ import annotations

import threading
import time
from typing import Any, Dict, List

from asterisk_cti.testing import FakeAsterisk
from tests.hardening.recording import Rec, monitoring


def chan(cid: str, line: str, state: str) -> Dict[str, Any]:
    return {"id": cid, "name": f"{line}-0000000{cid[-1]}", "state": state,
            "caller": {"name": "Kai", "number": line[-4:]},
            "connected": {"name": "", "number": "2000"},
            "dialplan": {"context": "from-internal", "exten": "2000", "priority": 1},
            "creationtime": "2026-11-26T03:53:31.659+0000", "language": "en"}


def ev(etype: str, channel: Dict[str, Any], **extra: Any) -> Dict[str, Any]:
    return {"type": etype, "timestamp": "2026-11-26T03:53:32.000+0000", "channel": channel,
            "application": "cti-test", **extra}


def _stall_channels(fake: FakeAsterisk) -> tuple[threading.Event, threading.Event]:
    """Make the next GET /channels answer what REST holds now, but only once ``gate`` is set
    (a server that trickles its answer)."""
    entered, gate = threading.Event(), threading.Event()
    snapshot: List[Any] = []

    @fake.ari.route("GET", r"/channels")
    def slow(req: Any, m: Any) -> Any:
        if gate.is_set():
            return 200, list(fake.ari.channels.values())
        snapshot[:] = [dict(c) for c in fake.ari.channels.values()]
        entered.set()
        assert gate.wait(10)
        return 200, snapshot

    return entered, gate


def test_a_stalled_resync_does_not_hold_other_lines() -> None:
    fake = FakeAsterisk(endpoints=["PJSIP/1000", "PJSIP/1002"])
    rec = Rec()
    client = monitoring(fake, ["PJSIP/1000", "PJSIP/1002"], rec)
    with client.start():
        entered, gate = _stall_channels(fake)
        try:
            fake.ws.drop()  # reconnect: a resynchronisation whose GET /channels stalls
            assert entered.wait(5)
            t0 = time.monotonic()
            fake.push(ev("ChannelCreated", chan("5.2", "PJSIP/1002", "Ring")))
            assert rec.wait(lambda: any(e.type == "ChannelCreated" for e in rec.events), 2)
            assert time.monotonic() - t0 < 1.0  # delivered while the request is still out
            assert any(c.line == "PJSIP/1002" for c in rec.calls)
        finally:
            gate.set()
        assert rec.wait(lambda: any(r.reason == "connected" for r in rec.resyncs[1:]), 5)
        assert fake.settle(client)


def test_a_channel_destroyed_during_the_resync_is_not_brought_back() -> None:
    fake = FakeAsterisk(endpoints=["PJSIP/1000"])
    rec = Rec()
    client = monitoring(fake, ["PJSIP/1000"], rec)
    up = chan("1.1", "PJSIP/1000", "Up")
    fake.ari.add_channel(up)
    with client.start():
        assert client.line("PJSIP/1000").connections
        entered, gate = _stall_channels(fake)
        try:
            fake.ws.drop()
            assert entered.wait(5)  # the answer was taken: it still lists 1.1
            fake.ari.channels.pop("1.1")
            fake.push(ev("ChannelDestroyed", up, cause=16, cause_txt="Normal Clearing"))
            assert rec.wait(lambda: any(c.kind.value == "connection_cleared"
                                        for c in rec.calls), 2)
        finally:
            gate.set()
        assert rec.wait(lambda: len(rec.resyncs) >= 2, 5)
        assert fake.settle(client)
        assert not client.line("PJSIP/1000").connections  # no ghost call from the old answer
        cleared = [c for c in rec.calls if c.kind.value == "connection_cleared"]
        assert len(cleared) == 1


def test_a_channel_created_during_the_resync_is_not_cleared() -> None:
    fake = FakeAsterisk(endpoints=["PJSIP/1000"])
    rec = Rec()
    client = monitoring(fake, ["PJSIP/1000"], rec)
    with client.start():
        entered, gate = _stall_channels(fake)
        try:
            fake.ws.drop()
            assert entered.wait(5)  # the answer was taken: no channel yet
            ring = chan("2.1", "PJSIP/1000", "Ring")
            # (add_channel would wait for the lock the stalled answer holds)
            fake.ari.channels["2.1"] = ring
            fake.push(ev("ChannelCreated", ring))
            assert rec.wait(lambda: bool(rec.calls), 2)
        finally:
            gate.set()
        assert rec.wait(lambda: len(rec.resyncs) >= 2, 5)
        assert fake.settle(client)
        assert client.line("PJSIP/1000").connections
        assert not [c for c in rec.calls if c.kind.value == "connection_cleared"]


def test_a_stalled_subscription_change_does_not_hold_other_lines() -> None:
    fake = FakeAsterisk(endpoints=["PJSIP/1000", "PJSIP/1002", "PJSIP/1006"])
    rec = Rec()
    client = monitoring(fake, ["PJSIP/1000"], rec)
    with client.start():
        entered, gate = threading.Event(), threading.Event()

        @fake.ari.route("GET", r"/applications/cti-test")
        def slow(req: Any, m: Any) -> Any:
            entered.set()
            gate.wait(10)
            return 200, fake.ari.app("cti-test")

        change = threading.Thread(target=client.monitor, args=("PJSIP/1006",),
                                  name="test-monitor")
        change.start()
        try:
            assert entered.wait(5)
            fake.push(ev("ChannelCreated", chan("6.1", "PJSIP/1000", "Ring")))
            assert rec.wait(lambda: any(e.type == "ChannelCreated" for e in rec.events), 2)
            assert change.is_alive()  # monitor() still waits for its subscription
        finally:
            gate.set()
        change.join(5)
        assert not change.is_alive()
        assert fake.ari.subscription_count("cti-test", "endpoint:PJSIP/1006") == 1
        assert fake.settle(client)
