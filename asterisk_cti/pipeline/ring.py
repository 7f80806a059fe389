"""The circular buffer between the reactor thread and the processor thread.

The reactor :meth:`Ring.put_many` s raw frames and connection markers; the processor takes
everything that is waiting with one :meth:`Ring.get_batch`. A put never blocks: when the ring
is full the oldest entries are overwritten, counted, and reported to the next ``get_batch`` so
that the processor can tell listeners that events were lost and resynchronise the call model.
Connection markers are never overwritten: losing one would hide a reconnect.

Hand-offs between threads are what costs most in this design, so the ring is built to make
them rare: the consumer is notified only when it is actually waiting, and it swaps out the
whole backlog under one lock acquisition.

Pacing: past a backlog of :data:`PACE_BYTES` (or half its frames) the producer may wait a
little for the consumer before it reads more (:meth:`Ring.wait_for_room`, at most
:data:`PACE_WAIT` per read): a burst then waits in the kernel's socket buffers, which cost
this process no memory and no interpreter time, instead of in the ring, and the consumer
does not have to share the interpreter with a reader that is far ahead of it. The wait is
short and bounded, so the server's writes never stall for long; a consumer that stays
behind still fills the ring, which overwrites and announces as before.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any, Deque, Iterable, NamedTuple, Optional, Sequence, Union

#: Backlog (bytes of waiting frames) past which :meth:`Ring.wait_for_room` waits; at most a
#: quarter of the byte bound.
PACE_BYTES = 1 << 20
#: The longest :meth:`Ring.wait_for_room` waits (seconds): well under Asterisk's default
#: ``websocket_write_timeout`` (100 ms), past which it would drop a websocket it cannot
#: write to.
PACE_WAIT = 0.02


class RingStats(NamedTuple):
    """Counters of a :class:`Ring` (a consistent snapshot)."""

    capacity: int
    size: int
    high_water: int
    overwritten: int
    put: int
    bytes: int = 0
    """Bytes of the frames waiting now."""
    max_bytes: int = 0
    """The byte bound (0: frames only)."""


class Batch(NamedTuple):
    """What :meth:`Ring.get_batch` returns."""

    items: Union[Deque[Any], Sequence[Any]]
    lost: int
    """Entries overwritten before this batch was taken (0 when nothing was lost)."""


class Ring:
    """A fixed-capacity circular buffer guarded by a lock and a condition.

    Thread contract: any number of producers (in practice the reactor thread) may call
    :meth:`put` / :meth:`put_many`; one consumer (the processor thread) calls
    :meth:`get_batch`. :meth:`close` may be called from any thread and wakes the consumer.
    """

    def __init__(self, capacity: int, max_bytes: int = 0) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        self._capacity = capacity
        #: Bytes of waiting frames before the oldest are overwritten (0: no byte bound).
        self._max_bytes = max_bytes
        self._bytes = 0
        self._items: Deque[Any] = deque()
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._waiting = False
        self._closed = False
        self._high_water = 0
        self._overwritten = 0
        self._lost_pending = 0
        self._put = 0
        self._pace_bytes = min(PACE_BYTES, max_bytes // 4)
        self._pace_frames = max(1, capacity // 2)
        self._room = threading.Condition(self._lock)
        self._producer_waiting = False
        #: times :meth:`wait_for_room` waited
        self.paced = 0

    @property
    def capacity(self) -> int:
        """How many entries the ring holds before it overwrites the oldest."""
        return self._capacity

    def put(self, item: Any) -> None:
        """Append one entry; never blocks. Overwrites the oldest frame when full."""
        self.put_many((item,))

    def put_many(self, items: Iterable[Any]) -> None:
        """Append entries in order; never blocks (one lock acquisition for all of them).

        :param items: raw frames (``bytes``/``str``) or marker objects.
        """
        if self._max_bytes:
            if not isinstance(items, (list, tuple)):
                items = list(items)
            try:
                size = sum(map(len, items))  # frames only, in the common case
            except TypeError:  # markers among them
                size = sum(len(x) for x in items if isinstance(x, (bytes, str)))
        else:
            size = 0
        with self._lock:
            if self._closed:
                return
            q = self._items
            before = len(q)
            q.extend(items)
            n = len(q)
            self._put += n - before
            self._bytes += size
            if n > self._capacity or (self._max_bytes and self._bytes > self._max_bytes):
                self._overflow()
                n = len(q)
            if n > self._high_water:
                self._high_water = n
            if self._waiting:
                self._cond.notify()

    def _overflow(self) -> None:
        # Drop the oldest frames; keep markers (they are rare and carry connection state).
        q = self._items
        excess = len(q) - self._capacity
        limit = self._max_bytes
        kept: list[Any] = []
        while q and (excess > 0 or (limit and self._bytes > limit)):
            item = q.popleft()
            if isinstance(item, (bytes, str)):
                excess -= 1
                self._overwritten += 1
                self._lost_pending += 1
                if limit:
                    self._bytes -= len(item)
            else:
                kept.append(item)
        q.extendleft(reversed(kept))

    def wait_for_room(self, timeout: float = PACE_WAIT) -> bool:
        """Producer side, before reading more: while the ring holds more than its pacing mark
        (:data:`PACE_BYTES` or a quarter of the byte bound, when there is one; half the
        frames), wait until the
        consumer takes a batch, the ring is closed, or ``timeout`` passes. Returns at once
        otherwise.

        :returns: True when it waited.
        """
        with self._lock:
            if self._closed or not (len(self._items) > self._pace_frames or (
                    self._max_bytes and self._bytes > self._pace_bytes)):
                return False
            self.paced += 1
            self._producer_waiting = True
            try:
                self._room.wait(timeout)
            finally:
                self._producer_waiting = False
            return True

    def get_batch(self, timeout: Optional[float] = None) -> Batch:
        """Take every waiting entry, blocking until there is one, the timeout passes, or close.

        :param timeout: seconds to wait; ``None`` waits until an entry or :meth:`close`.
        :returns: the entries in arrival order (empty on timeout or close) and the count of
            entries lost to overwriting since the previous batch.
        """
        with self._lock:
            if not self._items and not self._closed:
                self._waiting = True
                try:
                    self._cond.wait(timeout)
                finally:
                    self._waiting = False
            items: Union[Deque[Any], Sequence[Any]] = self._items
            if items:
                self._items = deque()
                self._bytes = 0
            else:
                items = ()
            lost = self._lost_pending
            self._lost_pending = 0
            if self._producer_waiting:
                self._room.notify()
        return Batch(items, lost)

    def take_lost(self) -> int:
        """The count of entries overwritten since the last :meth:`get_batch` or call of this,
        and reset it (the consumer polls it while it works through a long batch, so that a
        loss is announced at once)."""
        with self._lock:
            lost = self._lost_pending
            self._lost_pending = 0
        return lost

    def close(self) -> None:
        """Refuse further puts and wake the consumer (idempotent)."""
        with self._lock:
            self._closed = True
            self._cond.notify_all()
            self._room.notify_all()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def __len__(self) -> int:
        return len(self._items)

    def stats(self) -> RingStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            return RingStats(
                self._capacity, len(self._items), self._high_water, self._overwritten, self._put,
                self._bytes, self._max_bytes,
            )
