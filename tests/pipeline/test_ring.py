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
