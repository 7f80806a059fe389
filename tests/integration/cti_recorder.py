"""A listener that records everything a :class:`~asterisk_cti.CtiClient` delivers, for the
integration tests: channel events, CTI (call model) events and connection events, in arrival
order, with a condition to wait on.

Threads: the client calls the ``on_*`` methods on its dispatcher lane threads; tests read and
wait from the test thread. Everything is guarded by one condition variable.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

from asterisk_cti import (
    CallEvent,
    CallListener,
    ChannelEventListener,
    ConnectionEvent,
    ConnectionListener,
    Event,
    EventsLostEvent,
    ResyncEvent,
)
from asterisk_cti.events.catalogue import endpoint_of_channel_name

#: Groups of recorded items.
CHANNEL, CALL, CONNECTION = "channel", "call", "connection"


@dataclass(frozen=True)
class Recorded:
    """One delivered item.

    :ivar index: its position in the recording (0-based).
    :ivar group: ``channel``, ``call`` or ``connection``.
    :ivar name: the ARI event type (``ChannelCreated``), the CTI kind (``delivered``), or the
        connection callback without ``on_`` (``connected``, ``disconnected``, ``resynced``,
        ``events_lost``).
    :ivar line: the monitored line (``PJSIP/1000``) where it applies, else ``""``.
    :ivar event: the delivered object.
    :ivar thread: the name of the thread that delivered it.
    :ivar monotonic: when it was recorded.
    """

    index: int
    group: str
    name: str
    line: str
    event: Any
    thread: str
    monotonic: float

    def __str__(self) -> str:
        if self.group == CALL:
            return f"{self.line} {describe_call_event(self.event)}"
        if self.group == CHANNEL:
            return f"{self.line or '-'} {describe_channel_event(self.event)}"
        return f"[{self.name}] {describe_connection_event(self.event)}"


def _party(party: Any) -> str:
    if party is None:
        return "/"
    return f"{party.number}/{party.name}"


def describe_call_event(event: CallEvent) -> str:
    """A compact text for a CTI event, as in the docs: ``established(connected 1002/Ping)``."""
    kind = event.kind.value
    details: List[str] = []
    if kind == "delivered":
        details.append(f"calling {_party(event.calling)}")
    if kind in ("established", "transferred", "party_changed", "held", "retrieved"):
        details.append(f"connected {_party(event.connected)}")
    if kind == "conferenced":
        details.append("conference " + " ".join(_party(p) for p in event.conference))
    if kind in ("failed", "connection_cleared", "call_cleared"):
        details.append(f"cause {event.cause}")
        if event.dialstatus and kind == "failed":
            details.append(event.dialstatus)
    if event.reason.value != "normal":
        details.append(event.reason.value)
    if kind == "line_state_changed":
        details.append(event.line_state)
    return f"{kind}({', '.join(details)})" if details else kind


def describe_channel_event(event: Event) -> str:
    """``ChannelStateChange(PJSIP/1000-00000001 Up)`` and the like."""
    channel = event.raw.get("channel")
    if not isinstance(channel, dict):
        return event.type
    extra = ""
    if event.type == "ChannelStateChange":
        extra = f" {channel.get('state')}"
    elif event.type == "ChannelDestroyed":
        extra = f" cause {event.raw.get('cause')}"
    elif event.type in ("ChannelEnteredBridge", "ChannelLeftBridge"):
        bridge = event.raw.get("bridge")
        if isinstance(bridge, dict):
            extra = f" bridge {str(bridge.get('id'))[:8]}"
    return f"{event.type}({channel.get('name')}{extra})"


def describe_connection_event(event: Any) -> str:
    """A compact text for a connection callback's event."""
    if isinstance(event, ConnectionEvent):
        if event.connected:
            return f"restarted={event.restarted} attempt={event.attempt}"
        return f"reason={event.reason!r}"
    if isinstance(event, ResyncEvent):
        report = event.report
        counts = ""
        if report is not None:
            counts = (f" added={len(report.added)} removed={len(report.removed)} "
                      f"changed={len(report.changed)}")
        return f"reason={event.reason} channels={event.channels} bridges={event.bridges}{counts}"
    if isinstance(event, EventsLostEvent):
        return f"count={event.count} reason={event.reason}"
    return repr(event)


def line_of_channel_event(event: Event) -> str:
    """The endpoint (``PJSIP/1000``) of the channel an event is about, or ``""``."""
    channel = event.raw.get("channel")
    if isinstance(channel, dict) and isinstance(channel.get("name"), str):
        return endpoint_of_channel_name(channel["name"])
    return ""


