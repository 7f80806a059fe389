"""Class 6: the handshake deadline also covers TLS: a server trickling its TLS handshake one
byte every 20 ms cannot hold ``connect_timeout``."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest

from asterisk_cti import ConnectError
from asterisk_cti.transport import websocket_transport


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


def test_a_trickled_tls_handshake_cannot_hold_the_deadline(cert: Path) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert / "cert.pem", cert / "key.pem")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    stop = threading.Event()
    sent = []

    def serve() -> None:
        conn, _ = listener.accept()
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ctx.wrap_bio(incoming, outgoing, server_side=True)
        conn.settimeout(0.05)
        with conn:
            while not stop.is_set():
                try:
                    data = conn.recv(65536)
                    if not data:
                        return
                    incoming.write(data)
                except socket.timeout:
                    pass
                try:
                    tls.do_handshake()
                except ssl.SSLWantReadError:
                    pass
                except (ssl.SSLError, OSError):
                    return
                pending = outgoing.read()
                for i in range(len(pending)):
                    if stop.wait(0.02):
                        return
                    try:
                        conn.sendall(pending[i:i + 1])
                    except OSError:
                        return
                    sent.append(1)

    server = threading.Thread(target=serve, name="hostile-tls", daemon=True)
    server.start()
    try:
        t0 = time.monotonic()
        with pytest.raises(ConnectError, match="within 1 s"):
            websocket_transport(f"wss://127.0.0.1:{port}/ari/events", {}, connect_timeout=1.0,
                                read_timeout=1.0, verify_tls=False)
        assert time.monotonic() - t0 < 1.5
        assert len(sent) > 10  # the server was really trickling
    finally:
        stop.set()
        server.join(5)
        listener.close()
