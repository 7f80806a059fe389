"""pipeline/ring.py: the bounded ring that announces its losses."""

from __future__ import annotations

import threading
import time
from typing import Any, List

from asterisk_cti.pipeline.markers import Connected
from asterisk_cti.pipeline.ring import Ring


def test_ring_returns_everything_in_order_in_one_batch() -> None:
    ring = Ring(100)
    ring.put_many([b"1", b"2"])
    ring.put(b"3")
    batch = ring.get_batch(0)
    assert list(batch.items) == [b"1", b"2", b"3"] and batch.lost == 0
    assert list(ring.get_batch(0).items) == []


def test_full_ring_overwrites_oldest_and_reports_the_loss_once() -> None:
    ring = Ring(16)
    ring.put_many([str(i).encode() for i in range(20)])
    batch = ring.get_batch(0)
    assert [int(x) for x in batch.items] == list(range(4, 20))
    assert batch.lost == 4
    assert ring.get_batch(0).lost == 0
    stats = ring.stats()
    assert (stats.overwritten, stats.high_water, stats.size, stats.capacity) == (4, 16, 0, 16)


def test_overflow_keeps_connection_markers() -> None:
    ring = Ring(16)
    marker = Connected(0)
    ring.put(marker)
    ring.put_many([b"x"] * 30)
    items = list(ring.get_batch(0).items)
    assert items[0] is marker and len(items) == 16


def test_put_never_blocks_and_close_wakes_a_waiting_consumer() -> None:
    ring = Ring(16)
    got: List[Any] = []
    t = threading.Thread(target=lambda: got.append(ring.get_batch(None)), name="test-consumer")
    t.start()
    deadline = time.monotonic() + 2
    while not ring._waiting and time.monotonic() < deadline:  # until the consumer blocks
        time.sleep(0.001)
    assert ring._waiting
    ring.close()
    t.join(2)
    assert not t.is_alive() and list(got[0].items) == []
    ring.put(b"late")  # ignored after close, never blocks
    assert len(ring) == 0


def test_the_producer_paces_only_past_the_mark_and_never_longer_than_its_wait() -> None:
    ring = Ring(1000, max_bytes=4000)  # pacing mark: a quarter of the bytes (1000)
    ring.put_many([b"x" * 100] * 10)  # 1000 bytes: at the mark, not past it
    t0 = time.monotonic()
    assert ring.wait_for_room(5.0) is False and time.monotonic() - t0 < 1.0
    ring.put(b"x" * 100)
    t0 = time.monotonic()
    assert ring.wait_for_room(0.05) is True  # nobody takes a batch: the wait is bounded
    assert 0.04 <= time.monotonic() - t0 < 2.0
    assert ring.stats().overwritten == 0 and ring.paced == 1


def test_a_paced_producer_goes_on_as_soon_as_the_consumer_takes_a_batch() -> None:
    ring = Ring(8)  # no byte bound: the mark is half the frames
    ring.put_many([b"x"] * 5)
    waited: List[float] = []

    def producer() -> None:
        t0 = time.monotonic()
        ring.wait_for_room(10.0)
        waited.append(time.monotonic() - t0)

    t = threading.Thread(target=producer, name="test-producer")
    t.start()
    deadline = time.monotonic() + 2
    while not ring._producer_waiting and time.monotonic() < deadline:
        time.sleep(0.001)
    assert ring._producer_waiting
    assert len(ring.get_batch(0).items) == 5
    t.join(5)
    assert not t.is_alive() and waited[0] < 5.0
    # close wakes it too
    ring.put_many([b"x"] * 5)
    t = threading.Thread(target=producer, name="test-producer")
    t.start()
    while not ring._producer_waiting and time.monotonic() < deadline + 2:
        time.sleep(0.001)
    ring.close()
    t.join(5)
    assert not t.is_alive() and waited[1] < 5.0
    assert ring.wait_for_room(10.0) is False  # closed: never waits
