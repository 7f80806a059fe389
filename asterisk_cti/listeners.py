"""Listener base classes that users subclass, and the events of the connection itself.

Every callback takes exactly one immutable event object, so fields can be added later without
breaking anyone. Channel and call callbacks run on a dispatcher lane thread
(``asterisk-cti-lane_N``), connection callbacks on a notice thread (``asterisk-cti-notice_N``),
never on the reactor or processor thread: events that share a key (the line, or the channel
when it is on no monitored line) arrive in order; different keys run in parallel. A callback
that raises is logged and reported to the client's error hook, and delivery goes on. A
callback that blocks delays only its own lane, but it holds a pool thread while it does.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional

from .events.catalogue import (
    ChannelConnectedLine,
    ChannelCreated,
    ChannelDestroyed,
    ChannelEnteredBridge,
    ChannelHold,
    ChannelLeftBridge,
    ChannelStateChange,
    ChannelTalkingFinished,
    ChannelTalkingStarted,
    ChannelUnhold,
    Event,
)


class ChannelEventListener:
    """Receives the ARI channel events of monitored lines; override what you need.

    Which event types arrive is set by :attr:`CtiConfig.event_types` (the ten events of the
    original design by default). :meth:`on_event` is called first for every delivered event,
    then the specific method, if the listener has one (an event type outside the ten calls
    ``on_<snake_case_type>``, for example ``on_dial`` for ``Dial``, when you define it).

    Threading: every method runs on a dispatcher lane thread; events of one line arrive in
    order. Do not block for long: you hold up that line's events and a pool thread.
    """

    def on_event(self, event: Event) -> None:
        """Any delivered event, before its specific method."""

    def on_channel_created(self, event: ChannelCreated) -> None:
        """A channel of a monitored line was created."""

    def on_channel_connected_line(self, event: ChannelConnectedLine) -> None:
        """The other party of a channel changed."""

    def on_channel_destroyed(self, event: ChannelDestroyed) -> None:
        """A channel hung up (``event.cause`` is the Q.850 cause)."""

    def on_channel_state_change(self, event: ChannelStateChange) -> None:
        """A channel's state changed (``event.channel.state``: Ring, Ringing, Up, ...)."""

    def on_channel_hold(self, event: ChannelHold) -> None:
        """A phone put its call on hold."""

    def on_channel_unhold(self, event: ChannelUnhold) -> None:
        """A phone took its call off hold."""

    def on_channel_talking_started(self, event: ChannelTalkingStarted) -> None:
        """Speech started on a channel (needs ``TALK_DETECT(set)=`` in the dialplan)."""

    def on_channel_talking_finished(self, event: ChannelTalkingFinished) -> None:
        """Speech stopped on a channel."""

    def on_channel_entered_bridge(self, event: ChannelEnteredBridge) -> None:
        """A channel entered a bridge (a monitored one, or another one in its bridge)."""

    def on_channel_left_bridge(self, event: ChannelLeftBridge) -> None:
        """A channel left a bridge."""


@dataclass(frozen=True)
class ConnectionEvent:
    """The websocket to Asterisk connected or disconnected.

    :ivar connected: the new state.
    :ivar url: the websocket URL (never with credentials).
    :ivar reason: why it disconnected, or ``""``.
    :ivar attempt: reconnect attempts since the last successful connection.
    :ivar restarted: on connect, True when Asterisk restarted since the previous connection
        (``startup_time`` changed): every subscription was rebuilt.
    :ivar asterisk_version: on connect, the server's version when known.
    :ivar timestamp: when it happened (epoch seconds).
    :ivar error: on disconnect, the typed error when retrying cannot help and the client
        stopped trying (:class:`~asterisk_cti.AuthenticationError`,
        :class:`~asterisk_cti.PermanentConnectError` and its subclasses,
        :class:`~asterisk_cti.RedirectError`, :class:`~asterisk_cti.UnknownSourceError`);
        ``None`` while it keeps trying.
    :ivar current: True when this is not a change but the state at the moment a listener
        was added (a listener added while connected gets ``on_connected`` with
        ``current=True`` first; one added while the client reconnects, ``on_disconnected``).
    """

    connected: bool
    url: str
    reason: str = ""
    attempt: int = 0
    restarted: bool = False
    asterisk_version: str = ""
    timestamp: float = field(default_factory=time.time)
    error: Optional[BaseException] = None
    current: bool = False

    @property
    def gave_up(self) -> bool:
        """True when the client stopped trying (``error`` is set): fix the configuration
        or the server, then :meth:`~asterisk_cti.CtiClient.start` again."""
        return self.error is not None


