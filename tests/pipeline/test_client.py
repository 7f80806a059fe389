"""CtiClient end to end on the fakes: life cycle, errors at start, credentials."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from asterisk_cti import (
    AuthenticationError,
    ChannelEventListener,
    CtiTimeoutError,
)
from asterisk_cti.testing import FakeAsterisk

from .helpers import ev


def test_stop_is_idempotent_bounded_and_restartable(fake: FakeAsterisk) -> None:
    client = fake.client(model=False)
    client.monitor("PJSIP")
    client.start()
    assert client.stop(3) is True
    assert client.stop(3) is True
    client.start()
    assert client.connected
    client.stop()


def test_stop_from_a_listener_works(fake: FakeAsterisk) -> None:
    done = threading.Event()

    class Stopper(ChannelEventListener):
        def on_channel_created(self, event: Any) -> None:
            client.stop(2)
            done.set()

    client = fake.client(model=False)
    client.add_listener(Stopper())
    client.monitor("PJSIP")
    client.start()
    fake.push(ev("ChannelCreated", "a"))
    assert done.wait(5)
    assert not client.running


def test_bad_credentials_fail_start_with_authentication_error(fake: FakeAsterisk) -> None:
    fake.ws.refuse(5, status=401)
    client = fake.client(model=False)
    with pytest.raises(AuthenticationError):
        client.start(timeout=5)
    assert not client.running


def test_start_times_out_with_the_last_error(fake: FakeAsterisk) -> None:
    fake.ws.refuse(1000)
    client = fake.client(model=False)
    with pytest.raises(CtiTimeoutError, match="last error: refused"):
        client.start(timeout=0.3)


def test_credentials_never_in_logs_urls_or_repr(fake: FakeAsterisk,
                                                caplog: pytest.LogCaptureFixture) -> None:
    client = fake.client(fake.config(password="secret"), model=False)
    fake.ws.refuse(1)
    client.monitor("PJSIP")
    with caplog.at_level(logging.DEBUG), client.start():
        fake.ws.drop()
        assert fake.ws.wait_connections(2)
        assert fake.settle(client)
    assert "secret" not in caplog.text and "c2VjcmV0" not in caplog.text
    assert "secret" not in repr(client)
    for attempt in fake.ws.attempts:
        assert "secret" not in attempt.url and "api_key" not in attempt.url
        assert attempt.headers["Authorization"].startswith("Basic ")
    for req in fake.ari.requests:
        assert "secret" not in req.url and "api_key" not in req.url
