"""The ``asterisk-cti serve`` command: run a :class:`~asterisk_cti.server.CtiServer` until
Ctrl-C or SIGTERM (main thread).

Settings: the JSON file of :meth:`ServerConfig.from_file` (``--config``), where the flags
(``--broker``, ``--site``, ``--name``, the TLS files, the HA timings) override the file; the
broker password from ``ASTERISK_CTI_BROKER_PASSWORD``; the Asterisk connection from the flags
or the environment (:meth:`CtiConfig.from_env`, the ARI password from
``ASTERISK_CTI_PASSWORD`` only), or, when the file names Asterisk servers (``asterisk``),
from each server's entry (its ARI password from the variable its ``password_env`` names).

A second ``serve`` with the same settings waits as a standby and takes over when the active
one dies (see :class:`~asterisk_cti.server.CtiServer`); each role change is one line.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any, Dict, Optional, TextIO

from asterisk_cti import ConfigurationError, CtiConfig

from .config import ServerConfig
from .core import ACTIVE, CtiServer

__all__ = ["run_serve"]


def _server_config(path: Path, broker: Optional[str], site: Optional[str],
                   changes: Dict[str, Any]) -> ServerConfig:
    config = ServerConfig.from_file(path)
    if broker:
        parsed = ServerConfig.from_dict({"site": config.site, "broker": broker},
                                        config.broker_password)
        config = dataclasses.replace(config, broker_host=parsed.broker_host,
                                     broker_port=parsed.broker_port,
                                     broker_tls=parsed.broker_tls)
    if site:
        config = dataclasses.replace(config, site=site)
    changes = {k: v for k, v in changes.items() if v is not None}
    if changes:  # validated again by the dataclass
        config = dataclasses.replace(config, **changes)
    if not config.broker_password:
        raise ConfigurationError(
            "broker_password", "set $ASTERISK_CTI_BROKER_PASSWORD to the server's password")
    if not config.agents:
        raise ConfigurationError("agents", "the server configuration lists no agents")
    return config


def _cti_configs(config: ServerConfig, overrides: Dict[str, Any]) -> Dict[str, CtiConfig]:
    """The Asterisk connections: one from the flags/environment, or one per named server."""
    if not config.asterisk:
        return {config.name: CtiConfig.from_env(**overrides)}
    if len(config.asterisk) > 1 and set(overrides) - {"verify_tls"}:
        raise ConfigurationError("asterisk", "--url, --user and --app apply to a single "
                                 "Asterisk server; set them per server in the file")
    made: Dict[str, CtiConfig] = {}
    for name, spec in config.asterisk.items():
        values: Dict[str, Any] = {k: v for k, v in (("url", spec.url),
                                                   ("username", spec.username),
                                                   ("app", spec.app)) if v}
        if not spec.verify_tls:
            values["verify_tls"] = False
        values.update(overrides)
        password = os.environ.get(spec.password_env)
        if not password:
            raise ConfigurationError("asterisk", f"set ${spec.password_env} to the ARI "
                                     f"password of Asterisk server {name!r}")
        made[name] = CtiConfig.from_env(password=password, **values)
    return made


def run_serve(out: TextIO, config_path: Path, *, url: Optional[str] = None,
              user: Optional[str] = None, app: Optional[str] = None, insecure: bool = False,
              broker: Optional[str] = None, site: Optional[str] = None,
              stop: Optional[threading.Event] = None,
              name: Optional[str] = None, broker_ca: Optional[str] = None,
              broker_cert: Optional[str] = None, broker_key: Optional[str] = None,
              keepalive: Optional[int] = None, fence_timeout: Optional[float] = None,
              takeover_delay: Optional[float] = None) -> int:
    """Serve until ``stop`` is set, Ctrl-C or SIGTERM (on the main thread); returns 0.
    Prints one line when serving starts (``active`` or ``standby``) and one per role
    change.

    :raises ConfigurationError: a bad configuration file, flag or missing password.
    :raises asterisk_cti.ConnectError: the broker or Asterisk refused
        (:class:`~asterisk_cti.server.BrokerTlsError`: TLS with the broker failed).
    """
    config = _server_config(config_path, broker, site, {
        "name": name, "broker_ca_file": broker_ca, "broker_certfile": broker_cert,
        "broker_keyfile": broker_key, "keepalive": keepalive,
        "fence_timeout": fence_timeout, "takeover_delay": takeover_delay})
    overrides: Dict[str, Any] = {k: v for k, v in (("url", url), ("username", user),
                                                   ("app", app)) if v}
    if insecure:
        overrides["verify_tls"] = False
    cti = _cti_configs(config, overrides)
    done = stop if stop is not None else threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        def _term(signum: int, frame: Optional[FrameType]) -> None:
            done.set()

        previous = signal.signal(signal.SIGTERM, _term)
    try:
        with CtiServer(config, cti) as server:
            scheme = "mqtts" if config.broker_tls else "mqtt"
            role = server.role
            out.write(f"{role}: serving {len(config.lines)} lines of site {config.site} for "
                      f"{len(config.agents)} agents on {scheme}://{config.broker_host}:"
                      f"{config.broker_port} (instance {server.instance})\n")
            out.flush()
            while not done.wait(0.5):  # wakes for Ctrl-C (KeyboardInterrupt) too
                now = server.role
                if now != role and now in (ACTIVE, "standby"):
                    role = now
                    out.write(f"{role} (instance {server.instance})\n")
                    out.flush()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    out.write("stopped\n")
    return 0
