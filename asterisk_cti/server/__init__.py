"""The call-centre server: one :class:`CtiServer` owns the Asterisk connection and publishes
its lines over an MQTT 5 broker; agents' desktops read their lines' topics and send control
requests, with rights enforced by the broker (:mod:`.broker`) and by the server.

Needs the ``server`` extra (``pip install 'asterisk-cti[server]'``, paho-mqtt 2); the core
package never imports this one. See ``docs/callcentre.rst``.
"""

from __future__ import annotations

from .broker import BrokerFiles, acl_text, write_mosquitto_config
from .config import AgentRights, AsteriskServer, ServerConfig
from .core import CtiServer
from .errors import (
    AccessDeniedError,
    BadRequestError,
    BrokerTlsError,
    ServerBusyError,
    ServerRequestError,
)
from .schema import OPERATIONS, SCHEMA_VERSION

__all__ = [
    "OPERATIONS", "SCHEMA_VERSION", "AccessDeniedError", "AgentRights", "AsteriskServer",
    "BadRequestError", "BrokerFiles", "BrokerTlsError", "CtiServer", "ServerBusyError",
    "ServerConfig", "ServerRequestError",
    "acl_text", "write_mosquitto_config",
]
