"""What the pipeline hardening tests share: a listener that records what it got, and a
client wired to a :class:`FakeAsterisk`."""

from __future__ import annotations

import threading
from typing import Any, Callable, List, Optional, Sequence

from asterisk_cti import CallListener, ChannelEventListener, ConnectionListener, CtiConfig
from asterisk_cti.client import CtiClient
from asterisk_cti.events.catalogue import Event
from asterisk_cti.testing import FakeAsterisk


class Recorder:
    """Lists filled by listener callbacks (on lane threads), one condition over them, and a
    bounded wait on it."""

    def __init__(self) -> None:
        self.cond = threading.Condition()

    def _record(self, items: List[Any], item: Any) -> None:
        with self.cond:
            items.append(item)
            self.cond.notify_all()

    def wait(self, pred: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Block until ``pred()`` holds; False when it did not within ``timeout`` seconds."""
        with self.cond:
            return self.cond.wait_for(pred, timeout)


class Rec(Recorder, ChannelEventListener, CallListener, ConnectionListener):
    """Records every channel event, call event and resynchronisation notice."""

    def __init__(self) -> None:
        super().__init__()
        self.events: List[Event] = []
        self.calls: List[Any] = []
        self.resyncs: List[Any] = []

    def on_event(self, event: Event) -> None:
        self._record(self.events, event)

    def on_call_event(self, event: Any) -> None:
        self._record(self.calls, event)

    def on_resynced(self, event: Any) -> None:
        self._record(self.resyncs, event)

    @property
    def ids(self) -> List[str]:
        """The channel id of each channel event, in order (``"?"`` for one without a channel
        object)."""
        with self.cond:
            channels = [e.raw.get("channel") for e in self.events]
        return [str(ch.get("id")) if isinstance(ch, dict) else "?" for ch in channels]


def monitoring(fake: FakeAsterisk, lines: Sequence[str], *listeners: object,
               config: Optional[CtiConfig] = None, **kwargs: Any) -> CtiClient:
    """A client of ``fake`` (not started) with ``listeners`` added, monitoring ``lines``;
    ``config`` and ``kwargs`` go to :meth:`FakeAsterisk.client`."""
    client = fake.client(config, **kwargs)
    for listener in listeners:
        client.add_listener(listener)
    client.monitor(*lines)
    return client
