"""Class 2 of the hardening issue: one bad frame never costs its neighbours.

A frame that cannot be decoded (a 100,000-deep array: RecursionError) or one whose fields have
the wrong types (a list as ``state``, as ``bridge.id``, an int as ``bridge.channels``) is
counted (``malformed`` / ``rejected``), the batch around it is delivered, and the processor
goes on."""

from __future__ import annotations

import threading
from typing import Any, Dict, List

from asterisk_cti import CallListener, ChannelEventListener, ConnectionListener
from asterisk_cti.events import Event
from asterisk_cti.testing import FakeAsterisk


def chan(cid: str, name: str = "PJSIP/1000-00000001", state: str = "Ring") -> Dict[str, Any]:
    return {"id": cid, "name": name, "state": state, "caller": {"name": "Kai", "number": "1000"},
            "connected": {"name": "", "number": ""}, "dialplan": {"context": "x", "exten": "1002",
                                                                   "priority": 1}}


def ev(etype: str, cid: str, **extra: Any) -> Dict[str, Any]:
    return {"type": etype, "timestamp": "2026-11-26T03:53:31.659+0000",
            "channel": chan(cid), "application": "cti-test", **extra}


class Rec(ChannelEventListener, ConnectionListener, CallListener):
    def __init__(self) -> None:
        self.ids: List[str] = []
        self.calls: List[Any] = []
        self.cond = threading.Condition()

    def on_event(self, event: Event) -> None:
        with self.cond:
            ch = event.raw.get("channel")
            self.ids.append(str(ch.get("id")) if isinstance(ch, dict) else "?")
            self.cond.notify_all()

    def on_call_event(self, event: Any) -> None:
        with self.cond:
            self.calls.append(event)


def test_poison_frames_in_one_batch_cost_nothing_else() -> None:
    fake = FakeAsterisk(endpoints=["PJSIP/1000"])
    rec = Rec()
    client = fake.client()
    client.add_listener(rec)
    client.monitor("PJSIP/1000")
    deep = b"[" * 100_000 + b"]" * 100_000
    bad_state = ev("ChannelStateChange", "9.1")
    bad_state["channel"]["state"] = ["Ring"]
    bad_bridge_id = ev("ChannelEnteredBridge", "9.2",
                       bridge={"id": ["b"], "channels": ["9.2"], "technology": "simple_bridge"})
    bad_bridge_chans = ev("ChannelEnteredBridge", "9.3",
                          bridge={"id": "b3", "channels": 5, "technology": "simple_bridge"})
    with client.start():
        before = client.stats()["processor"]
        # One websocket read: every frame lands in the same ring batch.
        fake.push(ev("ChannelCreated", "1.1"), deep, bad_state, ev("ChannelCreated", "1.2"),
                  bad_bridge_id, bad_bridge_chans, ev("ChannelCreated", "1.3"))
        assert fake.settle(client, 10)
        st = client.stats()["processor"]
        assert {"1.1", "1.2", "1.3"} <= set(rec.ids)
        assert st["malformed"] - before["malformed"] == 1
        assert st["frames"] - before["frames"] == 7
        # every frame is accounted for: delivered, dropped by the line filter or rejected
        assert st["rejected"] >= 1
