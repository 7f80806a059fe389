"""Class 6: the handshake deadline also covers TLS: a server trickling its TLS handshake one
byte every 20 ms cannot hold ``connect_timeout``."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from pathlib import Path

import pytest

from asterisk_cti import ConnectError
from asterisk_cti.pipeline.transport import websocket_transport


def test_a_trickled_tls_handshake_cannot_hold_the_deadline(tls_cert_dir: Path) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tls_cert_dir / "cert.pem", tls_cert_dir / "key.pem")
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
