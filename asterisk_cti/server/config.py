"""The server's settings: the site, the broker, the agents and their lines (pure; any thread).

A JSON file (``asterisk-cti serve --config FILE``) holds the same fields::

    {"site": "paris", "broker": "mqtt://127.0.0.1:1883", "broker_user": "cti-server",
     "agents": {"1000": {"lines": ["PJSIP/1000"]},
                "sup": {"lines": ["PJSIP/1000", "PJSIP/1002"], "supervisor": true}}}

The broker password is never in the file: it comes from ``ASTERISK_CTI_BROKER_PASSWORD``
(or the ``broker_password`` argument) and is kept out of every repr.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple
from urllib.parse import urlsplit

from asterisk_cti import ConfigurationError

__all__ = ["AgentRights", "ServerConfig"]

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_LINE = re.compile(r"^[A-Za-z0-9_-]{1,16}/[A-Za-z0-9_.@-]{1,64}$")


def _check_name(what: str, value: str) -> str:
    """A topic level or a broker user name: letters, digits, ``_ . -`` only (no ``/ + #``)."""
    if not isinstance(value, str) or not _NAME.match(value):
        raise ConfigurationError(
            what, f"invalid {what} {value!r}: use letters, digits, '_', '.', '-'")
    return value


@dataclass(frozen=True)
class AgentRights:
    """What one agent may see and control.

    :ivar lines: the agent's lines (``PJSIP/1000``): it receives their topics and controls
        only connections on them.
    :ivar supervisor: a supervisor controls connections on every line the server watches.
    """

    lines: Tuple[str, ...]
    supervisor: bool = False

    def __post_init__(self) -> None:
        for line in self.lines:
            if not isinstance(line, str) or not _LINE.match(line):
                raise ConfigurationError("server", f"invalid line {line!r}: expected TECH/RESOURCE")


@dataclass(frozen=True)
class ServerConfig:
    """Settings of a :class:`~asterisk_cti.server.CtiServer`. Immutable; any thread.

    :ivar site: the first topic level under ``cti/`` (one per call centre).
    :ivar broker_host: the MQTT broker's host; :ivar broker_port: its port.
    :ivar broker_user: the server's broker user (it may read and write every ``cti/SITE``
        topic); :ivar broker_password: its password (never in a repr or a log).
    :ivar agents: agent name -> :class:`AgentRights`.
    :ivar workers: threads executing control requests; :ivar max_pending: requests waiting
        or running at once beyond which new ones are refused (``ServerBusyError``).
    :ivar name: the server's name (its MQTT client id is ``cti-server-SITE-NAME``).
    """

    site: str
    broker_host: str = "127.0.0.1"
    broker_port: int = 1883
    broker_user: str = "cti-server"
    broker_password: str = field(default="", repr=False)
    agents: Mapping[str, AgentRights] = field(default_factory=dict)
    workers: int = 4
    max_pending: int = 64
    name: str = "server"
    connect_timeout: float = 10.0

    def __post_init__(self) -> None:
        _check_name("site", self.site)
        _check_name("server name", self.name)
        _check_name("broker user", self.broker_user)
        for agent in self.agents:
            _check_name("agent", agent)
        if not 0 < self.broker_port < 65536:
            raise ConfigurationError("server", f"invalid broker port {self.broker_port!r}")
        if self.workers < 1 or self.max_pending < self.workers:
            raise ConfigurationError("server", "workers must be >= 1 and max_pending >= workers")

    @property
    def lines(self) -> Tuple[str, ...]:
        """Every line of every agent, each once, in configuration order."""
        seen: Dict[str, None] = {}
        for rights in self.agents.values():
            for line in rights.lines:
                seen.setdefault(line, None)
        return tuple(seen)

    @classmethod
    def from_dict(cls, data: Mapping[str, object],
                  broker_password: Optional[str] = None) -> ServerConfig:
        """Build from the JSON form above; the password from the argument, else
        ``ASTERISK_CTI_BROKER_PASSWORD``.

        :raises ConfigurationError: a missing or malformed field.
        """
        if not isinstance(data, Mapping):
            raise ConfigurationError("server", "the server configuration must be a JSON object")
        site = data.get("site")
        if not isinstance(site, str):
            raise ConfigurationError("server", "the server configuration needs a 'site'")
        broker = data.get("broker", "mqtt://127.0.0.1:1883")
        if not isinstance(broker, str):
            raise ConfigurationError("server", "'broker' must be a URL like mqtt://127.0.0.1:1883")
        parts = urlsplit(broker)
        if parts.scheme != "mqtt" or not parts.hostname or parts.username or parts.password:
            raise ConfigurationError("server",
                "'broker' must be mqtt://HOST:PORT (no credentials in the URL)")
        agents_raw = data.get("agents", {})
        if not isinstance(agents_raw, Mapping):
            raise ConfigurationError("server", "'agents' must map agent names to {'lines': [...]}")
        agents: Dict[str, AgentRights] = {}
        for name, spec in agents_raw.items():
            if not isinstance(spec, Mapping) or not isinstance(spec.get("lines"), list):
                raise ConfigurationError("server", f"agent {name!r} needs a 'lines' list")
            lines: List[str] = list(spec["lines"])
            agents[str(name)] = AgentRights(tuple(lines), bool(spec.get("supervisor", False)))
        password = broker_password if broker_password is not None else os.environ.get(
            "ASTERISK_CTI_BROKER_PASSWORD", "")
        user = data.get("broker_user", "cti-server")
        if not isinstance(user, str):
            raise ConfigurationError("server", "'broker_user' must be a string")
        try:
            port = parts.port or 1883
        except ValueError as exc:
            raise ConfigurationError("server", f"invalid broker port in {broker!r}") from exc
        return cls(site=site, broker_host=parts.hostname, broker_port=port, broker_user=user,
                   broker_password=password, agents=agents)

    @classmethod
    def from_file(cls, path: Path, broker_password: Optional[str] = None) -> ServerConfig:
        """Read the JSON file ``path`` (see :meth:`from_dict`).

        :raises ConfigurationError: unreadable or malformed.
        """
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(
                "server", f"cannot read the server configuration {path}: {exc}") from exc
        return cls.from_dict(data, broker_password)
