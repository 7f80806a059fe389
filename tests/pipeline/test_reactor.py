"""pipeline/reactor.py: the thread that owns the websocket (keep-alive, reconnect)."""

from __future__ import annotations

from asterisk_cti.testing import FakeAsterisk

from .helpers import Recorder


def test_quiet_connection_is_pinged_and_a_dead_one_is_replaced(fake: FakeAsterisk) -> None:
    rec = Recorder()
    client = fake.client(fake.config(ping_interval=0.1), model=False)
    client.add_listener(rec)
    client.monitor("PJSIP")
    with client.start():
        # The fake answers no ping: after twice the interval the reactor gives up on it.
        assert rec.wait_for(lambda r: any(
            getattr(e, "reason", "") == "no answer to the keep-alive ping"
            for e in r.connection))
        assert fake.ws.wait_connections(2)
    assert fake.ws.attempts[0].headers["Authorization"].startswith("Basic ")
