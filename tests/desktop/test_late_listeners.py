"""Listeners added late get the current state first, so the order of add_listener and
start does not matter (issue 15)."""

from __future__ import annotations

from typing import Any, Dict

from asterisk_cti.desktop import PollQueue
from asterisk_cti.testing import FakeAsterisk

from .conftest import Seen, pump_until


def frame(etype: str, cid: str, name: str, state: str = "Ring", **extra: Any) -> Dict[str, Any]:
    return {"type": etype, "timestamp": "2026-11-26T03:53:31.659+0000",
            "application": "cti-test",
            "channel": {"id": cid, "name": name, "state": state,
                        "caller": {"name": "Kai", "number": "1000"},
                        "connected": {"name": "", "number": ""}}, **extra}


def test_a_listener_added_while_connected_gets_the_state_first(fake: FakeAsterisk) -> None:
    client = fake.client()
    client.monitor("PJSIP/1000", "PJSIP/1002")
    client.start()
    try:
        fake.push(frame("ChannelCreated", "1.1", "PJSIP/1000-00000001"))
        assert fake.settle(client)
        assert len(client.line("PJSIP/1000").connections) == 1  # type: ignore[union-attr]
        seen = Seen()
        client.add_listener(seen)
        assert client.wait_idle()
        # nothing happened since: only the state (on_connected on its notice thread, in no
        # order with the lanes), and one snapshot per line with what is on it
        assert [c[:2] for c in seen.calls if c[0] == "connected"] == [("connected", "current")]
        snaps = sorted(c[1] for c in seen.calls if c[0] == "snapshot")
        assert snaps == ["PJSIP/1000:listener_added:1", "PJSIP/1002:listener_added:0"]
        assert len(seen.calls) == 3
        # what follows continues from the snapshot, after it
        fake.push(frame("ChannelDestroyed", "1.1", "PJSIP/1000-00000001", cause=16))
        assert fake.settle(client)
        line_1000 = [c for c in seen.calls if c[1].startswith("PJSIP/1000")]
        assert line_1000[0][0] == "snapshot"
        assert [c[0] for c in line_1000[1:]] and all(c[0] == "call" for c in line_1000[1:])
    finally:
        client.stop()


def test_add_before_or_after_start_gives_the_same_first_callbacks(fake: FakeAsterisk) -> None:
    # through a hand-off the order is exact: the connection state, then the snapshots
    early, late = Seen(), Seen()
    queue = PollQueue()
    client = fake.client()
    client.monitor("PJSIP/1000")
    client.add_listener(early, call_soon=queue.call_soon)
    client.start()
    try:
        client.add_listener(late, call_soon=queue.call_soon)
        assert pump_until(queue.run_pending,
                          lambda: "snapshot" in early.names() and "snapshot" in late.names())
        # the early one also saw what the first resynchronisation emitted (the line came
        # online), before its snapshot; the late one starts from the snapshot
        assert early.names()[0] == "connected" and early.names()[-1] == "snapshot"
        assert [c[1] for c in early.calls[1:-1]] == ["PJSIP/1000:line_state_changed:"]
        assert late.names() == ["connected", "snapshot"]
        assert early.calls[0][1] == "new" and late.calls[0][1] == "current"
        assert early.calls[-1][1] == "PJSIP/1000:connected:0"
        assert late.calls[1][1] == "PJSIP/1000:listener_added:0"
    finally:
        client.stop()


def test_a_listener_added_while_reconnecting_hears_so_then_connects(
        fake: FakeAsterisk) -> None:
    queue = PollQueue()
    client = fake.client()
    client.monitor("PJSIP/1000")
    client.start()
    try:
        fake.ws.refuse(40)  # at least 40 x reconnect_min (0.01 s) down: time to add it
        fake.ws.drop()
        assert pump_until(lambda: None, lambda: not client.connected)
        seen = Seen()
        client.add_listener(seen, call_soon=queue.call_soon)
        assert pump_until(queue.run_pending, lambda: "snapshot" in seen.names())
        assert seen.names()[:3] == ["disconnected", "connected", "snapshot"]
        assert seen.calls[0][1] == "current" and seen.calls[1][1] == "new"
    finally:
        client.stop()


