"""Shared MQTT test machinery: a real mosquitto (Debian package) on a free 127.0.0.1 port,
and throwaway TLS material made by the ``openssl`` binary (a CA, a broker certificate for
``127.0.0.1``/``localhost`` signed by it, and an unrelated CA a client must not trust).

Used by ``tests/server/conftest.py``; other MQTT tests may import it too::

    files = write_mosquitto_config(folder, config, passwords, port=port,
                                   tls_certfile=tls.server_cert, tls_keyfile=tls.server_key)
    with running_mosquitto(files.conf, port, log):
        ...
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List

import pytest

from asterisk_cti import AsteriskCtiError, ConfigurationError
from asterisk_cti.server.broker import find_mosquitto, free_port, start_mosquitto, stop_process

__all__ = ["TcpProxy", "TlsFiles", "free_port", "make_tls", "mosquitto_path", "running_mosquitto"]


def mosquitto_path() -> str:
    """The mosquitto binary; fails the test (with the fix) when it is missing."""
    try:
        return find_mosquitto()
    except ConfigurationError as exc:
        pytest.fail(str(exc))


@contextlib.contextmanager
def running_mosquitto(conf: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run mosquitto with ``conf`` until the block ends (terminated, then waited for); the
    block starts once it accepts TCP connections on ``port``."""
    try:
        proc = start_mosquitto(conf, log, port, exe=mosquitto_path())
    except AsteriskCtiError as exc:
        pytest.fail(str(exc))
    try:
        yield proc
    finally:
        stop_process(proc, 10)


@dataclass(frozen=True)
class TlsFiles:
    """PEM files made by :func:`make_tls`."""

    ca_cert: Path  #: the CA clients trust
    server_cert: Path  #: the broker's certificate (127.0.0.1, localhost), signed by ca_cert
    server_key: Path
    client_cert: Path  #: a client certificate signed by ca_cert
    client_key: Path
    rogue_ca_cert: Path  #: an unrelated CA: a client trusting only it must refuse the broker


def _openssl() -> str:
    path = shutil.which("openssl")
    if path is None:
        pytest.fail("openssl is needed (Debian package openssl: apt-get install openssl)")
    return path


def _run(args: List[str], cwd: Path) -> None:
    done = subprocess.run([_openssl(), *args], cwd=str(cwd), capture_output=True,
                          timeout=60, check=False)
    if done.returncode != 0:
        pytest.fail(f"openssl {args[0]} failed: {done.stderr.decode(errors='replace')}")


def _ca(folder: Path, name: str) -> None:
    _run(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
          "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2",
          "-subj", f"/CN=asterisk-cti test {name}",
          "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign"], folder)


def _leaf(folder: Path, name: str, ca: str, ext: str) -> None:
    (folder / f"{name}.ext").write_text(ext + "\nbasicConstraints=CA:FALSE\n"
                                        "authorityKeyIdentifier=keyid\n"
                                        "subjectKeyIdentifier=hash\n")
    _run(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
          "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}"], folder)
    _run(["x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
          "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext"],
         folder)


def make_tls(folder: Path) -> TlsFiles:
    """Make a CA, a broker certificate for ``127.0.0.1`` and ``localhost``, a client
    certificate and an unrelated CA, in ``folder`` (keys readable by the owner only)."""
    folder.mkdir(parents=True, exist_ok=True)
    _ca(folder, "ca")
    _ca(folder, "rogue-ca")
    _leaf(folder, "server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
          "extendedKeyUsage=serverAuth")
    _leaf(folder, "client", "ca", "extendedKeyUsage=clientAuth")
    for key in folder.glob("*.key"):
        key.chmod(0o600)
    return TlsFiles(folder / "ca.crt", folder / "server.crt", folder / "server.key",
                    folder / "client.crt", folder / "client.key", folder / "rogue-ca.crt")


class TcpProxy:
    """A TCP relay on 127.0.0.1 to ``target_port``, to cut a client off the broker (a network
    partition: both sides see the connection close, later connections are refused) and
    restore it. Its threads are joined by :meth:`close`."""

    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.1)
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._socks: List[socket.socket] = []
        self._threads: List[threading.Thread] = []
        self._cut = False
        self._closed = threading.Event()
        self._accepter = threading.Thread(target=self._accept, name="test-proxy-accept")
        self._accepter.start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                if self._cut:
                    client.close()
                    continue
                try:
                    upstream = socket.create_connection(("127.0.0.1", self._target), timeout=5)
                except OSError:
                    client.close()
                    continue
                self._socks += [client, upstream]
                for a, b in ((client, upstream), (upstream, client)):
                    t = threading.Thread(target=self._pump, args=(a, b), name="test-proxy-pump")
                    self._threads.append(t)
                    t.start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        src.close()  # dst is closed by its own pump (shut down above, so it wakes)

    def cut(self) -> None:
        """Close every relayed connection and refuse new ones until :meth:`restore`."""
        with self._lock:
            self._cut = True
            socks, self._socks = self._socks, []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def close(self) -> None:
        self.cut()
        self._closed.set()
        self._accepter.join(5)
        self._listener.close()
        for t in self._threads:
            t.join(5)
