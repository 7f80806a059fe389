"""pipeline/dispatcher.py: the ordered lanes and safe_call."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import defaultdict
from typing import Any, Dict, List

import pytest

from asterisk_cti.errors import ClientStoppedError
from asterisk_cti.pipeline.dispatcher import Dispatcher, safe_call


def _dispatcher(deliver: Any, workers: int = 8, **kw: Any) -> Dispatcher:
    d = Dispatcher(deliver, workers=workers, **kw)
    d.start()
    return d


def test_per_key_order_holds_under_8_workers() -> None:
    seen: Dict[str, List[int]] = defaultdict(list)
    lock = threading.Lock()

    def deliver(item: Any) -> None:
        key, n = item
        if n % 7 == 0:
            time.sleep(0.0005)  # perturb scheduling
        with lock:
            seen[key].append(n)

    d = _dispatcher(deliver)
    try:
        keys = [f"k{i}" for i in range(20)]
        counter = defaultdict(int)
        for _ in range(50):
            batch = []
            for k in random.sample(keys, 10):
                for _ in range(5):
                    batch.append((k, (k, counter[k])))
                    counter[k] += 1
            d.submit_many(batch)
        assert d.wait_idle(10)
    finally:
        d.stop()
    assert sum(len(v) for v in seen.values()) == 2500
    for k, values in seen.items():
        assert values == list(range(counter[k])), k


def test_blocking_listener_delays_only_its_own_lane(caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()
    delivered: List[str] = []
    other_done = threading.Event()

    def deliver(item: str) -> None:
        if item.startswith("slow"):
            release.wait(5)
        delivered.append(item)
        if item == "fast-9":
            other_done.set()

    d = _dispatcher(deliver, workers=2, backlog_warning=3)
    try:
        with caplog.at_level(logging.WARNING):
            d.submit_many([("slow", f"slow-{i}") for i in range(5)])
            d.submit_many([("fast", f"fast-{i}") for i in range(10)])
            assert other_done.wait(5), "the fast lane waited for the blocked one"
            assert not any(x.startswith("slow") for x in delivered)
        assert "lane 'slow' has 4 events waiting" in caplog.text
        release.set()
        assert d.wait_idle(5)
        assert [x for x in delivered if x.startswith("slow")] == [f"slow-{i}" for i in range(5)]
    finally:
        release.set()
        d.stop()


def test_safe_call_isolates_exceptions_and_reports_them(caplog: pytest.LogCaptureFixture) -> None:
    class Bad:
        def on_x(self, event: Any) -> None:
            raise RuntimeError("boom")

    hooked: List[Any] = []
    with caplog.at_level(logging.ERROR):
        safe_call(Bad(), "on_x", "ev", lambda lst, ev, exc: hooked.append((ev, str(exc))))
        safe_call(Bad(), "on_missing", "ev")
    assert hooked == [("ev", "boom")]
    assert "Bad.on_x raised RuntimeError: boom" in caplog.text


def test_stop_is_idempotent_bounded_and_refuses_new_work() -> None:
    d = _dispatcher(lambda item: None)
    d.submit_many([("a", 1)])
    t0 = time.monotonic()
    assert d.stop(2) and d.stop(2)
    assert time.monotonic() - t0 < 2
    with pytest.raises(ClientStoppedError):
        d.submit_many([("a", 2)])


def test_stop_from_a_lane_thread_does_not_join_itself() -> None:
    holder: Dict[str, Dispatcher] = {}
    stopped = threading.Event()

    def deliver(item: Any) -> None:
        holder["d"].stop(2)
        stopped.set()

    holder["d"] = _dispatcher(deliver)
    holder["d"].submit_many([("k", 1)])
    assert stopped.wait(5)


def test_wait_for_room_holds_the_producer_until_moving_lanes_drain() -> None:
    gate = threading.Event()
    started = threading.Event()
    seen: List[int] = []

    def deliver(item: int) -> None:
        started.set()
        gate.wait(5)
        seen.append(item)

    d = _dispatcher(deliver, workers=2)
    try:
        d.submit_many([("a", 0)])
        assert started.wait(5)
        d.submit_many([("a", i) for i in range(1, 100)])
        # the lane's runner has not been stuck long: the producer must wait
        t0 = time.monotonic()
        assert d.wait_for_room(10, 0.2) is False
        assert time.monotonic() - t0 >= 0.15
        gate.set()
        assert d.wait_for_room(10, 5) is True
    finally:
        gate.set()
        d.stop()


def test_a_stuck_listener_does_not_hold_the_producer(monkeypatch: pytest.MonkeyPatch) -> None:
    import asterisk_cti.pipeline.dispatcher as dispatcher_module

    monkeypatch.setattr(dispatcher_module, "STUCK_AFTER", 0.05)
    gate = threading.Event()
    started = threading.Event()

    def deliver(item: int) -> None:
        started.set()
        gate.wait(5)

    d = _dispatcher(deliver, workers=2)
    try:
        d.submit_many([("stuck", 0)])
        assert started.wait(5)
        d.submit_many([("stuck", i) for i in range(1, 100)])
        t0 = time.monotonic()
        assert d.wait_for_room(10, 3) is True  # released once the lane counts as stuck
        assert time.monotonic() - t0 < 2
    finally:
        gate.set()
        d.stop()


def _lane_threads(prefix: str) -> List[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(prefix)]


def test_the_pool_is_bounded_named_and_reused_across_bursts_and_a_restart() -> None:
    delivered: List[int] = []
    done = threading.Condition()

    def deliver(item: int) -> None:
        with done:
            delivered.append(item)
            done.notify_all()

    d = Dispatcher(deliver, workers=3, thread_name_prefix="disp-bound")
    d.start()
    for burst in range(5):
        d.submit_many((key, burst * 100 + key) for key in range(50))
        assert d.wait_idle(5.0)
    names = sorted(t.name for t in _lane_threads("disp-bound"))
    assert names and len(names) <= 3
    assert all(n in ("disp-bound_0", "disp-bound_1", "disp-bound_2") for n in names)
    assert sorted(delivered) == sorted(b * 100 + k for b in range(5) for k in range(50))
    assert d.stats.delivered == 250
    assert d.stop(timeout=5.0)
    assert not _lane_threads("disp-bound")
    # started again, it delivers on fresh threads, and stops them again
    d.start()
    d.submit_many([("k", 1000)])
    with done:
        assert done.wait_for(lambda: 1000 in delivered, timeout=5.0)
    assert d.stop(timeout=5.0)
    assert not _lane_threads("disp-bound")


# -- one_runner: one pool thread woken per batch, another only for lines held up ---------------


def test_one_runner_keeps_per_key_order_and_wakes_one_thread_for_a_fast_batch() -> None:
    seen: Dict[str, List[int]] = defaultdict(list)
    threads: List[str] = []

    def deliver(item: Any) -> None:
        key, n = item
        threads.append(threading.current_thread().name)
        seen[key].append(n)

    d = _dispatcher(deliver, workers=4, one_runner=True, thread_name_prefix="t-one")
    try:
        batch = [(f"k{i % 6}", (f"k{i % 6}", i // 6)) for i in range(60)]
        d.submit_many(batch)
        assert d.wait_idle(5)
        # six busy lanes, fast listeners: one thread ran them all
        assert len(set(threads)) == 1
        assert len(_lane_threads("t-one")) == 1
    finally:
        d.stop()
    for key, values in seen.items():
        assert values == list(range(10)), key


def test_one_runner_hands_lines_held_up_by_a_blocked_listener_to_another_thread() -> None:
    from asterisk_cti.pipeline.dispatcher import HANDOFF_AFTER

    gate = threading.Event()
    started = threading.Event()
    other = threading.Event()
    got_other = [0.0]

    def deliver(item: str) -> None:
        if item == "block":
            started.set()
            gate.wait(5)
        else:
            got_other[0] = time.monotonic()
            other.set()

    d = _dispatcher(deliver, workers=2, one_runner=True)
    try:
        # one batch: the blocked line first, another line behind it on the same runner
        d.submit_many([("a", "block"), ("b", "b1")])
        assert started.wait(5)
        t0 = time.monotonic()
        assert not other.is_set()
        # the producer watches (as the processor does on every turn of its loop)
        deadline = t0 + 2
        while not other.is_set() and time.monotonic() < deadline:
            due = d.watch()
            assert due is not None and 0 < due <= HANDOFF_AFTER
            other.wait(due)
        assert other.is_set()
        held = got_other[0] - t0
        assert held < HANDOFF_AFTER + 0.2  # the bound, with room for a loaded machine
        assert d.watch() is None  # nothing waits any more
    finally:
        gate.set()
        d.stop()


def test_one_runner_the_next_batch_also_hands_off_a_held_line() -> None:
    import asterisk_cti.pipeline.dispatcher as dispatcher_module

    gate = threading.Event()
    started = threading.Event()
    other = threading.Event()

    def deliver(item: str) -> None:
        if item == "block":
            started.set()
            gate.wait(5)
        elif item == "b2":
            other.set()

    d = _dispatcher(deliver, workers=2, one_runner=True)
    try:
        d.submit_many([("a", "block")])
        assert started.wait(5)
        d.submit_many([("b", "b1")])  # waits behind the blocked runner, clock starts
        deadline = time.monotonic() + 2
        while not other.is_set() and time.monotonic() < deadline:
            other.wait(dispatcher_module.HANDOFF_AFTER)
            d.submit_many([("b", "b2")])  # no watch(): the submissions alone hand it off
        assert other.wait(2)
    finally:
        gate.set()
        d.stop()


def test_one_runner_wait_for_room_hands_off_instead_of_waiting_out_its_time() -> None:
    gate = threading.Event()
    started = threading.Event()

    def deliver(item: Any) -> None:
        if item == "block":
            started.set()
            gate.wait(5)

    d = _dispatcher(deliver, workers=2, one_runner=True)
    try:
        d.submit_many([("a", "block")])
        assert started.wait(5)
        d.submit_many([("b", i) for i in range(100)])
        t0 = time.monotonic()
        # the 100 items of line b move once another thread takes them: room within the bound
        assert d.wait_for_room(10, 3) is True
        assert time.monotonic() - t0 < 1.5
    finally:
        gate.set()
        d.stop()
