"""Announcing state to listeners: connection notices, and a late listener's first state.

Runs on the processor thread. A connection notice goes to every connection listener, on
its own lane of the notice pool (``asterisk-cti-notice_N``) or into its ``call_soon``
hand-off; a listener added while the client runs is activated here, in order with the
events, and first gets the current connection state and one snapshot per monitored line
(:class:`~asterisk_cti.model.LineSnapshotEvent`), before anything that follows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional, Tuple

from .errors import ClientStoppedError
from .listeners import ConnectionEvent, ResyncEvent
from .pipeline.delivery import SNAPSHOT, ListenerRegistry, Registration
from .pipeline.dispatcher import Dispatcher
from .pipeline.processor import Processor

if TYPE_CHECKING:
    from .model import CallModel

#: ``() -> (processor, dispatcher, notices)``: the running pipeline's parts (None stopped).
Parts = Callable[[], Tuple[Optional[Processor], Optional[Dispatcher], Optional[Dispatcher]]]


class Announcer:
    """Tells listeners the state they must know (processor thread).

    :param listeners: the client's listener registry.
    :param url: the websocket URL named in connection events.
    :param model: the call model whose lines late listeners get, or None.
    :param parts: the running pipeline's processor, dispatcher and notice pool.
    """

    def __init__(self, listeners: ListenerRegistry, url: str, model: Optional[CallModel],
                 parts: Parts) -> None:
        self._listeners = listeners
        self._url = url
        self._model = model
        self._parts = parts

    def activate(self, reg: Registration) -> Tuple[()]:
        """Processor thread (an ``InOrder`` marker): start delivering to a late listener,
        its current state first."""
        if not reg.waiting or reg.removed:
            return ()
        processor, _, notices = self._parts()
        connected = processor is not None and processor.connected
        if reg.connection and notices is not None:
            event = ConnectionEvent(
                connected=connected, url=self._url, current=True,
                reason="" if connected else "not connected yet")
            if reg.handoff is not None:
                # into its hand-off now, so that it runs before the snapshots below
                self._listeners.deliver_notice((reg, event))
            else:
                try:
                    notices.submit_many([(id(reg), (reg, event))])
                except ClientStoppedError:
                    pass
        if connected and reg.call:
            self.send_snapshots(reg, "listener_added", hold_lines=True)
        else:
            reg.needs_snapshot = reg.call
        reg.waiting = False
        return ()

    def send_snapshots(self, reg: Registration, reason: str, hold_lines: bool) -> None:
        """Processor thread: one snapshot per monitored line on that line's lane."""
        from .model import LineSnapshotEvent

        reg.needs_snapshot = False
        _, dispatcher, _ = self._parts()
        model = self._model
        if dispatcher is None or model is None:
            return
        items = [(line.name, (SNAPSHOT, (reg, line.name, LineSnapshotEvent(line, reason))))
                 for line in model.lines]
        if hold_lines:
            reg.pending = {key for key, _ in items}
        try:
            dispatcher.submit_many(items)
        except ClientStoppedError:
            reg.pending = set()

    def notify(self, event: Any) -> None:
        """Processor thread: hand a connection notice to every connection listener (one
        lane each on the notice pool, or its hand-off), and send the snapshots late
        listeners wait for after a resynchronisation."""
        if isinstance(event, ConnectionEvent) and event.connected:
            # late listeners whose activation did not run (stopped meanwhile): this
            # on_connected is their first notice, the snapshots follow the resync
            for reg in self._listeners.registrations:
                if reg.waiting:
                    reg.needs_snapshot = reg.call
                    reg.waiting = False
        _, _, notices = self._parts()
        if notices is not None:
            pairs = []
            for reg in self._listeners.connection_listeners:
                if reg.handoff is None:
                    pairs.append((id(reg), (reg, event)))
                else:  # queued in its hand-off on this thread: in order with the lines
                    self._listeners.deliver_notice((reg, event))
            if pairs:
                try:
                    notices.submit_many(pairs)
                except ClientStoppedError:
                    pass
        if isinstance(event, ResyncEvent):
            for reg in self._listeners.registrations:
                if reg.needs_snapshot and not reg.waiting:
                    self.send_snapshots(reg, "connected", hold_lines=False)