class CtiRecorder(ChannelEventListener, CallListener, ConnectionListener):
    """Records every channel, CTI and connection event a client delivers.

    :param name: a label for reports (the client's application name).
    """

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._cond = threading.Condition()
        self._items: List[Recorded] = []

    # -- listener callbacks (lane threads) ------------------------------------------------------

    def _add(self, group: str, name: str, line: str, event: Any) -> None:
        with self._cond:
            self._items.append(Recorded(
                len(self._items), group, name, line, event,
                threading.current_thread().name, time.monotonic()))
            self._cond.notify_all()

    def on_event(self, event: Event) -> None:  # ChannelEventListener: every channel event
        self._add(CHANNEL, event.type, line_of_channel_event(event), event)

    def on_call_event(self, event: CallEvent) -> None:  # CallListener: every CTI event
        self._add(CALL, event.kind.value, event.line, event)

    def on_connected(self, event: ConnectionEvent) -> None:
        self._add(CONNECTION, "connected", "", event)

    def on_disconnected(self, event: ConnectionEvent) -> None:
        self._add(CONNECTION, "disconnected", "", event)

    def on_resynced(self, event: ResyncEvent) -> None:
        self._add(CONNECTION, "resynced", "", event)

    def on_events_lost(self, event: EventsLostEvent) -> None:
        self._add(CONNECTION, "events_lost", "", event)

    # -- reading (any thread) ------------------------------------------------------------------

    @property
    def items(self) -> List[Recorded]:
        """A snapshot of everything recorded, oldest first."""
        with self._cond:
            return list(self._items)

    def mark(self) -> int:
        """The index the next recorded item will get (pass it as ``since``)."""
        with self._cond:
            return len(self._items)

    def select(self, group: Optional[str] = None, line: Optional[str] = None,
               since: int = 0, names: Optional[Iterable[str]] = None) -> List[Recorded]:
        """Recorded items of a group and/or line, from ``since`` on."""
        wanted = set(names) if names is not None else None
        with self._cond:
            return [
                r for r in self._items[since:]
                if (group is None or r.group == group) and (line is None or r.line == line)
                and (wanted is None or r.name in wanted)
            ]

    def call_events(self, line: Optional[str] = None, since: int = 0) -> List[CallEvent]:
        """The CTI events (of one line), in order."""
        return [r.event for r in self.select(CALL, line, since)]

    def kinds(self, line: str, since: int = 0, skip: Sequence[str] = ()) -> List[str]:
        """The CTI event kinds of one line, in order, without the kinds in ``skip``."""
        return [r.name for r in self.select(CALL, line, since) if r.name not in skip]

    def channel_types(self, line: str, since: int = 0) -> List[str]:
        """The channel event types of one line, in order."""
        return [r.name for r in self.select(CHANNEL, line, since)]

    def wait_for(self, predicate: Callable[[Recorded], bool], timeout: float = 10.0,
                 what: str = "a matching event", since: int = 0) -> Recorded:
        """Wait until an item recorded at or after ``since`` matches ``predicate``.

        :returns: the first such item.
        :raises AssertionError: after ``timeout`` seconds, with everything recorded.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for item in self._items[since:]:
                    if predicate(item):
                        return item
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"CTI recorder {self.name}: no {what} within {timeout:.1f} s; recorded:\n"
                        + self.format_locked(since))
                self._cond.wait(remaining)

    def wait_call(self, kind: str, line: str, timeout: float = 10.0, since: int = 0,
                  where: Optional[Callable[[CallEvent], bool]] = None) -> CallEvent:
        """Wait for a CTI event of ``kind`` at ``line`` (and ``where``); returns it."""
        item = self.wait_for(
            lambda r: r.group == CALL and r.name == kind and r.line == line
            and (where is None or where(r.event)),
            timeout, f"{kind} at {line}", since)
        return item.event  # type: ignore[no-any-return]

    def wait_channel(self, event_type: str, line: str, timeout: float = 10.0, since: int = 0,
                     where: Optional[Callable[[Event], bool]] = None) -> Event:
        """Wait for a channel event of ``event_type`` on ``line``'s channel; returns it."""
        item = self.wait_for(
            lambda r: r.group == CHANNEL and r.name == event_type and r.line == line
            and (where is None or where(r.event)),
            timeout, f"{event_type} on {line}", since)
        return item.event  # type: ignore[no-any-return]

    def wait_connection(self, name: str, timeout: float = 10.0, since: int = 0,
                        where: Optional[Callable[[Any], bool]] = None) -> Any:
        """Wait for a connection callback (``connected``, ``resynced``...); returns its event."""
        item = self.wait_for(
            lambda r: r.group == CONNECTION and r.name == name
            and (where is None or where(r.event)),
            timeout, f"on_{name}", since)
        return item.event

    # -- reporting -----------------------------------------------------------------------------

    def format_locked(self, since: int = 0) -> str:
        return "\n".join(f"  {r.index:3d} {r}" for r in self._items[since:]) or "  (nothing)"

    def format(self, since: int = 0) -> str:
        """Every recorded item, one a line."""
        with self._cond:
            return self.format_locked(since)

    def sequences(self, lines: Iterable[str], since: int = 0) -> Dict[str, str]:
        """The CTI sequence of each line, as in the docs."""
        return {
            line: ", ".join(describe_call_event(e) for e in self.call_events(line, since))
            for line in lines
        }

    def format_sequences(self, lines: Iterable[str], since: int = 0) -> str:
        """The CTI sequence of each line, one line each."""
        return "\n".join(f"{line}: {seq}" for line, seq in self.sequences(lines, since).items())
