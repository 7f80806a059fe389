"""An event source Asterisk does not know (issue 10, class 9): a permanent 422 at which
Asterisk 22 stops (``app_handle_subscriptions()`` in ``res/res_stasis.c``: the sources before
it are subscribed, the ones after it are not). ``start()``/``monitor()`` raise a typed error
naming it, the other sources are subscribed, and the client never loops reconnecting."""

from __future__ import annotations

import re
import time
from typing import Any, Iterator, Tuple

import pytest

from asterisk_cti import CtiClient, CtiConfig
from asterisk_cti.ari.subscriptions import Subscriptions
from asterisk_cti.errors import InvalidRequestError, UnknownSourceError
from asterisk_cti.testing.fake_ari import FakeAri, RecordedRequest
from asterisk_cti.testing.fake_ws import FakeWebSocket

APP = "cti"


def like_asterisk(fake: FakeAri) -> None:
    """POST subscription as Asterisk 22 does it: stop with 422 at the first unknown source."""
    def subscribe(q: RecordedRequest, m: re.Match[str]) -> Tuple[int, Any]:
        app = fake._app(m["app"])
        for source in [s for s in q.params.get("eventSource", "").split(",") if s]:
            scheme, _, ident = source.partition(":")
            known = (scheme == "bridge" or ident in fake.endpoints
                     or ident in {e.split("/")[0] for e in fake.endpoints})
            if not known:
                return 422, {"message": "Event source does not exist"}
            app.subscriptions[source] = app.subscriptions.get(source, 0) + 1
        return 200, app.to_json()
    fake.route("POST", r"/applications/(?P<app>[^/]+)/subscription")(subscribe)


@pytest.fixture
def fake() -> FakeAri:
    f = FakeAri()
    for ep in ("PJSIP/1000", "PJSIP/1002", "PJSIP/1006"):
        f.add_endpoint(ep)
    like_asterisk(f)
    return f


@pytest.fixture
def client(fake: FakeAri) -> Iterator[CtiClient]:
    ws = FakeWebSocket()
    config = CtiConfig(url="http://asterisk.test:8088", username="asterisk", password="secret",
                       app=APP, request_timeout=2.0, connect_timeout=2.0)
    c = CtiClient(config, transport_factory=ws.factory, session=fake.session())
    try:
        yield c
    finally:
        c.stop()


def held(fake: FakeAri) -> set[str]:
    return {s for s, n in fake.apps[APP].subscriptions.items() if n > 0}


def test_sync_subscribes_the_others_one_by_one(fake: FakeAri) -> None:
    subs = Subscriptions(APP, server_filter=False)
    subs.add(["PJSIP/1000", "1002", "PJSIP/1006"])
    from asterisk_cti.ari.rest import AriRest
    rest = AriRest(CtiConfig(url="http://asterisk.test:8088", username="asterisk",
                             password="secret", app=APP), fake.session(), retries=0)
    result = subs.sync(rest, set())  # never raises for an unknown source
    assert subs.refused == ("1002",)
    assert held(fake) == {"endpoint:PJSIP/1000", "endpoint:PJSIP/1006", "bridge:"}
    assert "endpoint:1002" not in result.subscribed
    # each source once: no double reference count for the ones before the bad one
    assert all(n == 1 for n in fake.apps[APP].subscriptions.values())
    # a later sync (a reconnect) tries again, quietly, and keeps the others
    subs.sync(rest, set())
    assert subs.refused == ("1002",)
    assert all(n == 1 for n in fake.apps[APP].subscriptions.values())


def test_start_raises_a_typed_error_naming_the_source_and_leaves_nothing_running(
        fake: FakeAri, client: CtiClient) -> None:
    client.monitor("PJSIP/1000", "1002", "PJSIP/1006")
    start = time.monotonic()
    with pytest.raises(UnknownSourceError) as info:
        client.start(timeout=5)
    assert time.monotonic() - start < 3.0  # no reconnect loop until the timeout
    err = info.value
    assert isinstance(err, InvalidRequestError)
    assert err.sources == ("1002",) and err.status == 422
    assert "'1002' -> 'PJSIP/1002'" in str(err)
    assert not client.running


def test_monitor_raises_for_the_unknown_source_and_keeps_the_others(
        fake: FakeAri, client: CtiClient) -> None:
    client.start(timeout=5)
    with pytest.raises(UnknownSourceError) as info:
        client.monitor("PJSIP/1000", "PJSIP/9999", "PJSIP/1006")
    assert info.value.sources == ("PJSIP/9999",)
    assert "pjsip show endpoints" in str(info.value)
    assert held(fake) >= {"endpoint:PJSIP/1000", "endpoint:PJSIP/1006"}
    assert "endpoint:PJSIP/9999" not in held(fake)
    assert client.monitored == ("PJSIP/1000", "PJSIP/1006")
    assert client.connected
    # and the client still works: a good source afterwards is simply added
    client.monitor("PJSIP/1002")
    assert "endpoint:PJSIP/1002" in held(fake)


def test_other_subscription_errors_still_raise(fake: FakeAri, client: CtiClient) -> None:
    client.start(timeout=5)
    fake.respond("POST", r"/applications/(?P<app>[^/]+)/subscription", 400,
                 {"message": "Invalid event source URI scheme"}, times=1)
    with pytest.raises(InvalidRequestError) as info:
        client.monitor("PJSIP/1002")
    assert not isinstance(info.value, UnknownSourceError)
