"""Adversarial tests of the REST client against a hostile HTTP server on 127.0.0.1:
deadlines (issue 10, class 6), redirects (class 1), lost answers to a DELETE (class 9)."""

from __future__ import annotations

import time
from typing import Any, Iterable, Iterator, List, Optional

import pytest

from asterisk_cti.ari.rest import AriRest
from asterisk_cti.config import CtiConfig
from asterisk_cti.control.calls import CallControl
from asterisk_cti.errors import (
    AriHttpError,
    CtiTimeoutError,
    NotFoundError,
    RequestTimeoutError,
    ServerError,
    TransportError,
)
from asterisk_cti.pipeline.waiters import Waiters

from .hostile_http import HostileHttp, Reply

PASSWORD = "s3cret-never-elsewhere"


@pytest.fixture
def server() -> Iterator[HostileHttp]:
    with HostileHttp() as srv:
        yield srv


def rest_for(srv: HostileHttp, timeout: float = 1.0, retries: int = 2) -> AriRest:
    config = CtiConfig(url=srv.url, username="cti", password=PASSWORD, app="cti",
                       request_timeout=timeout)
    return AriRest(config, retries=retries)


def timed(fn: Any) -> float:
    start = time.monotonic()
    fn()
    return time.monotonic() - start


def raises_within(exc: type, budget: float, fn: Any, not_before: float = 0.0) -> BaseException:
    start = time.monotonic()
    with pytest.raises(exc) as info:
        fn()
    took = time.monotonic() - start
    assert not_before <= took < budget, f"took {took:.2f} s, expected {not_before}..{budget} s"
    return info.value


# -- class 6: timeouts are deadlines ------------------------------------------------------------

def test_trickled_body_ends_at_the_deadline(server: HostileHttp) -> None:
    # 2000 bytes at one per 0.05 s would take 100 s; every single read is fast, so a
    # per-read timeout never fires.
    server.script(Reply.json(200, '{"x": "' + "a" * 2000 + '"}', trickle=0.05))
    rest = rest_for(server, timeout=1.0)
    err = raises_within(RequestTimeoutError, 2.5, lambda: rest.get("asterisk", "info"),
                        not_before=0.9)
    assert isinstance(err, TransportError) and isinstance(err, CtiTimeoutError)
    assert "1 s" in str(err)
    rest.close()


def test_trickled_status_line_and_headers_end_at_the_deadline(server: HostileHttp) -> None:
    server.script(Reply.json(200, "{}", headers={"X-Pad": "p" * 500}, trickle=0.05,
                             trickle_head=True))
    rest = rest_for(server, timeout=1.0)
    raises_within(RequestTimeoutError, 2.5, lambda: rest.get("channels"))
    rest.close()


def test_silent_server_ends_at_the_deadline_retries_included(server: HostileHttp) -> None:
    # GET is retried (2 retries): three silent attempts must still fit in one deadline.
    server.script(*[Reply(delay=30.0) for _ in range(3)])
    rest = rest_for(server, timeout=1.0, retries=2)
    raises_within(RequestTimeoutError, 2.5, lambda: rest.get("channels"))
    rest.close()


def test_per_call_timeout_is_the_deadline(server: HostileHttp) -> None:
    server.script(Reply(status=200, body=b"x" * 400, trickle=0.02))
    rest = rest_for(server, timeout=30.0)
    raises_within(RequestTimeoutError, 1.5,
                  lambda: rest.request("POST", "/channels", timeout=0.5))
    rest.close()


def test_hangup_on_a_trickling_server_returns_within_its_timeout(server: HostileHttp) -> None:
    """The reported case: a 1 byte/s server held hangup() 64 s with a 2 s timeout."""
    server.script(Reply.json(404, '{"message": "Channel not found"}', trickle=1.0,
                             trickle_head=True))

    class Host:
        def __init__(self) -> None:
            self.config = CtiConfig(url=server.url, username="cti", password=PASSWORD,
                                    app="cti", request_timeout=2.0)
            self.rest = AriRest(self.config)
            self.waiters = Waiters()
            self.model = None

        def add_raw_listener(self, listener: Any, event_types: Iterable[str],
                             wants: Optional[Any] = None) -> None:
            return None

    host = Host()
    control = CallControl(host)  # type: ignore[arg-type]
    raises_within(RequestTimeoutError, 3.5, lambda: control.hangup("1795665001.1"),
                  not_before=1.9)
    host.waiters.close()
    host.rest.close()


