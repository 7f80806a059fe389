"""The processor thread: one batch loop from the ring to the lanes.

It takes whole batches from the ring. Frames of types nobody consumes never get here: the
transport drops them as it reads them (the reactor's ``set_wanted``, kept up to date from
here). Each frame is checked against the recent ones (Asterisk
delivers an event once per subscription that covers it), decoded
(:func:`~asterisk_cti.events.decode_frame`) into a typed event, fed to the call model (when
one is plugged in), offered to call control's waiters, given its listeners' lane key
(:mod:`~asterisk_cti.pipeline.routing`), and the batch goes to the dispatcher in one call.
Markers between the frames (:mod:`~asterisk_cti.pipeline.markers`) are handled in order:
connection changes and REST answers by :class:`~asterisk_cti.pipeline.sync.Sync`, commands
here. A gap reported by the ring is announced (``on_events_lost``) and resynchronised.

Each frame is isolated: one that cannot be decoded is counted ``malformed``, one whose fields
break the model or the routing is counted ``rejected`` and repaired from REST; the frames
around it are delivered.

Only the processor thread runs this module's loop; :meth:`Processor.set_raw_types` may be
called from any thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from itertools import islice
from typing import (
    Any,
    Callable,
    Deque,
    Dict,
    FrozenSet,
    Hashable,
    Iterable,
    List,
    Mapping,
    Optional,
    Set,
)

from ..ari.rest import AriRest
from ..ari.subscriptions import ALWAYS_WANTED, Subscriptions
from ..errors import ClientStoppedError
from ..events import wire
from ..events.catalogue import (
    ARI_EVENT_TYPES,
    Event,
    channel_ids_of,
    decode_frame,
    parse_event,
)
from ..listeners import EventsLostEvent
from .delivery import CALL, CHANNEL, RAW, LaneItem, RawRoute, nobody
from .frames import SNIFFED_TYPES
from .markers import (
    Barrier,
    ChangeSync,
    Connected,
    ConnectSync,
    Disconnected,
    FilterChange,
    FilterSync,
    InOrder,
    Marker,
    MonitorChange,
    RepairResult,
    ResyncResult,
)
from .protocols import CallModelProtocol, ReactorLink
from .ring import Ring
from .routing import Router
from .sync import RestWorker, Sync
from .waiters import Waiters

#: Types the call model reads when they come but does not ask Asterisk for (see
#: :meth:`Processor.needed_types`).
SERVER_SKIPPED_MODEL_TYPES: FrozenSet[str] = frozenset({"ChannelVarset"})

logger = logging.getLogger(__name__)

#: How many recent frames are remembered to drop Asterisk's duplicate deliveries, and how
#: many bytes of them at most (a flood of huge frames must not pin memory).
_DEDUP_WINDOW = 256
DEDUP_WINDOW_BYTES = 1 << 20
#: Frames processed between two looks at the ring's loss counter (a loss is announced while
#: the processor still works through a long backlog, not after it), and between two
#: hand-offs to the lanes: the parsed events of one chunk are what the processor holds.
_CHUNK = 512
#: Shortest gap between two loss notices of the same kind (more losses are added up).
_NOTICE_GAP = 0.25


class ProcessorStats:
    """Counters of the processor thread (approximate when read from another thread)."""

    __slots__ = ("frames", "duplicates", "malformed", "rejected", "filter_errors", "delivered",
                 "resyncs", "resync_failures", "losses", "lost_frames", "lane_dropped",
                 "lost_announced", "repairs")

    def __init__(self) -> None:
        #: frames taken from the ring (every one is a duplicate, malformed, rejected or
        #: accepted)
        self.frames = 0
        self.duplicates = 0
        #: frames that are not one JSON object with a string ``type`` (bad JSON, too deep)
        self.malformed = 0
        #: parsed events whose fields did not fit (model, routing): skipped and repaired
        self.rejected = 0
        #: raw listeners' ``wants`` filters that raised (the event still went elsewhere)
        self.filter_errors = 0
        self.delivered = 0
        self.resyncs = 0
        #: resynchronisations that failed (error or invalid answer) and were retried
        self.resync_failures = 0
        self.losses = 0
        #: frames the ring overwrote
        self.lost_frames = 0
        #: parsed events dropped from full lanes
        self.lane_dropped = 0
        #: the sum of ``count`` over the ``on_events_lost`` notices sent
        self.lost_announced = 0
        self.repairs = 0

    def as_dict(self) -> Dict[str, int]:
        """The counters as a dict."""
        return {k: getattr(self, k) for k in self.__slots__}


class LossNotices:
    """Losses waiting to be announced (``on_events_lost``): frames the ring overwrote and
    events full lanes dropped. Announced at once, or — within :data:`_NOTICE_GAP` of the
    previous notice — added up for the next one. Processor thread only.
    """

    __slots__ = ("_stats", "_notify", "_ring", "_lanes", "_at")

    def __init__(self, stats: ProcessorStats, notify: Callable[[Any], None]) -> None:
        self._stats = stats
        self._notify = notify
        self._ring = 0
        self._lanes: Dict[Hashable, int] = {}
        self._at = 0.0

    @property
    def pending(self) -> bool:
        """Whether losses wait for the next notice."""
        return bool(self._ring or self._lanes)

    def ring_lost(self, count: int) -> None:
        """The ring overwrote ``count`` frames."""
        self._stats.losses += 1
        self._stats.lost_frames += count
        self._ring += count

    def lanes_dropped(self, dropped: Mapping[Hashable, int]) -> None:
        """Full lanes dropped their oldest events (lane key -> how many)."""
        for key, n in dropped.items():
            self._stats.lane_dropped += n
            self._lanes[key] = self._lanes.get(key, 0) + n

    def flush(self, force: bool = False) -> bool:
        """Announce what waits, unless the previous notice is too recent (``force``:
        whatever the gap).

        :returns: True when something was announced (the caller resynchronises).
        """
        if not (self._ring or self._lanes):
            return False
        now = time.monotonic()
        if not force and now - self._at < _NOTICE_GAP:
            return False  # the loop comes back within the gap (get_batch waits no longer)
        self._at = now
        stats = self._stats
        if self._ring:
            count, self._ring = self._ring, 0
            logger.warning("ring overflow: %d events lost; resynchronising", count)
            stats.lost_announced += count
            self._notify(EventsLostEvent(count, "ring_overflow"))
        if self._lanes:
            lost, self._lanes = self._lanes, {}
            for key, n in lost.items():
                line = key if isinstance(key, str) else str(
                    key[1] if isinstance(key, tuple) and len(key) > 1 else key)
                logger.warning("line %s fell behind: its %d oldest events were dropped; "
                               "resynchronising", line, n)
                stats.lost_announced += n
                self._notify(EventsLostEvent(n, "lane_overflow", line=line))
        return True


class Processor:
    """The processing thread.

    :param ring: where frames come from.
    :param submit: hands ``(key, item)`` pairs to the dispatcher; returns how many items
        each full lane dropped (or None).
    :param rest: for subscription sync, resync and repair (on the REST worker thread).
    :param subscriptions: the desired sources.
    :param reactor: told which event types to keep; asked to reconnect when the
        subscription sync fails.
    :param waiters: call control's pending waits.
    :param notify: hands a connection notice (connected, lost, resynced) to its delivery.
    :param deliver_types: ARI event types delivered to channel listeners (``"*"``: all).
    :param model: the call model, or None.
    :param model_types: the event types the model consumes.
    :param url: the websocket URL, for connection events.
    :param throttle: called after each hand-off to the lanes; it may wait a little for room
        and returns False when it gave up waiting.
    :param watch: called on every turn of the loop; returns the seconds until it wants to
        be called again, or None (the dispatcher's
        :meth:`~asterisk_cti.pipeline.dispatcher.Dispatcher.watch`, which wakes another lane
        thread for lines held up behind a slow listener).
    :param dedup_window_bytes: the most bytes of recent frames the duplicate filter keeps.
    :param server_filter: whether the server-side event filter is kept up to date.

    Nothing starts in ``__init__``: :meth:`start` starts the thread.
    """

    def __init__(
        self,
        ring: Ring,
        submit: Callable[[List[LaneItem]], Optional[Mapping[Hashable, int]]],
        rest: AriRest,
        subscriptions: Subscriptions,
        reactor: ReactorLink,
        waiters: Waiters,
        notify: Callable[[Any], None],
        deliver_types: Iterable[str],
        model: Optional[CallModelProtocol] = None,
        model_types: Iterable[str] = (),
        url: str = "",
        throttle: Optional[Callable[[], object]] = None,
        watch: Optional[Callable[[], Optional[float]]] = None,
        dedup_window_bytes: int = DEDUP_WINDOW_BYTES,
        server_filter: bool = True,
    ) -> None:
        self._ring = ring
        self._submit = submit
        self._notify = notify
        self._reactor = reactor
        self._waiters = waiters
        self._model = model
        self._throttle = throttle
        self._watch = watch
        self._dedup_bytes_max = dedup_window_bytes
        self._dedup_bytes = 0
        self._recent: Set[Any] = set()
        self._recent_order: Deque[Any] = deque()
        self._rejected_logged = 0.0
        self._filter_logged = 0.0
        self._malformed_logged = 0.0
        types = set(deliver_types)
        self._deliver_all = "*" in types
        self._deliver_types: FrozenSet[str] = frozenset(types - {"*"})
        self._model_types: FrozenSet[str] = frozenset(model_types) if model else frozenset()
        self._raw_types: FrozenSet[str] = frozenset()
        #: the raw types some listener may be routed (the others are only kept)
        self._routed_types: FrozenSet[str] = frozenset()
        self._raw_route: RawRoute = nobody
        self._recompute_wanted()
        self._router = Router(subscriptions.wanted)
        if model is not None:
            model.set_monitored(subscriptions.wanted)
            model.defer_publish = True
        self.stats = ProcessorStats()
        self._losses = LossNotices(self.stats, notify)
        self._sync = Sync(
            RestWorker(rest, ring, subscriptions), self._router, model, waiters, self.stats,
            subscriptions, reactor, lambda: self.needed_types, self._submit_items, notify,
            url.split("?", 1)[0], server_filter)
        self._thread: Optional[threading.Thread] = None

    # -- state shared with the client (read from any thread) -----------------------------------

    @property
    def ready(self) -> threading.Event:
        """Set once the first connect was subscribed and resynchronised (or failed to be)."""
        return self._sync.ready

    @property
    def connected(self) -> bool:
        """Whether the websocket is up and subscribed."""
        return self._sync.connected

    @property
    def sync_error(self) -> Optional[BaseException]:
        """Why the last subscription sync failed, or None."""
        return self._sync.sync_error

    # -- configuration ---------------------------------------------------------------------

    def _recompute_wanted(self) -> None:
        # The model reads only some frames of the SNIFFED types (the transport keeps those by
        # a field's value); listeners that want the type get all of them.
        model_types = self._model_types - SNIFFED_TYPES
        names = self._deliver_types | model_types | self._raw_types | ALWAYS_WANTED
        self._reactor.set_wanted(
            None if self._deliver_all else frozenset(n.encode() for n in names))

    @property
    def needed_types(self) -> FrozenSet[str]:
        """Every event type this client consumes (the server-side filter lets these pass)."""
        if self._deliver_all:
            return frozenset(ARI_EVENT_TYPES)
        # ChannelVarset is more than half of what Asterisk sends for a call: the model reads
        # call data from every channel object's ``channelvars`` instead (and call control
        # tells it what it set), so the server drops varsets unless a listener wants them.
        return (self._deliver_types | (self._model_types - SERVER_SKIPPED_MODEL_TYPES)
                | self._raw_types)

    def set_raw_types(self, types: FrozenSet[str], route: RawRoute) -> None:
        """Event types wanted by raw listeners, and who gets each event (any thread).

        The transport keeps the new types at once; the server-side event filter is
        re-installed by the processor (a :class:`~asterisk_cti.pipeline.markers.FilterChange`
        through the ring), never by the calling thread.

        :param types: ARI event types.
        :param route: ``route(event_type, channel_ids)`` returns the raw listeners that get an
            event (empty: nobody). It runs on the processor thread.
        """
        changed = types != self._raw_types
        routed = getattr(route, "routed", None)
        self._routed_types = routed if isinstance(routed, frozenset) else types
        self._raw_route = route
        self._raw_types = types
        if changed:
            self._recompute_wanted()
            self._ring.put(FilterChange())

    # -- thread ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the processor thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="asterisk-cti-processor",
                                            daemon=True)
            self._thread.start()

    def join(self, timeout: float) -> bool:
        """Wait for the thread (and its REST worker) to end, after the ring was closed; never
        joins the caller."""
        deadline = time.monotonic() + timeout
        thread = self._thread
        ok = True
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            ok = not thread.is_alive()
        return self._stop_worker(max(0.0, deadline - time.monotonic())) and ok

    def _stop_worker(self, timeout: float) -> bool:
        worker = self._sync.worker
        worker.stop()
        return worker.join(timeout)

    def _run(self) -> None:
        ring = self._ring
        watch = self._watch
        try:
            while True:
                wait = _NOTICE_GAP if self._losses.pending else 0.5
                if watch is not None:
                    due = watch()
                    if due is not None and due < wait:
                        wait = due
                batch = ring.get_batch(wait)
                try:
                    if batch.lost:
                        self._on_lost(batch.lost)
                    if batch.items:
                        items = batch.items
                        if len(items) <= _CHUNK:
                            self._process(items)
                        else:  # look at the ring's losses between chunks of a long backlog
                            it = iter(items)
                            while True:
                                chunk = list(islice(it, _CHUNK))
                                if not chunk:
                                    break
                                self._process(chunk)
                                self._poll_lost()
                    elif ring.closed:
                        return
                    self._flush_losses()
                    self._sync.housekeeping()
                except ClientStoppedError:
                    return
                except Exception:  # the processor must survive anything; say so loudly
                    logger.exception("processor error; continuing")
        finally:
            self._sync.worker.stop()

    # -- the hot path ---------------------------------------------------------------------------

    def _process(self, items: Iterable[Any]) -> None:
        out: List[LaneItem] = []
        append = out.append
        deliver_all = self._deliver_all
        deliver_types = self._deliver_types
        model = self._model
        model_types = self._model_types
        routed_types = self._routed_types
        waiters = self._waiters
        stats = self.stats
        sync = self._sync
        key_for = self._router.key_for
        # orjson when the speed extra is there (what it refuses goes through decode_frame,
        # which decides), else decode_frame
        fast = wire._fast_loads or decode_frame
        cti: List[Any] = []
        recent = self._recent
        recent_order = self._recent_order
        dedup_max = self._dedup_bytes_max
        dedup_bytes = self._dedup_bytes
        n_frames = 0
        try:
            for item in items:
                if item.__class__ is not bytes and isinstance(item, Marker):
                    self._dedup_bytes = dedup_bytes
                    self._deliver(out, cti)
                    out = []
                    append = out.append
                    cti = []
                    try:
                        self._on_marker(item)
                    except ClientStoppedError:
                        raise
                    except Exception:
                        logger.exception("handling %s failed; continuing", type(item).__name__)
                    dedup_bytes = self._dedup_bytes
                    continue
                n_frames += 1
                # A channel in our Stasis application is also on a monitored endpoint: Asterisk
                # forwards each of its events once per subscription, byte for byte the same.
                if item in recent:
                    stats.duplicates += 1
                    continue
                size = len(item)
                if size <= dedup_max:
                    recent.add(item)
                    recent_order.append(item)
                    dedup_bytes += size
                    while len(recent_order) > _DEDUP_WINDOW or dedup_bytes > dedup_max:
                        old = recent_order.popleft()
                        recent.discard(old)
                        dedup_bytes -= len(old)
                try:
                    try:
                        data = fast(item)
                    except ValueError:
                        data = decode_frame(item)
                    event = parse_event(data)
                    etype = data["type"]
                except Exception as exc:  # ValueError, EventParseError, RecursionError, ...
                    self._malformed(item, exc)
                    continue
                mark = len(out)
                try:
                    if model is not None and etype in model_types:
                        for cev in model.apply(event):
                            append((cev.line, (CALL, cev)))
                            cti.append(cev)
                    if deliver_all or etype in deliver_types:
                        key = key_for(etype, data)
                        if key is not None:
                            append((key, (CHANNEL, event)))
                    elif etype == "ChannelEnteredBridge" or etype == "ChannelLeftBridge" or (
                        etype == "BridgeDestroyed" or etype == "BridgeMerged"
                    ):
                        self._router.track_bridges(etype, data)
                except Exception as exc:
                    # One wrong-typed field: skip this event only; what the model made of it
                    # before it failed is repaired from REST.
                    del out[mark:]
                    self._rejected(event, exc)
                    continue
                if sync.inflight:
                    sync.touch(etype, data)
                if etype in routed_types:
                    try:
                        ids = channel_ids_of(event)
                        targets = self._raw_route(etype, ids)
                    except Exception as exc:  # a user-supplied filter raised
                        self._filter_error(exc)
                        targets = ()
                    if targets:
                        append((("raw", ids[0] if ids else "raw"), (RAW, (event, targets))))
                if waiters.active:
                    try:
                        waiters.offer(event)
                    except Exception:
                        logger.exception("a call-control waiter raised; continuing")
                if etype == "ApplicationReplaced":
                    sync.on_replaced()
        finally:
            self._dedup_bytes = dedup_bytes
            stats.frames += n_frames
        self._deliver(out, cti)

    def _deliver(self, out: List[LaneItem], cti: List[Any]) -> None:
        """End of a batch (or of its part before a marker): publish the model's snapshots
        once, then offer the CTI events to waiters and hand everything to the lanes, so that
        whoever sees an event also sees the model state after it."""
        model = self._model
        if model is not None:
            try:
                model.flush()
            except Exception as exc:
                logger.error("publishing the call model failed (%s: %s); resynchronising",
                             type(exc).__name__, exc)
                self._sync.resync_soon("rejected")
        if cti and self._waiters.wants_cti:
            for cev in cti:
                try:
                    self._waiters.offer_cti(cev)
                except Exception:
                    logger.exception("a call-control waiter raised; continuing")
        if out:
            self.stats.delivered += len(out)
            self._submit_items(out)
            throttle = self._throttle
            if throttle is not None:
                # wait for the lanes in short steps (0.75 s at most), announcing losses
                for _ in range(3):
                    if throttle() is not False:
                        break
                    self._poll_lost()

    def _submit_items(self, out: List[LaneItem]) -> None:
        dropped = self._submit(out)
        if dropped:
            self._losses.lanes_dropped(dropped)
            self._flush_losses()

    def _malformed(self, item: bytes, exc: BaseException) -> None:
        self.stats.malformed += 1
        now = time.monotonic()
        if now - self._malformed_logged > 5.0:  # at most one line per 5 s under a flood
            self._malformed_logged = now
            logger.warning("skipped a malformed ARI frame (%d so far): %s: %.120r",
                           self.stats.malformed, type(exc).__name__, item)

    def _rejected(self, event: Event, exc: BaseException) -> None:
        self.stats.rejected += 1
        now = time.monotonic()
        if now - self._rejected_logged > 5.0:
            self._rejected_logged = now
            logger.warning("rejected an ARI %.40s event whose fields do not fit (%d so far): "
                           "%s: %.200s; repairing from REST", event.raw.get("type"),
                           self.stats.rejected, type(exc).__name__, exc)
        try:
            ids = channel_ids_of(event)
        except Exception:
            ids = []
        if self._model is not None and ids:
            self._sync.repair(ids)
        else:  # nothing to re-read one by one (or no model): re-read everything, soon
            self._sync.resync_soon("rejected")

    def _filter_error(self, exc: BaseException) -> None:
        self.stats.filter_errors += 1
        now = time.monotonic()
        if now - self._filter_logged > 5.0:
            self._filter_logged = now
            logger.warning("a raw listener's filter raised (%d so far): %s: %.200s",
                           self.stats.filter_errors, type(exc).__name__, exc)

    # -- markers --------------------------------------------------------------------------------

    def _on_marker(self, marker: Marker) -> None:
        sync = self._sync
        if isinstance(marker, ResyncResult):
            sync.on_resync_result(marker)
        elif isinstance(marker, RepairResult):
            sync.on_repair_result(marker)
        elif isinstance(marker, ConnectSync):
            sync.on_connect_sync(marker)
        elif isinstance(marker, ChangeSync):
            sync.on_change_sync(marker)
        elif isinstance(marker, FilterSync):
            sync.on_filter_sync(marker)
        elif isinstance(marker, Connected):
            sync.on_connected(marker)
        elif isinstance(marker, Disconnected):
            sync.on_disconnected(marker)
        elif isinstance(marker, MonitorChange):
            sync.on_monitor_change(marker)
        elif isinstance(marker, FilterChange):
            sync.on_filter_change(marker)
        elif isinstance(marker, Barrier):
            self._poll_lost()
            self._flush_losses(force=True)  # whoever waits sees every loss announced
            sync.hold_barrier(marker)
        elif isinstance(marker, InOrder):
            self._run_in_order(marker)

    def _run_in_order(self, marker: InOrder) -> None:
        """Run a command's action; deliver the CTI events it returns like the model's own."""
        try:
            out: List[LaneItem] = []
            for cev in marker.action():
                out.append((cev.line, (CALL, cev)))
                self._waiters.offer_cti(cev)
            if out:
                self._submit_items(out)
        except Exception as exc:
            marker.error = exc
            raise
        finally:
            marker.done.set()

    # -- losses ---------------------------------------------------------------------------------

    def _on_lost(self, count: int) -> None:
        self._losses.ring_lost(count)
        self._flush_losses()

    def _poll_lost(self) -> None:
        lost = self._ring.take_lost()
        if lost:
            self._on_lost(lost)

    def _flush_losses(self, force: bool = False) -> None:
        if self._losses.flush(force) and self._sync.connected:
            self._sync.resync("events_lost")