def test_a_listener_removed_before_it_was_activated_gets_nothing(fake: FakeAsterisk) -> None:
    client = fake.client()
    client.monitor("PJSIP/1000")
    client.start()
    try:
        seen = Seen()
        handle = client.add_listener(seen)
        handle.remove()
        fake.push(frame("ChannelCreated", "1.2", "PJSIP/1000-00000002"))
        assert fake.settle(client)
        assert seen.calls == []
    finally:
        client.stop()


def test_late_listener_through_a_poll_queue_runs_on_the_polling_thread(
        fake: FakeAsterisk) -> None:
    import threading

    queue = PollQueue()
    client = fake.client()
    client.monitor("PJSIP/1000")
    client.start()
    try:
        seen = Seen()
        client.add_listener(seen, call_soon=queue.call_soon)
        fake.push(frame("ChannelCreated", "1.3", "PJSIP/1000-00000003"))
        fake.push(frame("ChannelStateChange", "1.3", "PJSIP/1000-00000003", state="Up"))
        assert fake.settle(client)
        assert seen.calls == []  # nothing runs until the loop polls
        assert pump_until(queue.run_pending, lambda: len(seen.calls) >= 4)
        assert seen.threads() == {threading.current_thread()}
        assert seen.names()[0] == "connected"
        assert seen.names()[1] == "snapshot"
        assert [c[1].split(":")[1] for c in seen.calls[2:]] == ["originated", "established"]
        assert seen.overlaps == 0
    finally:
        client.stop()


def test_events_queued_before_the_snapshot_are_not_delivered_twice(fake: FakeAsterisk) -> None:
    # A slow listener holds line 1000's lane, so events pile up in it. A listener added
    # meanwhile must get the snapshot (which already includes them) and then only what came
    # after it: nothing twice, nothing lost.
    import threading

    from asterisk_cti import CallListener

    release = threading.Event()

    class Slow(CallListener):
        def on_call_event(self, event: Any) -> None:
            release.wait(10)

    queue = PollQueue()
    client = fake.client()
    client.monitor("PJSIP/1000")
    client.add_listener(Slow())
    client.start()
    try:
        fake.push(frame("ChannelCreated", "1.1", "PJSIP/1000-00000001"))
        fake.push(frame("ChannelStateChange", "1.1", "PJSIP/1000-00000001", state="Up"))

        def state() -> str:
            line = client.line("PJSIP/1000")
            return "" if line is None else str(line.phone_state)

        assert pump_until(lambda: None, lambda: state() == "connected")
        seen = Seen()
        client.add_listener(seen, call_soon=queue.call_soon)
        assert pump_until(lambda: None, lambda: len(queue) >= 1)  # activated
        fake.push(frame("ChannelDestroyed", "1.1", "PJSIP/1000-00000001", cause=16))
        assert pump_until(lambda: None, lambda: state() == "idle")
        release.set()
        assert fake.settle(client)
        assert pump_until(queue.run_pending, lambda: any(
            "call_cleared" in c[1] for c in seen.calls))
        assert seen.calls[0][:2] == ("connected", "current")
        assert seen.calls[1][:2] == ("snapshot", "PJSIP/1000:listener_added:1")
        kinds = [c[1].split(":")[1] for c in seen.calls[2:]]
        assert "originated" not in kinds and "established" not in kinds  # in the snapshot
        assert kinds[0] == "connection_cleared" and kinds[-1] == "call_cleared"
    finally:
        release.set()
        client.stop()


def test_callbacks_queued_in_a_hand_off_do_not_run_after_remove(fake: FakeAsterisk) -> None:
    queue = PollQueue()
    client = fake.client()
    client.monitor("PJSIP/1000")
    client.start()
    try:
        seen = Seen()
        handle = client.add_listener(seen, call_soon=queue.call_soon)
        fake.push(frame("ChannelCreated", "1.4", "PJSIP/1000-00000004"))
        assert fake.settle(client)
        assert len(queue) >= 1  # connected, snapshot and the event wait for the loop
        handle.remove()
        queue.run_pending()
        assert seen.calls == []
    finally:
        client.stop()
