"""asterisk_cti: a threaded, synchronous CTI SDK for Asterisk over ARI."""

from __future__ import annotations

import logging

from .client import CtiClient, ListenerHandle
from .config import DEFAULT_EVENT_TYPES, CtiConfig
from .errors import (
    AriHttpError,
    AsteriskCtiError,
    AuthenticationError,
    ClientStoppedError,
    ConfigurationError,
    ConflictError,
    ConnectError,
    CtiTimeoutError,
    EventParseError,
    InvalidRequestError,
    NotFoundError,
    NotInStasisError,
    ServerError,
    TransportError,
)
from .events import Bridge, CallerID, Channel, DialplanCEP, Endpoint, Event, parse_event
from .listeners import (
    ChannelEventListener,
    ConnectionEvent,
    ConnectionListener,
    EventsLostEvent,
    ResyncEvent,
)

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "DEFAULT_EVENT_TYPES",
    "Bridge",
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
    "ClientStoppedError",
    "ConfigurationError",
    "ConflictError",
    "ConnectError",
    "CtiConfig",
    "CtiTimeoutError",
    "EventParseError",
    "InvalidRequestError",
    "NotFoundError",
    "NotInStasisError",
    "ServerError",
    "TransportError",
    "__version__",
]
