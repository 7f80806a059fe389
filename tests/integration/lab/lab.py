"""The real-Asterisk lab: a Debian sid root with Asterisk 22 and three baresip phones on 127.0.0.1.

Life cycle: :meth:`Lab.provision` builds (or reuses) a cached root with ``mmdebstrap``;
:meth:`Lab.write_config` renders the templates next to this module into an instance directory
inside that root; :meth:`Lab.start` runs Asterisk and the phones there through ``chroot`` as
the root's ``asterisk`` user; :meth:`Lab.stop` ends them by process id, SIGTERM first and
SIGKILL after a deadline. Everything listens on 127.0.0.1 only.

Several instances (e.g. ``make lab`` and a test session) can share one cached root: each has
its own directory ``/lab/<instance>`` in the root and its own ports (``LabConfig.shifted``).

Threads: none of its own; the :class:`~.phone.Phone` drivers each run one reader thread.
Everything here is called from one thread (a test session or the CLI).
"""

from __future__ import annotations

import array
import atexit
import dataclasses
import fcntl
import hashlib
import json
import logging
import math
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

import requests

from .ari import AriConfig, ari_request
from .errors import LabError, LabTimeoutError
from .phone import Phone

logger = logging.getLogger(__name__)

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"

#: Debian packages of the root; changing this list (or the recipe version) rebuilds the root.
PACKAGES: Tuple[str, ...] = ("asterisk", "asterisk-modules", "baresip")
SUITE = "sid"
#: Bump when the provisioning recipe changes in a way the cached roots must not survive.
RECIPE_VERSION = 1
_APT_OPTIONS = ('Acquire::Check-Valid-Until "false"',)
_ROOT_STAMP = ".asterisk-cti-lab.json"
_STATE_FILE = "lab.json"
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


@dataclass(frozen=True)
class PhoneSpec:
    """One lab extension.

    :ivar ext: the extension and SIP user, e.g. ``"1000"``.
    :ivar name: the caller id name.
    """

    ext: str
    name: str


#: The lab's phones, in the order their ports are assigned.
LAB_PHONES: Tuple[PhoneSpec, ...] = (
    PhoneSpec("1000", "Kai"),
    PhoneSpec("1002", "Ping"),
    PhoneSpec("1006", "Lee"),
)


def default_cache_dir() -> Path:
    """``$ASTERISK_CTI_LAB_CACHE``, else ``~/.cache/asterisk-cti/lab``.

    :returns: the directory that holds the cached root.
    """
    configured = os.environ.get("ASTERISK_CTI_LAB_CACHE")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "asterisk-cti" / "lab"


