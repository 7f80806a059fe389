"""Keeping in step with Asterisk over REST: the connect handshake, resynchronisation, repair
and the server-side event filter.

After a (re)connect the subscriptions are synced and the state re-read; a gap (lost
frames, a rejected event) is repaired channel by channel or by a full resynchronisation; a
monitor change is subscribed, then resynchronised. The REST requests run on the
:class:`RestWorker` thread and their answers come back through the ring as markers
(:mod:`asterisk_cti.pipeline.markers`), so no request holds the events of any line; events
seen while a request is in flight are merged into its answer (they are newer).

Threads: :class:`Sync` runs on the processor thread only (it is the processor's connection
and consistency state); :class:`RestWorker` is its own thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import (
    Any,
    Callable,
    Deque,
    Dict,
    FrozenSet,
    List,
    Mapping,
    Optional,
    Protocol,
    Set,
    Tuple,
    Union,
)

from ..ari.resources import Ari
from ..ari.rest import AriRest, is_bridge, is_channel
from ..ari.subscriptions import _ALL_BRIDGES, Subscriptions
from ..backoff import RESYNC_RETRY
from ..errors import AsteriskCtiError, NotFoundError
from ..listeners import ConnectionEvent, ResyncEvent
from .delivery import CALL, LaneItem
from .markers import (
    Barrier,
    ChangeSync,
    Connected,
    ConnectSync,
    Disconnected,
    FilterChange,
    FilterSync,
    MonitorChange,
    RepairResult,
    ResyncResult,
)
from .protocols import CallModelProtocol, ReactorLink
from .ring import Ring
from .routing import Router
from .waiters import Waiters

logger = logging.getLogger(__name__)

#: Channels re-read per repair request.
_REPAIR_BATCH = 20
#: Delay of a resynchronisation asked for by a rejected event (more may follow at once).
_RESYNC_SOON = 0.2
#: Delay before channels whose repair failed are asked for again.
_REPAIR_RETRY = 1.0

RestJob = Union[ResyncResult, RepairResult, ConnectSync, ChangeSync, FilterSync]


class SyncCounters(Protocol):
    """The counters :class:`Sync` keeps (the processor's stats object)."""

    resyncs: int
    resync_failures: int
    repairs: int


class RestWorker:
    """The thread (``asterisk-cti-rest``) that runs the pipeline's own REST requests —
    subscription syncs, the event filter, resynchronisations and channel repairs — so that a
    slow or trickling server never holds the processor thread: events of every line keep
    flowing while it waits. Each job is filled and put back into the ring.

    Thread contract: :meth:`post` from the processor thread; :meth:`stop` from any thread.
    The thread starts with the first job (never in ``__init__``).
    """

    def __init__(self, rest: AriRest, ring: Ring, subscriptions: Subscriptions) -> None:
        self._rest = rest
        self._ring = ring
        self._subs = subscriptions
        self._jobs: Deque[RestJob] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: Optional[threading.Thread] = None

    def post(self, job: RestJob) -> None:
        """Queue a job to fill and put back into the ring."""
        with self._cond:
            if self._thread is None and not self._stopping:
                self._thread = threading.Thread(target=self._run, name="asterisk-cti-rest",
                                                daemon=True)
                self._thread.start()
            self._jobs.append(job)
            self._cond.notify()

    def stop(self) -> None:
        """Ask the thread to end after the request it is in (idempotent)."""
        with self._cond:
            self._stopping = True
            self._jobs.clear()
            self._cond.notify_all()

    def join(self, timeout: float) -> bool:
        """Wait for the thread to end."""
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                job = self._jobs.popleft()
            try:
                self._fill(job)
            except Exception as exc:  # never lose a job: the processor must hear back
                job.error = exc
            if not self._stopping:
                self._ring.put(job)

    def _fill(self, job: RestJob) -> None:
        rest = self._rest
        ari = Ari(rest)
        if isinstance(job, ResyncResult):
            job.channels = ari.channels.list()
            job.bridges = ari.bridges.list()
            job.endpoints = ari.endpoints.list()
        elif isinstance(job, RepairResult):
            for cid in job.cids:
                try:
                    channel: Optional[Dict[str, Any]] = ari.channels.get(cid)
                except NotFoundError:
                    channel = None
                except AsteriskCtiError as exc:
                    job.error = exc
                    return
                job.results.append((cid, channel))
        elif isinstance(job, ConnectSync):
            job.info = ari.asterisk.info()
            job.result = self._subs.sync(rest, job.needed)
        elif isinstance(job, ChangeSync):
            self._subs.apply_change(rest)
        else:
            job.installed = self._subs.install_filter(rest, job.needed)


class Sync:
    """The processor's connection and consistency state (processor thread only).

    :param worker: runs the REST requests.
    :param router: its bridge map is rebuilt by a resynchronisation.
    :param model: the call model, or None.
    :param waiters: offered the CTI events a resynchronisation produces.
    :param stats: the processor's counters (``resyncs``, ``resync_failures``, ``repairs``).
    :param subscriptions: the desired sources.
    :param reactor: asked to reconnect when the subscription sync fails.
    :param needed_types: the event types the client consumes now.
    :param submit: hands ``(key, item)`` pairs to the lanes.
    :param notify: hands a connection notice to its delivery.
    :param url: the websocket URL without query, for connection events.
    :param server_filter: whether the server-side event filter is used.
    """

    def __init__(self, worker: RestWorker, router: Router, model: Optional[CallModelProtocol],
                 waiters: Waiters, stats: SyncCounters, subscriptions: Subscriptions,
                 reactor: ReactorLink, needed_types: Callable[[], FrozenSet[str]],
                 submit: Callable[[List[LaneItem]], None], notify: Callable[[Any], None],
                 url: str, server_filter: bool) -> None:
        #: the REST worker (the processor stops it)
        self.worker = worker
        self._router = router
        self._model = model
        self._waiters = waiters
        self._stats = stats
        self._subs = subscriptions
        self._reactor = reactor
        self._needed_types = needed_types
        self._submit = submit
        self._notify = notify
        self._url = url
        self._server_filter = server_filter
        self._conn_seq = 0
        self._startup_time: Optional[str] = None
        # REST requests in flight: events seen meanwhile are merged into their answers
        self._epoch = 0
        self.inflight = 0
        self._touched_ch: Dict[str, Tuple[int, Optional[Dict[str, Any]]]] = {}
        self._touched_br: Dict[str, Tuple[int, Optional[Dict[str, Any]]]] = {}
        self._resync_inflight: Optional[ResyncResult] = None
        self._resync_again: Optional[str] = None
        self._resync_failures = 0
        self._resync_due: Optional[float] = None
        self._resync_reason = ""
        self._changes_waiting: List[MonitorChange] = []
        self._barriers: List[Barrier] = []
        self._repair_inflight = False
        self._repair_due = 0.0
        self._repair_ids: Set[str] = set()
        #: set once the first connect was subscribed and resynchronised (or failed to be)
        self.ready = threading.Event()
        self.sync_error: Optional[BaseException] = None
        self.connected = False
        self._ever_connected = False
        self.asterisk_version = ""

    # -- connection ----------------------------------------------------------------------------

    def on_connected(self, marker: Connected) -> None:
        """The websocket is up: subscribing takes REST round trips; the worker does them,
        events keep flowing."""
        self._conn_seq += 1
        self.worker.post(ConnectSync(self._conn_seq, marker.attempts, self._needed_types()))

    def on_disconnected(self, marker: Disconnected) -> None:
        """The websocket closed."""
        self._conn_seq += 1
        self.connected = False
        self._notify(ConnectionEvent(connected=False, url=self._url, reason=marker.reason,
                                     attempt=marker.attempt, error=marker.error))
        if marker.error is not None:
            self.ready.set()  # a waiting start() raises it at once

    def on_replaced(self) -> None:
        """``ApplicationReplaced``: another connection took the application name."""
        logger.error("another connection took over the ARI application; no more events "
                     "arrive here (use a distinct app name per client)")
        self.connected = False
        self._notify(ConnectionEvent(
            connected=False, url=self._url, reason="application replaced by another client"))

    def on_connect_sync(self, job: ConnectSync) -> None:
        """The subscription sync after a connect came back."""
        if job.seq != self._conn_seq:
            return  # that connection is gone already
        if job.error is not None:
            self.sync_error = job.error
            logger.warning("subscribing after connect failed: %s; reconnecting", job.error)
            self._reactor.reconnect(f"subscription failed: {job.error}")
            return
        restarted = False
        info = job.info
        status = info.get("status")
        startup = status.get("startup_time") if isinstance(status, dict) else None
        system = info.get("system")
        self.asterisk_version = str(system.get("version", "")) if isinstance(system, dict) \
            else ""
        if startup is not None:
            restarted = self._startup_time is not None and startup != self._startup_time
            self._startup_time = str(startup)
        result = job.result
        self.sync_error = None
        if self._subs.refused and not self._ever_connected:
            # A mistyped monitored source on the first connect: a configuration error that
            # retrying cannot fix. Do not run half-configured: report it and give up.
            error = self._subs.refused_error()
            self._reactor.give_up(error)
            self._notify(ConnectionEvent(connected=False, url=self._url, reason=str(error),
                                         attempt=job.attempts, error=error))
            self.ready.set()
            return
        self._ever_connected = True
        self.connected = True
        if restarted:
            logger.warning("Asterisk restarted; subscriptions and filter were rebuilt")
        logger.info("subscribed (added %s); event filter %s", list(result.subscribed) or "none",
                    "installed" if result.filter_installed else "client-side")
        if self._server_filter and job.needed != self._needed_types():
            self.worker.post(FilterSync(self._needed_types()))  # changed meanwhile
        self._notify(ConnectionEvent(
            connected=True, url=self._url, attempt=job.attempts, restarted=restarted,
            asterisk_version=self.asterisk_version))
        self._resync_failures = 0
        self.resync("connected")  # ready is set once it was applied (or failed)

    # -- the event filter ----------------------------------------------------------------------

    def on_filter_change(self, marker: FilterChange) -> None:
        """The consumed event types changed: re-install the filter (when connected; a
        connect installs it anyway)."""
        if self.connected and self._server_filter:
            self.worker.post(FilterSync(self._needed_types()))

    def on_filter_sync(self, job: FilterSync) -> None:
        """The filter request came back."""
        if job.error is not None:
            logger.warning("could not update the event filter: %s", job.error)

    # -- monitor changes -----------------------------------------------------------------------

    def on_monitor_change(self, change: MonitorChange) -> None:
        """Apply a new monitored set; ``change.done`` is set once subscribed and
        resynchronised (at once when not connected)."""
        self._router.set_sources(self._subs.wanted)
        if self._model is not None:
            self._model.set_monitored(self._subs.wanted)
        if self.connected:
            self.worker.post(ChangeSync(change))
        else:
            change.done.set()

    def on_change_sync(self, job: ChangeSync) -> None:
        """The subscription change came back: resynchronise the new lines."""
        change = job.change
        if job.error is not None:
            change.error = job.error
            logger.warning("changing subscriptions failed: %s", job.error)
            change.done.set()
            return
        if self.connected:
            self._changes_waiting.append(change)
            self.resync("monitor")
        else:
            change.done.set()

    # -- barriers --------------------------------------------------------------------------------

    def hold_barrier(self, barrier: Barrier) -> None:
        """Release a barrier once the REST requests asked for before it were applied: they
        are part of "everything received so far"."""
        if self.inflight:
            self._barriers.append(barrier)
        else:
            barrier.done.set()

    def _release_barriers(self) -> None:
        if not self.inflight and self._barriers:
            barriers, self._barriers = self._barriers, []
            for barrier in barriers:
                barrier.done.set()

    # -- events seen while a request is in flight ------------------------------------------------

    def touch(self, etype: str, data: Dict[str, Any]) -> None:
        """Remember the newest state of channels and bridges that events carry while a REST
        read is in flight: its answer may predate them, and is corrected with them."""
        epoch = self._epoch
        gone = etype == "ChannelDestroyed"
        for key in ("channel", "caller", "peer"):
            ch = data.get(key)
            if type(ch) is dict and is_channel(ch):  # only what a REST answer could hold
                self._touched_ch[ch["id"]] = (epoch, None if gone and key == "channel" else ch)
        br = data.get("bridge")
        if type(br) is dict and is_bridge(br):
            self._touched_br[br["id"]] = (epoch, None if etype == "BridgeDestroyed" else br)

    @staticmethod
    def _merged(items: List[Dict[str, Any]], touched: Mapping[str, Tuple[int, Any]],
                epoch: int) -> List[Dict[str, Any]]:
        if not touched:
            return items
        by_id: Dict[Any, Dict[str, Any]] = {item.get("id"): item for item in items}
        for ident, (seen, raw) in touched.items():
            if seen <= epoch:
                continue  # older than the request: the answer knows better
            if raw is None:
                by_id.pop(ident, None)
            else:
                by_id[ident] = raw
        return list(by_id.values())

    def _start_request(self) -> int:
        self._epoch += 1
        self.inflight += 1
        return self._epoch - 1

    def _end_request(self) -> None:
        self.inflight -= 1
        if self.inflight <= 0:
            self.inflight = 0
            self._touched_ch.clear()
            self._touched_br.clear()

    # -- resynchronisation -----------------------------------------------------------------------

    def resync_soon(self, reason: str) -> None:
        """Resynchronise shortly (several reasons at once make one request)."""
        if self._resync_due is None and self._resync_inflight is None:
            self._resync_due = time.monotonic() + _RESYNC_SOON
            self._resync_reason = reason

    def resync(self, reason: str) -> None:
        """Ask the REST worker to re-read channels, bridges and endpoints.

        The answer comes back through the ring and is applied in order with the events
        (:meth:`on_resync_result`); events that arrive meanwhile keep flowing on every line.
        One resynchronisation is in flight at a time; another asked for meanwhile follows it.
        """
        if self._resync_inflight is not None:
            # the one in flight may predate what made this one necessary: another follows
            if self._resync_again != "connected":
                self._resync_again = reason
            return
        self._resync_due = None
        job = ResyncResult(reason, self._start_request())
        job.changes, self._changes_waiting = self._changes_waiting, []
        self._resync_inflight = job
        self.worker.post(job)

    def on_resync_result(self, job: ResyncResult) -> None:
        """Apply a resynchronisation's answer (or schedule its retry)."""
        if job is self._resync_inflight:
            self._resync_inflight = None
        try:
            if job.error is not None:
                self._resync_failed(job)
            else:
                self._apply_resync(job)
        finally:
            self._end_request()
            for change in job.changes:
                change.done.set()
            if job.reason == "connected":
                self.ready.set()
            again, self._resync_again = self._resync_again, None
            if again is not None and self.connected and self._resync_due is None:
                self.resync(again)
            self._release_barriers()

    def _resync_failed(self, job: ResyncResult) -> None:
        self._stats.resync_failures += 1
        self._resync_failures += 1
        delay = RESYNC_RETRY.delay(self._resync_failures)
        logger.warning("resynchronisation failed (%s); the call model is kept, retrying in "
                       "%.0f s", job.error, delay)
        self._resync_due = time.monotonic() + delay
        self._resync_reason = job.reason if self._resync_again != "connected" else "connected"
        self._resync_again = None

    def _apply_resync(self, job: ResyncResult) -> None:
        """Rebuild the bridge map and the model from a validated answer, corrected with the
        events seen since it was asked for, and tell listeners."""
        channels = self._merged(job.channels, self._touched_ch, job.epoch)
        bridges = self._merged(job.bridges, self._touched_br, job.epoch)
        mine = self._router.rebuild(channels, bridges)
        eps = self._router.covered_endpoints(job.endpoints)
        out: List[LaneItem] = []
        report = None
        if self._model is not None:
            self._repair_ids.clear()
            try:
                events, report = self._model.resync(channels, bridges, job.endpoints)
            except Exception as exc:  # the model must not be left half-rebuilt silently
                job.error = exc
                logger.exception("applying the resynchronisation failed")
                self._resync_failed(job)
                return
            for cev in events:
                out.append((cev.line, (CALL, cev)))
                self._waiters.offer_cti(cev)
        self._resync_failures = 0
        self._stats.resyncs += 1
        if out:
            self._submit(out)
        self._notify(ResyncEvent(
            reason=job.reason, channels=len(mine), bridges=len(self._router.filter.bridges),
            endpoints=len(eps), report=report))

    # -- repair ----------------------------------------------------------------------------------

    def repair(self, channel_ids: List[str]) -> None:
        """Re-read these channels from REST soon (their events did not fit)."""
        self._repair_ids.update(channel_ids)

    def _request_repair(self) -> None:
        model = self._model
        ids = set(self._repair_ids)
        if model is not None:
            ids |= model.needs_repair
        if not ids:
            return
        cids = sorted(ids)[:_REPAIR_BATCH]
        self._repair_ids.difference_update(cids)
        self._repair_inflight = True
        self.worker.post(RepairResult(cids, self._start_request()))

    def on_repair_result(self, job: RepairResult) -> None:
        """Feed repaired channels to the model (events since the request win)."""
        self._repair_inflight = False
        try:
            model = self._model
            out: List[LaneItem] = []
            done = set()
            for cid, channel in job.results:
                done.add(cid)
                seen = self._touched_ch.get(cid)
                if seen is not None and seen[0] > job.epoch:
                    channel = seen[1]  # an event since the request is newer than the answer
                self._stats.repairs += 1
                if model is None:
                    continue
                try:
                    for cev in model.repair(cid, channel):
                        out.append((cev.line, (CALL, cev)))
                except Exception as exc:
                    logger.warning("repairing channel %s failed (%s: %s); resynchronising",
                                   cid, type(exc).__name__, exc)
                    self.resync_soon("rejected")
            if out:
                self._submit(out)
            if job.error is not None:
                self._repair_ids.update(c for c in job.cids if c not in done)
                self._repair_due = time.monotonic() + _REPAIR_RETRY
                logger.debug("repair deferred: %s", job.error)
        finally:
            self._end_request()
            self._release_barriers()

    # -- the processor's idle moments --------------------------------------------------------------

    def housekeeping(self) -> None:
        """Start a due repair or resynchronisation (after every batch)."""
        if not self.connected:
            return
        model = self._model
        now = time.monotonic()
        if (not self._repair_inflight and now >= self._repair_due
                and (self._repair_ids or (model is not None and model.needs_repair))):
            self._request_repair()
        if self._resync_due is not None and now >= self._resync_due:
            self._resync_due = None
            self.resync(self._resync_reason)


def app_free_probe(rest: AriRest, app: str, subscribe_bridges: bool,
                   timeout: float) -> Callable[[], bool]:
    """The probe the reactor runs after ``ApplicationReplaced`` (see
    :meth:`~asterisk_cti.pipeline.reactor.Reactor.replaced`): whether the application name
    is free again, so this client may take it back.

    The rule: the name is free when Asterisk no longer knows the application (404), or —
    when this client subscribes bridges (``subscribe_bridges``, the default) — when the
    application lists no all-bridges subscription: a client of this SDK keeps ``bridge:``
    subscribed while its websocket is up, and Asterisk drops that subscription when the
    websocket closes (the endpoint subscriptions stay, so the application stays listed).
    While the other client is connected neither holds, so two clients never take turns.

    :param timeout: of the request; short, since it runs on the reactor thread, which
        ``stop()`` joins.
    """

    def free() -> bool:
        try:
            body = Ari(rest).applications.peek(app, timeout=timeout)
        except NotFoundError:
            return True
        if not subscribe_bridges or not isinstance(body, dict):
            return False
        held = body.get("bridge_ids")
        return isinstance(held, list) and not any(b in _ALL_BRIDGES for b in held)

    return free
