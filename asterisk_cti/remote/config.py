"""The settings of a desktop's :class:`~asterisk_cti.remote.RemoteClient` (pure; any thread).

The agent's broker password is kept out of every repr and message. From the environment
(:meth:`RemoteConfig.from_env`): ``ASTERISK_CTI_BROKER`` (``mqtt://HOST:PORT`` or
``mqtts://HOST:PORT``), ``ASTERISK_CTI_SITE``, ``ASTERISK_CTI_AGENT`` and
``ASTERISK_CTI_AGENT_PASSWORD``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple
from urllib.parse import urlsplit

from asterisk_cti import ConfigurationError

__all__ = ["RemoteConfig"]

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_LINE = re.compile(r"^[A-Za-z0-9_-]{1,16}/[A-Za-z0-9_.@-]{1,64}$")


def check_line(line: str) -> str:
    """``PJSIP/1000``; raises :class:`ConfigurationError` for anything else (a topic level
    must never carry ``/``, ``+`` or ``#`` beyond the technology's)."""
    if not isinstance(line, str) or not _LINE.match(line):
        raise ConfigurationError("lines", f"invalid line {line!r}: expected TECH/RESOURCE")
    return line


@dataclass(frozen=True)
class RemoteConfig:
    """Where a desktop finds the CTI server and as whom it logs in. Immutable; any thread.

    :ivar site: the site's name (the server's ``ServerConfig.site``).
    :ivar agent: the agent's broker user name (the server's agent name).
    :ivar password: the agent's broker password (never in a repr, a log or an exception).
    :ivar broker_host: the MQTT broker's host; :ivar broker_port: its port (1883, 8883 with
        TLS).
    :ivar lines: the lines to watch from the start (more with
        :meth:`RemoteClient.monitor <asterisk_cti.remote.RemoteClient.monitor>`).
    :ivar tls: connect with TLS, the broker's certificate verified (host name included).
    :ivar ca_file: the CA bundle that signs the broker's certificate (default: the system's).
    :ivar connect_timeout: seconds :meth:`~asterisk_cti.remote.RemoteClient.start` waits for
        the broker's answer.
    :ivar request_timeout: seconds a control request waits for the server's answer on top of
        the operation's own timeout.
    :ivar workers: listener lane threads (``asterisk-cti-remote-lane_N``).
    :ivar keepalive: MQTT keep-alive seconds (the broker notices a dead desktop after 1.5x).
    :ivar reconnect_min: first reconnect delay (s); :ivar reconnect_max: the longest.
    :ivar client_id: the MQTT client id (default ``cti-desk-AGENT-<random>``).
    """

    site: str
    agent: str
    password: str = field(default="", repr=False)
    broker_host: str = "127.0.0.1"
    broker_port: int = 1883
    lines: Tuple[str, ...] = ()
    tls: bool = False
    ca_file: Optional[str] = None
    connect_timeout: float = 10.0
    request_timeout: float = 10.0
    workers: int = 4
    keepalive: int = 30
    reconnect_min: int = 1
    reconnect_max: int = 10
    client_id: Optional[str] = None

    def __post_init__(self) -> None:
        for what, value in (("site", self.site), ("agent", self.agent)):
            if not isinstance(value, str) or not _NAME.match(value):
                raise ConfigurationError(
                    what, f"invalid {what} {value!r}: use letters, digits, '_', '.', '-'")
        if not isinstance(self.lines, tuple):
            object.__setattr__(self, "lines", tuple(self.lines))
        for line in self.lines:
            check_line(line)
        if not self.password:
            raise ConfigurationError("password", "the agent's broker password is empty")
        if not 0 < self.broker_port < 65536:
            raise ConfigurationError("broker_port", f"invalid port {self.broker_port!r}")
        if self.ca_file is not None and not self.tls:
            raise ConfigurationError("ca_file", "a CA file needs tls=True")
        if self.connect_timeout <= 0 or self.request_timeout <= 0:
            raise ConfigurationError("timeout", "timeouts must be positive")
        if self.workers < 1 or self.keepalive < 5:
            raise ConfigurationError("workers", "workers >= 1 and keepalive >= 5 s")
        if not 0 < self.reconnect_min <= self.reconnect_max:
            raise ConfigurationError("reconnect_min", "0 < reconnect_min <= reconnect_max")

    @property
    def url(self) -> str:
        """``mqtt://HOST:PORT`` (``mqtts`` with TLS), never with credentials."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.broker_host}:{self.broker_port}"

    @classmethod
    def from_env(cls, **overrides: Any) -> RemoteConfig:
        """Build from ``ASTERISK_CTI_BROKER``, ``ASTERISK_CTI_SITE``, ``ASTERISK_CTI_AGENT``
        and ``ASTERISK_CTI_AGENT_PASSWORD``; keyword arguments override them.

        :raises ConfigurationError: a missing or malformed value.
        """
        env = os.environ
        values: Dict[str, Any] = {}
        broker = env.get("ASTERISK_CTI_BROKER")
        if broker:
            parts = urlsplit(broker)
            if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname or (
                    parts.username or parts.password):
                raise ConfigurationError(
                    "ASTERISK_CTI_BROKER", "expected mqtt://HOST:PORT or mqtts://HOST:PORT "
                    "(no credentials in the URL)")
            tls = parts.scheme == "mqtts"
            try:
                port = parts.port or (8883 if tls else 1883)
            except ValueError as exc:
                raise ConfigurationError("ASTERISK_CTI_BROKER", "invalid port") from exc
            values.update(broker_host=parts.hostname, broker_port=port, tls=tls)
        for key, name in (("site", "ASTERISK_CTI_SITE"), ("agent", "ASTERISK_CTI_AGENT"),
                          ("password", "ASTERISK_CTI_AGENT_PASSWORD")):
            if env.get(name):
                values[key] = env[name]
        values.update(overrides)
        for key in ("site", "agent"):
            if key not in values:
                raise ConfigurationError(key, f"set ${'ASTERISK_CTI_' + key.upper()}")
        return cls(**values)
