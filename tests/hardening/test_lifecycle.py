"""Classes 6 and 8 (websocket side): deadlines, start/stop, backoff, ApplicationReplaced,
``wait_idle`` from a listener; and the app-name/source validation of class 9."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any, Callable, List, Mapping, Optional, Tuple, Union

import pytest

from asterisk_cti import (
    ChannelEventListener,
    ConfigurationError,
    ConnectError,
    ConnectionListener,
    CtiClient,
    CtiConfig,
    CtiTimeoutError,
    WouldDeadlockError,
)
from asterisk_cti.pipeline.reactor import Reactor
from asterisk_cti.pipeline.ring import Ring
from asterisk_cti.pipeline.transport import EventStream, basic_auth_header, websocket_transport
from asterisk_cti.testing import FakeAsterisk

from .hostile_ws import Conn, HostileServer

AUTH = {"Authorization": basic_auth_header("cti", "s3cret")}


def ours() -> List[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("asterisk-cti")]


def silent(c: Conn) -> None:
    """Read the upgrade request and never answer."""
    c.read_request()
    c.wait_closed(30.0)


def hostile_config(srv: HostileServer, **kw: Any) -> CtiConfig:
    values: dict[str, Any] = {"url": srv.url, "username": "cti", "password": "s3cret",
                              "app": "desk"}
    values.update(kw)
    return CtiConfig(**values)


# -- class 6: deadlines ------------------------------------------------------------------------

def test_a_trickling_server_cannot_hold_the_handshake_past_its_deadline() -> None:
    """Before: one byte every 0.5 s held a 2 s connect 72 s. Now: the deadline is total."""
    def trickle(c: Conn) -> None:
        c.read_request()
        c.trickle(b"HTTP/1.1 101 Switching Protocols\r\nX-Pad: " + b"a" * 200 + b"\r\n\r\n",
                  0.1)

    with HostileServer(trickle) as srv:
        t0 = time.monotonic()
        with pytest.raises(ConnectError, match="within 1 s"):
            websocket_transport(srv.ws_url, AUTH, connect_timeout=1.0, read_timeout=1.0,
                                verify_tls=True)
        assert time.monotonic() - t0 < 1.5


def test_start_timeout_returns_in_time_and_leaves_nothing_running() -> None:
    """Before: the reactor stayed in a connect (up to connect_timeout) after start() gave up."""
    with HostileServer(silent) as srv:
        client = CtiClient(hostile_config(srv, connect_timeout=30.0), model=False)
        t0 = time.monotonic()
        with pytest.raises(CtiTimeoutError):
            client.start(timeout=1.0)
        elapsed = time.monotonic() - t0
        assert elapsed < 1.8, elapsed
        assert ours() == []  # nothing still connecting after it returned
        assert not client.running
        assert srv.accepted == 1


def test_stop_aborts_a_pending_connect_at_once() -> None:
    with HostileServer(silent) as srv:
        cfg = hostile_config(srv, connect_timeout=30.0)
        reactor = Reactor(cfg, websocket_transport, Ring(64))
        reactor.start()
        assert srv.wait_for(lambda s: len(s.requests) == 1, 5.0)
        t0 = time.monotonic()
        assert reactor.stop(5.0)
        assert time.monotonic() - t0 < 0.5
        assert srv.accepted == 1  # and it did not try again


# -- class 8: life cycle ------------------------------------------------------------------------

def test_ctrl_c_inside_start_leaves_nothing_running() -> None:
    """A real SIGINT while start() waits for a server that never answers."""
    with HostileServer(silent) as srv:
        client = CtiClient(hostile_config(srv, connect_timeout=30.0), model=False)
        assert srv.wait_for(lambda s: True, 0)
        timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
        timer.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                client.start(timeout=10.0)
        finally:
            timer.join()
        assert ours() == []
        assert not client.running


def test_a_failing_thread_start_inside_start_leaves_nothing_running(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeAsterisk(endpoints=["PJSIP/1000"])
    client = fake.client(model=False)

    def boom(self: Reactor) -> None:
        raise RuntimeError("cannot start thread")

    monkeypatch.setattr(Reactor, "start", boom)
    with pytest.raises(RuntimeError, match="cannot start thread"):
        client.start(timeout=2.0)
    assert ours() == []
    assert not client.running


def _reconnect_gaps(script: Callable[[Conn], None],
                    healthy_after: float) -> Tuple[List[float], Reactor]:
    """Run a reactor against a server that treats every connection with ``script`` (backoff
    0.05 s doubling to 0.8 s, no jitter) until it has connected 6 times; the gaps between
    the server's accepts, and the stopped reactor."""
    with HostileServer(script) as srv:
        cfg = hostile_config(srv, reconnect_min=0.05, reconnect_max=0.8, reconnect_jitter=0,
                             healthy_after=healthy_after)
        reactor = Reactor(cfg, websocket_transport, Ring(64))
        reactor.start()
        try:
            assert srv.wait_for(lambda s: s.accepted >= 6, 10.0)
        finally:
            assert reactor.stop(2.0)
        times = list(srv.accept_times)
    return [b - a for a, b in zip(times, times[1:])], reactor


