"""A mosquitto configuration that enforces the agents' rights.

:func:`write_mosquitto_config` writes one of two forms into a folder.

``mode="dynsec"`` (the default): mosquitto's dynamic-security plugin (shipped in the Debian
package), which checks SUBSCRIBE too: an agent subscribing outside its rights gets the MQTT 5
SUBACK reason code 0x87 (not authorized).

``mosquitto.conf``
    the listener, no anonymous clients, the plugin and its file.
``dynamic-security.json``
    one client per user with its PBKDF2-SHA512 password hash (the plugin's format, salted,
    101 iterations; the plain password is never written), one role per user, default access
    denied except unsubscribing. The server's role may subscribe, send and receive on
    ``cti/SITE/#``; agent ``A``'s role may subscribe to and receive
    ``cti/SITE/line/EXT/#`` of its lines, ``cti/SITE/server/status`` and
    ``cti/SITE/agent/A/response``, and send on ``cti/SITE/agent/A/request`` only.

``mode="acl_file"``: mosquitto's classic files. Note that mosquitto 2.0 grants every SUBSCRIBE
under an ``acl_file`` and checks read rights per message: an agent never receives another
line's messages, but its subscription is not refused.

``mosquitto.conf``
    one MQTT listener on ``127.0.0.1:PORT`` (by default), no anonymous clients, the two
    files below, persistence off.
``passwd``
    the hashed passwords of the server's user and of every agent (``mosquitto_passwd``'s
    PBKDF2-SHA512 format, made here: the plain passwords are never written to disk nor put
    on a command line).
``acl``
    the server's user reads and writes ``cti/SITE/#``; agent ``A`` gets
    ``topic read cti/SITE/line/EXT/#`` for each of its lines, ``topic read
    cti/SITE/server/status``, ``topic read cti/SITE/agent/A/response`` and ``topic write
    cti/SITE/agent/A/request``; nothing else. A supervisor reads every line it is given.

Pure but for the files written and the random salts; any thread.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from asterisk_cti import AsteriskCtiError, ConfigurationError

from . import topics
from .config import ServerConfig

__all__ = ["BrokerFiles", "acl_text", "dynsec_document", "find_mosquitto", "free_port",
           "passwd_line", "start_mosquitto", "stop_process", "write_mosquitto_config"]

#: Where Debian's mosquitto package puts the dynamic-security plugin.
DYNSEC_PLUGINS = ("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
                  "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
                  "/usr/lib/mosquitto_dynamic_security.so")

_ITERATIONS = 101


@dataclass(frozen=True)
class BrokerFiles:
    """The files :func:`write_mosquitto_config` wrote."""

    conf: Path
    #: ``passwd`` and ``acl`` (acl_file mode) or ``dynamic-security.json`` (dynsec mode)
    rights: Tuple[Path, ...]


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


def _hashed(password: str) -> Dict[str, Any]:
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, _ITERATIONS)
    return {"password": base64.b64encode(digest).decode("ascii"),
            "salt": base64.b64encode(salt).decode("ascii"), "iterations": _ITERATIONS}


def _allow(acltype: str, topic: str) -> Dict[str, Any]:
    return {"acltype": acltype, "topic": topic, "allow": True}


def dynsec_document(config: ServerConfig, passwords: Mapping[str, str]) -> Dict[str, Any]:
    """The dynamic-security plugin's JSON for ``config`` (``passwords``: user -> password,
    the server's user included). Pure but for the random salts."""
    site = config.site
    clients: List[Dict[str, Any]] = []
    roles: List[Dict[str, Any]] = []
    for user, password in passwords.items():
        role = f"role-{user}"
        clients.append({"username": user, "textName": "", **_hashed(password),
                        "roles": [{"rolename": role}]})
        if user == config.broker_user:
            everything = f"cti/{site}/#"
            acls = [_allow(t, everything) for t in
                    ("subscribePattern", "publishClientSend", "publishClientReceive")]
        else:
            readable = [f"cti/{site}/line/{topics.line_resource(line)}/#"
                        for line in config.agents[user].lines]
            readable += [topics.server_status(site), topics.agent_response(site, user)]
            acls = [_allow(t, topic) for topic in readable
                    for t in ("subscribePattern", "publishClientReceive")]
            acls.append(_allow("publishClientSend", topics.agent_request(site, user)))
        roles.append({"rolename": role, "acls": acls})
    return {"clients": clients, "groups": [], "roles": roles,
            "defaultACLAccess": {"publishClientSend": False, "publishClientReceive": False,
                                 "subscribe": False, "unsubscribe": True}}


def _dynsec_plugin() -> str:
    for path in DYNSEC_PLUGINS:
        if os.path.exists(path):
            return path
    raise ConfigurationError("server", "mosquitto_dynamic_security.so not found: install "
                             "the Debian package mosquitto, or use mode='acl_file'")


def passwd_line(user: str, password: str) -> str:
    """One line of a mosquitto password file: ``user:$7$101$SALT$HASH`` (PBKDF2-SHA512, the
    format ``mosquitto_passwd`` writes), so no password passes on a command line."""
    h = _hashed(password)
    return f"{user}:$7${h['iterations']}${h['salt']}${h['password']}"


