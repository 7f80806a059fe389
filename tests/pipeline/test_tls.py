"""TLS is verified by default: wss:// to a server whose certificate we do not trust fails,
and works once the CA bundle is configured (websocket and REST alike)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path
from typing import List

import pytest

from asterisk_cti import ConnectError, CtiConfig, TransportError
from asterisk_cti.rest import AriRest
from asterisk_cti.transport import websocket_transport
from tests.pipeline.test_transport import TinyServer, frame


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make a test certificate (apt-get install openssl)")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
        check=True, capture_output=True)
    return d


class TlsServer(TinyServer):
    def __init__(self, script: List[bytes], certdir: Path) -> None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(certdir / "cert.pem", certdir / "key.pem")
        self.ctx = ctx
        super().__init__(script)

    def run(self) -> None:
        raw = self.sock
        try:
            conn, _ = raw.accept()
        except OSError:
            return
        try:
            tls = self.ctx.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            conn.close()  # the client refused our certificate
            return
        # hand the TLS connection to the plain server logic
        self.sock = _OneShot(tls)  # type: ignore[assignment]
        raw.close()
        super().run()


class _OneShot:
    def __init__(self, conn: ssl.SSLSocket) -> None:
        self.conn = conn

    def accept(self) -> tuple:  # type: ignore[type-arg]
        return self.conn, None

    def close(self) -> None:
        self.conn.close()


def test_untrusted_certificate_is_refused_by_default(cert: Path) -> None:
    server = TlsServer([], cert)
    try:
        with pytest.raises(ConnectError, match=r"SSL|certificate"):
            websocket_transport(f"wss://127.0.0.1:{server.port}/ari/events", {},
                                connect_timeout=5, read_timeout=1, verify_tls=True)
    finally:
        server.close()


def test_configured_ca_bundle_is_trusted(cert: Path) -> None:
    server = TlsServer([frame(b'{"type":"X"}')], cert)
    stream = None
    try:
        stream = websocket_transport(f"wss://127.0.0.1:{server.port}/ari/events", {},
                                     connect_timeout=5, read_timeout=1,
                                     verify_tls=str(cert / "cert.pem"))
        got = stream.recv_batch()
        while got is not None and not got:
            got = stream.recv_batch()
        assert got == [b'{"type":"X"}']
    finally:
        if stream is not None:
            stream.close()
        server.close()


def test_rest_verifies_tls_by_default_and_uses_the_bundle(cert: Path) -> None:
    cfg = CtiConfig(url="https://127.0.0.1:9", password="pw")
    assert AriRest(cfg).session.verify is True
    cfg2 = cfg.replace(verify_tls=str(cert / "cert.pem"))
    assert AriRest(cfg2).session.verify == str(cert / "cert.pem")
    with pytest.raises(TransportError):
        AriRest(cfg.replace(request_timeout=0.5), retries=0).get("asterisk", "info")
