"""The ``asterisk-cti serve`` command: run a :class:`~asterisk_cti.server.CtiServer` until
Ctrl-C or SIGTERM (main thread).

Settings: the JSON file of :meth:`ServerConfig.from_file` (``--config``), where ``--broker``
and ``--site`` override the file; the broker password from ``ASTERISK_CTI_BROKER_PASSWORD``;
the Asterisk connection from the flags or the environment (:meth:`CtiConfig.from_env`, the
ARI password from ``ASTERISK_CTI_PASSWORD`` only).
"""

from __future__ import annotations

import dataclasses
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any, Dict, Optional, TextIO

from asterisk_cti import ConfigurationError, CtiConfig

from .config import ServerConfig
from .core import CtiServer

__all__ = ["run_serve"]


def _server_config(path: Path, broker: Optional[str], site: Optional[str]) -> ServerConfig:
    config = ServerConfig.from_file(path)
    if broker:
        parsed = ServerConfig.from_dict({"site": config.site, "broker": broker},
                                        config.broker_password)
        config = dataclasses.replace(config, broker_host=parsed.broker_host,
                                     broker_port=parsed.broker_port)
    if site:
        config = dataclasses.replace(config, site=site)
    if not config.broker_password:
        raise ConfigurationError(
            "broker_password", "set $ASTERISK_CTI_BROKER_PASSWORD to the server's password")
    if not config.agents:
        raise ConfigurationError("agents", "the server configuration lists no agents")
    return config


def run_serve(out: TextIO, config_path: Path, *, url: Optional[str] = None,
              user: Optional[str] = None, app: Optional[str] = None, insecure: bool = False,
              broker: Optional[str] = None, site: Optional[str] = None,
              stop: Optional[threading.Event] = None) -> int:
    """Serve until ``stop`` is set, Ctrl-C or SIGTERM (on the main thread); returns 0.

    :raises ConfigurationError: a bad configuration file, flag or missing password.
    :raises asterisk_cti.ConnectError: the broker or Asterisk refused.
    """
    config = _server_config(config_path, broker, site)
    overrides: Dict[str, Any] = {k: v for k, v in (("url", url), ("username", user),
                                                   ("app", app)) if v}
    if insecure:
        overrides["verify_tls"] = False
    cti = CtiConfig.from_env(**overrides)
    done = stop if stop is not None else threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        def _term(signum: int, frame: Optional[FrameType]) -> None:
            done.set()

        previous = signal.signal(signal.SIGTERM, _term)
    try:
        with CtiServer(config, cti):
            out.write(f"serving {len(config.lines)} lines of site {config.site} for "
                      f"{len(config.agents)} agents on mqtt://{config.broker_host}:"
                      f"{config.broker_port}\n")
            out.flush()
            while not done.wait(0.5):  # wakes for Ctrl-C (KeyboardInterrupt) too
                pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    out.write("stopped\n")
    return 0