@dataclass(frozen=True)
class EventsLostEvent:
    """Events were lost: the ring overflowed, a line's queue of parsed events was full, or
    the websocket was down. A resynchronisation from REST follows.

    :ivar count: how many frames (``ring_overflow``) or parsed events (``lane_overflow``)
        were dropped (0 when unknown, e.g. while disconnected: Asterisk keeps no backlog).
    :ivar reason: ``"ring_overflow"``, ``"lane_overflow"`` or ``"disconnected"``.
    :ivar timestamp: when the loss was noticed (epoch seconds).
    :ivar line: for ``lane_overflow``, the line whose oldest events were dropped
        (``PJSIP/1000``; for events routed by channel, its lane key as text); ``None`` when
        the loss concerns every line (the ring holds frames of all lines).
    """

    count: int
    reason: str
    timestamp: float = field(default_factory=time.time)
    line: Optional[str] = None


@dataclass(frozen=True)
class ResyncEvent:
    """The client re-read Asterisk's state from REST after a gap.

    :ivar reason: ``"connected"`` (first connect or reconnect) or ``"events_lost"``.
    :ivar channels: channels found on monitored lines.
    :ivar bridges: bridges those channels are in.
    :ivar endpoints: monitored endpoints found.
    :ivar report: the call model's account of what changed (its ``ResyncReport``), or
        ``None`` when the call model is not in use.
    :ivar timestamp: when it finished (epoch seconds).
    """

    reason: str
    channels: int
    bridges: int
    endpoints: int
    report: Optional[Any] = None
    timestamp: float = field(default_factory=time.time)


class ConnectionListener:
    """Receives the state of the connection to Asterisk; override what you need.

    Threading: runs on a notice thread (``asterisk-cti-notice_N``), never on a line's lane:
    each connection listener has its own ordered queue, so a listener that blocks delays only
    its own notices, and listeners blocked on every line cannot hold them up. Added with
    ``call_soon``, it runs where ``call_soon`` runs functions (see :doc:`/desktop`).

    The state first: a listener added while the client is connected receives
    ``on_connected`` (``event.current`` True) before any other notice; one added while the
    client runs but is not connected receives ``on_disconnected`` (``current`` True); one
    added before :meth:`~asterisk_cti.CtiClient.start` receives the real ``on_connected``.
    """

    def on_connected(self, event: ConnectionEvent) -> None:
        """Connected and subscribed (first connect, reconnect, or after an Asterisk restart)."""

    def on_disconnected(self, event: ConnectionEvent) -> None:
        """The websocket dropped; the client reconnects with backoff on its own."""

    def on_resynced(self, event: ResyncEvent) -> None:
        """The state was re-read from REST; listeners have been sent what changed."""

    def on_events_lost(self, event: EventsLostEvent) -> None:
        """Events were lost; a resynchronisation follows."""


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
_METHOD_CACHE: Dict[str, str] = {}


def method_for_event_type(event_type: str) -> str:
    """``ChannelCreated`` -> ``on_channel_created``; ``Dial`` -> ``on_dial``."""
    name = _METHOD_CACHE.get(event_type)
    if name is None:
        name = "on_" + _CAMEL.sub("_", event_type).lower()
        if len(_METHOD_CACHE) < 1024:
            _METHOD_CACHE[event_type] = name
    return name


CONNECTION_METHODS: Mapping[type, str] = {
    EventsLostEvent: "on_events_lost",
    ResyncEvent: "on_resynced",
}
