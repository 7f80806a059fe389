"""pipeline/processor.py: the batch loop (filter, dedup, per-item isolation, losses) and
its ordered commands."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, FrozenSet, Iterator, List, Optional, Tuple

import pytest

from asterisk_cti.ari.rest import AriRest
from asterisk_cti.ari.subscriptions import Subscriptions
from asterisk_cti.pipeline.delivery import CALL, CHANNEL, nobody
from asterisk_cti.pipeline.markers import Barrier, InOrder
from asterisk_cti.pipeline.processor import Processor
from asterisk_cti.pipeline.ring import Ring
from asterisk_cti.pipeline.waiters import Waiters
from asterisk_cti.testing import FakeAsterisk

from .helpers import Recorder, ev


def test_delivers_only_configured_types_of_monitored_lines_in_order(fake: FakeAsterisk) -> None:
    rec = Recorder()
    client = fake.client(model=False)
    client.add_listener(rec)
    client.monitor("PJSIP/1000")
    with client.start():
        fake.push(
            ev("ChannelCreated", "a"),
            ev("ChannelVarset", "a", variable="X", value="1"),
            ev("ChannelCreated", "b", "PJSIP/1002-00000002"),
            ev("ChannelStateChange", "a"),
            ev("ChannelDestroyed", "a", cause=16, cause_txt="Normal Clearing"),
        )
        assert fake.settle(client)
        assert [e.type for e in rec.events] == [
            "ChannelCreated", "ChannelStateChange", "ChannelDestroyed"]
        assert rec.specific == ["created:a", "destroyed:a"]
        stats = client.stats()
        assert stats["reactor"]["dropped_early"] == 1


def test_malformed_frames_are_counted_and_skipped(fake: FakeAsterisk,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    rec = Recorder()
    client = fake.client(model=False)
    client.add_listener(rec)
    client.monitor("PJSIP")
    with caplog.at_level(logging.WARNING), client.start():
        fake.push(b"{not json", b"\xff\xfe", "[1,2]", '{"type": 3}',
                  ev("ChannelFromTheFuture", "a"), ev("ChannelCreated", "a"))
        assert fake.settle(client)
        assert [e.type for e in rec.events] == ["ChannelCreated"]
        assert client.stats()["processor"]["malformed"] == 4
    assert "malformed ARI frame" in caplog.text


def test_wildcard_delivers_unknown_types_as_generic_events(fake: FakeAsterisk) -> None:
    rec = Recorder()
    client = fake.client(fake.config(event_types=("*",)), model=False)
    client.add_listener(rec)
    client.monitor("PJSIP")
    with client.start():
        fake.push(ev("ChannelFromTheFuture", "a", novelty=1))
        assert fake.settle(client)
    assert rec.events[0].type == "ChannelFromTheFuture" and rec.events[0].raw["novelty"] == 1


def test_ring_overflow_triggers_loss_notice_and_resync(fake: FakeAsterisk) -> None:
    rec = Recorder()
    gate = threading.Event()

    client = fake.client(fake.config(ring_capacity=16), model=False)
    client.add_listener(rec)
    client.monitor("PJSIP")
    with client.start():
        resyncs = client.stats()["processor"]["resyncs"]
        # Hold the processor in a monitor change whose REST call blocks, then flood the ring.
        blocked = threading.Event()

        @fake.ari.route("GET", "/applications/cti-test")
        def slow_app(req: Any, m: Any) -> Any:
            blocked.set()
            gate.wait(5)
            return 200, fake.ari.app("cti-test")

        t = threading.Thread(target=client.monitor, args=("PJSIP/2000",), name="test-monitor")
        t.start()
        assert blocked.wait(5)
        fake.push(*[ev("ChannelStateChange", str(i)) for i in range(100)])
        assert fake.ws.wait_connections(1)
        gate.set()
        t.join(5)
        assert rec.wait_for(lambda r: any(type(e).__name__ == "EventsLostEvent"
                                          for e in r.connection))
        lost = next(e for e in rec.connection if type(e).__name__ == "EventsLostEvent")
        assert lost.count > 0 and lost.reason == "ring_overflow"
        assert fake.settle(client)
        assert client.stats()["processor"]["resyncs"] > resyncs
        assert any(getattr(e, "reason", "") == "events_lost" for e in rec.connection)
        assert client.stats()["ring"]["overwritten"] == lost.count


def test_bridge_events_of_monitored_channels_and_their_peers_are_delivered(
        fake: FakeAsterisk) -> None:
    rec = Recorder()
    client = fake.client(model=False)
    client.add_listener(rec)
    client.monitor("PJSIP/1000")
    bridge = {"id": "br1", "technology": "simple_bridge", "channels": []}
    with client.start():
        fake.push(
            ev("ChannelEnteredBridge", "other", "PJSIP/1006-00000009", bridge=bridge),
            ev("ChannelEnteredBridge", "a", bridge=bridge),
            ev("ChannelEnteredBridge", "loc", "Local/1006@from-internal-00000000;1",
               bridge=bridge),
            ev("ChannelLeftBridge", "a", bridge=bridge),
            ev("ChannelLeftBridge", "loc", "Local/1006@from-internal-00000000;1", bridge=bridge),
        )
        assert fake.settle(client)
    assert [(e.type, e.channel.id) for e in rec.events] == [
        ("ChannelEnteredBridge", "a"), ("ChannelEnteredBridge", "loc"),
        ("ChannelLeftBridge", "a")]


def test_duplicate_deliveries_of_one_event_are_dropped(fake: FakeAsterisk) -> None:
    # A channel in the app's Stasis is also on a monitored endpoint: Asterisk forwards each
    # of its events once per subscription.
    rec = Recorder()
    client = fake.client(model=False)
    client.add_listener(rec)
    client.monitor("PJSIP")
    with client.start():
        up = ev("ChannelStateChange", "a")
        up["channel"]["state"] = "Up"
        fake.push(ev("ChannelCreated", "a"), ev("ChannelCreated", "a"), up, up,
                  ev("ChannelDestroyed", "a", cause=16))
        assert fake.settle(client)
        assert client.stats()["processor"]["duplicates"] == 2
    assert [e.type for e in rec.events] == [
        "ChannelCreated", "ChannelStateChange", "ChannelDestroyed"]


# -- the processor on its own, driven through the ring -------------------------------------------


class FakeReactor:
    """The ReactorLink protocol: the processor needs nothing else of the reactor."""

    def __init__(self) -> None:
        self.wanted: List[Optional[FrozenSet[bytes]]] = []
        self.reconnects: List[str] = []

    def set_wanted(self, wanted: Optional[FrozenSet[bytes]]) -> None:
        self.wanted.append(wanted)

    def reconnect(self, reason: str) -> None:
        self.reconnects.append(reason)

    def give_up(self, error: BaseException) -> None:
        self.reconnects.append(f"gave up: {error}")


class Cev:
    def __init__(self, line: str, name: str) -> None:
        self.line = line
        self.name = name


@pytest.fixture
def bare(fake: FakeAsterisk) -> Iterator[Tuple[Processor, Ring, List[Any], FakeReactor]]:
    ring = Ring(64)
    submitted: List[Any] = []
    reactor = FakeReactor()
    config = fake.config()
    subs = Subscriptions(config.app)
    subs.add(["PJSIP/1000"])
    proc = Processor(ring, lambda items: submitted.extend(items) or None,
                     AriRest(config, fake.ari.session()), subs, reactor, Waiters(),
                     lambda notice: None, ["ChannelCreated"])
    proc.start()
    try:
        yield proc, ring, submitted, reactor
    finally:
        ring.close()
        assert proc.join(2)


def test_in_order_runs_on_the_processor_thread_between_the_frames_around_it(
        bare: Tuple[Processor, Ring, List[Any], FakeReactor]) -> None:
    _proc, ring, submitted, _ = bare
    threads: List[str] = []

    def action() -> List[Cev]:
        threads.append(threading.current_thread().name)
        return [Cev("PJSIP/1000", "held")]

    marker = InOrder(action)
    ring.put(json.dumps(ev("ChannelCreated", "a")).encode())
    ring.put(marker)
    ring.put(json.dumps(ev("ChannelCreated", "b")).encode())
    barrier = Barrier()
    ring.put(barrier)
    assert marker.done.wait(5) and barrier.done.wait(5)
    assert threads == ["asterisk-cti-processor"] and marker.error is None
    kinds = [(key, group, getattr(item, "name", None) or item.channel.id)
             for key, (group, item) in submitted]
    assert kinds == [("PJSIP/1000", CHANNEL, "a"), ("PJSIP/1000", CALL, "held"),
                     ("PJSIP/1000", CHANNEL, "b")]


def test_an_in_order_action_that_raises_is_reported_and_the_loop_goes_on(
        bare: Tuple[Processor, Ring, List[Any], FakeReactor]) -> None:
    _proc, ring, submitted, _ = bare

    def broken() -> List[Cev]:
        raise RuntimeError("model refused")

    marker = InOrder(broken)
    ring.put(marker)
    ring.put(json.dumps(ev("ChannelCreated", "c")).encode())
    barrier = Barrier()
    ring.put(barrier)
    assert marker.done.wait(5) and barrier.done.wait(5)
    assert isinstance(marker.error, RuntimeError)
    assert [item.channel.id for _, (_, item) in submitted] == ["c"]


def test_raw_types_reach_the_transport_at_once_and_unchanged_types_change_nothing(
        bare: Tuple[Processor, Ring, List[Any], FakeReactor]) -> None:
    proc, _ring, _, reactor = bare
    before = len(reactor.wanted)
    proc.set_raw_types(frozenset({"ChannelUserevent"}), nobody)
    assert len(reactor.wanted) == before + 1
    assert b"ChannelUserevent" in (reactor.wanted[-1] or ())
    assert "ChannelUserevent" in proc.needed_types
    proc.set_raw_types(frozenset({"ChannelUserevent"}), nobody)  # unchanged: nothing sent
    assert len(reactor.wanted) == before + 1


def test_the_model_sniffed_types_are_needed_but_not_wanted_whole(fake: FakeAsterisk) -> None:
    """The call model reads ChannelDialplan (of Queue): the server-side filter lets it
    through, the transport keeps only the sniffed frames. ChannelVarset (more than half of a
    call's frames) stays filtered on the server: the model reads CTI_DATA from
    ``channelvars``. A raw listener that wants either type gets every frame of it."""
    from asterisk_cti.model import MODEL_EVENT_TYPES, CallModel

    reactor = FakeReactor()
    config = fake.config()
    subs = Subscriptions(config.app)
    proc = Processor(Ring(8), lambda items: None, AriRest(config, fake.ari.session()), subs,
                     reactor, Waiters(), lambda notice: None, (), model=CallModel(),
                     model_types=MODEL_EVENT_TYPES)
    wanted = reactor.wanted[-1] or frozenset()
    assert "ChannelDialplan" in proc.needed_types
    assert "ChannelVarset" not in proc.needed_types
    assert b"ChannelVarset" not in wanted and b"ChannelDialplan" not in wanted
    assert b"ChannelCreated" in wanted
    proc.set_raw_types(frozenset({"ChannelVarset"}), nobody)
    assert b"ChannelVarset" in (reactor.wanted[-1] or ())
    assert "ChannelVarset" in proc.needed_types


def test_call_data_reaches_call_events_through_the_whole_pipeline(fake: FakeAsterisk) -> None:
    """A ChannelVarset of CTI_DATA passes the transport's type filter (the other
    ChannelVarset do not), the model decodes it, the next CTI event carries it; a hostile
    value is counted in the model's stats."""
    from asterisk_cti.model import CallEvent, CallListener

    got: List[CallEvent] = []
    cond = threading.Condition()

    class Rec(CallListener):
        def on_call_event(self, event: CallEvent) -> None:
            with cond:
                got.append(event)
                cond.notify_all()

    client = fake.client()
    client.add_listener(Rec())
    client.monitor("PJSIP/1000")
    with client.start():
        fake.push(
            ev("ChannelCreated", "a", state="Ring"),
            ev("ChannelVarset", "a", variable="DIALSTATUS", value="x"),
            ev("ChannelVarset", "a", variable="__CTI_DATA", value="account=4711"),
            ev("ChannelStateChange", "a", channel={**ev("X", "a")["channel"], "state": "Up"}),
            ev("ChannelVarset", "a", variable="__CTI_DATA", value="%%bad"),
        )
        assert fake.settle(client)
        with cond:
            assert cond.wait_for(lambda: any(e.kind.value == "established" for e in got), 5)
        calls = [e for e in got if e.kind.value != "line_state_changed"]
        assert [e.kind.value for e in calls] == ["originated", "established"]
        assert dict(calls[0].data) == {} and dict(calls[1].data) == {"account": "4711"}
        stats = client.stats()
        assert stats["reactor"]["dropped_early"] == 1  # only the DIALSTATUS one
        assert stats["model"]["call_data_errors"] == 1
