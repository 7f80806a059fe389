"""The processor thread: parse, filter, model, dispatch.

It takes whole batches from the ring. Frames of types nobody consumes never get here: the
transport drops them as it reads them (:meth:`Reactor.set_wanted`, kept up to date from
here). Each frame is decoded (:func:`~asterisk_cti.events.decode_frame`) into a typed event,
fed to the call model (when one is plugged in), offered to call control's waiters, given its
listeners' lane key (the monitored line), and the batch goes to the dispatcher in one call.
Connection markers from the reactor make it sync the subscriptions and resynchronise state
from REST; a gap reported by the ring does the same. Those REST requests run on the
:class:`RestWorker` thread and their answers come back through the ring as markers, so no
request holds the events of any line.

Each frame is isolated: one that cannot be decoded is counted ``malformed``, one whose fields
break the model or the routing is counted ``rejected`` and repaired from REST; the frames
around it are delivered.

Only the processor thread runs this module's loop; :class:`LineFilter` is replaced (never
mutated) when the monitored set changes, so reads need no lock.
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
    Protocol,
    Sequence,
    Set,
    Tuple,
)

from ..ari.resources import Ari
from ..ari.rest import AriRest, is_bridge, is_channel
from ..ari.subscriptions import Subscriptions
from ..errors import AsteriskCtiError, ClientStoppedError, NotFoundError
from ..events.catalogue import (
    Event,
    channel_ids_of,
    decode_frame,
    endpoint_of_channel_name,
    parse_event,
)
from ..listeners import ConnectionEvent, EventsLostEvent, ResyncEvent
from .reactor import Connected, Disconnected, Marker, Reactor
from .ring import Ring
from .waiters import Waiters

logger = logging.getLogger(__name__)

#: Dispatch groups: what kind of listener an item is for.
CHANNEL, CALL, CONNECTION, RAW = 0, 1, 2, 3
#: How many recent frames are remembered to drop Asterisk's duplicate deliveries, and how
#: many bytes of them at most (a flood of huge frames must not pin memory).
_DEDUP_WINDOW = 256
DEDUP_WINDOW_BYTES = 1 << 20
#: Frames processed between two looks at the ring's loss counter (a loss is announced while
#: the processor still works through a long backlog, not after it).
_CHUNK = 2048
#: Shortest gap between two loss notices of the same kind (more losses are added up).
_NOTICE_GAP = 0.25
#: Longest wait between two attempts of a failed resynchronisation.
_RESYNC_BACKOFF_MAX = 30.0
#: Channels re-read per repair request.
_REPAIR_BATCH = 20
#: The lane of connection events.
CONNECTION_KEY = "__connection__"


#: ``route(event_type, channel_ids) -> listeners``: who gets a raw event (see
#: :meth:`Processor.set_raw_types`).
RawRoute = Callable[[str, List[str]], Tuple[Any, ...]]


def _nobody(etype: str, ids: List[str]) -> Tuple[Any, ...]:
    return ()


class CallModelProtocol(Protocol):
    """What the processor needs from the call model (see :mod:`asterisk_cti.model`)."""

    defer_publish: bool

    def set_monitored(self, sources: Iterable[str]) -> None: ...
    def apply(self, event: Event) -> Sequence[Any]: ...
    def resync(self, channels: Sequence[Mapping[str, Any]], bridges: Sequence[Mapping[str, Any]],
               endpoints: Sequence[Mapping[str, Any]]) -> Tuple[Sequence[Any], Any]: ...
    @property
    def needs_repair(self) -> Set[str]: ...
    def repair(self, channel_id: str, channel: Optional[Mapping[str, Any]]) -> Sequence[Any]: ...
    def flush(self) -> None: ...
    def set_held(self, channel_id: str, held: bool) -> Sequence[Any]: ...


class MonitorChange(Marker):
    """Sent through the ring when the monitored set changes, so the processor thread applies
    it in order with the events; ``done`` is set once subscribed and resynchronised."""

    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: Optional[BaseException] = None


class SetHeld(Marker):
    """Sent through the ring by call control: ARI holds emit no ChannelHold, so the model is
    told on its own thread, in order with the events."""

    __slots__ = ("channel_id", "held", "done")

    def __init__(self, channel_id: str, held: bool) -> None:
        self.channel_id = channel_id
        self.held = held
        self.done = threading.Event()


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


class RestWorker:
    """The thread (``asterisk-cti-rest``) that runs the pipeline's own REST reads —
    resynchronisations and channel repairs — so that a slow or trickling server never holds
    the processor thread: events of every line keep flowing while it waits. Results go back
    through the ring as :class:`ResyncResult` / :class:`RepairResult` markers.

    Thread contract: :meth:`post` from the processor thread; :meth:`stop` from any thread.
    """

    def __init__(self, rest: AriRest, ring: Ring, subscriptions: Subscriptions) -> None:
        self._rest = rest
        self._ring = ring
        self._subs = subscriptions
        self._jobs: Deque[Marker] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: Optional[threading.Thread] = None

    def post(self, job: Marker) -> None:
        """Queue a :class:`ResyncResult` or :class:`RepairResult` to fill and post back."""
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
                if isinstance(job, ResyncResult):
                    self._resync(job)
                elif isinstance(job, RepairResult):
                    self._repair(job)
                elif isinstance(job, ConnectSync):
                    self._connect(job)
                elif isinstance(job, ChangeSync):
                    self._change(job)
            except Exception as exc:  # never lose a job: the processor must hear back
                job.error = exc  # type: ignore[attr-defined]
            if not self._stopping:
                self._ring.put(job)

    def _resync(self, job: ResyncResult) -> None:
        rest = self._rest
        try:
            job.channels = Ari(rest).channels.list()
            job.bridges = Ari(rest).bridges.list()
            job.endpoints = Ari(rest).endpoints.list()
        except AsteriskCtiError as exc:
            job.error = exc

    def _connect(self, job: ConnectSync) -> None:
        try:
            job.info = Ari(self._rest).asterisk.info()
            job.result = self._subs.sync(self._rest, job.needed)
        except AsteriskCtiError as exc:
            job.error = exc

    def _change(self, job: ChangeSync) -> None:
        try:
            self._subs.apply_change(self._rest)
        except AsteriskCtiError as exc:
            job.error = exc

    def _repair(self, job: RepairResult) -> None:
        for cid in job.cids:
            try:
                channel: Optional[Dict[str, Any]] = Ari(self._rest).channels.get(cid)
            except NotFoundError:
                channel = None
            except AsteriskCtiError as exc:
                job.error = exc
                return
            job.results.append((cid, channel))


class Barrier(Marker):
    """Sent through the ring to learn when everything before it was processed."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


