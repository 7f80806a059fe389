"""Call control through the real CtiClient: a blocking operation from inside a listener."""

from __future__ import annotations

import threading
from typing import Any, List

from asterisk_cti.client import CtiClient
from asterisk_cti.control import ControlOptions
from asterisk_cti.model import CallListener

from .conftest import Pbx


class HoldOnDelivered(CallListener):
    """On the callee's delivered event, hold the caller and answer it (a wait on an event)."""

    def __init__(self, client: CtiClient) -> None:
        self.client = client
        self.caller = ""
        self.done = threading.Event()
        self.kinds: List[str] = []
        self.errors: List[BaseException] = []
        self.thread = ""

    def on_call_event(self, event: Any) -> None:
        self.kinds.append(f"{event.line}:{event.kind}")

    def on_delivered(self, event: Any) -> None:
        if event.line != "PJSIP/1002" or self.done.is_set():
            return
        self.thread = threading.current_thread().name
        try:
            self.client.control.hold(self.caller)
            self.client.control.answer(self.caller, timeout=3)
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            self.done.set()


def test_listener_can_hold_and_answer_from_on_delivered() -> None:
    pbx = Pbx(ControlOptions(dial_timeout=5))
    for ep in ("PJSIP/1000", "PJSIP/1002"):
        pbx.fake.add_endpoint(ep)
    client = pbx.client
    listener = HoldOnDelivered(client)
    client.add_listener(listener)
    try:
        pbx.start()
        client.monitor("PJSIP/1000", "PJSIP/1002")
        pbx.behaviour["PJSIP/1002"] = "ring"
        listener.caller = pbx.dialplan_call("PJSIP/1000", "1002", ["dial"])
        assert listener.done.wait(5), listener.kinds
        assert not listener.errors, listener.errors
        assert listener.thread.startswith("asterisk-cti")
        caller = listener.caller
        assert f"POST /channels/{caller}/hold" in pbx.paths("POST")
        assert pbx.channels[caller]["state"] == "Up"
    finally:
        pbx.close()
