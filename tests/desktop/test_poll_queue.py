"""PollQueue, the hand-off for legacy loops, and the SDK's HandOff behind every call_soon."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, List, Tuple

import pytest

from asterisk_cti.desktop import PollQueue
from asterisk_cti.pipeline.delivery import HandOff

from .conftest import pump_until


def test_run_pending_runs_in_order_on_the_calling_thread() -> None:
    queue = PollQueue()
    ran: List[Tuple[int, threading.Thread]] = []
    for i in range(5):
        queue.call_soon(lambda i=i: ran.append((i, threading.current_thread())))
    assert len(queue) == 5
    assert queue.run_pending(max_items=2) == 2
    assert [r[0] for r in ran] == [0, 1]
    assert queue.run_pending() == 3
    assert [r[0] for r in ran] == [0, 1, 2, 3, 4]
    assert {r[1] for r in ran} == {threading.current_thread()}
    assert queue.run_pending() == 0


def test_run_pending_waits_up_to_timeout_for_a_first_function() -> None:
    queue = PollQueue()
    ran: List[str] = []
    producer = threading.Timer(0.05, lambda: queue.call_soon(lambda: ran.append("late")))
    producer.start()
    try:
        assert queue.run_pending(timeout=5.0) == 1  # woken by the put, not by the timeout
        assert ran == ["late"]
    finally:
        producer.join()
    assert queue.run_pending(timeout=0.01) == 0


def test_a_function_that_raises_is_logged_and_the_rest_run(
        caplog: pytest.LogCaptureFixture) -> None:
    queue = PollQueue()
    ran: List[int] = []

    def boom() -> None:
        raise RuntimeError("listener bug")

    queue.call_soon(boom)
    queue.call_soon(lambda: ran.append(1))
    with caplog.at_level(logging.ERROR):
        assert queue.run_pending() == 2
    assert ran == [1]
    assert "listener bug" in caplog.text


def test_bad_arguments_are_typed_errors() -> None:
    queue = PollQueue()
    with pytest.raises(TypeError):
        queue.call_soon("not callable")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        queue.run_pending(max_items=-1)
    with pytest.raises(ValueError):
        queue.run_pending(timeout=-1)
    with pytest.raises(TypeError):
        HandOff("nope")  # type: ignore[arg-type]


def test_a_full_queue_drops_the_oldest_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    queue = PollQueue(capacity=2)
    ran: List[int] = []
    with caplog.at_level(logging.WARNING):
        for i in range(3):
            queue.call_soon(lambda i=i: ran.append(i))
    assert queue.dropped == 1 and "dropped" in caplog.text
    queue.run_pending()
    assert ran == [1, 2]


def test_many_producers_one_consumer_keeps_each_producers_order() -> None:
    queue = PollQueue()
    got: List[Tuple[int, int]] = []

    def produce(p: int) -> None:
        for i in range(200):
            queue.call_soon(lambda p=p, i=i: got.append((p, i)))

    producers = [threading.Thread(target=produce, args=(p,)) for p in range(4)]
    for t in producers:
        t.start()
    assert pump_until(queue.run_pending, lambda: len(got) == 800)
    for t in producers:
        t.join()
    for p in range(4):
        assert [i for q, i in got if q == p] == list(range(200))


def test_hand_off_never_overlaps_even_through_a_thread_pool() -> None:
    # call_soon = an executor's submit: drains may land on different threads, yet the
    # callbacks never run at the same time and keep the order they were put in
    running = 0
    overlaps = 0
    lock = threading.Lock()
    got: List[int] = []
    done = threading.Event()

    def callback(i: int) -> Callable[[], None]:
        def run() -> None:
            nonlocal running, overlaps
            with lock:
                running += 1
                overlaps += running > 1
            got.append(i)
            with lock:
                running -= 1
            if i == 999:
                done.set()
        return run

    with ThreadPoolExecutor(4) as pool:
        handoff = HandOff(pool.submit, batch=8)
        for i in range(1000):
            handoff.put(callback(i))
        assert done.wait(10)
    assert got == list(range(1000))
    assert overlaps == 0


def test_hand_off_keeps_callbacks_when_call_soon_fails_and_retries(
        caplog: pytest.LogCaptureFixture) -> None:
    queue = PollQueue()
    broken = [True]
    got: List[int] = []

    def call_soon(fn: Callable[[], None]) -> None:
        if broken[0]:
            raise RuntimeError("loop closed")
        queue.call_soon(fn)

    handoff = HandOff(call_soon)
    with caplog.at_level(logging.ERROR):
        handoff.put(lambda: got.append(1))
    assert "loop closed" in caplog.text and handoff.pending() == 1
    broken[0] = False
    handoff.put(lambda: got.append(2))
    queue.run_pending()
    assert got == [1, 2]


def test_hand_off_bounds_what_an_undrained_loop_holds() -> None:
    queue = PollQueue()
    handoff = HandOff(queue.call_soon, capacity=3)
    got: List[int] = []
    for i in range(5):
        handoff.put(lambda i=i: got.append(i))
    assert handoff.dropped == 2
    queue.run_pending()
    assert got == [2, 3, 4]