def test_a_fast_server_is_unaffected_and_connections_are_reused(server: HostileHttp) -> None:
    server.script(Reply.json(200, '{"a": 1}'), Reply.json(200, '{"a": 2}'), Reply(status=204))
    rest = rest_for(server)
    assert rest.get("a") == {"a": 1}
    assert rest.get("b") == {"a": 2}
    assert rest.delete("c") is None
    assert server.connections == 1
    assert [r.path for r in server.requests] == ["/ari/a", "/ari/b", "/ari/c"]
    rest.close()


def test_deadline_of_one_thread_does_not_leak_into_the_next_call(server: HostileHttp) -> None:
    server.script(Reply(status=200, body=b"x" * 100, trickle=0.05), Reply.json(200, "[1]"))
    rest = rest_for(server, timeout=0.5)
    with pytest.raises(RequestTimeoutError):
        rest.get("slow")
    # a new connection, full budget again
    assert rest.get("fast") == [1]
    rest.close()


def test_post_is_not_retried_after_a_lost_answer(server: HostileHttp) -> None:
    server.script(Reply(drop=True), Reply(status=204))
    rest = rest_for(server)
    with pytest.raises(TransportError) as info:
        rest.post("channels", params={"endpoint": "PJSIP/1000"})
    assert not isinstance(info.value, RequestTimeoutError)
    assert [r.method for r in server.requests] == ["POST"]
    rest.close()


# -- class 9: a DELETE retried after a lost answer -----------------------------------------------

def test_delete_retried_after_a_lost_answer_then_404_is_a_success(server: HostileHttp) -> None:
    server.script(Reply(drop=True), Reply.json(404, '{"message": "Channel not found"}'))
    rest = rest_for(server)
    assert rest.delete("channels", "c1") is None
    assert [(r.method, r.path) for r in server.requests] == [
        ("DELETE", "/ari/channels/c1"), ("DELETE", "/ari/channels/c1")]
    rest.close()


def test_delete_404_on_the_first_attempt_is_still_not_found(server: HostileHttp) -> None:
    server.script(Reply.json(404, '{"message": "Channel not found"}'))
    rest = rest_for(server)
    with pytest.raises(NotFoundError):
        rest.delete("channels", "c1")
    rest.close()


def test_delete_404_after_a_503_is_still_not_found(server: HostileHttp) -> None:
    # a 503 is an answer: Asterisk did not delete anything, so a 404 after it is the truth.
    server.script(Reply.json(503, '{"message": "Asterisk not booted"}'),
                  Reply.json(404, '{"message": "Channel not found"}'))
    rest = rest_for(server)
    with pytest.raises(NotFoundError):
        rest.delete("channels", "c1")
    rest.close()


def test_503_exhausting_the_retries_is_a_server_error(server: HostileHttp) -> None:
    server.script(*[Reply.json(503, '{"message": "Asterisk not booted"}') for _ in range(3)])
    rest = rest_for(server, timeout=5.0)
    with pytest.raises(ServerError):
        rest.get("channels")
    assert len(server.requests) == 3
    rest.close()


# -- class 1: credentials go only to the configured server ---------------------------------------

@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_redirect_to_another_port_is_not_followed(status: int, method: str) -> None:
    with HostileHttp() as front, HostileHttp() as thief:
        front.script(Reply(status=status, redirect=f"{thief.url}/ari/channels?steal=1"))
        rest = rest_for(front)
        with pytest.raises(AriHttpError) as info:
            rest.request(method, "/channels")
        rest.close()
        err = info.value
        assert err.status == status
        assert thief.url in str(err)
        assert PASSWORD not in str(err) and PASSWORD not in repr(err)
        # the configured server got the credentials, the other port got nothing at all
        assert front.requests[0].headers["authorization"].startswith("Basic ")
        recorded: List[Any] = thief.requests
        assert recorded == []
        assert thief.connections == 0


def test_redirect_location_with_user_info_is_not_echoed() -> None:
    with HostileHttp() as front:
        front.script(Reply(status=302, redirect="http://user:pw@127.0.0.1:1/x"))
        rest = rest_for(front)
        with pytest.raises(AriHttpError) as info:
            rest.get("channels")
        rest.close()
        assert "pw@" not in str(info.value)
        assert "127.0.0.1:1/x" in str(info.value)
