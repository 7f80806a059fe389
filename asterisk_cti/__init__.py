"""asterisk_cti: a threaded, synchronous CTI SDK for Asterisk over ARI."""

from __future__ import annotations

import logging

from .client import CtiClient, ListenerHandle
from .config import DEFAULT_EVENT_TYPES, CtiConfig
from .control.calls import CallControl, ControlledCall
from .errors import (
    AriHttpError,
    AsteriskCtiError,
    AuthenticationError,
    CallFailedError,
    CallStateError,
    ChannelStateError,
    ClientStoppedError,
    ConfigurationError,
    ConflictError,
    ConnectError,
    CtiTimeoutError,
    EventParseError,
    ForbiddenError,
    InvalidRequestError,
    InvalidResponseError,
    NotFoundError,
    NotInStasisError,
    RedirectError,
    RequestTimeoutError,
    ServerError,
    TransportError,
    UnknownSourceError,
    WebSocketProtocolError,
    WouldDeadlockError,
)
from .events.catalogue import Bridge, CallerID, Channel, DialplanCEP, Endpoint, Event, parse_event
from .listeners import (
    ChannelEventListener,
    ConnectionEvent,
    ConnectionListener,
    EventsLostEvent,
    ResyncEvent,
)
from .model import (
    Call,
    CallEvent,
    CallListener,
    Connection,
    ConnectionState,
    Direction,
    EventKind,
    Line,
    LineSnapshotEvent,
    Party,
    PhoneState,
    Reason,
)

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "DEFAULT_EVENT_TYPES",
    "Bridge",
    "Call",
    "CallControl",
    "CallEvent",
    "CallFailedError",
    "CallListener",
    "CallStateError",
    "Connection",
    "ConnectionState",
    "ControlledCall",
    "Direction",
    "EventKind",
    "Line",
    "LineSnapshotEvent",
    "Party",
    "PhoneState",
    "Reason",
    "CallerID",
    "Channel",
    "ChannelEventListener",
    "ConnectionEvent",
    "ConnectionListener",
    "CtiClient",
    "DialplanCEP",
    "Endpoint",
    "Event",
    "EventsLostEvent",
    "ListenerHandle",
    "ResyncEvent",
    "parse_event",
    "AriHttpError",
    "AsteriskCtiError",
    "AuthenticationError",
    "ChannelStateError",
    "ClientStoppedError",
    "ConfigurationError",
    "ConflictError",
    "ConnectError",
    "CtiConfig",
    "CtiTimeoutError",
    "EventParseError",
    "ForbiddenError",
    "InvalidRequestError",
    "InvalidResponseError",
    "NotFoundError",
    "NotInStasisError",
    "RedirectError",
    "RequestTimeoutError",
    "ServerError",
    "TransportError",
    "UnknownSourceError",
    "WebSocketProtocolError",
    "WouldDeadlockError",
    "__version__",
]