@dataclass(frozen=True)
class LabConfig:
    """Where the lab lives and which loopback ports it uses.

    Port plan (defaults): ARI/HTTP ``http_port`` (TCP 8088); Asterisk SIP ``sip_port`` (UDP
    5070); phone *i* SIP ``phone_sip_port + 2 i`` (UDP 5072, 5074, 5076; baresip also listens
    for SIP over TCP there and over TLS one port higher); phone *i* ``ctrl_tcp``
    ``ctrl_port + i`` (TCP 4441-4443); Asterisk RTP ``rtp_port`` to ``rtp_port + 99`` and
    phone *i* RTP 20 ports from ``rtp_port + 100 + 20 i`` (UDP 20000-20159).

    :ivar instance: the instance name; its files live in ``<root>/lab/<instance>``.
    :ivar cache_dir: where the root is cached.
    :ivar app: the Stasis application the ``7XXX`` extensions enter.
    :ivar ari_user: the ARI user name.
    :ivar queue_exten: the extension of the ``support`` queue.
    :ivar queue_data_exten: the extension that sets call data
        (``Set(__CTI_DATA=account=4711&choice=billing)``), then queues in ``support``.
    :ivar ivr_exten: the IVR number: ``Answer()``, then ``Stasis(<app>,ivr,main)``
        (:mod:`asterisk_cti.ivr`).
    :ivar mirror: Debian mirror URL; ``None`` reads it from ``/etc/apt`` at run time.
    """

    instance: str = "default"
    cache_dir: Path = field(default_factory=default_cache_dir)
    http_port: int = 8088
    sip_port: int = 5070
    phone_sip_port: int = 5072
    ctrl_port: int = 4441
    rtp_port: int = 20000
    app: str = "cti"
    ari_user: str = "cti"
    queue_exten: str = "2000"
    queue_data_exten: str = "2004"
    ivr_exten: str = "5000"
    mirror: Optional[str] = None
    start_timeout: float = 60.0
    stop_timeout: float = 10.0
    provision_timeout: float = 900.0

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", self.instance):
            raise ValueError(f"instance name must be [A-Za-z0-9_-]{{1,40}}: {self.instance!r}")
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,80}", self.app):
            raise ValueError(f"bad Stasis application name {self.app!r}")
        for name in ("http_port", "sip_port", "phone_sip_port", "ctrl_port", "rtp_port"):
            port = getattr(self, name)
            if not 1024 <= port <= 65000:
                raise ValueError(f"{name} must be within 1024..65000, not {port}")

    def shifted(self, offset: int) -> LabConfig:
        """The same configuration with every port moved by ``offset``.

        :param offset: added to every port.
        :returns: a new configuration.
        """
        return dataclasses.replace(
            self,
            http_port=self.http_port + offset,
            sip_port=self.sip_port + offset,
            phone_sip_port=self.phone_sip_port + offset,
            ctrl_port=self.ctrl_port + offset,
            rtp_port=self.rtp_port + offset * 2,
        )

    @classmethod
    def from_env(cls, instance: str = "default", port_offset: int = 0) -> LabConfig:
        """A configuration from the environment.

        ``ASTERISK_CTI_LAB_CACHE`` (cache directory), ``ASTERISK_CTI_LAB_PORT_OFFSET`` (added to
        ``port_offset``), ``ASTERISK_CTI_LAB_APP`` (Stasis application), and
        ``ASTERISK_CTI_LAB_MIRROR`` (Debian mirror URL).

        :param instance: instance name.
        :param port_offset: the caller's own port offset.
        :returns: the configuration.
        """
        offset = port_offset + int(os.environ.get("ASTERISK_CTI_LAB_PORT_OFFSET", "0"))
        config = cls(
            instance=instance,
            app=os.environ.get("ASTERISK_CTI_LAB_APP", "cti"),
            mirror=os.environ.get("ASTERISK_CTI_LAB_MIRROR") or None,
        )
        return config.shifted(offset)

    def phone_ports(self, index: int) -> Tuple[int, int, int, int]:
        """Ports of the phone at ``index`` in :data:`LAB_PHONES`.

        :param index: 0, 1 or 2.
        :returns: ``(sip, ctrl, rtp_first, rtp_last)``.
        """
        rtp_first = self.rtp_port + 100 + 20 * index
        # two ports a phone: baresip also listens for SIP over TLS on its SIP port + 1
        sip = self.phone_sip_port + 2 * index
        return sip, self.ctrl_port + index, rtp_first, rtp_first + 19

    def listening_ports(self) -> List[Tuple[str, str, int]]:
        """Every port the lab listens on.

        :returns: ``(what, "tcp" or "udp", port)`` triples.
        """
        ports = [("ARI/HTTP", "tcp", self.http_port), ("Asterisk SIP", "udp", self.sip_port)]
        for index, spec in enumerate(LAB_PHONES):
            sip, ctrl, _, _ = self.phone_ports(index)
            ports.append((f"phone {spec.ext} SIP", "udp", sip))
            ports.append((f"phone {spec.ext} SIP", "tcp", sip))
            ports.append((f"phone {spec.ext} SIP/TLS", "tcp", sip + 1))
            ports.append((f"phone {spec.ext} ctrl_tcp", "tcp", ctrl))
        return ports


