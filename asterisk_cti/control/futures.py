"""Non-blocking call control: every operation of ``client.control`` as a
:class:`concurrent.futures.Future` (:class:`ControlFutures`, reached as
``client.control.nonblocking(call_soon)``), run on a small bounded pool of named threads
(:class:`OperationPool`).

Why: each blocking operation holds its caller until the outcome is known (``originate``
for the whole ring time). A GUI thread must never do that; it submits the operation here and
paints the outcome when the future completes. Completion callbacks
(:meth:`ControlFuture.add_done_callback`) are handed to the ``call_soon`` function the caller
chose (for Tk ``lambda fn: root.after(0, fn)``, a Qt signal, a poll queue), so they run on the
GUI thread; without one they run on the pool thread that finished the operation.

Threads: the pool's threads are ``asterisk-cti-control-op-1`` .. ``-N`` (N =
:attr:`ControlOptions.operation_workers`). They start on the first submission, end after
:data:`IDLE_SECONDS` without work, and are stopped by :meth:`CtiClient.stop
<asterisk_cti.CtiClient.stop>`: queued operations then fail with
:class:`~asterisk_cti.errors.ClientStoppedError`, running ones end as their blocking
counterparts do at stop (their waits fail with the same error).

Cancellation: :meth:`Future.cancel <concurrent.futures.Future.cancel>` cancels an operation
that is still queued (nothing was sent to Asterisk). An operation already running is **not**
cancelled (``cancel()`` returns False): its ARI requests may have been sent, and it completes
or fails as usual; undo it with the opposite operation (``hangup`` after ``originate``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from functools import partial
from typing import (
    TYPE_CHECKING,
    Callable,
    Deque,
    Dict,
    Generic,
    List,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
    TypeVar,
    Union,
)

from ..errors import ClientStoppedError
from .handles import Consultation, ControlledCall, Target

if TYPE_CHECKING:
    from .calls import CallControl

logger = logging.getLogger(__name__)

__all__ = ["CallSoon", "ControlFuture", "ControlFutures", "IDLE_SECONDS", "OperationPool"]

T = TypeVar("T")

#: A hand-off to another thread's loop: ``call_soon(fn)`` must arrange for ``fn()`` to run
#: soon on that thread and return at once, from any thread (Tk: ``lambda fn: root.after(0,
#: fn)``; asyncio: ``loop.call_soon_threadsafe``; a queue's ``put``).
CallSoon = Callable[[Callable[[], None]], None]

#: Seconds an idle pool thread waits for work before it ends.
IDLE_SECONDS = 5.0

THREAD_PREFIX = "asterisk-cti-control-op"


class ControlFuture(Future[T], Generic[T]):
    """The future of one call-control operation: a :class:`concurrent.futures.Future` whose
    completion callbacks go through the ``call_soon`` the caller chose.

    ``result()`` gives what the blocking operation returns; ``exception()`` the exception it
    would have raised, of the same type (:class:`~asterisk_cti.errors.NotInStasisError`,
    :class:`~asterisk_cti.control.CallFailedError`, ``ValueError`` for a bad argument, ...).

    :ivar operation: the operation's name (``"hold"``), for logs and UIs.
    """

    def __init__(self, operation: str, call_soon: Optional[CallSoon] = None) -> None:
        super().__init__()
        self.operation = operation
        self._call_soon = call_soon

    def add_done_callback(self, fn: Callable[[Future[T]], object]) -> None:
        """Call ``fn(future)`` once the operation completed, failed or was cancelled.

        Thread: with a ``call_soon``, on the thread it hands work to (``call_soon`` itself is
        called on the pool thread that finished the operation, or on the calling thread when
        the future is already done); without one, on that pool thread or calling thread.
        An exception ``fn`` raises is logged, never lost silently, and does not stop the other
        callbacks.
        """
        call_soon = self._call_soon
        if call_soon is None:
            super().add_done_callback(fn)
            return

        def hand_off(future: Future[T]) -> None:
            try:
                call_soon(partial(_run_logged, fn, future, self.operation))
            except Exception:
                logger.exception("call_soon refused the completion callback of %s",
                                 self.operation)

        super().add_done_callback(hand_off)

    def __repr__(self) -> str:
        if self.cancelled():
            state = "cancelled"
        elif self.done():
            state = "failed" if self.exception() is not None else "done"
        else:
            state = "running" if self.running() else "pending"
        return f"<ControlFuture {self.operation} {state}>"


def _run_logged(fn: Callable[[Future[T]], object], future: Future[T], operation: str) -> None:
    try:
        fn(future)
    except Exception:
        logger.exception("completion callback %r of %s raised", fn, operation)


_Item = Tuple["Future[object]", Callable[[], object]]


class OperationPool:
    """A small bounded pool of named threads that runs call-control operations.

    Threads start on demand (at most ``workers``), are named ``asterisk-cti-control-op-N``
    (N from 1 to ``workers``), end after ``idle`` seconds without work, and all end at
    :meth:`shutdown`. Any thread may submit.

    :param workers: the most operations that run at once; more wait in order.
    :param idle: seconds an idle thread lingers.
    """

    def __init__(self, workers: int = 4, idle: float = IDLE_SECONDS) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        if idle <= 0:
            raise ValueError("idle must be positive")
        self._workers = workers
        self._idle_seconds = idle
        self._cond = threading.Condition()
        self._queue: Deque[_Item] = deque()
        self._threads: List[threading.Thread] = []
        self._retired: List[threading.Thread] = []
        self._numbers: Set[int] = set()
        self._idle = 0
        self._generation = 0

    @property
    def workers(self) -> int:
        """The most operations that run at once."""
        return self._workers

    def threads(self) -> Tuple[threading.Thread, ...]:
        """The pool's live threads (any thread)."""
        with self._cond:
            return tuple(self._threads)

    def submit(self, future: Future[T], fn: Callable[[], T]) -> None:
        """Queue ``fn``; its result or exception completes ``future``. Any thread; never
        blocks (the queue is unbounded: each entry is an operation a user asked for)."""
        with self._cond:
            self._queue.append((future, fn))  # type: ignore[arg-type]
            if len(self._queue) > self._idle and len(self._threads) < self._workers:
                number = min(set(range(1, self._workers + 1)) - self._numbers)
                thread = threading.Thread(
                    target=self._run, args=(self._generation, number),
                    name=f"{THREAD_PREFIX}-{number}", daemon=True)
                self._threads.append(thread)
                self._numbers.add(number)
                thread.start()
            else:
                self._cond.notify()

    def _run(self, generation: int, number: int) -> None:
        me = threading.current_thread()
        try:
            while True:
                with self._cond:
                    item = self._next(generation)
                    if item is None:
                        return
                future, fn = item
                if not future.set_running_or_notify_cancel():
                    continue  # cancelled while queued: nothing was sent
                try:
                    result = fn()
                except BaseException as exc:  # delivered to the future, never lost
                    future.set_exception(exc)
                else:
                    future.set_result(result)
                del future, fn, item
        finally:
            with self._cond:
                if me in self._threads:
                    self._threads.remove(me)
                    self._numbers.discard(number)

    def _next(self, generation: int) -> Optional[_Item]:
        """The next item for a worker of ``generation`` (lock held), or None when it should
        end: shut down, or idle for too long."""
        deadline = time.monotonic() + self._idle_seconds
        while generation == self._generation and not self._queue:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._idle += 1
            try:
                self._cond.wait(left)
            finally:
                self._idle -= 1
        if generation != self._generation:
            return None
        return self._queue.popleft()

    def shutdown(self, timeout: Optional[float]) -> bool:
        """Fail the queued operations with :class:`~asterisk_cti.errors.ClientStoppedError`,
        tell every thread to end once its running operation is over, and wait (at most
        ``timeout`` seconds; ``None``: do not wait) for every thread to end, those told by an
        earlier call included. The pool may be used again afterwards (new threads start).
        Any thread, including a pool thread (which is not waited for).

        :returns: True when every thread ended in time (with ``timeout=None``: when none is
            left running).
        """
        with self._cond:
            self._generation += 1
            queued = list(self._queue)
            self._queue.clear()
            self._retired.extend(self._threads)
            self._threads.clear()
            self._numbers.clear()
            self._cond.notify_all()
        for future, _ in queued:
            if future.set_running_or_notify_cancel():
                future.set_exception(ClientStoppedError(
                    "the client stopped before this call-control operation ran"))
        me = threading.current_thread()
        if timeout is not None:
            deadline = time.monotonic() + timeout
            with self._cond:
                retired = list(self._retired)
            for thread in retired:
                if thread is not me:
                    thread.join(max(0.0, deadline - time.monotonic()))
        with self._cond:
            self._retired = [t for t in self._retired if t.is_alive()]
            left = [t for t in self._retired if t is not me]
        if left and timeout is not None:
            logger.warning("call-control operation threads still run an operation: %s",
                           ", ".join(t.name for t in left))
        return not left

    def __repr__(self) -> str:
        with self._cond:
            return (f"OperationPool(workers={self._workers}, threads={len(self._threads)}, "
                    f"queued={len(self._queue)})")