class LineFilter:
    """Which channels are on monitored lines, and the bridges they are in.

    Immutable sets of endpoints (``PJSIP/1000``) and technologies (``PJSIP``); the bridge map
    is processor-thread state.
    """

    __slots__ = ("endpoints", "techs", "bridges")

    def __init__(self, sources: Iterable[str]) -> None:
        srcs = list(sources)
        self.endpoints: FrozenSet[str] = frozenset(s for s in srcs if "/" in s)
        self.techs: FrozenSet[str] = frozenset(s for s in srcs if "/" not in s)
        #: bridge id -> {monitored channel id: its line}
        self.bridges: Dict[str, Dict[str, str]] = {}

    def line_of(self, channel: Any) -> Optional[str]:
        """The monitored line of a raw channel dict, or None."""
        if type(channel) is not dict:
            return None
        name = channel.get("name")
        if type(name) is not str:
            return None
        ep = endpoint_of_channel_name(name)
        if ep in self.endpoints:
            return ep
        if self.techs and ep.split("/", 1)[0] in self.techs:
            return ep
        return None

    def covers(self, endpoint: str) -> bool:
        """Whether an endpoint id (``PJSIP/1000``) is monitored."""
        return endpoint in self.endpoints or endpoint.split("/", 1)[0] in self.techs


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


