"""Every non-frame entry of the ring.

The ring carries raw frames (``bytes``) from the reactor and, between them, markers: objects
that must reach the processor thread *in order with the events around them*. Three kinds:

- from the reactor: :class:`Connected`, :class:`Disconnected`;
- commands from other threads: :class:`MonitorChange` (subscribe and resynchronise),
  :class:`FilterChange` (re-install the server-side event filter), :class:`Barrier` (learn
  when everything before it was processed) and :class:`InOrder` (run this on the processor
  thread, in order; call control's ARI hold uses it to tell the model);
- REST answers from :class:`~asterisk_cti.pipeline.sync.RestWorker`: :class:`ConnectSync`,
  :class:`ChangeSync`, :class:`FilterSync`, :class:`ResyncResult`, :class:`RepairResult`
  (each is posted to the worker as a job, filled on its thread, and put back into the ring).

Markers are plain slotted objects; a marker's ``done`` event is set on the processor thread.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Mapping, Optional, Tuple


class Marker:
    """Base of the non-frame entries of the ring."""

    __slots__ = ()


# -- from the reactor --------------------------------------------------------------------------


class Connected(Marker):
    """The websocket is open. ``attempts``: failed attempts before this one."""

    __slots__ = ("attempts",)

    def __init__(self, attempts: int) -> None:
        self.attempts = attempts


class Disconnected(Marker):
    """The websocket closed (or a connect failed before the first connection). ``reason``
    says why (never contains credentials); ``error`` is set when retrying cannot help and
    the reactor gave up; ``attempt`` counts the failed attempts in a row."""

    __slots__ = ("reason", "error", "attempt")

    def __init__(self, reason: str, error: Optional[BaseException] = None,
                 attempt: int = 0) -> None:
        self.reason = reason
        self.error = error
        self.attempt = attempt


# -- commands ----------------------------------------------------------------------------------


class MonitorChange(Marker):
    """Sent through the ring when the monitored set changes, so the processor thread applies
    it in order with the events; ``done`` is set once subscribed and resynchronised."""

    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: Optional[BaseException] = None


class FilterChange(Marker):
    """Sent through the ring when the event types the client consumes changed (a raw
    listener came or went): the processor has the server-side event filter re-installed by
    its REST worker. The filter has one owner, the processor; nobody else sends it."""

    __slots__ = ()


class Barrier(Marker):
    """Sent through the ring to learn when everything before it was processed."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


#: What an :class:`InOrder` action returns: the call model's CTI events it produced (each has
#: a ``line``), delivered to call listeners and waiters like the model's other events.
Action = Callable[[], Iterable[Any]]


class InOrder(Marker):
    """Run ``action`` on the processor thread, in order with the events around it.

    The generic command: whatever must touch processor-thread state (the call model) from
    another thread goes through the ring as one of these. The CTI events ``action`` returns
    are delivered as the model's own; ``done`` is set afterwards (also when it raised).
    """

    __slots__ = ("action", "done", "error")

    def __init__(self, action: Action) -> None:
        self.action = action
        self.done = threading.Event()
        self.error: Optional[BaseException] = None


# -- REST answers (jobs of the REST worker) ----------------------------------------------------


class ResyncResult(Marker):
    """Posted through the ring by the REST worker: what ``GET /channels``, ``/bridges`` and
    ``/endpoints`` answered (or the error), applied by the processor in order with the
    events around it."""

    __slots__ = ("reason", "epoch", "channels", "bridges", "endpoints", "error", "changes")

    def __init__(self, reason: str, epoch: int) -> None:
        self.reason = reason
        self.epoch = epoch
        #: monitor changes that return once this resynchronisation was applied
        self.changes: List[MonitorChange] = []
        self.channels: List[Dict[str, Any]] = []
        self.bridges: List[Dict[str, Any]] = []
        self.endpoints: List[Dict[str, Any]] = []
        self.error: Optional[BaseException] = None


class RepairResult(Marker):
    """Posted through the ring by the REST worker: ``GET /channels/{id}`` of channels the
    model could not fit (``None`` for a channel that is gone)."""

    __slots__ = ("epoch", "cids", "results", "error")

    def __init__(self, cids: List[str], epoch: int) -> None:
        self.cids = cids
        self.epoch = epoch
        self.results: List[Tuple[str, Optional[Dict[str, Any]]]] = []
        self.error: Optional[BaseException] = None


class ConnectSync(Marker):
    """Posted through the ring by the REST worker after a (re)connect: what
    ``GET /asterisk/info`` said and what the subscription sync did (or the error)."""

    __slots__ = ("seq", "attempts", "needed", "info", "result", "error")

    def __init__(self, seq: int, attempts: int, needed: FrozenSet[str]) -> None:
        self.seq = seq
        self.attempts = attempts
        self.needed = needed
        self.info: Mapping[str, Any] = {}
        self.result: Any = None
        self.error: Optional[BaseException] = None


class ChangeSync(Marker):
    """Posted through the ring by the REST worker once a monitor change was subscribed (or
    refused)."""

    __slots__ = ("change", "error")

    def __init__(self, change: MonitorChange) -> None:
        self.change = change
        self.error: Optional[BaseException] = None


class FilterSync(Marker):
    """Posted through the ring by the REST worker once the event filter for ``needed`` was
    installed (``installed`` False: the server refused it; the client filters itself)."""

    __slots__ = ("needed", "installed", "error")

    def __init__(self, needed: FrozenSet[str]) -> None:
        self.needed = needed
        self.installed = False
        self.error: Optional[BaseException] = None