class ControlFutures:
    """Every operation of :class:`~asterisk_cti.control.CallControl`, returning a
    :class:`ControlFuture` at once instead of blocking. Get one with
    ``client.control.nonblocking(call_soon)``; it is a cheap view (any number may exist),
    and they share the client's one :class:`OperationPool`.

    Each method takes the same arguments as its blocking counterpart, validates nothing
    itself, and queues the blocking call; its result, or the exception it raises (same type:
    bad arguments give ``ValueError`` / ``TypeError`` in the future too), completes the
    future. Operations submitted from one thread start in submission order; up to
    :attr:`ControlOptions.operation_workers` run at once, so two operations on the same call
    may overlap: chain them from the first one's callback when the order matters.

    Threads: every method may be called from any thread and returns at once. See
    :meth:`ControlFuture.add_done_callback` for where callbacks run.

    :param control: the blocking call control.
    :param pool: the pool to run on.
    :param call_soon: how completion callbacks reach the caller's thread (None: they run on
        the pool thread).
    """

    def __init__(self, control: CallControl, pool: OperationPool,
                 call_soon: Optional[CallSoon] = None) -> None:
        if call_soon is not None and not callable(call_soon):
            raise TypeError("call_soon must be callable: call_soon(fn) runs fn on your thread")
        self._control = control
        self._pool = pool
        self._call_soon = call_soon

    @property
    def call_soon(self) -> Optional[CallSoon]:
        """The hand-off completion callbacks go through (None: the pool thread)."""
        return self._call_soon

    def submit(self, operation: str, fn: Callable[[], T]) -> ControlFuture[T]:
        """Run any callable on the operation pool (a sequence of blocking operations, say) and
        get its future; ``operation`` names it in logs. Any thread; returns at once."""
        if not callable(fn):
            raise TypeError("fn must be callable")
        future: ControlFuture[T] = ControlFuture(operation, self._call_soon)
        self._pool.submit(future, fn)
        return future

    # -- calls.py -----------------------------------------------------------------------------

    def originate(self, endpoint: str, destination: str, *, context: Optional[str] = None,
                  caller_id: Optional[str] = None,
                  variables: Optional[Mapping[str, str]] = None, timeout: float = 30.0,
                  wait_for: str = "delivered") -> ControlFuture[ControlledCall]:
        """:meth:`CallControl.originate <asterisk_cti.control.CallControl.originate>` as a
        future. Any thread; returns at once."""
        return self.submit("originate", partial(
            self._control.originate, endpoint, destination, context=context,
            caller_id=caller_id, variables=variables, timeout=timeout, wait_for=wait_for))

    def answer(self, target: Target, *,
               timeout: Optional[float] = None) -> ControlFuture[None]:
        """:meth:`CallControl.answer <asterisk_cti.control.CallControl.answer>` as a future.
        Any thread; returns at once."""
        return self.submit("answer", partial(self._control.answer, target, timeout=timeout))

    def hangup(self, target: Target, reason: str = "normal", *,
               timeout: Optional[float] = None) -> ControlFuture[None]:
        """:meth:`CallControl.hangup <asterisk_cti.control.CallControl.hangup>` as a future.
        Any thread; returns at once."""
        return self.submit("hangup", partial(self._control.hangup, target, reason,
                                             timeout=timeout))

    def mute(self, target: Target, direction: str = "both") -> ControlFuture[None]:
        """:meth:`CallControl.mute <asterisk_cti.control.CallControl.mute>` as a future.
        Any thread; returns at once."""
        return self.submit("mute", partial(self._control.mute, target, direction))

    def unmute(self, target: Target, direction: str = "both") -> ControlFuture[None]:
        """:meth:`CallControl.unmute <asterisk_cti.control.CallControl.unmute>` as a future.
        Any thread; returns at once."""
        return self.submit("unmute", partial(self._control.unmute, target, direction))

    def send_dtmf(self, target: Target, digits: str, *, duration_ms: int = 100,
                  between_ms: int = 100) -> ControlFuture[None]:
        """:meth:`CallControl.send_dtmf <asterisk_cti.control.CallControl.send_dtmf>` as a
        future. Any thread; returns at once."""
        return self.submit("send_dtmf", partial(
            self._control.send_dtmf, target, digits, duration_ms=duration_ms,
            between_ms=between_ms))

    def redirect(self, target: Target, endpoint: str) -> ControlFuture[None]:
        """:meth:`CallControl.redirect <asterisk_cti.control.CallControl.redirect>` as a
        future. Any thread; returns at once."""
        return self.submit("redirect", partial(self._control.redirect, target, endpoint))

    def play(self, target: Target, media: Union[str, Sequence[str]], *,
             lang: Optional[str] = None,
             playback_id: Optional[str] = None) -> ControlFuture[str]:
        """:meth:`CallControl.play <asterisk_cti.control.CallControl.play>` as a future. Any
        thread; returns at once."""
        return self.submit("play", partial(self._control.play, target, media, lang=lang,
                                           playback_id=playback_id))

    def stop_playback(self, playback_id: str) -> ControlFuture[bool]:
        """:meth:`CallControl.stop_playback
        <asterisk_cti.control.CallControl.stop_playback>` as a future. Any thread; returns at
        once."""
        return self.submit("stop_playback", partial(self._control.stop_playback, playback_id))

    def continue_in_dialplan(self, target: Target, *, context: Optional[str] = None,
                             extension: Optional[str] = None,
                             priority: Optional[int] = None,
                             variables: Optional[Mapping[str, str]] = None
                             ) -> ControlFuture[None]:
        """:meth:`CallControl.continue_in_dialplan
        <asterisk_cti.control.CallControl.continue_in_dialplan>` as a future. Any thread;
        returns at once."""
        return self.submit("continue_in_dialplan", partial(
            self._control.continue_in_dialplan, target, context=context, extension=extension,
            priority=priority, variables=variables))

    def call_data(self, target: Target) -> ControlFuture[Dict[str, str]]:
        """:meth:`CallControl.call_data <asterisk_cti.control.CallControl.call_data>` as a
        future. Any thread; returns at once."""
        return self.submit("call_data", partial(self._control.call_data, target))

    def set_call_data(self, target: Target, data: Mapping[str, Optional[str]], *,
                      replace: bool = False) -> ControlFuture[Dict[str, str]]:
        """:meth:`CallControl.set_call_data <asterisk_cti.control.CallControl.set_call_data>`
        as a future. Any thread; returns at once."""
        return self.submit("set_call_data", partial(
            self._control.set_call_data, target, data, replace=replace))

    # -- transfers.py -------------------------------------------------------------------------

    def hold(self, target: Target) -> ControlFuture[None]:
        """:meth:`CallControl.hold <asterisk_cti.control.CallControl.hold>` as a future.
        Any thread; returns at once."""
        return self.submit("hold", partial(self._control.hold, target))

    def retrieve(self, target: Target) -> ControlFuture[None]:
        """:meth:`CallControl.retrieve <asterisk_cti.control.CallControl.retrieve>` as a
        future. Any thread; returns at once."""
        return self.submit("retrieve", partial(self._control.retrieve, target))

    def transfer(self, call: Target, destination: str, *, timeout: float = 30.0,
                 wait_for: str = "delivered") -> ControlFuture[ControlledCall]:
        """:meth:`CallControl.transfer <asterisk_cti.control.CallControl.transfer>` as a
        future. Any thread; returns at once."""
        return self.submit("transfer", partial(
            self._control.transfer, call, destination, timeout=timeout, wait_for=wait_for))

    def consult(self, call: Target, destination: str, *, timeout: float = 30.0,
                wait_for: str = "delivered") -> ControlFuture[Consultation]:
        """:meth:`CallControl.consult <asterisk_cti.control.CallControl.consult>` as a
        future. Any thread; returns at once."""
        return self.submit("consult", partial(
            self._control.consult, call, destination, timeout=timeout, wait_for=wait_for))

    def complete_transfer(self, call: Target, consult: Consultation, *,
                          timeout: Optional[float] = None) -> ControlFuture[ControlledCall]:
        """:meth:`CallControl.complete_transfer
        <asterisk_cti.control.CallControl.complete_transfer>` as a future. Any thread;
        returns at once."""
        return self.submit("complete_transfer", partial(
            self._control.complete_transfer, call, consult, timeout=timeout))

    def cancel_transfer(self, call: Target, consult: Consultation, *,
                        timeout: Optional[float] = None) -> ControlFuture[ControlledCall]:
        """:meth:`CallControl.cancel_transfer
        <asterisk_cti.control.CallControl.cancel_transfer>` as a future. Any thread;
        returns at once."""
        return self.submit("cancel_transfer", partial(
            self._control.cancel_transfer, call, consult, timeout=timeout))

    def conference(self, call: Target, *parties: Union[Consultation, ControlledCall, str],
                   timeout: float = 30.0) -> ControlFuture[ControlledCall]:
        """:meth:`CallControl.conference <asterisk_cti.control.CallControl.conference>` as a
        future. Any thread; returns at once."""
        return self.submit("conference", partial(
            self._control.conference, call, *parties, timeout=timeout))

    def __repr__(self) -> str:
        hand_off = "pool thread" if self._call_soon is None else repr(self._call_soon)
        return f"<ControlFutures callbacks via {hand_off} on {self._pool!r}>"
