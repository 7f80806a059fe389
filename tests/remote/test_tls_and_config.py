"""The desktop's settings, and TLS to the broker verified by default: a server certificate
no configured CA signed is refused (typed), one the ``ca_file`` signed is accepted."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path
from typing import Iterator, Tuple

import pytest

from asterisk_cti import ConfigurationError, ConnectError, TlsVerificationError
from asterisk_cti.remote import RemoteClient, RemoteConfig


def test_config_keeps_the_password_out_and_checks_values() -> None:
    config = RemoteConfig(site="paris", agent="1000", password="Zq9-secret",
                          lines=("PJSIP/1000",))
    assert "Zq9" not in repr(config) and "Zq9" not in config.url
    assert "Zq9" not in repr(RemoteClient(config))
    for bad in ({"lines": ("PJSIP/10#",)}, {"lines": ("1000",)}, {"agent": "a/b"},
                {"site": "+"}, {"password": ""}, {"ca_file": "/x.pem"},
                {"broker_port": 0}):
        with pytest.raises(ConfigurationError):
            RemoteConfig(**{"site": "paris", "agent": "1000", "password": "p", **bad})
    with pytest.raises(ConfigurationError):  # two lines on one topic level
        RemoteClient(RemoteConfig(site="paris", agent="1000", password="p",
                                  lines=("PJSIP/1000", "SIP/1000")))


def test_config_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASTERISK_CTI_BROKER", "mqtts://broker.example:8884")
    monkeypatch.setenv("ASTERISK_CTI_SITE", "paris")
    monkeypatch.setenv("ASTERISK_CTI_AGENT", "1000")
    monkeypatch.setenv("ASTERISK_CTI_AGENT_PASSWORD", "pw")
    config = RemoteConfig.from_env(lines=("PJSIP/1000",))
    assert (config.broker_host, config.broker_port, config.tls) == ("broker.example", 8884,
                                                                     True)
    monkeypatch.setenv("ASTERISK_CTI_BROKER", "mqtt://u:pw@broker.example")
    with pytest.raises(ConfigurationError):
        RemoteConfig.from_env()


@pytest.fixture
def tls_listener(tls_cert_dir: Path) -> Iterator[Tuple[int, Path]]:
    """A TLS server on 127.0.0.1 with the test certificate: it completes (or fails) the
    handshake and closes; no MQTT."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_cert_dir / "cert.pem", tls_cert_dir / "key.pem")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                conn.close()

    thread = threading.Thread(target=serve, name="test-tls-listener")
    thread.start()
    try:
        yield int(sock.getsockname()[1]), tls_cert_dir / "cert.pem"
    finally:
        stop.set()
        thread.join(5)
        sock.close()


def test_an_unverified_broker_certificate_is_refused(tls_listener: Tuple[int, Path]) -> None:
    port, ca = tls_listener
    client = RemoteClient(RemoteConfig(site="paris", agent="1000", password="pw",
                                       broker_port=port, tls=True, connect_timeout=3))
    with pytest.raises(TlsVerificationError) as info:
        client.start()
    assert "ca_file" in str(info.value)
    assert not client.running
    # the same server, its CA given: the handshake passes (then no MQTT answers)
    trusting = RemoteClient(RemoteConfig(site="paris", agent="1000", password="pw",
                                         broker_port=port, tls=True, ca_file=str(ca),
                                         connect_timeout=2))
    with pytest.raises(ConnectError) as info:
        trusting.start()
    assert not isinstance(info.value, TlsVerificationError)