class Processor:
    """The processing thread.

    :param ring: where frames come from.
    :param submit: hands ``(key, item)`` pairs to the dispatcher.
    :param rest: for subscription sync, resync and repair.
    :param subscriptions: the desired sources.
    :param reactor: asked to reconnect when the subscription sync fails.
    :param waiters: call control's pending waits.
    :param deliver_types: ARI event types delivered to channel listeners (``"*"``: all).
    :param model: the call model, or None.
    :param url: the websocket URL, for connection events.
    :param throttle: called after each hand-off to the lanes; it may wait a little for room
        and returns False when it gave up waiting.
    :param notify: hands a connection notice (connected, lost, resynced) to the notice
        delivery; by default it goes to the lane :data:`CONNECTION_KEY`.
    :param dedup_window_bytes: the most bytes of recent frames the duplicate filter keeps.
    """

    def __init__(
        self,
        ring: Ring,
        submit: Callable[[List[Tuple[Hashable, Any]]], Optional[Mapping[Hashable, int]]],
        rest: AriRest,
        subscriptions: Subscriptions,
        reactor: Reactor,
        waiters: Waiters,
        deliver_types: Iterable[str],
        model: Optional[CallModelProtocol] = None,
        model_types: Iterable[str] = (),
        url: str = "",
        throttle: Optional[Callable[[], object]] = None,
        notify: Optional[Callable[[Any], None]] = None,
        dedup_window_bytes: int = DEDUP_WINDOW_BYTES,
    ) -> None:
        self._ring = ring
        self._submit = submit
        self._notify_fn = notify
        self._dedup_bytes_max = dedup_window_bytes
        self._dedup_bytes = 0
        self._worker = RestWorker(rest, ring, subscriptions)
        self._conn_seq = 0
        # REST requests in flight: events seen meanwhile are merged into their answers
        self._epoch = 0
        self._inflight = 0
        self._touched_ch: Dict[str, Tuple[int, Optional[Dict[str, Any]]]] = {}
        self._touched_br: Dict[str, Tuple[int, Optional[Dict[str, Any]]]] = {}
        self._resync_inflight: Optional[ResyncResult] = None
        self._resync_again: Optional[str] = None
        self._resync_failures = 0
        self._changes_waiting: List[MonitorChange] = []
        self._barriers: List[Barrier] = []
        self._repair_inflight = False
        self._repair_due = 0.0
        self._repair_ids: Set[str] = set()
        self._lost_ring = 0
        self._lost_lanes: Dict[Hashable, int] = {}
        self._notice_at = 0.0
        self._rejected_logged = 0.0
        self._filter_logged = 0.0
        self._rest = rest
        self._subs = subscriptions
        self._reactor = reactor
        self._waiters = waiters
        self._model = model
        self._url = url.split("?", 1)[0]
        self._throttle = throttle
        types = set(deliver_types)
        self._deliver_all = "*" in types
        self._deliver_types: FrozenSet[str] = frozenset(types - {"*"})
        self._model_types: FrozenSet[str] = frozenset(model_types) if model else frozenset()
        self._raw_types: FrozenSet[str] = frozenset()
        self._raw_route: RawRoute = _nobody
        self._recent: Set[Any] = set()
        self._recent_order: Deque[Any] = deque()
        self._recompute_wanted()
        self.filter = LineFilter(subscriptions.wanted)
        if model is not None:
            model.set_monitored(subscriptions.wanted)
            model.defer_publish = True
        self.stats = ProcessorStats()
        self._thread: Optional[threading.Thread] = None
        self._startup_time: Optional[str] = None
        self._resync_due: Optional[float] = None
        self._resync_reason = ""
        self.ready = threading.Event()
        self.sync_error: Optional[BaseException] = None
        self.connected = False
        self.asterisk_version = ""
        self._malformed_logged = 0.0

    # -- configuration ---------------------------------------------------------------------

    def _recompute_wanted(self) -> None:
        from ..ari.subscriptions import ALWAYS_WANTED

        names = self._deliver_types | self._model_types | self._raw_types | ALWAYS_WANTED
        self._reactor.set_wanted(
            None if self._deliver_all else frozenset(n.encode() for n in names))

    @property
    def needed_types(self) -> FrozenSet[str]:
        """Every event type this client consumes (the server-side filter lets these pass)."""
        if self._deliver_all:
            from ..events.catalogue import ARI_EVENT_TYPES

            return frozenset(ARI_EVENT_TYPES)
        return self._deliver_types | self._model_types | self._raw_types

    def set_raw_types(self, types: Iterable[str], route: RawRoute) -> None:
        """Event types wanted by raw listeners, and who gets each event (any thread).

        :param types: ARI event types.
        :param route: ``route(event_type, channel_ids)`` returns the raw listeners that get an
            event (empty: nobody). It runs on the processor thread, in order with the
            events, so a listener's interest is judged as it was when the event arrived.
        """
        self._raw_route = route
        self._raw_types = frozenset(types)
        self._recompute_wanted()

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
        self._worker.stop()
        return self._worker.join(max(0.0, deadline - time.monotonic())) and ok

    def _run(self) -> None:
        ring = self._ring
        try:
            while True:
                batch = ring.get_batch(0.5 if not self._pending_notices() else _NOTICE_GAP)
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
                    self._housekeeping()
                except ClientStoppedError:
                    return
                except Exception:  # the processor must survive anything; say so loudly
                    logger.exception("processor error; continuing")
        finally:
            self._worker.stop()

    def _housekeeping(self) -> None:
        self._flush_losses()
        if not self.connected:
            return
        model = self._model
        if (not self._repair_inflight and time.monotonic() >= self._repair_due
                and (self._repair_ids or (model is not None and model.needs_repair))):
            self._request_repair()
        if self._resync_due is not None and time.monotonic() >= self._resync_due:
            self._resync_due = None
            self.resync(self._resync_reason)

    # -- the hot path ---------------------------------------------------------------------------

    def _process(self, items: Iterable[Any]) -> None:
        out: List[Tuple[Hashable, Any]] = []
        append = out.append
        deliver_all = self._deliver_all
        deliver_types = self._deliver_types
        model = self._model
        model_types = self._model_types
        raw_types = self._raw_types
        waiters = self._waiters
        stats = self.stats
        loads = decode_frame
        cti: List[Any] = []
        recent = self._recent
        recent_order = self._recent_order
        dedup_max = self._dedup_bytes_max
        n_frames = 0
        for item in items:
            if item.__class__ is not bytes and isinstance(item, Marker):
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
                self._dedup_bytes += size
                while len(recent_order) > _DEDUP_WINDOW or self._dedup_bytes > dedup_max:
                    old = recent_order.popleft()
                    recent.discard(old)
                    self._dedup_bytes -= len(old)
            try:
                data = loads(item)
                event = parse_event(data)
            except Exception as exc:  # ValueError, EventParseError, RecursionError, ...
                self._malformed(item, exc)
                continue
            etype = data["type"]
            mark = len(out)
            try:
                if model is not None and etype in model_types:
                    for cev in model.apply(event):
                        append((cev.line, (CALL, cev)))
                        cti.append(cev)
                if deliver_all or etype in deliver_types:
                    key = self._key_for(etype, data)
                    if key is not None:
                        append((key, (CHANNEL, event)))
                elif etype == "ChannelEnteredBridge" or etype == "ChannelLeftBridge" or (
                    etype == "BridgeDestroyed" or etype == "BridgeMerged"
                ):
                    self._track_bridges(etype, data)
            except Exception as exc:
                # One wrong-typed field: skip this event only; what the model made of it
                # before it failed is repaired from REST.
                del out[mark:]
                self._rejected(event, exc)
                continue
            if self._inflight:
                self._touch(etype, data)
            if raw_types and etype in raw_types:
                try:
                    ids = channel_ids_of(event)
                    targets = self._raw_route(etype, ids)
                except Exception as exc:  # a user-supplied filter raised
                    self._filter_error(exc)
                    targets = ()
                if targets:
                    append((("raw", ids[0] if ids else "raw"), (RAW, (event, targets))))
            if waiters:
                try:
                    waiters.offer(event)
                except Exception:
                    logger.exception("a call-control waiter raised; continuing")
            if etype == "ApplicationReplaced":
                self._replaced()
        stats.frames += n_frames
        self._deliver(out, cti)

    def _deliver(self, out: List[Tuple[Hashable, Any]], cti: List[Any]) -> None:
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
                self._resync_soon("rejected")
        if cti and self._waiters:
            for cev in cti:
                try:
                    self._waiters.offer(cev)
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

    def _submit_items(self, out: List[Tuple[Hashable, Any]]) -> None:
        dropped = self._submit(out)
        if dropped:
            for key, n in dropped.items():
                self.stats.lane_dropped += n
                self._lost_lanes[key] = self._lost_lanes.get(key, 0) + n
            self._flush_losses()

    def _notify(self, event: Any) -> None:
        if self._notify_fn is not None:
            self._notify_fn(event)
        else:
            self._submit([(CONNECTION_KEY, (CONNECTION, event))])

    def _key_for(self, etype: str, data: Dict[str, Any]) -> Optional[Hashable]:
        flt = self.filter
        chan = data.get("channel")
        if etype == "ChannelEnteredBridge" or etype == "ChannelLeftBridge":
            return self._track_bridges(etype, data)
        if chan is not None:
            line = flt.line_of(chan)
            if line is not None:
                return line
            if etype == "Dial":
                return flt.line_of(data.get("caller"))
            return None
        if etype == "Dial":
            return flt.line_of(data.get("peer")) or flt.line_of(data.get("caller"))
        if etype == "EndpointStateChange":
            ep = data.get("endpoint")
            if type(ep) is dict:
                rid = f"{ep.get('technology')}/{ep.get('resource')}"
                return rid if flt.covers(rid) else None
            return None
        bridge = data.get("bridge")
        if type(bridge) is dict:
            members = flt.bridges.get(str(bridge.get("id")))
            key = next(iter(members.values())) if members else None
            if etype in ("BridgeDestroyed", "BridgeMerged"):
                self._track_bridges(etype, data)
            return key
        return "app"

    def _track_bridges(self, etype: str, data: Dict[str, Any]) -> Optional[Hashable]:
        """Keep the bridges monitored channels are in; return the lane key of a bridge event
        that concerns them: the monitored channel's line, or for another channel (the far
        party, a Local channel of a transfer) the line of a monitored channel in that bridge,
        so that a line sees its bridge's events in order."""
        flt = self.filter
        bridge = data.get("bridge")
        bid = bridge.get("id") if type(bridge) is dict else None
        if bid is None:
            return None
        if etype == "BridgeDestroyed":
            flt.bridges.pop(bid, None)
            return None
        if etype == "BridgeMerged":
            src = data.get("bridge_from")
            if type(src) is dict and src.get("id") in flt.bridges:
                flt.bridges.setdefault(bid, {}).update(flt.bridges.pop(src["id"]))
            return None
        chan = data.get("channel")
        cid = str(chan.get("id")) if type(chan) is dict else ""
        line = flt.line_of(chan)
        members = flt.bridges.get(bid)
        if etype == "ChannelEnteredBridge":
            if line is not None:
                flt.bridges.setdefault(bid, {})[cid] = line
                return line
            return next(iter(members.values())) if members else None
        # ChannelLeftBridge
        if members is None:
            return line
        if line is not None:
            members.pop(cid, None)
            if not members:
                del flt.bridges[bid]
            return line
        return next(iter(members.values()))

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
            self._repair_ids.update(ids)
        else:  # nothing to re-read one by one (or no model): re-read everything, soon
            self._resync_soon("rejected")

    def _filter_error(self, exc: BaseException) -> None:
        self.stats.filter_errors += 1
        now = time.monotonic()
        if now - self._filter_logged > 5.0:
            self._filter_logged = now
            logger.warning("a raw listener's filter raised (%d so far): %s: %.200s",
                           self.stats.filter_errors, type(exc).__name__, exc)

    def _touch(self, etype: str, data: Dict[str, Any]) -> None:
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
        self._inflight += 1
        return self._epoch - 1

    def _end_request(self) -> None:
        self._inflight -= 1
        if self._inflight <= 0:
            self._inflight = 0
            self._touched_ch.clear()
            self._touched_br.clear()

    # -- markers, loss, resync ---------------------------------------------------------------

    def _on_marker(self, marker: Marker) -> None:
        if isinstance(marker, ResyncResult):
            self._on_resync_result(marker)
        elif isinstance(marker, RepairResult):
            self._on_repair_result(marker)
        elif isinstance(marker, ConnectSync):
            self._on_connect_sync(marker)
        elif isinstance(marker, ChangeSync):
            self._on_change_sync(marker)
        elif isinstance(marker, Connected):
            self._on_connected(marker)
        elif isinstance(marker, Disconnected):
            self._conn_seq += 1
            self.connected = False
            self._notify(ConnectionEvent(connected=False, url=self._url, reason=marker.reason))
        elif isinstance(marker, MonitorChange):
            self._on_monitor_change(marker)
        elif isinstance(marker, Barrier):
            self._poll_lost()
            self._flush_losses(force=True)  # whoever waits sees every loss announced
            if self._inflight:
                # a resync or repair asked for before the barrier: it is part of "everything
                # received so far"; the barrier passes once it was applied
                self._barriers.append(marker)
            else:
                marker.done.set()
        elif isinstance(marker, SetHeld):
            self._set_held(marker)

    def _on_connected(self, marker: Connected) -> None:
        # Subscribing takes REST round trips: the worker does them, events keep flowing.
        self._conn_seq += 1
        self._worker.post(ConnectSync(self._conn_seq, marker.attempts, self.needed_types))

    def _on_connect_sync(self, job: ConnectSync) -> None:
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
        self.connected = True
        if restarted:
            logger.warning("Asterisk restarted; subscriptions and filter were rebuilt")
        logger.info("subscribed (added %s); event filter %s", list(result.subscribed) or "none",
                    "installed" if result.filter_installed else "client-side")
        self._notify(ConnectionEvent(
            connected=True, url=self._url, attempt=job.attempts, restarted=restarted,
            asterisk_version=self.asterisk_version))
        self._resync_failures = 0
        self.resync("connected")  # ready is set once it was applied (or failed)

    def _on_lost(self, count: int) -> None:
        self.stats.losses += 1
        self.stats.lost_frames += count
        self._lost_ring += count
        self._flush_losses()

    def _poll_lost(self) -> None:
        lost = self._ring.take_lost()
        if lost:
            self._on_lost(lost)

    def _pending_notices(self) -> bool:
        return bool(self._lost_ring or self._lost_lanes)

    def _flush_losses(self, force: bool = False) -> None:
        """Announce losses at once, or — within :data:`_NOTICE_GAP` of the previous notice —
        add them up for the next one (``force``: whatever the gap)."""
        if not (self._lost_ring or self._lost_lanes):
            return
        now = time.monotonic()
        if not force and now - self._notice_at < _NOTICE_GAP:
            return  # the loop comes back within the gap (get_batch waits no longer)
        self._notice_at = now
        if self._lost_ring:
            count, self._lost_ring = self._lost_ring, 0
            logger.warning("ring overflow: %d events lost; resynchronising", count)
            self.stats.lost_announced += count
            self._notify(EventsLostEvent(count, "ring_overflow"))
        if self._lost_lanes:
            lost, self._lost_lanes = self._lost_lanes, {}
            for key, n in lost.items():
                line = key if isinstance(key, str) else str(
                    key[1] if isinstance(key, tuple) and len(key) > 1 else key)
                logger.warning("line %s fell behind: its %d oldest events were dropped; "
                               "resynchronising", line, n)
                self.stats.lost_announced += n
                self._notify(EventsLostEvent(n, "lane_overflow", line=line))
        if self.connected:
            self.resync("events_lost")

    def _on_monitor_change(self, change: MonitorChange) -> None:
        self.filter = _refilter(self.filter, self._subs.wanted)
        if self._model is not None:
            self._model.set_monitored(self._subs.wanted)
        if self.connected:
            self._worker.post(ChangeSync(change))  # done once subscribed and resynchronised
        else:
            change.done.set()

    def _on_change_sync(self, job: ChangeSync) -> None:
        change = job.change
        if job.error is not None:
            change.error = job.error
            logger.warning("changing subscriptions failed: %s", job.error)
            change.done.set()
            return
        self._changes_waiting.append(change)
        if self.connected:
            self.resync("monitor")
        else:
            self._changes_waiting.remove(change)
            change.done.set()

    def _resync_soon(self, reason: str) -> None:
        if self._resync_due is None and self._resync_inflight is None:
            self._resync_due = time.monotonic() + 0.2
            self._resync_reason = reason

    def resync(self, reason: str) -> None:
        """Ask the REST worker to re-read channels, bridges and endpoints (processor thread).

        The answer comes back through the ring and is applied in order with the events
        (:meth:`_on_resync_result`); events that arrive meanwhile keep flowing on every line.
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
        self._worker.post(job)

    def _on_resync_result(self, job: ResyncResult) -> None:
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

    def _release_barriers(self) -> None:
        if not self._inflight and self._barriers:
            barriers, self._barriers = self._barriers, []
            for barrier in barriers:
                barrier.done.set()

    def _resync_failed(self, job: ResyncResult) -> None:
        self.stats.resync_failures += 1
        self._resync_failures += 1
        delay = min(_RESYNC_BACKOFF_MAX, 2.0 ** (self._resync_failures - 1))
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
        endpoints = job.endpoints
        flt = self.filter
        mine: Dict[str, str] = {}
        for c in channels:
            line = flt.line_of(c)
            if line is not None:
                mine[str(c.get("id"))] = line
        flt.bridges = {}
        for b in bridges:
            chans = b.get("channels")
            if isinstance(chans, list):
                members = {c: mine[c] for c in chans if type(c) is str and c in mine}
                if members:
                    flt.bridges[str(b.get("id"))] = members
        eps = [e for e in endpoints if flt.covers(f"{e.get('technology')}/{e.get('resource')}")]
        out: List[Tuple[Hashable, Any]] = []
        report = None
        if self._model is not None:
            self._repair_ids.clear()
            try:
                events, report = self._model.resync(channels, bridges, endpoints)
            except Exception as exc:  # the model must not be left half-rebuilt silently
                job.error = exc
                logger.exception("applying the resynchronisation failed")
                self._resync_failed(job)
                return
            for cev in events:
                out.append((cev.line, (CALL, cev)))
                self._waiters.offer(cev)
        self._resync_failures = 0
        self.stats.resyncs += 1
        if out:
            self._submit_items(out)
        self._notify(ResyncEvent(
            reason=job.reason, channels=len(mine), bridges=len(flt.bridges), endpoints=len(eps),
            report=report))

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
        self._worker.post(RepairResult(cids, self._start_request()))

    def _on_repair_result(self, job: RepairResult) -> None:
        self._repair_inflight = False
        try:
            model = self._model
            out: List[Tuple[Hashable, Any]] = []
            done = set()
            for cid, channel in job.results:
                done.add(cid)
                seen = self._touched_ch.get(cid)
                if seen is not None and seen[0] > job.epoch:
                    channel = seen[1]  # an event since the request is newer than the answer
                self.stats.repairs += 1
                if model is None:
                    continue
                try:
                    for cev in model.repair(cid, channel):
                        out.append((cev.line, (CALL, cev)))
                except Exception as exc:
                    logger.warning("repairing channel %s failed (%s: %s); resynchronising",
                                   cid, type(exc).__name__, exc)
                    self._resync_soon("rejected")
            if out:
                self._submit_items(out)
            if job.error is not None:
                self._repair_ids.update(c for c in job.cids if c not in done)
                self._repair_due = time.monotonic() + 1.0
                logger.debug("repair deferred: %s", job.error)
        finally:
            self._end_request()
            self._release_barriers()

    def _set_held(self, marker: SetHeld) -> None:
        try:
            if self._model is not None:
                out: List[Tuple[Hashable, Any]] = []
                for cev in self._model.set_held(marker.channel_id, marker.held):
                    out.append((cev.line, (CALL, cev)))
                    self._waiters.offer(cev)
                if out:
                    self._submit_items(out)
        finally:
            marker.done.set()

    def _replaced(self) -> None:
        logger.error("another connection took over the ARI application; no more events "
                     "arrive here (use a distinct app name per client)")
        self.connected = False
        self._notify(ConnectionEvent(
            connected=False, url=self._url, reason="application replaced by another client"))


def _refilter(old: LineFilter, sources: Sequence[str]) -> LineFilter:
    new = LineFilter(sources)
    new.bridges = old.bridges
    return new
