"""The processor thread: parse, filter, model, dispatch.

It takes whole batches from the ring. Frames of types nobody consumes never get here: the
transport drops them as it reads them (:meth:`Reactor.set_wanted`, kept up to date from
here). Each frame is decoded (:func:`~asterisk_cti.events.decode_frame`) into a typed event,
fed to the call model (when one is plugged in), offered to call control's waiters, given its
listeners' lane key (the monitored line), and the batch goes to the dispatcher in one call.
Connection markers from the reactor make it sync the subscriptions and resynchronise state
from REST; a gap reported by the ring does the same.

Only the processor thread runs this module's loop; :class:`LineFilter` is replaced (never
mutated) when the monitored set changes, so reads need no lock.
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

from .errors import AsteriskCtiError, ClientStoppedError, NotFoundError
from .events import Event, channel_ids_of, decode_frame, endpoint_of_channel_name, parse_event
from .listeners import ConnectionEvent, EventsLostEvent, ResyncEvent
from .reactor import Connected, Disconnected, Marker, Reactor
from .rest import AriRest
from .ring import Ring
from .subscriptions import Subscriptions
from .waiters import Waiters

logger = logging.getLogger(__name__)

#: Dispatch groups: what kind of listener an item is for.
CHANNEL, CALL, CONNECTION, RAW = 0, 1, 2, 3
#: How many recent frames are remembered to drop Asterisk's duplicate deliveries.
_DEDUP_WINDOW = 256
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

    __slots__ = ("frames", "duplicates", "malformed", "delivered", "resyncs", "losses",
                 "lost_frames", "repairs")

    def __init__(self) -> None:
        self.frames = 0
        self.duplicates = 0
        self.malformed = 0
        self.delivered = 0
        self.resyncs = 0
        self.losses = 0
        self.lost_frames = 0
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
    """

    def __init__(
        self,
        ring: Ring,
        submit: Callable[[List[Tuple[Hashable, Any]]], None],
        rest: AriRest,
        subscriptions: Subscriptions,
        reactor: Reactor,
        waiters: Waiters,
        deliver_types: Iterable[str],
        model: Optional[CallModelProtocol] = None,
        model_types: Iterable[str] = (),
        url: str = "",
        throttle: Optional[Callable[[], object]] = None,
    ) -> None:
        self._ring = ring
        self._submit = submit
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
        from .subscriptions import ALWAYS_WANTED

        names = self._deliver_types | self._model_types | self._raw_types | ALWAYS_WANTED
        self._reactor.set_wanted(
            None if self._deliver_all else frozenset(n.encode() for n in names))

    @property
    def needed_types(self) -> FrozenSet[str]:
        """Every event type this client consumes (the server-side filter lets these pass)."""
        if self._deliver_all:
            from .events import ARI_EVENT_TYPES

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
        """Wait for the thread to end (after the ring was closed); never joins the caller."""
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def _run(self) -> None:
        ring = self._ring
        while True:
            batch = ring.get_batch(0.5)
            try:
                if batch.lost:
                    self._on_lost(batch.lost)
                if batch.items:
                    self._process(batch.items)
                elif ring.closed:
                    return
                self._housekeeping()
            except ClientStoppedError:
                return
            except Exception:  # the processor must survive anything; say so loudly
                logger.exception("processor error; continuing")

    def _housekeeping(self) -> None:
        model = self._model
        if model is not None and model.needs_repair and self.connected:
            self._repair(model)
        if self._resync_due is not None and time.monotonic() >= self._resync_due:
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
        n_frames = 0
        for item in items:
            if item.__class__ is not bytes and isinstance(item, Marker):
                self._deliver(out, cti)
                out = []
                append = out.append
                cti = []
                self._on_marker(item)
                continue
            n_frames += 1
            # A channel in our Stasis application is also on a monitored endpoint: Asterisk
            # forwards each of its events once per subscription, byte for byte the same.
            if item in recent:
                stats.duplicates += 1
                continue
            recent.add(item)
            recent_order.append(item)
            if len(recent_order) > _DEDUP_WINDOW:
                recent.discard(recent_order.popleft())
            try:
                data = loads(item)
                event = parse_event(data)
            except (ValueError, AsteriskCtiError) as exc:
                self._malformed(item, exc)
                continue
            etype = data["type"]
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
            if raw_types and etype in raw_types:
                ids = channel_ids_of(event)
                targets = self._raw_route(etype, ids)
                if targets:
                    append((("raw", ids[0] if ids else "raw"), (RAW, (event, targets))))
            if waiters:
                waiters.offer(event)
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
            model.flush()
        if cti and self._waiters:
            for cev in cti:
                self._waiters.offer(cev)
        if out:
            self.stats.delivered += len(out)
            self._submit(out)
            if self._throttle is not None:
                self._throttle()

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

    # -- markers, loss, resync ---------------------------------------------------------------

    def _on_marker(self, marker: Marker) -> None:
        if isinstance(marker, Connected):
            self._on_connected(marker)
        elif isinstance(marker, Disconnected):
            self.connected = False
            self._submit([(CONNECTION_KEY, (CONNECTION, ConnectionEvent(
                connected=False, url=self._url, reason=marker.reason)))])
        elif isinstance(marker, MonitorChange):
            self._on_monitor_change(marker)
        elif isinstance(marker, Barrier):
            marker.done.set()
        elif isinstance(marker, SetHeld):
            self._set_held(marker)

    def _on_connected(self, marker: Connected) -> None:
        restarted = False
        try:
            info = self._rest.asterisk_info()
            status = info.get("status") if isinstance(info, dict) else None
            startup = status.get("startup_time") if isinstance(status, dict) else None
            system = info.get("system") if isinstance(info, dict) else None
            self.asterisk_version = str(system.get("version", "")) if isinstance(system, dict) \
                else ""
            if startup is not None:
                restarted = self._startup_time is not None and startup != self._startup_time
                self._startup_time = str(startup)
            result = self._subs.sync(self._rest, self.needed_types)
        except AsteriskCtiError as exc:
            self.sync_error = exc
            logger.warning("subscribing after connect failed: %s; reconnecting", exc)
            self._reactor.reconnect(f"subscription failed: {exc}")
            return
        self.sync_error = None
        self.connected = True
        if restarted:
            logger.warning("Asterisk restarted; subscriptions and filter were rebuilt")
        logger.info("subscribed (added %s); event filter %s", list(result.subscribed) or "none",
                    "installed" if result.filter_installed else "client-side")
        self._submit([(CONNECTION_KEY, (CONNECTION, ConnectionEvent(
            connected=True, url=self._url, attempt=marker.attempts, restarted=restarted,
            asterisk_version=self.asterisk_version)))])
        self.resync("connected")
        self.ready.set()

    def _on_lost(self, count: int) -> None:
        self.stats.losses += 1
        self.stats.lost_frames += count
        logger.warning("ring overflow: %d events lost; resynchronising", count)
        self._submit([(CONNECTION_KEY, (CONNECTION, EventsLostEvent(count, "ring_overflow")))])
        if self.connected:
            self.resync("events_lost")

    def _on_monitor_change(self, change: MonitorChange) -> None:
        self.filter = _refilter(self.filter, self._subs.wanted)
        if self._model is not None:
            self._model.set_monitored(self._subs.wanted)
        try:
            if self.connected:
                self._subs.apply_change(self._rest)
                self.resync("monitor")
        except AsteriskCtiError as exc:
            change.error = exc
            logger.warning("changing subscriptions failed: %s", exc)
        finally:
            change.done.set()

    def resync(self, reason: str) -> None:
        """Re-read channels, bridges and endpoints; rebuild the bridge map and the model, and
        tell listeners (processor thread). On failure it is retried a second later."""
        rest = self._rest
        try:
            channels = rest.get("channels") or []
            bridges = rest.get("bridges") or []
            endpoints = rest.get("endpoints") or []
        except AsteriskCtiError as exc:
            logger.warning("resynchronisation failed (%s); retrying", exc)
            self._resync_due = time.monotonic() + 1.0
            self._resync_reason = reason
            return
        self._resync_due = None
        self.stats.resyncs += 1
        flt = self.filter
        mine: Dict[str, str] = {}
        for c in channels:
            line = flt.line_of(c)
            if line is not None:
                mine[str(c.get("id"))] = line
        flt.bridges = {}
        for b in bridges:
            if isinstance(b, dict):
                members = {str(c): mine[c] for c in b.get("channels") or [] if c in mine}
                if members:
                    flt.bridges[str(b.get("id"))] = members
        eps = [e for e in endpoints if isinstance(e, dict)
               and flt.covers(f"{e.get('technology')}/{e.get('resource')}")]
        out: List[Tuple[Hashable, Any]] = []
        report = None
        if self._model is not None:
            events, report = self._model.resync(channels, bridges, endpoints)
            for cev in events:
                out.append((cev.line, (CALL, cev)))
                self._waiters.offer(cev)
        out.append((CONNECTION_KEY, (CONNECTION, ResyncEvent(
            reason=reason, channels=len(mine), bridges=len(flt.bridges), endpoints=len(eps),
            report=report))))
        self._submit(out)

    def _repair(self, model: CallModelProtocol) -> None:
        out: List[Tuple[Hashable, Any]] = []
        for cid in list(model.needs_repair)[:20]:
            try:
                channel = self._rest.get("channels", cid)
            except NotFoundError:
                channel = None
            except AsteriskCtiError as exc:
                logger.debug("repair of %s deferred: %s", cid, exc)
                return
            self.stats.repairs += 1
            for cev in model.repair(cid, channel):
                out.append((cev.line, (CALL, cev)))
        if out:
            self._submit(out)

    def _set_held(self, marker: SetHeld) -> None:
        try:
            if self._model is not None:
                out: List[Tuple[Hashable, Any]] = []
                for cev in self._model.set_held(marker.channel_id, marker.held):
                    out.append((cev.line, (CALL, cev)))
                    self._waiters.offer(cev)
                if out:
                    self._submit(out)
        finally:
            marker.done.set()

    def _replaced(self) -> None:
        logger.error("another connection took over the ARI application; no more events "
                     "arrive here (use a distinct app name per client)")
        self.connected = False
        self._submit([(CONNECTION_KEY, (CONNECTION, ConnectionEvent(
            connected=False, url=self._url, reason="application replaced by another client")))])


def _refilter(old: LineFilter, sources: Sequence[str]) -> LineFilter:
    new = LineFilter(sources)
    new.bridges = old.bridges
    return new
