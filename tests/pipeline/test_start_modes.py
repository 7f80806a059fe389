"""start(wait=False) keeps trying in the background; errors that retrying cannot fix are
recognised at once, typed, and never waited out (issue 15).

Servers: the hostile websocket server of ``tests/hardening`` answers each upgrade with what a
case needs; the simulator plays a PBX that comes up late on a fixed port.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Tuple, Type

import pytest

from asterisk_cti import (
    AuthenticationError,
    ConnectionEvent,
    ConnectionListener,
    CtiClient,
    CtiConfig,
    ForbiddenError,
    InvalidApplicationError,
    NotAriServerError,
    RedirectError,
    TlsVerificationError,
    UnknownSourceError,
)
from asterisk_cti.errors import ConnectError
from asterisk_cti.pipeline.reactor import permanent_error
from asterisk_cti.sim import AriSimulator
from tests.hardening.hostile_ws import Conn, HostileServer

#: "at once": well under the default 20 s start timeout.
AT_ONCE = 1.0


class Recorder(ConnectionListener):
    """Records connection notices; tests wait on its condition, never sleep."""

    def __init__(self) -> None:
        self.events: List[ConnectionEvent] = []
        self.cond = threading.Condition()

    def _add(self, event: ConnectionEvent) -> None:
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    def on_connected(self, event: ConnectionEvent) -> None:
        self._add(event)

    def on_disconnected(self, event: ConnectionEvent) -> None:
        self._add(event)

    def wait_for(self, predicate: Callable[[ConnectionEvent], bool],
                 timeout: float) -> Optional[ConnectionEvent]:
        with self.cond:
            found: List[ConnectionEvent] = []

            def seen() -> bool:
                found[:] = [e for e in self.events if predicate(e)]
                return bool(found)

            self.cond.wait_for(seen, timeout)
            return found[0] if found else None


def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    """Check ``predicate`` every 10 ms until true or ``timeout``."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        tick.wait(0.01)
    return True


def reactor_gone(timeout: float) -> bool:
    for t in threading.enumerate():
        if t.name == "asterisk-cti-reactor":
            t.join(timeout)
            if t.is_alive():
                return False
    return True


def config(url: str, **kw: object) -> CtiConfig:
    base = dict(url=url, username="cti", password="s3cret-pw", app="desk-1000",
                reconnect_min=0.05, reconnect_max=0.2, connect_timeout=2.0)
    base.update(kw)
    return CtiConfig(**base)  # type: ignore[arg-type]


def answering(raw: bytes) -> Callable[[Conn], None]:
    def script(conn: Conn) -> None:
        conn.read_request()
        conn.send(raw)
        conn.wait_closed(2.0)
    return script


ASTERISK_400 = (b'<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\r\n<html><head>\r\n'
                b"<title>400 Bad Request</title>\r\n</head><body>\r\n<h1>Bad Request</h1>\r\n"
                b"<p>Invalid application provided in param [app].</p>\r\n<hr />\r\n"
                b"<address>Asterisk Server</address>\r\n</body></html>\r\n")