def test_a_server_that_drops_every_websocket_at_once_gets_backoff() -> None:
    """Before: every short-lived connection reset the backoff, so the client reconnected
    every reconnect_min (0.05 s here) for ever. Now the gaps double up to reconnect_max."""
    def drop(c: Conn) -> None:
        c.upgrade()

    gaps, reactor = _reconnect_gaps(drop, healthy_after=5.0)
    assert gaps[4] >= 0.6, gaps  # 0.05, 0.1, 0.2, 0.4, 0.8
    assert gaps[4] > 4 * gaps[0], gaps
    assert reactor.short_lived >= 5


def test_a_connection_that_stayed_up_healthy_after_resets_the_backoff() -> None:
    def hold(c: Conn) -> None:
        c.upgrade()
        c.wait_closed(0.4)  # up 0.4 s > healthy_after, then dropped

    gaps, reactor = _reconnect_gaps(hold, healthy_after=0.2)
    # 0.4 s up + 0.05 s delay each time; without the reset the 5th gap would be 1.2 s
    assert max(gaps[:5]) < 0.8, gaps
    assert reactor.short_lived == 0


class _Ponging:
    """Wraps the fake stream so that a ping gets its pong (an empty batch), like Asterisk."""

    def __init__(self, inner: EventStream) -> None:
        self.inner = inner
        self.pong = False

    def recv_batch(self) -> Optional[List[bytes]]:
        if self.pong:
            self.pong = False
            return []
        return self.inner.recv_batch()

    def ping(self) -> None:
        self.inner.ping()
        self.pong = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _Notices(ConnectionListener):
    def __init__(self) -> None:
        self.events: List[Any] = []
        self.cond = threading.Condition()

    def on_connected(self, event: Any) -> None:
        with self.cond:
            self.events.append(("up", event))
            self.cond.notify_all()

    def on_disconnected(self, event: Any) -> None:
        with self.cond:
            self.events.append(("down", event))
            self.cond.notify_all()

    def wait_for(self, pred: Any, timeout: float = 5.0) -> bool:
        with self.cond:
            return bool(self.cond.wait_for(lambda: pred(self.events), timeout))


@pytest.mark.parametrize("how", ["forgotten", "lingering"])
def test_after_application_replaced_the_client_recovers_once_the_other_left(how: str) -> None:
    """Before: deaf for ever. Rule: re-check GET /applications/{app} at growing intervals;
    reconnect once Asterisk no longer knows the app (404: ``forgotten``) or lists it without
    the all-bridges subscription a connected client holds (``lingering``: as Asterisk 22
    does when the other websocket closed, keeping the endpoint subscriptions). A live other
    client is never fought over."""
    fake = FakeAsterisk(endpoints=["PJSIP/1000"])

    def factory(url: str, headers: Mapping[str, str], *, connect_timeout: float,
                read_timeout: float, verify_tls: Union[bool, str]) -> EventStream:
        return _Ponging(fake.ws.factory(url, headers, connect_timeout=connect_timeout,
                                        read_timeout=read_timeout, verify_tls=verify_tls))

    cfg = fake.config(ping_interval=0.05, replaced_recheck=0.05, reconnect_max=0.05)
    client = CtiClient(cfg, transport_factory=factory, session=fake.ari.session(),
                       model=False)
    notices = _Notices()
    client.add_listener(notices)
    client.monitor("PJSIP/1000")
    with client.start():
        fake.push({"type": "ApplicationReplaced", "application": "cti-test"})
        assert notices.wait_for(lambda ev: any(k == "down" for k, _ in ev))
        reactor: Any = client._reactor
        # The other client is alive (the app is listed): checks happen, no takeover.
        deadline = time.monotonic() + 5.0
        while reactor.replaced_rechecks < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert reactor.replaced_rechecks >= 3
        assert fake.ws.connections == 1
        assert not client.connected
        # The other client went away and Asterisk forgot the app: we take it back.
        if how == "forgotten":
            fake.ari.apps.pop("cti-test")
        else:
            fake.ari.apps["cti-test"].subscriptions.pop("bridge:")
            assert fake.ari.app("cti-test")["endpoint_ids"] == ["PJSIP/1000"]
        assert fake.ws.wait_connections(2, 5.0)
        assert notices.wait_for(lambda ev: [k for k, _ in ev][-1:] == ["up"]
                                and len(ev) >= 3)
        assert fake.ari.subscription_count("cti-test", "endpoint:PJSIP/1000") == 1


