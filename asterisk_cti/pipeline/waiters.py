"""Blocking waits for events, used by call control.

A caller registers a predicate *before* it sends the request that should cause the event (so
the event cannot slip by between the request and the wait), then blocks on
:meth:`Waiter.wait`. The processor thread offers every event it handles (ARI events and the
call model's CTI events) to the registered waiters. The wait never depends on a dispatcher
lane, so call control may block inside a listener without deadlocking the pipeline.

Threads: :meth:`Waiters.offer` runs on the processor thread; everything else on any thread.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, List, Optional

from ..errors import ClientStoppedError, CtiTimeoutError

Predicate = Callable[[Any], bool]


class Waiter:
    """One pending wait. Use as a context manager so it is always removed."""

    __slots__ = ("_owner", "_predicate", "_event", "result", "_error", "__weakref__")

    def __init__(self, owner: Waiters, predicate: Predicate) -> None:
        self._owner = owner
        self._predicate = predicate
        self._event = threading.Event()
        self.result: Any = None
        self._error: Optional[BaseException] = None

    def _offer(self, item: Any) -> bool:
        if self._event.is_set():
            return True
        try:
            matched = self._predicate(item)
        except Exception as exc:  # a broken predicate must not break the processor
            self._error = exc
            self._event.set()
            return True
        if matched:
            self.result = item
            self._event.set()
            return True
        return False

    def _fail(self, error: BaseException) -> None:
        if not self._event.is_set():
            self._error = error
            self._event.set()

    def wait(self, timeout: float, what: str = "the expected event") -> Any:
        """Block until the predicate matched an event.

        :param timeout: seconds.
        :param what: words for the timeout message.
        :returns: the matching event.
        :raises CtiTimeoutError: when nothing matched in time.
        :raises ClientStoppedError: when the client stopped meanwhile.
        """
        try:
            if not self._event.wait(timeout):
                raise CtiTimeoutError(f"timed out after {timeout:g} s waiting for {what}")
            if self._error is not None:
                raise self._error
            return self.result
        finally:
            self.cancel()

    @property
    def done(self) -> bool:
        """Whether the wait is over (matched, failed or cancelled)."""
        return self._event.is_set()

    def cancel(self) -> None:
        """Stop waiting (idempotent)."""
        self._owner._remove(self)

    def __enter__(self) -> Waiter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()


class Waiters:
    """The set of pending waits of one client."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: List[Waiter] = []
        self._taps: List[Callable[[Any], None]] = []
        #: the taps that also see the call model's CTI events (:meth:`offer_cti`)
        self._cti_taps: List[Callable[[Any], None]] = []
        self._closed = False
        #: whether :meth:`offer` has anyone to offer to (a plain attribute the processor
        #: reads for every event; kept up to date under the lock)
        self.active = False

    def tap(self, observer: Callable[[Any], None], ari_only: bool = False) -> None:
        """Install a permanent observer: :meth:`offer` calls ``observer(item)`` for every item,
        before any pending wait sees it, so what it records is always at least as recent as
        what a woken waiter has seen (call control's state uses it). It stays installed across
        stops and restarts; it must be fast, never block and never raise. Any thread.

        :param ari_only: the observer is not offered the call model's CTI events
            (:meth:`offer_cti`), only ARI events.
        """
        with self._lock:
            self._taps = [*self._taps, observer]
            self._changed()
            if not ari_only:
                self._cti_taps = [*self._cti_taps, observer]

    def expect(self, predicate: Predicate) -> Waiter:
        """Register a wait for the first event for which ``predicate(event)`` is true.

        :raises ClientStoppedError: when the client is stopped.
        """
        waiter = Waiter(self, predicate)
        with self._lock:
            if self._closed:
                raise ClientStoppedError("the client is stopped")
            self._waiters = [*self._waiters, waiter]
            self._changed()
        return waiter

    def _changed(self) -> None:
        # Lock held: the lists changed; ``active`` follows them.
        self.active = bool(self._waiters or self._taps)

    def __bool__(self) -> bool:
        return self.active

    def offer(self, item: Any) -> None:
        """Offer one ARI event to every tap, then to every pending wait (processor thread)."""
        for observer in self._taps:
            observer(item)
        for waiter in self._waiters:
            if waiter._offer(item):
                self._remove(waiter)

    @property
    def wants_cti(self) -> bool:
        """Whether anyone is offered CTI events now: a pending wait, or a tap that is not
        ``ari_only`` (the processor skips :meth:`offer_cti` otherwise)."""
        return bool(self._waiters or self._cti_taps)

    def offer_cti(self, item: Any) -> None:
        """Offer one CTI event of the call model to the taps that are not ``ari_only``, then
        to every pending wait (processor thread)."""
        for observer in self._cti_taps:
            observer(item)
        for waiter in self._waiters:
            if waiter._offer(item):
                self._remove(waiter)

    def _remove(self, waiter: Waiter) -> None:
        with self._lock:
            if waiter in self._waiters:
                self._waiters = [w for w in self._waiters if w is not waiter]
                self._changed()

    def close(self) -> None:
        """Fail every pending wait with :class:`ClientStoppedError` and refuse new ones."""
        with self._lock:
            self._closed = True
            waiters, self._waiters = self._waiters, []
            self._changed()
        for waiter in waiters:
            waiter._fail(ClientStoppedError("the client stopped"))

    def reopen(self) -> None:
        """Accept waits again (after a restart of the client)."""
        with self._lock:
            self._closed = False
