"""A timer thread for the simulator: ring timeouts, talk detection, auto-answer, boot phases.

One thread, ``asterisk-cti-sim-timers``, runs due callbacks in order. Callbacks run on that
thread and must not block; the PBX's callbacks take the PBX lock themselves.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from typing import Callable, List, Tuple

__all__ = ["Scheduler", "TimerHandle"]

logger = logging.getLogger(__name__)


class TimerHandle:
    """What :meth:`Scheduler.call_later` returns; :meth:`cancel` is idempotent."""

    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Scheduler:
    """Runs callbacks after a delay on one named thread."""

    def __init__(self) -> None:
        self._heap: List[Tuple[float, int, TimerHandle, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def start(self) -> None:
        """Start the timer thread (idempotent)."""
        with self._cond:
            if self._thread is not None:
                return
            self._stopping = False
            self._thread = threading.Thread(
                target=self._run, name="asterisk-cti-sim-timers", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Drop pending timers and join the thread (idempotent; never joins itself)."""
        with self._cond:
            self._stopping = True
            self._heap.clear()
            self._cond.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def clear(self) -> None:
        """Cancel every pending timer (used by a simulated restart)."""
        with self._cond:
            for _, _, handle, _ in self._heap:
                handle.cancel()
            self._heap.clear()

    def call_later(self, delay: float, fn: Callable[[], None]) -> TimerHandle:
        """Run ``fn`` on the timer thread after ``delay`` seconds."""
        handle = TimerHandle()
        with self._cond:
            heapq.heappush(
                self._heap, (time.monotonic() + max(0.0, delay), next(self._seq), handle, fn)
            )
            self._cond.notify_all()
        return handle

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    if self._heap:
                        wait = self._heap[0][0] - time.monotonic()
                        if wait <= 0:
                            break
                        self._cond.wait(wait)
                    else:
                        self._cond.wait()
                if self._stopping:
                    return
                _, _, handle, fn = heapq.heappop(self._heap)
            if handle.cancelled:
                continue
            try:
                fn()
            except Exception:
                logger.exception("simulator timer callback %r failed", fn)