class _Waiter(ChannelEventListener):
    def __init__(self, client: CtiClient) -> None:
        self.client = client
        self.result: List[Any] = []
        self.done = threading.Event()

    def on_event(self, event: Any) -> None:
        t0 = time.monotonic()
        try:
            self.client.wait_idle(3.0)
            self.result.append(("returned", time.monotonic() - t0))
        except Exception as exc:
            self.result.append((exc, time.monotonic() - t0))
        self.done.set()


def test_wait_idle_from_a_listener_fails_fast_with_a_typed_error() -> None:
    """Before: it waited for its own lane until the timeout, then returned False."""
    fake = FakeAsterisk(endpoints=["PJSIP/1000"])
    client = fake.client(model=False)
    waiter = _Waiter(client)
    client.add_listener(waiter)
    client.monitor("PJSIP/1000")
    with client.start():
        fake.push({"type": "ChannelCreated", "timestamp": "2026-11-26T03:53:31.659+0000",
                   "application": "cti-test",
                   "channel": {"id": "a", "name": "PJSIP/1000-00000001", "state": "Ring",
                               "caller": {"name": "", "number": "1000"},
                               "connected": {"name": "", "number": ""},
                               "accountcode": "", "creationtime": "2026-11-26T03:53:31.659+0000",
                               "language": "en",
                               "dialplan": {"context": "x", "exten": "1", "priority": 1}}})
        assert waiter.done.wait(5.0)
        exc, elapsed = waiter.result[0]
        assert isinstance(exc, WouldDeadlockError), waiter.result
        assert "lane" in str(exc)
        assert elapsed < 0.5


# -- class 9 (part): app names and sources ------------------------------------------------------

@pytest.mark.parametrize("app", ["desk 1000", "desk,other", "desk/1000", "desk\x1b[31m",
                                 "desk\n", "a\\b"])
def test_bad_app_names_are_refused_naming_the_value(app: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        CtiConfig(app=app)
    assert info.value.field == "app"
    assert repr(app) in str(info.value)


@pytest.mark.parametrize("source", ["PJSIP/1000,channel:abc", "PJSIP/10 00", "PJSIP,SIP",
                                    "PJSIP/10\x1b00", "PJSIP/a/b", "PJSIP/", "channel:abc",
                                    "bridge:", "1000 2000", ""])
def test_bad_monitor_sources_are_refused_and_nothing_is_added(source: str) -> None:
    fake = FakeAsterisk(endpoints=["PJSIP/1000"])
    client = fake.client(model=False)
    with pytest.raises(ConfigurationError) as info:
        client.monitor("PJSIP/1000", source)
    assert info.value.field == "monitor"
    assert repr(source) in str(info.value)
    assert client.monitored == ()


def test_good_sources_still_work() -> None:
    fake = FakeAsterisk(endpoints=["PJSIP/1000"])
    client = fake.client(model=False)
    client.monitor("PJSIP", "PJSIP/1000", "endpoint:PJSIP/1002", " PJSIP/1003 ",
                   "PJSIP/user.name-1@x")
    assert client.monitored == ("PJSIP", "PJSIP/1000", "PJSIP/1002", "PJSIP/1003",
                                "PJSIP/user.name-1@x")
    CtiConfig(app="desk-1000_x.y@z")
