"""Hand-offs for desktop and legacy applications: run listener callbacks on your own thread.

Tk and Qt may be touched only from their own thread, and the SDK calls listeners on its lane
and notice threads. Pass one of these as ``call_soon`` to
:meth:`CtiClient.add_listener <asterisk_cti.CtiClient.add_listener>` and the listener's
callbacks run on the GUI thread instead, one at a time, each line's in order::

    root = tkinter.Tk()
    cti.add_listener(PhoneBar(root), call_soon=tk_call_soon(root))

Every ``call_soon`` here is safe to call from any thread. This module imports no GUI toolkit:
:func:`tk_call_soon` uses the root you pass, :func:`qt_call_soon` imports Qt when called
(PySide6, else PyQt6; ``pip install 'asterisk-cti[qt]'``). See :doc:`/desktop`.

Threads: the ``call_soon`` functions on any thread; the functions they are given run on the
GUI thread (Tk, Qt) or on the thread that calls :meth:`PollQueue.run_pending`.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
import weakref
from collections import deque
from typing import Any, Callable, Deque, Optional, Tuple

logger = logging.getLogger(__name__)

#: A function to run on the receiving thread.
Job = Callable[[], None]

__all__ = ["Job", "PollQueue", "TkCallSoon", "qt_binding", "qt_call_soon", "tk_call_soon"]


class PollQueue:
    """A thread-safe queue of functions, run by whoever calls :meth:`run_pending`: for a
    legacy loop (a game loop, a curses screen, a ``select`` loop) that polls now and then.

    Example::

        queue = PollQueue()
        cti.add_listener(listener, call_soon=queue.call_soon)
        while running:
            queue.run_pending(timeout=0.05)   # the listener's callbacks run here
            ...

    :param capacity: functions waiting at most (0: unbounded). Past it :meth:`call_soon`
        drops the oldest, counts it in :attr:`dropped` and logs a warning.

    Threads: :meth:`call_soon` on any thread; :meth:`run_pending` on the thread that should
    run the functions (one thread at a time).
    """

    def __init__(self, capacity: int = 0) -> None:
        self._items: Deque[Job] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._capacity = capacity
        #: functions dropped because the queue was full
        self.dropped = 0

    def call_soon(self, fn: Job) -> None:
        """Queue ``fn`` for the next :meth:`run_pending` (any thread; never blocks)."""
        if not callable(fn):
            raise TypeError(f"call_soon needs a callable, not {type(fn).__name__}")
        with self._cond:
            self._items.append(fn)
            if self._capacity and len(self._items) > self._capacity:
                self._items.popleft()
                self.dropped += 1
                logger.warning("PollQueue full (%d): dropped the oldest function (%d so far)",
                               self._capacity, self.dropped)
            self._cond.notify()

    def run_pending(self, max_items: Optional[int] = None, timeout: float = 0) -> int:
        """Run the queued functions on the calling thread, oldest first.

        :param max_items: run at most this many (None: everything queued, including what
            the functions themselves queue meanwhile is left for the next call).
        :param timeout: seconds to wait for a first function when none is queued (0: do not
            wait).
        :returns: how many functions ran. A function that raises is logged; the others
            still run.
        """
        if max_items is not None and max_items < 0:
            raise ValueError("max_items must be >= 0 or None")
        if timeout < 0:
            raise ValueError("timeout must be >= 0")
        with self._cond:
            if not self._items and timeout > 0:
                deadline = time.monotonic() + timeout
                while not self._items:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
            n = len(self._items) if max_items is None else min(max_items, len(self._items))
        ran = 0
        for _ in range(n):
            with self._cond:
                if not self._items:
                    break
                fn = self._items.popleft()
            try:
                fn()
            except Exception:
                logger.exception("PollQueue: a queued function raised")
            ran += 1
        return ran

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)


class TkCallSoon:
    """``call_soon`` for Tk; create it with :func:`tk_call_soon`.

    Never touches Tk from another thread: :meth:`__call__` only appends to a thread-safe
    queue, and a poll scheduled with ``root.after`` on the Tk thread runs what is queued,
    every ``interval_ms`` milliseconds while the Tk event loop runs (``mainloop`` or
    ``update``): at most ``batch`` functions per turn, the next turn 1 ms later while more
    are waiting, so a burst never freezes the window. It stops when the root window is
    destroyed, or on :meth:`close`.

    Threads: ``__call__`` on any thread; the functions run on the Tk thread.
    """

    def __init__(self, root: Any, interval_ms: int = 15, batch: int = 256) -> None:
        if interval_ms < 1:
            raise ValueError("interval_ms must be >= 1")
        # a weak reference: the SDK's objects keep this hand-off, and must not keep Tk alive
        # (Tk objects must be freed on the Tk thread, never by a collection elsewhere)
        self._root_ref = weakref.ref(root)
        self._interval = interval_ms
        self._batch = batch
        self._queue = PollQueue()
        self._closed = False
        self._after_id: Optional[str] = None
        self._poll()

    def __call__(self, fn: Job) -> None:
        """Queue ``fn`` to run on the Tk thread (any thread; never blocks)."""
        self._queue.call_soon(fn)

    def _poll(self) -> None:  # Tk thread
        self._after_id = None
        if self._closed:
            return
        self._queue.run_pending(self._batch)
        root = self._root_ref()
        if root is None:
            self._closed = True
            return
        # more waiting (a burst): come back after 1 ms, once Tk handled its own events
        delay = 1 if len(self._queue) else self._interval
        try:
            self._after_id = root.after(delay, self._poll)
        except Exception as exc:  # the window was destroyed: stop polling
            logger.debug("tk_call_soon: stops polling (%s)", exc)
            self._closed = True

    def close(self) -> None:
        """Stop polling (call it on the Tk thread; idempotent). Functions still queued are
        not run."""
        self._closed = True
        after_id, self._after_id = self._after_id, None
        root = self._root_ref()
        if after_id is not None and root is not None:
            try:
                root.after_cancel(after_id)
            except Exception:  # already destroyed
                pass

    def pending(self) -> int:
        """Functions waiting for the next poll."""
        return len(self._queue)


def tk_call_soon(root: Any, interval_ms: int = 15) -> TkCallSoon:
    """The ``call_soon`` for a Tk application: functions run on the Tk thread.

    Call it on the Tk thread (where ``root`` was created), before or after ``mainloop``
    started; the returned object may then be called from any thread.

    :param root: the ``tkinter.Tk`` (or any widget: its ``after`` is used).
    :param interval_ms: how often the Tk thread looks for queued functions (the added
        latency is at most this; an idle poll costs a few microseconds).
    """
    return TkCallSoon(root, interval_ms)


#: The Qt bindings tried, in order.
QT_BINDINGS: Tuple[str, ...] = ("PySide6", "PyQt6")


def qt_binding() -> str:
    """The name of the Qt binding :func:`qt_call_soon` uses (``PySide6`` or ``PyQt6``).

    :raises ImportError: when neither is installed (``pip install asterisk-cti[qt]``).
    """
    for name in QT_BINDINGS:
        try:
            importlib.import_module(name + ".QtCore")
        except ImportError:
            continue
        return name
    raise ImportError("qt_call_soon needs PySide6 or PyQt6: pip install 'asterisk-cti[qt]'")


def qt_call_soon(parent: Optional[Any] = None) -> Callable[[Job], None]:
    """The ``call_soon`` for a Qt application: functions run on the Qt GUI thread.

    A ``QObject`` with an argument-less signal connected to a slot with a queued connection:
    callers append the function to a thread-safe queue and emit the signal (once per batch);
    Qt posts the call to the object's thread, where the slot runs what is queued, oldest
    first. No Python object crosses Qt's event queue. Call it on the GUI thread (the object
    lives in the thread that creates it), with a ``QApplication`` (or ``QCoreApplication``).

    :param parent: the parent ``QObject`` that owns the hand-off's object (default: the
        application, so that it lives as long as the application). Owned by a parent, it is
        never destroyed by Python's garbage collector on another thread (which Qt does not
        allow).
    :raises ImportError: when neither PySide6 nor PyQt6 is installed.
    :raises RuntimeError: when there is no parent and no Qt application yet.
    """
    name = qt_binding()
    core: Any = importlib.import_module(name + ".QtCore")
    if parent is None:
        parent = core.QCoreApplication.instance()
        if parent is None:
            raise RuntimeError("qt_call_soon: create the QApplication first")
    signal_type = core.Signal if name == "PySide6" else core.pyqtSignal
    queue = PollQueue()
    lock = threading.Lock()
    posted = [False]

    class _Bridge(core.QObject):  # type: ignore[misc]
        wake = signal_type()

        def __init__(self) -> None:
            super().__init__(parent)
            self.wake.connect(self._run, core.Qt.ConnectionType.QueuedConnection)

        def _run(self) -> None:  # GUI thread
            with lock:
                posted[0] = False
            queue.run_pending()

    bridge = _Bridge()

    def call_soon(fn: Job) -> None:
        """Queue ``fn`` to run on the Qt GUI thread (any thread; never blocks)."""
        queue.call_soon(fn)
        with lock:
            if posted[0]:
                return
            posted[0] = True
        bridge.wake.emit()

    call_soon.bridge = bridge  # type: ignore[attr-defined]  # keeps the QObject alive
    return call_soon
