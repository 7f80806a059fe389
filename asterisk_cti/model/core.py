"""The call model: ARI events in, CSTA-style CTI events out, per monitored line.

:class:`CallModel` is a pure state machine. It has no thread and does no I/O: the processor
thread calls :meth:`CallModel.apply` for every event, and the client passes REST data to
:meth:`CallModel.resync` and :meth:`CallModel.repair`. Every state change goes through the
table :data:`~asterisk_cti.model.transitions.TRANSITIONS`.

Readers on other threads use :attr:`CallModel.lines`, :meth:`CallModel.line`,
:meth:`CallModel.find_call` and :meth:`CallModel.connection`: they return immutable snapshots
that the processor republishes (copy-on-write, per line / call / connection) at the end of every
mutating call, so a reader never sees a half-applied event.

This module only composes the class and holds its entry points (:meth:`~CallModel.apply`,
:meth:`~CallModel.set_monitored`). The behaviour lives in mixins, each layer built on the one
below it::

    records.py      plain records and Asterisk facts (no behaviour)
    state.py        ModelState: every attribute; begin / now / dirty / unfit
    snapshots.py    Snapshots: publish and serve the immutable snapshots
    calldata.py     CallDataTracking: the call data (CTI_DATA) of channels, kept per call
    tracking.py     Tracking: channel records, calls, correlation, adoption
    connections.py  Connections: stimuli through the transition table, CTI events
    hints.py        Hints: what call control announces (expect, set_held); the look-up
    channels.py     ChannelHandlers: Channel* and EndpointStateChange events
    dialing.py      Dialing: the Dial event
    bridges.py      Bridges: bridge events, conferences, settling merges
    transfers.py    TransferHandlers: BridgeAttendedTransfer, BridgeBlindTransfer
    sync.py         Sync: resync and repair from REST

Handlers are marked ``@handles("EventType")`` (:mod:`~asterisk_cti.model.registry`);
:data:`MODEL_EVENT_TYPES` and the dispatch table of :meth:`~CallModel.apply` are derived
from the marks.

Cost: every handler does a constant number of dict look-ups plus work proportional to the
channels of the one call or line an event touches; nothing iterates over all lines or calls.
Events about channels that are neither on a monitored line nor related to a tracked call are
dropped after one or two dict look-ups.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Mapping, Set

from ..events.catalogue import Event
from .channels import ChannelHandlers
from .dialing import Dialing
from .records import (
    NO_RAW,
    LineRecord,
)
from .registry import handler_table
from .sync import Sync
from .transfers import TransferHandlers
from .types import CallEvent


class CallModel(ChannelHandlers, Dialing, TransferHandlers, Sync):
    """Lines, calls and connections built from ARI events; emits :class:`CallEvent` objects.

    Mutating methods (:meth:`apply`, :meth:`set_monitored`, :meth:`resync`, :meth:`repair`,
    :meth:`set_held`) must be called from one thread, the processor thread. The snapshot
    accessors (:attr:`lines`, :meth:`line`, :meth:`find_call`, :meth:`connection`) may be
    called from any thread; :meth:`expect` from any thread.

    :param clock: returns the current epoch time; used when an event has no timestamp and
        for REST-driven events. Injectable for tests.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        super().__init__(clock)
        self._handlers: Dict[str, Callable[[Mapping[str, Any]], None]] = {
            event_type: getattr(self, name) for event_type, name in _HANDLERS.items()
        }

    def set_monitored(self, sources: Iterable[str]) -> None:
        """Set the monitored endpoints (``PJSIP/1000``) and technologies (``PJSIP``).

        Processor thread. Lines of endpoints no longer monitored disappear (without events);
        explicitly named endpoints get a line at once (registration ``unknown``), endpoints of
        a monitored technology get one when first seen. Calls already in progress at a newly
        monitored endpoint appear after the next :meth:`resync`.
        """
        endpoints: Dict[str, None] = {}
        technologies: Set[str] = set()
        for source in sources:
            source = source.strip()
            if not source:
                continue
            if "/" in source:
                endpoints[source] = None
            else:
                technologies.add(source)
        self._endpoints, self._technologies = set(endpoints), technologies
        self._begin()
        for name in list(self._lines):
            if not self._is_monitored(name):
                rec = self._lines.pop(name)
                for ch in list(rec.connections.values()):
                    self._unindex(ch)
                    ch.line = None
                    self._dirty_chans[ch.id] = ch
                    self._dirty_calls.add(ch.call.id)
                self._dirty_lines[name] = None
        for endpoint in endpoints:
            if endpoint not in self._lines:
                self._lines[endpoint] = LineRecord(endpoint)
                self._dirty_lines[endpoint] = None
        self._publish()

    def apply(self, event: Event) -> List[CallEvent]:
        """Apply one ARI event; return the CTI events it caused, in causal order.

        Processor thread only. O(1) in the number of lines and calls. Never raises for odd
        input: an event that does not fit is counted (:attr:`unfit_count`) and its channel is
        put in :attr:`needs_repair`.
        """
        raw = event.raw
        event_type = raw.get("type")
        if type(event_type) is not str:
            event_type = event.type  # what the property makes of anything else
        handler = self._handlers.get(event_type)
        if handler is None:
            return []
        out: List[CallEvent] = []
        self._out = out
        self._raw = (raw,)
        self._ts_src = raw  # its timestamp is parsed when a handler first asks (_now)
        self._ts = None
        if self._merging:
            self._expire_merges()
        handler(raw)
        if not self.defer_publish and (self._dirty_chans or self._dirty_lines
                                       or self._dirty_calls):
            self._publish()
        self._raw = NO_RAW
        return out

    def flush(self) -> None:
        """Publish the snapshots of everything :meth:`apply` changed (with
        :attr:`defer_publish`). Processor thread; cheap when nothing changed."""
        if self._dirty_chans or self._dirty_lines or self._dirty_calls:
            self._publish()

    @property
    def needs_repair(self) -> Set[str]:
        """Channel ids the model could not fit; re-read each (``GET /channels/{id}``) and call
        :meth:`repair`. A copy; processor thread."""
        return set(self._repair)

    @property
    def tracked_channels(self) -> int:
        """How many channels the model tracks (monitored and related). Processor thread."""
        return len(self._chans)


#: ARI event type -> the name of the :class:`CallModel` method that handles it, collected
#: from the ``@handles`` marks of the mixins.
_HANDLERS: Dict[str, str] = handler_table(CallModel)

#: Every ARI event type the call model reads; the server-side filter must let these through.
#: Derived from the handlers, so a new handler is subscribed to by itself.
MODEL_EVENT_TYPES: FrozenSet[str] = frozenset(_HANDLERS)