def write_mosquitto_config(folder: Path, config: ServerConfig,
                           agent_passwords: Mapping[str, str], *, port: int,
                           bind: str = "127.0.0.1", mode: str = "dynsec",
                           run_as: Optional[str] = None, tls_certfile: Optional[Path] = None,
                           tls_keyfile: Optional[Path] = None,
                           tls_client_ca: Optional[Path] = None) -> BrokerFiles:
    """Write ``mosquitto.conf`` and the rights files for ``config`` into ``folder``.

    :param agent_passwords: each agent's broker password (every agent of ``config`` needs
        one); the server's is ``config.broker_password``.
    :param mode: ``dynsec`` or ``acl_file`` (see the module docstring).
    :param run_as: the system user mosquitto runs as when started as root (its ``user``
        option; mosquitto's default is ``mosquitto``, which must then be able to read the
        files).
    :param tls_certfile: with ``tls_keyfile``: the listener speaks TLS only (``mqtts://``),
        with this certificate chain (PEM) and key; clients verify it against their CA file.
    :param tls_client_ca: also require a client certificate signed by this CA (PEM).
    :raises ConfigurationError: a missing password, an unknown mode, the plugin missing, or
        half a TLS setting.
    """
    if (tls_certfile is None) != (tls_keyfile is None) or (
            tls_client_ca is not None and tls_certfile is None):
        raise ConfigurationError("tls", "a TLS listener needs both tls_certfile and "
                                 "tls_keyfile (and tls_client_ca only with them)")
    if mode not in ("dynsec", "acl_file"):
        raise ConfigurationError("mode", f"unknown broker rights mode {mode!r}")
    missing = [a for a in config.agents if not agent_passwords.get(a)]
    if missing or not config.broker_password:
        raise ConfigurationError(
            "server",
            f"broker passwords missing for: {', '.join(missing) or config.broker_user}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "mosquitto.conf"
    users = {config.broker_user: config.broker_password}
    users.update({a: agent_passwords[a] for a in config.agents})
    # set_tcp_nodelay: without it Nagle's algorithm holds an event back ~40 ms behind the
    # previous one's unacknowledged packet
    lines = ["per_listener_settings false", "allow_anonymous false", "persistence false",
             "set_tcp_nodelay true"]
    if mode == "dynsec":
        dynsec = folder / "dynamic-security.json"
        _private(dynsec, json.dumps(dynsec_document(config, users), indent=1))
        lines += [f"plugin {_dynsec_plugin()}", f"plugin_opt_config_file {dynsec}"]
        rights: Tuple[Path, ...] = (dynsec,)
    else:
        passwd, acl = folder / "passwd", folder / "acl"
        _private(passwd, "".join(passwd_line(u, p) + "\n" for u, p in users.items()))
        _private(acl, acl_text(config))
        lines += [f"password_file {passwd}", f"acl_file {acl}"]
        rights = (passwd, acl)
    if run_as:
        lines.append(f"user {run_as}")
    lines.append(f"listener {port} {bind}")
    if tls_certfile is not None:
        lines += [f"certfile {tls_certfile}", f"keyfile {tls_keyfile}",
                  "tls_version tlsv1.2"]
        if tls_client_ca is not None:
            lines += [f"cafile {tls_client_ca}", "require_certificate true"]
    lines.append("")
    conf.write_text("\n".join(lines), encoding="utf-8")
    return BrokerFiles(conf=conf, rights=rights)


def _private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (created so, never widened)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


def find_mosquitto() -> str:
    """The mosquitto executable (Debian's package puts it in ``/usr/sbin``). Any thread.

    :raises ConfigurationError: not installed (with what to run).
    """
    path = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None)
    if path is None:
        raise ConfigurationError(
            "mosquitto", "the MQTT broker is not installed: run 'make broker-deps' "
            "(apt-get install mosquitto)")
    return path


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a broker the caller is about to start). Any
    thread."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_mosquitto(conf: Path, log: Path, port: int, *, timeout: float = 10.0,
                    exe: Optional[str] = None) -> subprocess.Popen[bytes]:
    """Start mosquitto with ``conf`` (its output to ``log``) and return once it accepts TCP
    connections on ``127.0.0.1:port``. Stop it with :func:`stop_process`. The caller's
    thread; blocks up to ``timeout``.

    :raises ConfigurationError: mosquitto is not installed.
    :raises AsteriskCtiError: it exited, or did not listen within ``timeout`` (then it is
        killed); the message ends with the log's last lines.
    """
    with open(log, "wb") as out:
        proc = subprocess.Popen([exe or find_mosquitto(), "-c", str(conf)], stdout=out,
                                stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:  # until it listens (a condition, with a deadline)
        if proc.poll() is not None:
            raise AsteriskCtiError(f"mosquitto exited: {log.read_text(errors='replace')[-500:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            if time.monotonic() > deadline:
                stop_process(proc, 0)
                raise AsteriskCtiError(
                    f"mosquitto did not listen within {timeout:g} s: "
                    f"{log.read_text(errors='replace')[-500:]}") from None
            pause.wait(0.02)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Terminate ``proc`` (SIGTERM), kill it if it is still running after ``timeout``, and
    reap it. Nothing to do if it already ended. The caller's thread; blocks."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