ANSWERS: List[Tuple[str, bytes, Type[BaseException]]] = [
    ("401", b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n", AuthenticationError),
    ("403", b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", ForbiddenError),
    ("404", b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", NotAriServerError),
    ("html", b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 13\r\n\r\n"
             b"<html></html>", NotAriServerError),
    ("101-no-upgrade", b"HTTP/1.1 101 Switching Protocols\r\n\r\n", NotAriServerError),
    ("not-http", b"SSH-2.0-OpenSSH_9.6\r\n\r\n", NotAriServerError),
    # what Asterisk 22's ast_http_error() sends for an invalid app (res/ari/ari_websockets.c)
    ("bad-app", b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\n"
                b"Content-Length: %d\r\n\r\n" % len(ASTERISK_400) + ASTERISK_400,
     InvalidApplicationError),
    ("redirect", b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/\r\n"
                 b"Content-Length: 0\r\n\r\n", RedirectError),
]


@pytest.fixture(params=ANSWERS, ids=[a[0] for a in ANSWERS])
def refusing(request: pytest.FixtureRequest) -> Iterator[Tuple[HostileServer, type]]:
    _, raw, error = request.param
    with HostileServer(answering(raw)) as server:
        yield server, error


def test_start_raises_a_permanent_error_at_once(
        refusing: Tuple[HostileServer, Type[BaseException]]) -> None:
    server, error = refusing
    client = CtiClient(config(server.url))
    t0 = time.monotonic()
    with pytest.raises(error) as info:
        client.start(timeout=20.0)
    took = time.monotonic() - t0
    assert took < AT_ONCE, f"{error.__name__} took {took:.2f} s"
    assert "s3cret-pw" not in str(info.value)
    assert not client.running
    assert server.accepted == 1  # not retried
    if error is InvalidApplicationError:
        assert "Invalid application provided in param [app]" in str(info.value)
        assert "<" not in str(info.value)


def test_start_nowait_reports_a_permanent_error_and_stops_trying(
        refusing: Tuple[HostileServer, Type[BaseException]]) -> None:
    server, error = refusing
    client = CtiClient(config(server.url))
    rec = Recorder()
    client.add_listener(rec)
    t0 = time.monotonic()
    client.start(wait=False)
    took = time.monotonic() - t0
    try:
        assert took < 0.2, f"start(wait=False) took {took:.3f} s"  # returns at once
        event = rec.wait_for(lambda e: e.error is not None, AT_ONCE)
        assert event is not None, f"no {error.__name__} reported within {AT_ONCE} s"
        assert time.monotonic() - t0 < AT_ONCE
        assert isinstance(event.error, error)
        assert not event.connected and event.gave_up and event.reason
        assert client.failure is event.error
        assert reactor_gone(AT_ONCE)  # it stopped trying: the reactor thread ended
        assert server.accepted == 1
        assert client.stats()["reactor"]["failed_attempts"] == 1
        assert not client.connected and client.running
    finally:
        t1 = time.monotonic()
        assert client.stop()
        assert time.monotonic() - t1 < AT_ONCE
    assert client.failure is None


def _start_error(client: CtiClient, rec: Recorder, wait: bool,
                 expected: Type[BaseException]) -> Optional[BaseException]:
    """The error a start reports: raised by ``start()`` (``wait``) or carried by the
    ``on_disconnected`` event of ``start(wait=False)``."""
    if wait:
        with pytest.raises(expected) as info:
            client.start(timeout=20.0)
        return info.value
    client.start(wait=False)
    event = rec.wait_for(lambda e: e.error is not None, AT_ONCE)
    return event.error if event is not None else None


def _untrusted_tls_server(cert_dir: Path) -> Tuple[socket.socket, threading.Event,
                                                   threading.Thread]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_dir / "cert.pem", cert_dir / "key.pem")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(0.05)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                sock, _ = listener.accept()
            except (socket.timeout, OSError):
                continue
            sock.settimeout(1.0)
            try:
                ctx.wrap_socket(sock, server_side=True).close()
            except (ssl.SSLError, OSError):
                sock.close()

    thread = threading.Thread(target=serve, name="tls-server", daemon=True)
    thread.start()
    return listener, stop, thread


@pytest.mark.parametrize("wait", [True, False], ids=["wait", "nowait"])
def test_an_untrusted_certificate_is_reported_at_once(tls_cert_dir: Path, wait: bool) -> None:
    listener, stop, thread = _untrusted_tls_server(tls_cert_dir)
    port = listener.getsockname()[1]
    client = CtiClient(config(f"https://127.0.0.1:{port}"))  # verify_tls defaults to True
    rec = Recorder()
    client.add_listener(rec)
    try:
        t0 = time.monotonic()
        err = _start_error(client, rec, wait, TlsVerificationError)
        assert time.monotonic() - t0 < AT_ONCE
        assert isinstance(err, TlsVerificationError)
        assert "verify_tls" in str(err)
    finally:
        client.stop()
        stop.set()
        thread.join(5)
        listener.close()


@pytest.fixture
def sim() -> Iterator[AriSimulator]:
    with AriSimulator() as s:
        yield s


@pytest.mark.parametrize("wait", [True, False], ids=["wait", "nowait"])
def test_an_unknown_monitored_source_is_reported_at_once(sim: AriSimulator,
                                                         wait: bool) -> None:
    client = CtiClient(config(sim.url, username=sim.username, password=sim.password))
    client.monitor("PJSIP/1000", "PJSIP/9999")
    rec = Recorder()
    client.add_listener(rec)
    try:
        t0 = time.monotonic()
        err = _start_error(client, rec, wait, UnknownSourceError)
        if not wait:
            assert reactor_gone(AT_ONCE)
            assert client.failure is err
        assert time.monotonic() - t0 < AT_ONCE
        assert isinstance(err, UnknownSourceError)
        assert err.sources == ("PJSIP/9999",)
        assert not any(e.connected for e in rec.events)  # never half-configured
    finally:
        client.stop()


def test_a_transient_error_keeps_the_background_retry_going() -> None:
    """503 (Asterisk not booted yet) is retried: reported once, attempts go on, stop() is
    prompt and leaves nothing running."""
    with HostileServer(answering(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")) as server:
        client = CtiClient(config(server.url))
        rec = Recorder()
        client.add_listener(rec)
        client.start(wait=False)
        try:
            event = rec.wait_for(lambda e: not e.connected, AT_ONCE)
            assert event is not None and event.error is None and not event.gave_up
            assert "503" in event.reason
            assert server.wait_for(lambda s: s.accepted >= 4, 5.0)  # it keeps trying
            assert client.failure is None and client.running and not client.connected
            assert len(rec.events) == 1  # the same reason is told once
        finally:
            t0 = time.monotonic()
            assert client.stop()
            assert time.monotonic() - t0 < AT_ONCE
        assert reactor_gone(0.0)


def test_start_nowait_with_the_pbx_down_for_10_s_then_up() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nobody listens: connection refused, as with a PBX that is down
    cfg = config(f"http://127.0.0.1:{port}", reconnect_min=0.1, reconnect_max=1.0)
    client = CtiClient(cfg)
    client.monitor("PJSIP/1000")
    rec = Recorder()
    client.add_listener(rec)
    t0 = time.monotonic()
    client.start(wait=False)
    assert time.monotonic() - t0 < 0.2
    try:
        down = rec.wait_for(lambda e: not e.connected, AT_ONCE)
        assert down is not None and down.error is None and down.reason
        # Down for 10 s: follow the client's own attempts, which must go on all along.
        attempts = lambda: int(client.stats()["reactor"]["failed_attempts"])  # noqa: E731
        seen = attempts()
        while time.monotonic() - t0 < 10.0:
            assert wait_until(lambda s=seen: attempts() > s, 2.5), "the client stopped trying"
            seen = attempts()
        assert seen >= 6 and not client.connected and client.failure is None
        with AriSimulator(port=port, username="cti", password="s3cret-pw"):
            up = rec.wait_for(lambda e: e.connected, 5.0)
            assert up is not None, "not connected within 5 s of the PBX coming up"
            assert up.attempt >= 6
            assert client.connected
            assert wait_until(lambda: client.line("PJSIP/1000") is not None, 5.0)
            t1 = time.monotonic()
            assert client.stop()
            assert time.monotonic() - t1 < AT_ONCE
    finally:
        client.stop()


@pytest.mark.parametrize("status", [None, 500, 502, 503, 429, 408])
def test_transient_failures_are_not_permanent(status: Optional[int]) -> None:
    """Refused, DNS, timeouts (no status) and 5xx answers are retried, never given up on."""
    assert permanent_error(ConnectError("cannot connect: gaierror", status)) is None


def test_a_client_that_gave_up_starts_again_from_scratch() -> None:
    with HostileServer(answering(ANSWERS[0][1])) as server:
        client = CtiClient(config(server.url))
        rec = Recorder()
        client.add_listener(rec)
        try:
            client.start(wait=False)
            assert rec.wait_for(lambda e: e.gave_up, AT_ONCE) is not None
            client.start(wait=False)  # e.g. after the password was fixed on the server
            assert server.wait_for(lambda s: s.accepted == 2, AT_ONCE)
            with rec.cond:
                assert rec.cond.wait_for(
                    lambda: sum(e.gave_up for e in rec.events) == 2, AT_ONCE)
            assert isinstance(client.failure, AuthenticationError)
        finally:
            client.stop()
