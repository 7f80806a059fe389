"""Class 2 of the hardening issue: one bad frame never costs its neighbours.

A frame that cannot be decoded (a 100,000-deep array: RecursionError) or one whose fields have
the wrong types (a list as ``state``, as ``bridge.id``, an int as ``bridge.channels``) is
counted (``malformed`` / ``rejected``), the batch around it is delivered, and the processor
goes on."""

from __future__ import annotations

from typing import Any, Dict, List

from asterisk_cti.events.catalogue import Event
from asterisk_cti.testing import FakeAsterisk
from tests.hardening.recording import Rec, monitoring


def chan(cid: str, name: str = "PJSIP/1000-00000001", state: str = "Ring") -> Dict[str, Any]:
    return {"id": cid, "name": name, "state": state, "caller": {"name": "Kai", "number": "1000"},
            "connected": {"name": "", "number": ""}, "dialplan": {"context": "x", "exten": "1002",
                                                                   "priority": 1}}


def ev(etype: str, cid: str, **extra: Any) -> Dict[str, Any]:
    return {"type": etype, "timestamp": "2026-11-26T03:53:31.659+0000",
            "channel": chan(cid), "application": "cti-test", **extra}


def test_poison_frames_in_one_batch_cost_nothing_else() -> None:
    fake = FakeAsterisk(endpoints=["PJSIP/1000"])
    rec = Rec()
    client = monitoring(fake, ["PJSIP/1000"], rec)
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


def test_a_raising_user_filter_costs_only_its_own_listener() -> None:
    fake = FakeAsterisk(endpoints=["PJSIP/1000"])
    rec = Rec()

    class Raw:
        def __init__(self) -> None:
            self.seen: List[str] = []

        def on_event(self, event: Event) -> None:
            self.seen.append(event.type)

    def wants(cid: str) -> bool:
        if cid == "bad":
            raise RuntimeError("user filter bug")
        return True

    raw = Raw()
    client = fake.client(model=False)
    client.add_listener(rec)
    client.add_raw_listener(raw, ["ChannelStateChange"], wants=wants)
    client.monitor("PJSIP/1000")
    with client.start():
        fake.push(ev("ChannelStateChange", "1.1"), ev("ChannelStateChange", "bad"),
                  ev("ChannelStateChange", "1.2"))
        assert fake.settle(client)
        st = client.stats()["processor"]
    assert rec.ids == ["1.1", "bad", "1.2"]  # the channel listeners got all three
    assert len(raw.seen) == 2  # the raw listener got the two its filter did not fail on
    assert st["filter_errors"] == 1 and st["rejected"] == 0


def test_a_rejected_event_is_repaired_from_rest() -> None:
    fake = FakeAsterisk(endpoints=["PJSIP/1000"])
    rec = Rec()
    client = monitoring(fake, ["PJSIP/1000"], rec)
    with client.start():
        fake.push(ev("ChannelCreated", "3.1"))  # ringing, known to the model
        assert rec.wait(lambda: any(c.connection_id == "3.1" for c in rec.calls))
        # Asterisk has it answered and bridged; the event that says so is broken
        fake.ari.add_channel(chan("3.1", state="Up"))
        n = len(rec.calls)
        fake.push(ev("ChannelEnteredBridge", "3.1",
                     bridge={"id": ["b"], "channels": ["3.1"], "technology": "simple_bridge"}))
        assert rec.wait(lambda: any(c.connection_id == "3.1" and c.state.value == "connected"
                                    for c in rec.calls[n:]))
        assert client.stats()["processor"]["rejected"] == 1
        assert fake.ari.calls("GET", "/channels/3.1")
