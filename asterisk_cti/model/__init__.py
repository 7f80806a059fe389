"""The call model: lines, calls and connections with CSTA states, built from ARI events.

A pure, thread-aware state machine with no threads and no I/O of its own. The processor thread
feeds it events (:meth:`CallModel.apply`) and REST data (:meth:`CallModel.resync`,
:meth:`CallModel.repair`); it returns :class:`CallEvent` objects for the dispatcher, which
calls :class:`CallListener` methods on its lane threads. Snapshots (:class:`Line`,
:class:`Call`, :class:`Connection`) are immutable and may be read from any thread.

See ``docs/call-model.rst`` for the state diagram, the transition table and the correlation
rules.
"""

from __future__ import annotations

from .core import MODEL_EVENT_TYPES, CallModel
from .listener import CallListener, LineSnapshotEvent
from .transitions import (
    STATE_DIAGRAM,
    TRANSITIONS,
    Stimulus,
    Transition,
    phone_state_of,
    transition_table_rst,
)
from .types import (
    CALL_EVENT_KEYS,
    LINE_OFFLINE,
    LINE_ONLINE,
    LINE_UNKNOWN,
    NO_DATA,
    NOBODY,
    Call,
    CallEvent,
    Connection,
    ConnectionState,
    ControlHint,
    Direction,
    EventKind,
    Line,
    LineStateChange,
    Party,
    PhoneState,
    Reason,
    ResyncReport,
)

__all__ = [
    "CALL_EVENT_KEYS",
    "LINE_OFFLINE",
    "LINE_ONLINE",
    "LINE_UNKNOWN",
    "MODEL_EVENT_TYPES",
    "NOBODY",
    "NO_DATA",
    "STATE_DIAGRAM",
    "TRANSITIONS",
    "Call",
    "CallEvent",
    "CallListener",
    "CallModel",
    "Connection",
    "ConnectionState",
    "ControlHint",
    "Direction",
    "EventKind",
    "Line",
    "LineSnapshotEvent",
    "LineStateChange",
    "Party",
    "PhoneState",
    "Reason",
    "ResyncReport",
    "Stimulus",
    "Transition",
    "phone_state_of",
    "transition_table_rst",
]
