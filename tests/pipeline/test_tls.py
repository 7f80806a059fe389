"""TLS is verified by default: wss:// to a server whose certificate we do not trust fails,
and works once the CA bundle is configured (websocket and REST alike)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import List

import pytest

from asterisk_cti import ConnectError, CtiConfig, TransportError
from asterisk_cti.ari.rest import AriRest
from asterisk_cti.pipeline.transport import websocket_transport
from tests.pipeline.test_transport import TinyServer, frame


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


def test_untrusted_certificate_is_refused_by_default(tls_cert_dir: Path) -> None:
    server = TlsServer([], tls_cert_dir)
    try:
        with pytest.raises(ConnectError, match=r"SSL|certificate"):
            websocket_transport(f"wss://127.0.0.1:{server.port}/ari/events", {},
                                connect_timeout=5, read_timeout=1, verify_tls=True)
    finally:
        server.close()


def test_configured_ca_bundle_is_trusted(tls_cert_dir: Path) -> None:
    server = TlsServer([frame(b'{"type":"X"}')], tls_cert_dir)
    stream = None
    try:
        stream = websocket_transport(f"wss://127.0.0.1:{server.port}/ari/events", {},
                                     connect_timeout=5, read_timeout=1,
                                     verify_tls=str(tls_cert_dir / "cert.pem"))
        got = stream.recv_batch()
        while got is not None and not got:
            got = stream.recv_batch()
        assert got == [b'{"type":"X"}']
    finally:
        if stream is not None:
            stream.close()
        server.close()


def test_rest_verifies_tls_by_default_and_uses_the_bundle(tls_cert_dir: Path) -> None:
    cfg = CtiConfig(url="https://127.0.0.1:9", password="pw")
    assert AriRest(cfg).session.verify is True
    cfg2 = cfg.replace(verify_tls=str(tls_cert_dir / "cert.pem"))
    assert AriRest(cfg2).session.verify == str(tls_cert_dir / "cert.pem")
    with pytest.raises(TransportError):
        AriRest(cfg.replace(request_timeout=0.5), retries=0).get("asterisk", "info")