def recipe_hash() -> str:
    """A hash of everything that decides the root's content.

    :returns: hex digest; a cached root with another hash is rebuilt.
    """
    recipe = {
        "version": RECIPE_VERSION,
        "suite": SUITE,
        "variant": "apt",
        "packages": sorted(PACKAGES),
        "apt_options": list(_APT_OPTIONS),
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def _apt_sources() -> Iterator[Tuple[str, List[str]]]:
    """Yield ``(uri, suites)`` of every enabled ``deb`` source in ``/etc/apt``."""
    apt = Path("/etc/apt")
    one_line = [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*.list"))]
    for path in one_line:
        if not path.is_file():
            continue
        for line in path.read_text(errors="replace").splitlines():
            words = line.split("#", 1)[0].split()
            if not words or words[0] != "deb":
                continue
            words = words[1:]
            if words and words[0].startswith("["):
                while words and not words[0].endswith("]"):
                    words = words[1:]
                words = words[1:]
            if len(words) >= 2:
                yield words[0], [words[1]]
    for path in sorted((apt / "sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text(errors="replace")):
            fields: Dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line:
                    continue
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.strip()
            if "deb" not in fields.get("types", "").split():
                continue
            if fields.get("enabled", "yes").lower() == "no":
                continue
            for uri in fields.get("uris", "").split():
                yield uri, fields.get("suites", "").split()


def debian_mirror() -> str:
    """The Debian archive mirror this machine's apt uses (not the security archive).

    :returns: a mirror URL such as ``http://<host>/debian``.
    :raises LabError: if ``/etc/apt`` names none.
    """
    fallback: Optional[str] = None
    for uri, suites in _apt_sources():
        if "security" in uri or any("security" in suite for suite in suites):
            continue
        if uri.rstrip("/").endswith("/debian"):
            return uri.rstrip("/")
        if fallback is None and "debian" in uri:
            fallback = uri.rstrip("/")
    if fallback is None:
        raise LabError("no Debian mirror in /etc/apt; set ASTERISK_CTI_LAB_MIRROR")
    return fallback


def render(template: str, values: Mapping[str, object]) -> str:
    """Replace every ``{{name}}`` in ``template``.

    :param template: text with ``{{name}}`` placeholders (Asterisk's ``${...}`` is left alone).
    :param values: the values.
    :returns: the rendered text.
    :raises LabError: on a placeholder without a value.
    """

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise LabError(f"template placeholder {{{{{name}}}}} has no value")
        return str(values[name])

    return _PLACEHOLDER.sub(substitute, template)


def moh_tone(seconds: float = 4.0, rate: int = 8000) -> bytes:
    """A music-on-hold stand-in: 440 Hz beeps, 0.5 s on and 0.5 s off, as 8 kHz signed linear.

    :param seconds: length.
    :param rate: sample rate (Asterisk's ``.sln`` is 8 kHz, 16 bit, little endian).
    :returns: raw samples for a ``.sln`` file.
    """
    samples = array.array("h")
    for n in range(int(seconds * rate)):
        on = (n // (rate // 2)) % 2 == 0
        samples.append(int(8000 * math.sin(2 * math.pi * 440 * n / rate)) if on else 0)
    if samples.itemsize != 2:
        raise LabError("array('h') is not 16 bit on this platform")
    if sys.byteorder != "little":
        samples.byteswap()
    return samples.tobytes()


@dataclass
class _Process:
    name: str
    pid: int
    popen: Optional[subprocess.Popen[bytes]] = None


class Lab:
    """One lab instance: provisioning, configuration, processes, phones and ARI access.

    :param config: ports, names and paths; ``LabConfig()`` by default.
    """

    def __init__(self, config: Optional[LabConfig] = None) -> None:
        self.config = config or LabConfig()
        self.phones: Dict[str, Phone] = {}
        self._processes: Dict[str, _Process] = {}
        self._state: Dict[str, Any] = {}
        self._atexit_registered = False

    # -- paths --------------------------------------------------------------------------------

    @property
    def root(self) -> Path:
        """The cached Debian root (shared by every instance)."""
        return self.config.cache_dir / "root"

    @property
    def chroot_dir(self) -> PurePosixPath:
        """The instance directory as seen inside the root."""
        return PurePosixPath("/lab") / self.config.instance

    @property
    def instance_dir(self) -> Path:
        """The instance directory on the host."""
        return self.root / "lab" / self.config.instance

    @property
    def log_path(self) -> Path:
        """Asterisk's ``full`` log on the host."""
        return self.instance_dir / "log" / "full"

    @property
    def _asterisk_conf(self) -> str:
        return str(self.chroot_dir / "etc" / "asterisk" / "asterisk.conf")

    @property
    def ari_config(self) -> AriConfig:
        """URL, user, password and Stasis app of this lab's ARI.

        :raises LabError: before :meth:`write_config` (the password does not exist yet).
        """
        state = self._load_state()
        if "ari_password" not in state:
            raise LabError(f"lab {self.config.instance}: not configured (no state file)")
        return AriConfig(
            url=f"http://127.0.0.1:{self.config.http_port}",
            user=self.config.ari_user,
            password=str(state["ari_password"]),
            app=self.config.app,
        )

    # -- provisioning -------------------------------------------------------------------------

    def is_provisioned(self) -> bool:
        """Whether the cached root exists and was built from the current recipe."""
        stamp = self.root / _ROOT_STAMP
        try:
            return bool(json.loads(stamp.read_text()).get("hash") == recipe_hash())
        except (OSError, ValueError):
            return False

    def provision(self) -> bool:
        """Build the Debian sid root with ``mmdebstrap`` unless a current one is cached.

        The build goes to a temporary directory that replaces the old root only when complete,
        under a lock file, so concurrent sessions do not build twice.

        :returns: ``True`` if it built a root, ``False`` if the cached one was current.
        :raises LabError: without root privileges or ``mmdebstrap``, or if the build fails.
        """
        if self.is_provisioned():
            return False
        if os.geteuid() != 0:
            raise LabError("the lab needs root (mmdebstrap and chroot)")
        if shutil.which("mmdebstrap") is None:
            raise LabError("mmdebstrap is missing: apt-get install mmdebstrap")
        cache = self.config.cache_dir
        cache.mkdir(parents=True, exist_ok=True)
        with open(cache / ".lock", "w") as lock:
            deadline = time.monotonic() + self.config.provision_timeout
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LabTimeoutError(f"{cache}/.lock held too long") from None
                    time.sleep(0.5)
            if self.is_provisioned():
                return False
            self._build_root(cache)
        return True

    def _build_root(self, cache: Path) -> None:
        for instance_state in (self.root / "lab").glob(f"*/{_STATE_FILE}"):
            other = Lab(dataclasses.replace(self.config, instance=instance_state.parent.name))
            if other.running_processes():
                raise LabError(
                    f"the cached root is outdated but lab {other.config.instance} still runs "
                    "in it; stop it first"
                )
        mirror = self.config.mirror or debian_mirror()
        target = cache / f"root.new-{os.getpid()}"
        shutil.rmtree(target, ignore_errors=True)
        command = ["mmdebstrap", "--variant=apt", f"--include={','.join(PACKAGES)}"]
        command += [f"--aptopt={option}" for option in _APT_OPTIONS]
        command += [SUITE, str(target), mirror]
        log_path = cache / "mmdebstrap.log"
        logger.info("building the lab root: %s (log: %s)", " ".join(command), log_path)
        started = time.monotonic()
        with open(log_path, "wb") as log:
            try:
                result = subprocess.run(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=self.config.provision_timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                shutil.rmtree(target, ignore_errors=True)
                raise LabTimeoutError(f"mmdebstrap took longer than {exc.timeout} s") from exc
        if result.returncode != 0:
            shutil.rmtree(target, ignore_errors=True)
            tail = "".join(deque(log_path.read_text(errors="replace").splitlines(True), 20))
            raise LabError(f"mmdebstrap failed ({result.returncode}):\n{tail}")
        seconds = time.monotonic() - started
        stamp = {
            "hash": recipe_hash(),
            "packages": list(PACKAGES),
            "suite": SUITE,
            "mirror": mirror,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "seconds": round(seconds, 1),
        }
        (target / _ROOT_STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
        if self.root.exists():
            old = cache / f"root.old-{os.getpid()}"
            self.root.rename(old)
            shutil.rmtree(old, ignore_errors=True)
        target.rename(self.root)
        logger.info("lab root built in %.1f s", seconds)

    def _root_path(self, pattern: str) -> PurePosixPath:
        matches = sorted(self.root.glob(pattern))
        if not matches:
            raise LabError(f"{pattern} not found in the lab root {self.root}")
        return PurePosixPath("/") / matches[0].relative_to(self.root).as_posix()

    def _asterisk_ids(self) -> Tuple[int, int]:
        for line in (self.root / "etc" / "passwd").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == "asterisk":
                return int(fields[2]), int(fields[3])
        raise LabError("the lab root has no asterisk user")

    # -- configuration ------------------------------------------------------------------------

    def write_config(self) -> None:
        """Render Asterisk's and the phones' configuration into a fresh instance directory.

        New random passwords (ARI user, SIP accounts) are generated each time and saved with
        the ports in the instance's state file.

        :raises LabError: if the root is missing or this instance is running.
        """
        if not self.is_provisioned():
            raise LabError("the lab root is missing or outdated: provision() first")
        if self.running_processes():
            raise LabError(f"lab {self.config.instance} is running; stop it first")
        config = self.config
        self._confine_resolver()
        shutil.rmtree(self.instance_dir, ignore_errors=True)
        etc = self.instance_dir / "etc" / "asterisk"
        for sub in ("db", "spool", "run", "log", "moh"):
            (self.instance_dir / sub).mkdir(parents=True, exist_ok=True)
        etc.mkdir(parents=True)
        passwords = {spec.ext: secrets.token_hex(8) for spec in LAB_PHONES}
        ari_password = secrets.token_hex(12)
        fragment = (TEMPLATE_DIR / "asterisk" / "pjsip_phone.conf").read_text()
        phone_sections = "\n".join(
            render(fragment, {"ext": s.ext, "name": s.name, "password": passwords[s.ext]})
            for s in LAB_PHONES
        )
        values = {
            "instance_dir": self.chroot_dir,
            "module_dir": self._root_path("usr/lib/*/asterisk/modules"),
            "http_port": config.http_port,
            "sip_port": config.sip_port,
            "rtp_start": config.rtp_port,
            "rtp_end": config.rtp_port + 99,
            "ari_user": config.ari_user,
            "ari_password": ari_password,
            "stasis_app": config.app,
            "queue_exten": config.queue_exten,
            "queue_data_exten": config.queue_data_exten,
            "ivr_exten": config.ivr_exten,
            "phone_sections": phone_sections,
        }
        for template in sorted((TEMPLATE_DIR / "asterisk").glob("*.conf")):
            if template.name != "pjsip_phone.conf":
                (etc / template.name).write_text(render(template.read_text(), values))
        (self.instance_dir / "moh" / "lab-tone.sln").write_bytes(moh_tone())
        module_path = self._root_path("usr/lib/*baresip/modules")
        for index, spec in enumerate(LAB_PHONES):
            sip, ctrl, rtp_first, rtp_last = config.phone_ports(index)
            phone_dir = self.instance_dir / "phones" / spec.ext
            phone_dir.mkdir(parents=True)
            phone_values = {
                "ext": spec.ext,
                "name": spec.name,
                "password": passwords[spec.ext],
                "sip_port": sip,
                "ctrl_port": ctrl,
                "rtp_start": rtp_first,
                "rtp_end": rtp_last,
                "asterisk_sip_port": config.sip_port,
                "module_path": module_path,
            }
            for template in sorted((TEMPLATE_DIR / "baresip").iterdir()):
                (phone_dir / template.name).write_text(render(template.read_text(), phone_values))
        uid, gid = self._asterisk_ids()
        for path in [self.instance_dir, *self.instance_dir.rglob("*")]:
            os.chown(path, uid, gid)
        self._state = {
            "instance": config.instance,
            "ari_url": f"http://127.0.0.1:{config.http_port}",
            "ari_user": config.ari_user,
            "ari_password": ari_password,
            "app": config.app,
            "sip_passwords": passwords,
            "pids": {},
        }
        self._save_state()

    def _confine_resolver(self) -> None:
        """Point the root's resolver at 127.0.0.1.

        mmdebstrap copies the host's ``resolv.conf``, whose name server may be any address;
        Asterisk's PJSIP resolver and baresip's DNS client must never send anything off the
        loopback (the lab only uses IP literals, so no query is ever expected).
        """
        resolv = self.root / "etc" / "resolv.conf"
        content = (
            "# asterisk-cti lab: loopback only\n"
            "nameserver 127.0.0.1\n"
            "options timeout:1 attempts:1\n"
        )
        if resolv.is_symlink() or not resolv.exists() or resolv.read_text() != content:
            resolv.unlink(missing_ok=True)
            resolv.write_text(content)

    def _state_path(self) -> Path:
        return self.instance_dir / _STATE_FILE

    def _load_state(self) -> Dict[str, Any]:
        if not self._state:
            try:
                loaded = json.loads(self._state_path().read_text())
            except (OSError, ValueError):
                return {}
            if isinstance(loaded, dict):
                self._state = loaded
        return self._state

    def _save_state(self) -> None:
        path = self._state_path()
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._state, indent=2) + "\n")
        os.chmod(tmp, 0o600)
        tmp.replace(path)

    # -- processes ----------------------------------------------------------------------------

    def _chroot_command(self, argv: List[str]) -> List[str]:
        uid, gid = self._asterisk_ids()
        return ["chroot", f"--userspec={uid}:{gid}", f"--groups={gid}", str(self.root), *argv]

    @staticmethod
    def _chroot_env() -> Dict[str, str]:
        return {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/var/lib/asterisk",
            "LANG": "C.UTF-8",
            "TZ": "UTC",
        }

    def _spawn(self, name: str, argv: List[str], log_name: str) -> _Process:
        log_path = self.instance_dir / "log" / log_name
        with open(log_path, "ab") as log:
            popen = subprocess.Popen(
                self._chroot_command(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._chroot_env(),
                start_new_session=True,
                close_fds=True,
            )
        process = _Process(name, popen.pid, popen)
        self._processes[name] = process
        self._load_state().setdefault("pids", {})[name] = popen.pid
        self._save_state()
        logger.info("lab %s: started %s (pid %d)", self.config.instance, name, popen.pid)
        return process

    def _is_ours(self, pid: int) -> bool:
        """Whether ``pid`` is a live process of this instance (not a recycled pid)."""
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            stat = Path(f"/proc/{pid}/stat").read_text()
            proc_root = os.readlink(f"/proc/{pid}/root")
        except OSError:
            return False
        if stat.rsplit(")", 1)[-1].split()[0] == "Z":
            return False
        marker = f"{self.chroot_dir}/".encode()
        return proc_root == str(self.root.resolve()) and marker in cmdline

    @staticmethod
    def _is_alive(pid: int) -> bool:
        """Whether any thread of ``pid`` still runs (so it may still hold its sockets).

        A zombie thread-group leader is not enough: Asterisk's main thread ends before its
        other threads while shutting down.
        """
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                stat = Path(f"/proc/{pid}/task/{task}/stat").read_text()
                if stat.rsplit(")", 1)[-1].split()[0] != "Z":
                    return True
        except OSError:
            return False
        return False

    def running_processes(self) -> Dict[str, int]:
        """The processes of this instance that are alive, by name (from the state file).

        :returns: ``{"asterisk": pid, "phone-1000": pid, ...}``.
        """
        pids = self._load_state().get("pids", {})
        return {name: pid for name, pid in pids.items() if self._is_ours(int(pid))}

    def is_running(self) -> bool:
        """Whether Asterisk of this instance is alive."""
        return "asterisk" in self.running_processes()

    def _check_alive(self, name: str) -> None:
        process = self._processes.get(name)
        if process is not None and process.popen is not None and process.popen.poll() is not None:
            raise LabError(
                f"lab {self.config.instance}: {name} exited with {process.popen.returncode}"
                f"\n{self.log_tail(30)}"
            )

    def start(self) -> None:
        """Provision if needed, write the configuration, start Asterisk and the three phones.

        Returns when ARI answers and all three phones are registered; on any failure everything
        started so far is stopped again.

        :raises LabError: if this instance already runs, a port is taken, or start-up fails.
        """
        if self.running_processes():
            raise LabError(f"lab {self.config.instance} is already running")
        self.provision()
        self._check_ports_free()
        self.write_config()
        if not self._atexit_registered:
            atexit.register(self.stop)
            self._atexit_registered = True
        try:
            started = time.monotonic()
            self._spawn(
                "asterisk", ["/usr/sbin/asterisk", "-f", "-C", self._asterisk_conf], "asterisk.out"
            )
            self.wait_for_ari(self.config.start_timeout)
            logger.info(
                "lab %s: ARI up after %.1f s", self.config.instance, time.monotonic() - started
            )
            self._start_phones()
            self.wait_for_registrations(self.config.start_timeout)
            logger.info(
                "lab %s: phones registered after %.1f s",
                self.config.instance,
                time.monotonic() - started,
            )
        except BaseException:
            self.stop()
            raise

    def detach(self) -> None:
        """Leave the processes running when this Python process exits (for the CLI's ``up``).

        Closes the phone drivers; :meth:`stop` in another process ends the lab later.
        """
        for phone in self.phones.values():
            phone.close()
        self.phones.clear()
        if self._atexit_registered:
            atexit.unregister(self.stop)
            self._atexit_registered = False
        self._processes.clear()

    def _start_phones(self) -> None:
        baresip = str(self._root_path("usr/bin/baresip"))
        for spec in LAB_PHONES:
            phone_dir = self.chroot_dir / "phones" / spec.ext
            self._spawn(
                f"phone-{spec.ext}", [baresip, "-f", str(phone_dir)], f"phone-{spec.ext}.log"
            )
        self.phones = {}
        for index, spec in enumerate(LAB_PHONES):
            _, ctrl, _, _ = self.config.phone_ports(index)
            phone = Phone(spec.ext, spec.name, ctrl, f"127.0.0.1:{self.config.sip_port}")
            self.phones[spec.ext] = phone
            phone.connect(timeout=self.config.start_timeout)

    def _check_ports_free(self) -> None:
        busy = []
        for what, proto, port in self.config.listening_ports():
            kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
            with socket.socket(socket.AF_INET, kind) as probe:
                if proto == "tcp":
                    # ignore TIME_WAIT leftovers of a previous run: only a listener is a clash
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    busy.append(f"{what} {proto}/{port}")
        if busy:
            raise LabError(
                "ports in use: "
                + ", ".join(busy)
                + " (another lab? set ASTERISK_CTI_LAB_PORT_OFFSET)"
            )

    def stop(self) -> None:
        """Stop the phones, then Asterisk: SIGTERM by pid, SIGKILL after the stop timeout.

        Works for processes started by another Python process too (from the state file); a pid
        is signalled only after checking it still belongs to this instance. Idempotent.
        """
        for phone in self.phones.values():
            phone.close()
        self.phones.clear()
        pids = {name: int(pid) for name, pid in self._load_state().get("pids", {}).items()}
        for name, process in self._processes.items():
            pids[name] = process.pid
        phones = [name for name in pids if name != "asterisk"]
        self._terminate([(name, pids[name]) for name in phones])
        if "asterisk" in pids:
            self._terminate([("asterisk", pids["asterisk"])])
        self._processes.clear()
        if self._state:
            self._state["pids"] = {}
            if self.instance_dir.exists():
                self._save_state()
        if self._atexit_registered:
            atexit.unregister(self.stop)
            self._atexit_registered = False

    def _terminate(self, targets: List[Tuple[str, int]]) -> None:
        alive = [(name, pid) for name, pid in targets if self._is_ours(pid)]
        for name, pid in alive:
            logger.info("lab %s: SIGTERM %s (pid %d)", self.config.instance, name, pid)
            self._signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.config.stop_timeout
        for name, pid in alive:
            if not self._wait_exit(name, pid, deadline):
                logger.warning("lab %s: SIGKILL %s (pid %d)", self.config.instance, name, pid)
                self._signal(pid, signal.SIGKILL)
                if not self._wait_exit(name, pid, time.monotonic() + 5.0):
                    raise LabError(f"{name} (pid {pid}) survived SIGKILL")

    @staticmethod
    def _signal(pid: int, signum: int) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass  # it ended between the check and the signal

    def _wait_exit(self, name: str, pid: int, deadline: float) -> bool:
        process = self._processes.get(name)
        if process is not None and process.popen is not None and process.pid == pid:
            try:
                process.popen.wait(max(0.0, deadline - time.monotonic()))
                return True
            except subprocess.TimeoutExpired:
                return False
        while self._is_alive(pid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    # -- ARI and CLI --------------------------------------------------------------------------

    def ari(
        self,
        method: str,
        path: str,
        params: Optional[Mapping[str, str]] = None,
        json_body: Optional[Any] = None,
        timeout: float = 5.0,
    ) -> requests.Response:
        """One ARI REST request as the lab's ARI user.

        :param method: HTTP method.
        :param path: below ``/ari``, e.g. ``/endpoints/PJSIP/1000``.
        :param params: query parameters.
        :param json_body: JSON body.
        :param timeout: seconds.
        :returns: the response.
        """
        return ari_request(self.ari_config, method, path, params, json_body, timeout)

    def wait_for_ari(self, timeout: float, not_startup_time: Optional[str] = None) -> Any:
        """Wait until ``GET /ari/asterisk/info`` answers 200.

        :param timeout: seconds.
        :param not_startup_time: also wait until ``status.startup_time`` differs from this
            (to tell a restarted Asterisk from the old one).
        :returns: the decoded ``/asterisk/info``.
        :raises LabTimeoutError: when ARI does not come up in time.
        """
        deadline = time.monotonic() + timeout
        last = "no answer"
        while True:
            self._check_alive("asterisk")
            try:
                response = self.ari("GET", "/asterisk/info", timeout=2.0)
                if response.status_code == 200:
                    info = response.json()
                    if info.get("status", {}).get("startup_time") != not_startup_time:
                        return info
                    last = "still the old Asterisk"
                else:
                    last = f"HTTP {response.status_code} {response.text[:80]}"
            except requests.RequestException as exc:
                last = type(exc).__name__
            if time.monotonic() >= deadline:
                raise LabTimeoutError(
                    f"ARI did not answer within {timeout:.0f} s ({last})\n{self.log_tail(30)}"
                )
            time.sleep(0.1)

    def endpoint_states(self) -> Dict[str, str]:
        """The ARI state of each lab endpoint.

        :returns: ``{"1000": "online", ...}`` (``"unknown"`` where ARI did not answer 200).
        """
        states = {}
        for spec in LAB_PHONES:
            response = self.ari("GET", f"/endpoints/PJSIP/{spec.ext}")
            states[spec.ext] = (
                str(response.json().get("state")) if response.status_code == 200 else "unknown"
            )
        return states

    def wait_for_registrations(self, timeout: float) -> None:
        """Wait until ARI reports every lab endpoint ``online``.

        :param timeout: seconds.
        :raises LabTimeoutError: with the last states if not all are online in time.
        """
        deadline = time.monotonic() + timeout
        while True:
            for name in self._processes:
                self._check_alive(name)
            states = self.endpoint_states()
            if all(state == "online" for state in states.values()):
                return
            if time.monotonic() >= deadline:
                raise LabTimeoutError(
                    f"phones not registered within {timeout:.0f} s: {states}\n"
                    + self.asterisk_cli("pjsip show contacts")
                )
            time.sleep(0.2)

    def channel_ids(self) -> List[str]:
        """The ids of every channel Asterisk has now (``GET /ari/channels``)."""
        response = self.ari("GET", "/channels")
        if response.status_code != 200:
            raise LabError(f"GET /ari/channels: HTTP {response.status_code}")
        return [str(channel["id"]) for channel in response.json()]

    def reset_calls(self, timeout: float = 15.0) -> None:
        """Bring every phone to idle and Asterisk to no channels at all.

        Phones hang up their calls first (as a user would); channels that are left (a Stasis
        channel, a Local channel) are then hung up through ARI.

        :param timeout: seconds for the whole reset.
        :raises LabTimeoutError: if calls or channels remain.
        """
        deadline = time.monotonic() + timeout
        for phone in self.phones.values():
            phone.reset(max(1.0, deadline - time.monotonic()))
        while True:
            channels = self.channel_ids()
            if not channels:
                break
            if time.monotonic() >= deadline:
                raise LabTimeoutError(f"channels left after reset: {channels}")
            for channel_id in channels:
                self.ari("DELETE", f"/channels/{channel_id}")
            time.sleep(0.2)
        for phone in self.phones.values():
            phone.wait_for("idle", max(0.1, deadline - time.monotonic()))
            phone.forget_events()

    def asterisk_cli(self, command: str, timeout: float = 20.0) -> str:
        """Run one Asterisk CLI command through the lab's control socket (``asterisk -rx``).

        :param command: e.g. ``"pjsip show contacts"``.
        :param timeout: seconds.
        :returns: the command's output.
        :raises LabError: if the remote console cannot connect.
        """
        result = subprocess.run(
            self._chroot_command(["/usr/sbin/asterisk", "-C", self._asterisk_conf, "-rx", command]),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=self._chroot_env(),
            timeout=timeout,
            check=False,
        )
        output = result.stdout.decode(errors="replace")
        if result.returncode != 0:
            raise LabError(
                f"asterisk -rx {command!r} failed ({result.returncode}): "
                f"{output}{result.stderr.decode(errors='replace')}"
            )
        return output

    def restart_asterisk(self, timeout: Optional[float] = None) -> Any:
        """``core restart now`` and wait for the new Asterisk's ARI and the phones' contacts.

        The process id stays the same (Asterisk re-executes itself).

        :param timeout: seconds (defaults to the start timeout).
        :returns: the new ``/asterisk/info``.
        """
        timeout = timeout or self.config.start_timeout
        before = self.ari("GET", "/asterisk/info").json()["status"]["startup_time"]
        self.asterisk_cli("core restart now")
        info = self.wait_for_ari(timeout, not_startup_time=before)
        self.wait_for_registrations(timeout)
        return info

    def log_tail(self, lines: int = 100) -> str:
        """The last lines of Asterisk's ``full`` log.

        :param lines: how many.
        :returns: them, or a note that there is no log yet.
        """
        try:
            with open(self.log_path, errors="replace") as log:
                return "".join(deque(log, lines))
        except OSError:
            return f"(no Asterisk log at {self.log_path})\n"
