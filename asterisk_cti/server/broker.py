"""A mosquitto configuration that enforces the agents' rights (runs ``mosquitto_passwd``).

:func:`write_mosquitto_config` writes three files into a folder:

``mosquitto.conf``
    one MQTT listener on ``127.0.0.1:PORT`` (by default), no anonymous clients, the two
    files below, persistence off.
``passwd``
    the hashed passwords of the server's user and of every agent (made with the Debian
    package's ``mosquitto_passwd -b``; the plain passwords are never written to disk).
``acl``
    the server's user reads and writes ``cti/SITE/#``; agent ``A`` gets
    ``topic read cti/SITE/line/EXT/#`` for each of its lines, ``topic read
    cti/SITE/server/status``, ``topic read cti/SITE/agent/A/response`` and ``topic write
    cti/SITE/agent/A/request``; nothing else. A supervisor reads every line it is given.

Any thread; blocks while ``mosquitto_passwd`` runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import List, Mapping, Optional

from asterisk_cti import ConfigurationError

from . import topics
from .config import ServerConfig

__all__ = ["BrokerFiles", "acl_text", "write_mosquitto_config"]


@dataclass(frozen=True)
class BrokerFiles:
    """The files :func:`write_mosquitto_config` wrote."""

    conf: Path
    passwd: Path
    acl: Path


def acl_text(config: ServerConfig) -> str:
    """The mosquitto ACL file of ``config`` (pure)."""
    site = config.site
    out: List[str] = [f"user {config.broker_user}", f"topic readwrite cti/{site}/#", ""]
    for agent, rights in config.agents.items():
        out.append(f"user {agent}")
        for line in rights.lines:
            out.append(f"topic read cti/{site}/line/{topics.line_resource(line)}/#")
        out.append(f"topic read {topics.server_status(site)}")
        out.append(f"topic read {topics.agent_response(site, agent)}")
        out.append(f"topic write {topics.agent_request(site, agent)}")
        out.append("")
    return "\n".join(out)


def _passwd_tool() -> str:
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        raise ConfigurationError("server",
            "mosquitto_passwd not found: install the Debian package mosquitto")
    return tool


def write_mosquitto_config(folder: Path, config: ServerConfig,
                           agent_passwords: Mapping[str, str], *, port: int,
                           bind: str = "127.0.0.1",
                           run_as: Optional[str] = None) -> BrokerFiles:
    """Write ``mosquitto.conf``, ``passwd`` and ``acl`` for ``config`` into ``folder``.

    :param agent_passwords: each agent's broker password (every agent of ``config`` needs
        one); the server's is ``config.broker_password``.
    :param run_as: the system user mosquitto runs as when started as root (its ``user``
        option; mosquitto's default is ``mosquitto``, which must then be able to read the
        files).
    :raises ConfigurationError: a missing password, a name with a space or newline, or
        ``mosquitto_passwd`` missing or failing (its message carries no password).
    """
    missing = [a for a in config.agents if not agent_passwords.get(a)]
    if missing or not config.broker_password:
        raise ConfigurationError("server",
            f"broker passwords missing for: {', '.join(missing) or config.broker_user}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    passwd, acl, conf = folder / "passwd", folder / "acl", folder / "mosquitto.conf"
    tool = _passwd_tool()
    passwd.write_text("", encoding="utf-8")
    os.chmod(passwd, 0o600)
    users = {config.broker_user: config.broker_password}
    users.update({a: agent_passwords[a] for a in config.agents})
    for user, password in users.items():
        done = subprocess.run([tool, "-b", str(passwd), user, password], capture_output=True,
                              timeout=30, check=False)
        if done.returncode != 0:
            raise ConfigurationError("server", f"mosquitto_passwd failed for user {user!r} "
                                     f"(exit {done.returncode})")
    acl.write_text(acl_text(config), encoding="utf-8")
    os.chmod(acl, 0o600)
    conf.write_text("\n".join([
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {passwd}",
        f"acl_file {acl}",
        "persistence false",
        *([f"user {run_as}"] if run_as else []),
        f"listener {port} {bind}",
        "",
    ]), encoding="utf-8")
    return BrokerFiles(conf=conf, passwd=passwd, acl=acl)
