"""Blocking waits (what call control builds on): matched, timed out, failed by stop."""

from __future__ import annotations

import threading
from typing import Any, List

import pytest

from asterisk_cti import ClientStoppedError, CtiTimeoutError
from asterisk_cti.events.catalogue import Event
from asterisk_cti.pipeline.waiters import Waiters
from asterisk_cti.testing import FakeAsterisk


def created(cid: str) -> dict[str, Any]:
    return {"type": "ChannelCreated", "timestamp": "2026-11-26T03:53:31.659+0000",
            "channel": {"id": cid, "name": "PJSIP/1000-00000001", "state": "Ring"}}


def test_a_wait_registered_before_the_event_gets_it_from_the_processor() -> None:
    fake = FakeAsterisk(endpoints=["PJSIP/1000"])
    client = fake.client(model=False)
    client.monitor("PJSIP/1000")
    with client.start():
        waiter = client.waiters.expect(
            lambda e: isinstance(e, Event) and e.type == "ChannelCreated"
            and e.channel is not None and e.channel.id == "b")
        fake.push(created("a"), created("b"))
        event = waiter.wait(5, "ChannelCreated of b")
        assert event.channel.id == "b"


def test_a_wait_times_out_with_what_it_waited_for() -> None:
    waiters = Waiters()
    with pytest.raises(CtiTimeoutError, match="the answer"):
        waiters.expect(lambda e: False).wait(0.05, "the answer")
    assert not waiters  # the timed-out wait was removed


def test_stop_fails_pending_waits_and_refuses_new_ones() -> None:
    fake = FakeAsterisk(endpoints=["PJSIP/1000"])
    client = fake.client(model=False)
    client.start()
    errors: List[BaseException] = []
    waiter = client.waiters.expect(lambda e: False)

    def wait() -> None:
        try:
            waiter.wait(10)
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=wait, name="test-waiter")
    t.start()
    client.stop()
    t.join(5)
    assert not t.is_alive() and isinstance(errors[0], ClientStoppedError)
    with pytest.raises(ClientStoppedError):
        client.waiters.expect(lambda e: True)


def test_a_broken_predicate_fails_its_wait_not_the_processor() -> None:
    fake = FakeAsterisk(endpoints=["PJSIP/1000"])
    client = fake.client(model=False)
    client.monitor("PJSIP/1000")
    with client.start():
        bad = client.waiters.expect(lambda e: 1 / 0)  # type: ignore[operator]
        good = client.waiters.expect(
            lambda e: isinstance(e, Event) and e.type == "ChannelCreated")
        fake.push(created("a"))
        with pytest.raises(ZeroDivisionError):
            bad.wait(5)
        assert good.wait(5).channel.id == "a"
        fake.push(created("c"))
        assert fake.settle(client)
        assert client.stats()["processor"]["frames"] == 2


def test_an_ari_only_tap_is_not_offered_cti_events() -> None:
    waiters = Waiters()
    assert not waiters.wants_cti
    ari_seen: List[object] = []
    all_seen: List[object] = []
    waiters.tap(ari_seen.append, ari_only=True)
    assert not waiters.wants_cti  # the processor skips the CTI events altogether
    waiters.offer("ari")
    waiters.offer_cti("cti")
    assert ari_seen == ["ari"]
    waiters.tap(all_seen.append)
    assert waiters.wants_cti
    waiters.offer("ari2")
    waiters.offer_cti("cti2")
    assert ari_seen == ["ari", "ari2"] and all_seen == ["ari2", "cti2"]
    # a pending wait is offered CTI events whatever the taps
    plain = Waiters()
    plain.tap(lambda item: None, ari_only=True)
    waiter = plain.expect(lambda item: item == "cti3")
    assert plain.wants_cti
    plain.offer_cti("cti3")
    assert waiter.done and not plain.wants_cti


def test_active_says_whether_offer_has_anyone_to_offer_to() -> None:
    waiters = Waiters()
    assert waiters.active is False
    waiter = waiters.expect(lambda item: item == "x")
    assert waiters.active is True
    waiters.offer("x")  # matched: removed
    assert waiter.done and waiters.active is False
    seen: List[Any] = []
    waiters.tap(seen.append, ari_only=True)
    assert waiters.active is True
    waiters.expect(lambda item: False)
    waiters.close()  # the pending wait fails; the tap stays
    assert waiters.active is True
    waiters.offer("y")
    assert seen == ["y"]  # installed after "x" was offered
