"""Ordered delivery lanes on a small pool of worker threads.

The processor thread hands the dispatcher batches of ``(key, item)`` pairs. Items that share a
key are delivered in the order they were submitted, one at a time; different keys run in
parallel on the pool. A lane is a queue of plain items: a key with nothing queued gets one
entry in the pool's ready queue, and the worker that takes it drains everything queued for
the key. No future, no work item per event: a burst for one line costs one ready entry.

Every listener call goes through :func:`safe_call`: an exception is logged with the
listener's name, handed to the error hook, and delivery goes on. A listener that blocks holds
only its own lane (and one pool thread); past ``backlog_warning`` waiting items a warning is
logged, once per backlog.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, Hashable, Iterable, List, Optional, Tuple

from ..errors import ClientStoppedError

logger = logging.getLogger(__name__)

#: ``error_hook(listener, event, exception)``, called on the lane thread of the failed call.
ErrorHook = Callable[[Any, Any, BaseException], None]


def safe_call(
    listener: Any, method: str, event: Any, error_hook: Optional[ErrorHook] = None
) -> None:
    """Call ``listener.<method>(event)``, isolating the caller from whatever it raises.

    A missing method is not an error (listeners override what they need).
    A :class:`BaseException` such as :class:`SystemExit` is caught too: raised on a lane
    thread it would otherwise end the lane's task silently and leave its line without
    delivery for good.
    """
    try:
        fn = getattr(listener, method, None)
    except Exception:  # a hostile __getattr__
        logger.exception("listener %s: looking up %s raised", type(listener).__qualname__, method)
        return
    if fn is None:
        return
    try:
        fn(event)
    except BaseException as exc:  # see the docstring: a lane must not die
        logger.error(
            "listener %s.%s raised %s: %s", type(listener).__qualname__, method,
            type(exc).__name__, exc, exc_info=exc,
        )
        if error_hook is not None:
            try:
                error_hook(listener, event, exc)
            except BaseException:
                logger.exception("the error hook itself raised")


#: A lane whose listener has been running this long counts as stuck: its backlog does not
#: hold up the processor (see :meth:`Dispatcher.wait_for_room`).
STUCK_AFTER = 1.0
#: With ``one_runner``: how long a lane may wait ready behind the lanes a running pool thread
#: works through before another pool thread is woken for it. This is the bound a slow or
#: blocked listener holds the other lines (plus the time until :meth:`Dispatcher.watch`
#: runs: the producer calls it on every batch, and this often while anything waits).
HANDOFF_AFTER = 0.02


class _Lane:
    __slots__ = ("items", "warned", "busy_since")

    def __init__(self) -> None:
        self.items: Deque[Any] = deque()
        self.warned = False
        self.busy_since = 0.0


class DispatcherStats:
    """Counters of a :class:`Dispatcher` (read without a lock; approximate while running)."""

    __slots__ = ("submitted", "delivered", "lanes_started", "max_backlog", "dropped")

    def __init__(self) -> None:
        self.submitted = 0
        self.delivered = 0
        self.lanes_started = 0
        self.max_backlog = 0
        #: items dropped (oldest first) because a lane or all lanes together were full
        self.dropped = 0

    def as_dict(self) -> Dict[str, int]:
        """The counters as a dict."""
        return {k: getattr(self, k) for k in self.__slots__}


class Dispatcher:
    """Ordered lanes over a thread pool.

    :param deliver: called with each item on a lane thread; it must not raise (wrap listener
        calls in :func:`safe_call`).
    :param workers: pool threads.
    :param backlog_warning: items waiting in one lane before a warning is logged.
    :param thread_name_prefix: the pool threads' name prefix.
    :param lane_capacity: items one lane holds; past it the lane's oldest items are dropped
        (0: unbounded).
    :param total_capacity: items all lanes hold together; past it the oldest items of the
        longest lane are dropped (0: unbounded). :meth:`submit_many` returns what it dropped.
    :param one_runner: wake one pool thread per batch rather than one per newly busy lane:
        the running thread works through the ready lanes one after the other, and another
        one is woken only for a lane that waited :data:`HANDOFF_AFTER` behind it (a slow or
        blocked listener). The producer must then call :meth:`watch` after each batch and
        again when the time it returns has passed; :meth:`submit_many` and
        :meth:`wait_for_room` watch too.

    Thread contract: :meth:`submit_many` is called by the processor thread (any thread works);
    :meth:`stop` from any thread, including a lane thread.
    """

    def __init__(
        self,
        deliver: Callable[[Any], None],
        *,
        workers: int = 4,
        backlog_warning: int = 1000,
        thread_name_prefix: str = "asterisk-cti-lane",
        lane_capacity: int = 0,
        total_capacity: int = 0,
        one_runner: bool = False,
    ) -> None:
        self._deliver = deliver
        self._lane_capacity = lane_capacity
        self._total_capacity = total_capacity
        self._workers = workers
        self._backlog_warning = backlog_warning
        self._prefix = thread_name_prefix
        self._lock = threading.Lock()
        self._lanes: Dict[Hashable, _Lane] = {}
        self._started = False
        self._stopping = False
        self._threads: List[threading.Thread] = []
        self._ready: Deque[Tuple[Hashable, _Lane, float]] = deque()
        self._work = threading.Condition(self._lock)
        self._waiting_workers = 0
        self._generation = 0
        self._idle = threading.Condition(self._lock)
        self._room = threading.Condition(self._lock)
        self._room_limit = -1  # > -1 while the processor waits for room
        self._queued = 0  # items waiting in lanes, not yet taken by a runner
        self._one_runner = one_runner
        # pool threads not waiting for work (running a lane, or woken and about to look)
        self._running = 0
        self.stats = DispatcherStats()

    def start(self) -> None:
        """Create the pool (idempotent). Its threads start on demand."""
        with self._lock:
            if not self._started:
                self._started = True
                self._stopping = False
                self._generation += 1

    def submit_many(self, pairs: Iterable[Tuple[Hashable, Any]]) -> Dict[Hashable, int]:
        """Queue items on their keys' lanes; start a lane task for each idle lane.

        :param pairs: ``(key, item)`` in arrival order.
        :returns: ``{key: count}`` of the items dropped to keep the bounds (empty when none
            were: the common case).
        :raises ClientStoppedError: when the dispatcher is stopped.
        """
        dropped: Dict[Hashable, int] = {}
        lane_cap = self._lane_capacity
        n = 0
        with self._lock:
            if not self._started or self._stopping:
                raise ClientStoppedError("the dispatcher is stopped")
            lanes = self._lanes
            ready = self._ready
            started = 0
            for key, item in pairs:
                n += 1
                lane = lanes.get(key)
                if lane is None:
                    lane = lanes[key] = _Lane()
                    ready.append((key, lane, 0.0))
                    started += 1
                items = lane.items
                items.append(item)
                size = len(items)
                if lane_cap and size > lane_cap:
                    items.popleft()
                    size -= 1
                    self._queued -= 1
                    dropped[key] = dropped.get(key, 0) + 1
                if size > self.stats.max_backlog:
                    self.stats.max_backlog = size
                if size > self._backlog_warning and not lane.warned:
                    lane.warned = True
                    logger.warning(
                        "lane %r has %d events waiting: a listener is slow or blocked",
                        key, size,
                    )
            self.stats.submitted += n
            self._queued += n
            total = self._total_capacity
            if total and self._queued > total:
                self._shed(self._queued - total, dropped)
            if dropped:
                self.stats.dropped += sum(dropped.values())
            if started:
                self.stats.lanes_started += started
                if not self._one_runner:
                    self._wake(started)
                elif self._running == 0:
                    self._wake(1)
            if self._one_runner and ready:
                self._handoff(time.monotonic())
        return dropped

    def watch(self) -> Optional[float]:
        """With ``one_runner``: wake another pool thread when the oldest ready lane has
        waited :data:`HANDOFF_AFTER` (its predecessors' listeners are slow or blocked).

        :returns: seconds until this should be called again, or None when no lane waits
            (nothing can be held up). Any thread; cheap when nothing waits.
        """
        if not self._ready:
            return None
        with self._lock:
            if not self._ready or self._stopping:
                return None
            return self._handoff(time.monotonic())

    def _handoff(self, now: float) -> Optional[float]:
        # Lock held, ready lanes exist. The first time a lane is seen waiting it gets its
        # clock (stamping it in submit_many would cost a clock read per new lane).
        ready = self._ready
        key, lane, since = ready[0]
        if not since:
            ready[0] = (key, lane, now)
            return HANDOFF_AFTER
        waited = now - since
        if waited < HANDOFF_AFTER:
            return HANDOFF_AFTER - waited
        if not self._wake(1):
            return None  # every pool thread is busy: the first one back takes the lane
        # the woken thread takes this lane; the next one gets its own clock
        if len(ready) > 1:
            k2, l2, _ = ready[1]
            ready[1] = (k2, l2, now)
        return HANDOFF_AFTER

    def _wake(self, started: int) -> int:
        # Lock held. Wake a waiting worker per new lane, start threads up to ``workers``.
        # A notified worker leaves the waiting count here, not when it wakes, so that a
        # second batch before it runs does not count on it again. Returns how many.
        woken = 0
        waiting = min(self._waiting_workers, started)
        if waiting:
            self._waiting_workers -= waiting
            self._running += waiting
            self._work.notify(waiting)
            started -= waiting
            woken += waiting
        while started > 0 and len(self._threads) < self._workers:
            started -= 1
            woken += 1
            self._running += 1
            thread = threading.Thread(
                target=self._worker, args=(self._generation,),
                name=f"{self._prefix}_{len(self._threads)}", daemon=True,
            )
            self._threads.append(thread)
            thread.start()
        return woken

    def _worker(self, generation: int) -> None:
        lock = self._lock
        ready = self._ready
        while True:
            with lock:
                while not ready:
                    if self._stopping or self._generation != generation:
                        return
                    self._waiting_workers += 1
                    self._running -= 1
                    self._work.wait()
                if self._stopping or self._generation != generation:
                    return
                key, lane, _ = ready.popleft()
            self._run_lane(key, lane)

    def _shed(self, excess: int, dropped: Dict[Hashable, int]) -> None:
        # All lanes together are over the bound: drop the oldest items of the longest lanes
        # (the ones falling behind), never of lanes that keep up. Lock held.
        while excess > 0:
            key, lane = max(self._lanes.items(), key=lambda kv: len(kv[1].items))
            items = lane.items
            if not items:
                return
            # take the longest lane down to the next one's length, at least one item
            n = min(excess, max(1, len(items) // 2))
            for _ in range(n):
                items.popleft()
            excess -= n
            self._queued -= n
            dropped[key] = dropped.get(key, 0) + n

    def _run_lane(self, key: Hashable, lane: _Lane) -> None:
        deliver = self._deliver
        lock = self._lock
        while True:
            with lock:
                items = lane.items
                if not items or self._stopping:
                    # Done: retire the lane so that its key can start a new one.
                    if self._lanes.get(key) is lane:
                        del self._lanes[key]
                    if not self._lanes:
                        self._idle.notify_all()
                    return
                lane.items = deque()
                lane.warned = False
                lane.busy_since = time.monotonic()
                self._queued -= len(items)
                if self._room_limit >= 0 and self._queued <= self._room_limit // 2:
                    self._room.notify()
            for item in items:
                if self._stopping:
                    break
                try:
                    deliver(item)
                except BaseException:  # deliver must not raise; never let a lane die
                    logger.exception("delivery on lane %r raised; the lane goes on", key)
            lane.busy_since = 0.0
            self.stats.delivered += len(items)

    def wait_for_room(self, limit: int, max_wait: float) -> bool:
        """Hold the producer (the processor thread) while more than ``limit`` items wait in
        lanes that are moving, up to ``max_wait`` seconds.

        Parsed events are several times larger than the raw frames behind them: when
        listeners fall behind, the backlog is better kept in the ring, which is bounded and
        announces what it loses, than in lanes that grow without limit. Lanes stuck in a
        listener for more than :data:`STUCK_AFTER` seconds do not count, so one blocked
        listener never slows the others down.

        :returns: False when it gave up waiting.
        """
        if self._queued <= limit:  # the common case, without the lock (re-read under it)
            return True
        deadline = time.monotonic() + max_wait
        with self._lock:
            while self._queued > limit and not self._stopping:
                now = time.monotonic()
                if self._one_runner and self._ready:
                    self._handoff(now)
                stuck = 0
                stuck_lanes = 0
                for lane in self._lanes.values():
                    if lane.busy_since and now - lane.busy_since > STUCK_AFTER:
                        stuck += len(lane.items)
                        stuck_lanes += 1
                if stuck_lanes >= self._workers:
                    return True  # every pool thread is held by a blocked listener: no lane moves
                if self._queued - stuck <= limit:
                    return True
                left = deadline - now
                if left <= 0:
                    return False
                self._room_limit = limit
                try:
                    self._room.wait(min(left, 0.1))
                finally:
                    self._room_limit = -1
            return True

    def wait_idle(self, timeout: float) -> bool:
        """Block until every lane is drained (for tests and orderly shutdown).

        :returns: True when idle, False on timeout.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._lanes:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
            return True

    def backlog(self) -> int:
        """Items waiting in all lanes."""
        with self._lock:
            return sum(len(lane.items) for lane in self._lanes.values())

    def stop(self, timeout: float = 5.0, drain: bool = False) -> bool:
        """Stop delivering and join the pool threads (idempotent, never joins the caller).

        :param timeout: seconds to wait for the pool threads.
        :param drain: deliver what is queued before stopping (bounded by ``timeout``).
        :returns: True when every pool thread ended (a listener blocked forever keeps its
            thread alive; it is logged and False is returned).
        """
        if drain:
            self.wait_idle(timeout)
        with self._lock:
            was_started = self._started
            self._started = False
            self._stopping = True
            self._lanes.clear()
            self._ready.clear()
            self._queued = 0
            threads, self._threads = self._threads, []
            self._idle.notify_all()
            self._room.notify_all()
            self._work.notify_all()
            self._waiting_workers = 0
            self._running = 0
        if not was_started:
            return True
        deadline = time.monotonic() + timeout
        me = threading.current_thread()
        ok = True
        for thread in threads:
            if thread is me:
                continue
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                ok = False
                logger.error("dispatcher thread %s did not stop: a listener is blocked",
                             thread.name)
        return ok
