"""Frames and a recording listener shared by the pipeline tests."""

from __future__ import annotations

import threading
from typing import Any, List

from asterisk_cti import (
    ChannelEventListener,
    ConnectionListener,
)
from asterisk_cti.events.catalogue import Event


def chan(cid: str, name: str, state: str = "Ring") -> dict[str, Any]:
    return {"id": cid, "name": name, "state": state,
            "caller": {"name": "Kai", "number": "1000"}, "connected": {"name": "", "number": ""}}


def ev(etype: str, cid: str = "1.1", name: str = "PJSIP/1000-00000001", **extra: Any) -> dict:
    return {"type": etype, "timestamp": "2026-11-26T03:53:31.659+0000",
            "channel": chan(cid, name), "application": "cti-test", **extra}


class Recorder(ChannelEventListener, ConnectionListener):
    def __init__(self) -> None:
        self.events: List[Event] = []
        self.specific: List[str] = []
        self.connection: List[Any] = []
        self.cond = threading.Condition()

    def on_event(self, event: Event) -> None:
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    def on_channel_created(self, event: Any) -> None:
        self.specific.append("created:" + event.channel.id)

    def on_channel_destroyed(self, event: Any) -> None:
        self.specific.append("destroyed:" + event.channel.id)

    def _conn(self, event: Any) -> None:
        with self.cond:
            self.connection.append(event)
            self.cond.notify_all()

    on_connected = on_disconnected = on_resynced = on_events_lost = _conn

    def wait_for(self, pred: Any, timeout: float = 5.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: pred(self), timeout)
