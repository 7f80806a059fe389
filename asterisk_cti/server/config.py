"""The server's settings: the site, the broker, the agents and their lines (pure; any thread).

A JSON file (``asterisk-cti serve --config FILE``) holds the same fields::

    {"site": "paris", "broker": "mqtt://127.0.0.1:1883", "broker_user": "cti-server",
     "agents": {"1000": {"lines": ["PJSIP/1000"]},
                "sup": {"lines": ["PJSIP/1000", "PJSIP/1002"], "supervisor": true}}}

Optional keys: ``"broker": "mqtts://HOST:8883"`` with ``broker_ca_file`` (else the system's
CA store), ``broker_certfile`` and ``broker_keyfile`` (a client certificate) for TLS, always
verified; ``keepalive``, ``fence_timeout``, ``settle`` and ``takeover_delay`` (high
availability, see :class:`ServerConfig`); ``name`` (the server's name in its status);
and ``asterisk``, the Asterisk servers by name, each with the lines it serves::

    "asterisk": {"pbx1": {"url": "https://pbx1:8089", "username": "cti", "app": "cti",
                          "password_env": "PBX1_ARI_PASSWORD", "lines": ["PJSIP/1000"]},
                 "pbx2": {"url": "https://pbx2:8089", "username": "cti", "app": "cti",
                          "password_env": "PBX2_ARI_PASSWORD", "lines": ["PJSIP/2000"]}}

The broker password is never in the file: it comes from ``ASTERISK_CTI_BROKER_PASSWORD``
(or the ``broker_password`` argument) and is kept out of every repr; an Asterisk server's ARI
password comes from the environment variable its ``password_env`` names (default
``ASTERISK_CTI_PASSWORD``).
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

__all__ = ["AgentRights", "AsteriskServer", "ServerConfig"]

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
class AsteriskServer:
    """One named Asterisk server of a :class:`ServerConfig` and the lines it serves.

    :ivar lines: the lines (``PJSIP/1000``) on this server; an agent's line belongs to the
        server that lists it (with a single server, unlisted lines belong to it).
    :ivar url: the ARI URL (``None``: from ``--url`` or ``ASTERISK_CTI_URL``, single server
        only); :ivar username: the ARI user; :ivar app: the ARI application name.
    :ivar password_env: the environment variable holding the ARI password (never the
        password itself).
    :ivar verify_tls: verify the Asterisk server's certificate (default).
    """

    lines: Tuple[str, ...] = ()
    url: Optional[str] = None
    username: Optional[str] = None
    app: Optional[str] = None
    password_env: str = "ASTERISK_CTI_PASSWORD"
    verify_tls: bool = True

    def __post_init__(self) -> None:
        for line in self.lines:
            if not isinstance(line, str) or not _LINE.match(line):
                raise ConfigurationError("asterisk",
                                         f"invalid line {line!r}: expected TECH/RESOURCE")
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$", self.password_env or ""):
            raise ConfigurationError("asterisk", f"invalid password_env {self.password_env!r}")


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
    :ivar name: the server's name, in its status (its MQTT client id is
        ``cti-server-SITE-NAME-INSTANCE``, unique per process, so that a standby with the
        same settings can run beside it).
    :ivar connect_timeout: seconds to wait for the broker's CONNACK.
    :ivar broker_tls: connect with TLS (``mqtts://``), verifying the broker's certificate
        against :ivar broker_ca_file: (a PEM file; ``None``: the system's CA store) and its
        host name; :ivar broker_certfile: / :ivar broker_keyfile: an optional client
        certificate (PEM).
    :ivar keepalive: the MQTT keepalive (seconds): the broker declares a silent server dead
        (and publishes its last will) after 1.5 times this.
    :ivar fence_timeout: an active server that has lost the broker for this long steps down
        (stops its Asterisk clients), since a standby may have taken over (default: the
        keepalive).
    :ivar settle: seconds a server that claimed the lock waits for a competing claim before
        it becomes active (the last claim wins).
    :ivar takeover_delay: seconds a standby waits, after the active server's ``offline``,
        before it claims the site: an active server whose connection merely dropped
        reconnects (paho retries after 1 s) and says ``online`` again within it, so a blip
        is no takeover. A crash is taken over after about ``takeover_delay + settle`` plus
        the clients' start (the will fires at once when the socket closes, after 1.5 times
        the keepalive when the host vanishes).
    :ivar asterisk: the Asterisk servers by name (:class:`AsteriskServer`); empty: one
        server, named ``name``, given to :class:`~asterisk_cti.server.CtiServer` directly.
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
    broker_tls: bool = False
    broker_ca_file: Optional[str] = None
    broker_certfile: Optional[str] = None
    broker_keyfile: Optional[str] = None
    keepalive: int = 10
    fence_timeout: Optional[float] = None
    settle: float = 0.5
    takeover_delay: float = 2.0
    asterisk: Mapping[str, AsteriskServer] = field(default_factory=dict)

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
        if not self.broker_tls and (self.broker_ca_file or self.broker_certfile
                                    or self.broker_keyfile):
            raise ConfigurationError("broker_tls", "TLS files given but the broker URL is "
                                     "not mqtts:// (broker_tls is off)")
        if self.broker_keyfile and not self.broker_certfile:
            raise ConfigurationError("broker_keyfile", "a client key needs broker_certfile")
        if not 2 <= self.keepalive <= 3600:
            raise ConfigurationError("keepalive", "keepalive must be 2 to 3600 seconds")
        if self.fence_timeout is not None and not 0 < self.fence_timeout <= 3600:
            raise ConfigurationError("fence_timeout", "fence_timeout must be 0 to 3600 s")
        if not 0 <= self.settle <= 60:
            raise ConfigurationError("settle", "settle must be 0 to 60 seconds")
        if not 0 <= self.takeover_delay <= 600:
            raise ConfigurationError("takeover_delay", "takeover_delay must be 0 to 600 s")
        self._check_lines()

    def _check_lines(self) -> None:
        """Line resources unique on the site (one topic level per line, whatever its
        technology or Asterisk server) and each line on exactly one Asterisk server."""
        owner: Dict[str, str] = {}
        for server, spec in self.asterisk.items():
            _check_name("asterisk server", server)
            for line in spec.lines:
                if line in owner:
                    raise ConfigurationError("asterisk", f"line {line!r} is listed on both "
                                             f"{owner[line]!r} and {server!r}")
                owner[line] = server
        by_resource: Dict[str, str] = {}
        for line in (*self.lines, *owner):
            resource = line.split("/", 1)[1]
            other = by_resource.setdefault(resource, line)
            if other != line:
                raise ConfigurationError("agents", f"lines {other!r} and {line!r} share the "
                                         f"topic level {resource!r}: resources must be "
                                         "unique on a site")
        if len(self.asterisk) > 1:
            orphans = [line for line in self.lines if line not in owner]
            if orphans:
                raise ConfigurationError("asterisk", f"lines on no Asterisk server: "
                                         f"{', '.join(orphans)}")

    @property
    def effective_fence_timeout(self) -> float:
        """:attr:`fence_timeout`, or the keepalive when unset."""
        return float(self.keepalive if self.fence_timeout is None else self.fence_timeout)

    def server_of(self, line: str) -> str:
        """The name of the Asterisk server of ``line``: the one listing it, else the single
        one (``asterisk``'s only key, or :attr:`name` when ``asterisk`` is empty)."""
        for server, spec in self.asterisk.items():
            if line in spec.lines:
                return server
        if len(self.asterisk) == 1:
            return next(iter(self.asterisk))
        return self.name

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
        if (parts.scheme not in ("mqtt", "mqtts") or not parts.hostname or parts.username
                or parts.password or parts.path not in ("", "/") or parts.query):
            raise ConfigurationError("server",
                "'broker' must be mqtt://HOST:PORT or mqtts://HOST:PORT (no credentials "
                "in the URL)")
        tls = parts.scheme == "mqtts"
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
            port = parts.port or (8883 if tls else 1883)
        except ValueError as exc:
            raise ConfigurationError("server", f"invalid broker port in {broker!r}") from exc
        extra: Dict[str, object] = {}
        for key, kind in (("name", str), ("broker_ca_file", str), ("broker_certfile", str),
                          ("broker_keyfile", str), ("keepalive", int),
                          ("fence_timeout", (int, float)), ("settle", (int, float)),
                          ("takeover_delay", (int, float)),
                          ("workers", int), ("max_pending", int),
                          ("connect_timeout", (int, float))):
            if key in data:
                value = data[key]
                if not isinstance(value, kind) or isinstance(value, bool):
                    raise ConfigurationError(key, f"'{key}' has the wrong type")
                extra[key] = value
        asterisk_raw = data.get("asterisk", {})
        if not isinstance(asterisk_raw, Mapping):
            raise ConfigurationError("asterisk", "'asterisk' must map server names to "
                                     "{'url': ..., 'lines': [...]}")
        asterisk: Dict[str, AsteriskServer] = {}
        for server, spec in asterisk_raw.items():
            if not isinstance(spec, Mapping) or not isinstance(spec.get("lines", []), list):
                raise ConfigurationError("asterisk", f"Asterisk server {server!r} needs an "
                                         "object with a 'lines' list")
            fields = {k: spec[k] for k in ("url", "username", "app", "password_env")
                      if k in spec}
            if any(not isinstance(v, str) for v in fields.values()):
                raise ConfigurationError("asterisk", f"Asterisk server {server!r}: url, "
                                         "username, app and password_env are strings")
            verify = spec.get("verify_tls", True)
            if not isinstance(verify, bool):
                raise ConfigurationError("asterisk", "'verify_tls' must be true or false")
            asterisk[str(server)] = AsteriskServer(lines=tuple(spec.get("lines", [])),
                                                   verify_tls=verify, **fields)
        return cls(site=site, broker_host=parts.hostname, broker_port=port, broker_user=user,
                   broker_password=password, agents=agents, broker_tls=tls,
                   asterisk=asterisk, **extra)  # type: ignore[arg-type]

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
