"""The last stage: who gets what, on the lane threads.

The processor hands the dispatcher ``(lane key, (group, payload))`` pairs; the group says
which kind of listener an item is for (:class:`Group`). Connection notices go their own way:
one lane per :class:`~asterisk_cti.ConnectionListener`
(:meth:`ListenerRegistry.deliver_notice`). :class:`ListenerRegistry` keeps the listener
objects (copy-on-write tuples: lanes read them without a lock) and delivers an item to them
with :func:`~asterisk_cti.pipeline.dispatcher.safe_call`; it also builds the raw-listener
route (:data:`RawRoute`) the processor asks for each raw event.

Threads: registering and removing on any thread (also from a callback); :meth:`deliver` and
:meth:`deliver_notice` on lane threads; a route runs on the processor thread.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from enum import IntEnum
from typing import (
    Any,
    Callable,
    Deque,
    Dict,
    FrozenSet,
    Hashable,
    Iterable,
    List,
    Optional,
    Set,
    Tuple,
)

from ..listeners import (
    CONNECTION_METHODS,
    ChannelEventListener,
    ConnectionEvent,
    ConnectionListener,
    method_for_event_type,
)
from ..model.listener import CallListener
from .dispatcher import ErrorHook, safe_call

logger = logging.getLogger(__name__)

#: The base classes' methods: each does nothing ("override the methods you need; the others
#: do nothing"), so a listener that inherits one is not called for it.
_DEFAULT_METHODS: FrozenSet[Any] = frozenset(
    fn for base in (ChannelEventListener, CallListener, ConnectionListener)
    for name, fn in vars(base).items() if name.startswith("on_") and callable(fn)
)
#: Distinct method tuples a registration remembers (a handful in practice).
_LIVE_LIMIT = 256


def _inherited_default(listener: Any, method: str) -> bool:
    """Whether ``listener.<method>`` is a base class's do-nothing method (neither the
    listener's class nor the instance overrides it)."""
    try:
        if method in vars(listener):
            return False
    except TypeError:  # no __dict__ (slots)
        pass
    try:
        attr = getattr(type(listener), method, None)
    except Exception:  # a hostile metaclass: let safe_call deal with it
        return False
    try:
        return attr is not None and attr in _DEFAULT_METHODS
    except TypeError:  # an unhashable attribute
        return False

#: ``call_soon(fn)``: have ``fn()`` run soon on a thread of the caller's choice (a GUI
#: thread), in the order of the calls. It must be safe to call from any thread.
CallSoon = Callable[[Callable[[], None]], object]


class HandOff:
    """Delivers one listener's callbacks through ``call_soon`` (a GUI thread's queue).

    Lane and notice threads :meth:`put` closures here; at most one ``drain`` is scheduled
    through ``call_soon`` at a time, and it runs the queued closures one after the other, so
    the listener's callbacks never run concurrently with each other, whatever thread
    ``call_soon`` uses, and run in the order they were put (per line: the lane's order).
    A drain runs at most ``batch`` closures, then schedules the next one: a flood never
    holds a GUI loop for long.

    :param call_soon: the caller's hand-off function (any thread may call it).
    :param capacity: closures waiting at most; past it the oldest are dropped, counted
        (:attr:`dropped`) and logged: a GUI loop that stopped draining must not grow the
        memory without bound.

    Threads: :meth:`put` on any thread (lanes, notice threads); the closures run wherever
    ``call_soon`` runs them.
    """

    __slots__ = ("_call_soon", "_lock", "_items", "_scheduled", "_batch", "_capacity",
                 "dropped", "_failing")

    def __init__(self, call_soon: CallSoon, *, batch: int = 64,
                 capacity: int = 100_000) -> None:
        if not callable(call_soon):
            raise TypeError(f"call_soon must be callable, not {type(call_soon).__name__}")
        self._call_soon = call_soon
        self._lock = threading.Lock()
        self._items: Deque[Callable[[], None]] = deque()
        self._scheduled = False
        self._batch = max(1, batch)
        self._capacity = max(1, capacity)
        self._failing = False
        #: closures dropped because the receiving loop did not drain them
        self.dropped = 0

    def put(self, fn: Callable[[], None]) -> None:
        """Queue ``fn`` and make sure a drain is scheduled (any thread)."""
        with self._lock:
            self._items.append(fn)
            if len(self._items) > self._capacity:
                self._items.popleft()
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 10_000 == 0:
                    logger.warning("GUI hand-off: %d callbacks dropped, the receiving loop "
                                   "does not drain them", self.dropped)
            if self._scheduled:
                return
            self._scheduled = True
        self._schedule()

    def _schedule(self) -> None:
        try:
            self._call_soon(self._drain)
        except BaseException as exc:  # a closed GUI loop: keep the items, try next time
            with self._lock:
                self._scheduled = False
                first = not self._failing
                self._failing = True
            if first:
                logger.error("GUI hand-off: call_soon raised %s: %s; callbacks wait until it "
                             "works again", type(exc).__name__, exc)
            return
        self._failing = False

    def _drain(self) -> None:
        # Runs wherever call_soon runs it; only one drain is scheduled at a time.
        for _ in range(self._batch):
            with self._lock:
                if not self._items:
                    self._scheduled = False
                    return
                fn = self._items.popleft()
            try:
                fn()
            except BaseException:  # closures are safe_call wrappers; never lose the drain
                logger.exception("GUI hand-off: a callback raised")
        self._schedule()  # more waiting: give the loop a turn first

    def pending(self) -> int:
        """Closures waiting (any thread)."""
        with self._lock:
            return len(self._items)


class Registration:
    """One registered listener: its kinds, its hand-off, and where it is in its life.

    ``waiting``: added while running, not yet activated on the processor thread (items
    submitted before then are not delivered to it); ``pending``: lines whose snapshot is on
    its way (the line's earlier items are not delivered to it); ``needs_snapshot``: line
    snapshots are due after the next resynchronisation.
    """

    __slots__ = ("listener", "handoff", "channel", "call", "connection", "waiting", "pending",
                 "needs_snapshot", "removed", "_live")

    def __init__(self, listener: Any, handoff: Optional[HandOff], channel: bool, call: bool,
                 connection: bool, waiting: bool) -> None:
        self.listener = listener
        self.handoff = handoff
        self.channel = channel
        self.call = call
        self.connection = connection
        self.waiting = waiting
        self.pending: Set[Hashable] = set()
        self.needs_snapshot = call and not waiting
        self.removed = False
        #: methods -> those of them the listener overrides (resolved at first use)
        self._live: Dict[Tuple[str, ...], Tuple[str, ...]] = {}

    def invoke(self, methods: Tuple[str, ...], event: Any, hook: Optional[ErrorHook]) -> None:
        """Call ``listener.<method>(event)`` for each method the listener overrides, here or
        through the hand-off (nothing is handed off when it overrides none of them). Which
        methods a listener overrides is looked up once per method tuple, at its first
        delivery (a lane thread)."""
        live = self._live.get(methods)
        if live is None:
            live = tuple(m for m in methods if not _inherited_default(self.listener, m))
            if len(self._live) < _LIVE_LIMIT:
                self._live[methods] = live
        if not live:
            return
        methods = live
        listener = self.listener
        handoff = self.handoff
        if handoff is None:
            for method in methods:
                safe_call(listener, method, event, hook)
            return

        def run() -> None:
            if self.removed:
                return
            for method in methods:
                safe_call(listener, method, event, hook)

        handoff.put(run)


class Group(IntEnum):
    """What kind of listener a dispatched item is for."""

    #: a typed ARI event for :class:`~asterisk_cti.ChannelEventListener` objects
    CHANNEL = 0
    #: a CTI event of the call model for :class:`~asterisk_cti.model.CallListener` objects
    CALL = 1
    #: ``(event, listeners)``: an ARI event for the raw listeners the route chose
    RAW = 2
    #: ``(registration, key, event)``: a line snapshot for one late call listener
    SNAPSHOT = 3


CHANNEL, CALL, RAW, SNAPSHOT = Group.CHANNEL, Group.CALL, Group.RAW, Group.SNAPSHOT

#: What the processor hands the dispatcher: ``(lane key, (group, payload))``.
LaneItem = Tuple[Hashable, Tuple[Group, Any]]
#: ``route(event_type, channel_ids) -> listeners``: who gets a raw event.
RawRoute = Callable[[str, List[str]], Tuple[Any, ...]]


def keep_types_only(channel_id: str) -> bool:
    """The ``wants`` of a raw listener that only asks the processor to keep its event types
    (call control's tap reads them there): it is routed nothing, not even ``StasisStart``."""
    return False


class RawListener:
    """A raw listener: ``listener.on_event(event)`` for ``types``, filtered by ``wants``."""

    __slots__ = ("listener", "types", "wants")

    def __init__(self, listener: Any, types: FrozenSet[str],
                 wants: Optional[Callable[[str], bool]]) -> None:
        self.listener = listener
        self.types = types
        self.wants = wants


class Route:
    """Who gets a raw event: every listener of the event's type whose ``wants`` accepts one
    of its channels (every ``StasisStart``; all when ``wants`` is None; none when it is
    :func:`keep_types_only`). A :data:`RawRoute`; runs on the processor thread.

    :ivar routed: the event types some listener may get (the processor asks the route, and
        reads the event's channel ids, only for these).
    """

    __slots__ = ("_by_type", "routed")

    def __init__(self, raws: Tuple[RawListener, ...]) -> None:
        routed = [r for r in raws if r.wants is not keep_types_only]
        types: Set[str] = set()
        for r in routed:
            types |= r.types
        self._by_type = {t: tuple(r for r in routed if t in r.types) for t in types}
        self.routed: FrozenSet[str] = frozenset(types)

    def __call__(self, etype: str, ids: List[str]) -> Tuple[Any, ...]:
        # Runs for every event of a routed type: plain loops, no generator objects.
        out: Tuple[Any, ...] = ()
        for r in self._by_type.get(etype, ()):
            wants = r.wants
            if wants is None or etype == "StasisStart":
                out += (r.listener,)
                continue
            for cid in ids:
                if wants(cid):
                    out += (r.listener,)
                    break
        return out


#: The route when there is no raw listener.
nobody = Route(())


def raw_route(raws: Tuple[RawListener, ...]) -> RawRoute:
    """The route over these raw listeners (see :class:`Route`)."""
    return Route(raws) if raws else nobody


#: Called (under the registry's lock, so in order) when the raw types or route changed.
RawChange = Callable[[FrozenSet[str], RawRoute], None]


class ListenerRegistry:
    """The registered listeners, by kind, and their delivery.

    :param error_hook: ``hook(listener, event, exception)`` when a callback raises.
    :param call_listener_type: the class of call listeners (the model's
        :class:`~asterisk_cti.model.CallListener`; the pipeline does not import the model).
    """

    def __init__(self, error_hook: Optional[ErrorHook], call_listener_type: type) -> None:
        self._hook = error_hook
        self._call_type = call_listener_type
        self._lock = threading.Lock()
        self._channel: Tuple[Registration, ...] = ()
        self._call: Tuple[Registration, ...] = ()
        self._connection: Tuple[Registration, ...] = ()
        self._all: Tuple[Registration, ...] = ()
        self._raw: Tuple[RawListener, ...] = ()
        #: the listener methods of a channel event type / a CTI event kind (computed once;
        #: an enum's str() is slow)
        self._channel_methods: Dict[str, Tuple[str, ...]] = {}
        self._call_methods: Dict[Any, Tuple[str, ...]] = {}
        self._on_raw_change: Optional[RawChange] = None

    def add(self, listener: Any, call_soon: Optional[CallSoon] = None,
            waiting: bool = False) -> Optional[Registration]:
        """Register an object for every listener kind it subclasses (any thread).

        :param call_soon: deliver its callbacks through this hand-off (:class:`HandOff`).
        :param waiting: deliver nothing until :meth:`activate` (a late listener whose
            snapshot is taken on the processor thread).
        :returns: the registration, or None when it subclasses no listener kind (nothing
            registered).
        """
        channel = isinstance(listener, ChannelEventListener)
        call = isinstance(listener, self._call_type)
        connection = isinstance(listener, ConnectionListener)
        if not (channel or call or connection):
            return None
        handoff = HandOff(call_soon) if call_soon is not None else None
        reg = Registration(listener, handoff, channel, call, connection, waiting)
        with self._lock:
            if channel:
                self._channel = (*self._channel, reg)
            if call:
                self._call = (*self._call, reg)
            if connection:
                self._connection = (*self._connection, reg)
            self._all = (*self._all, reg)
        return reg

    def add_raw(self, listener: Any, event_types: Iterable[str],
                wants: Optional[Callable[[str], bool]]) -> None:
        """Register a raw listener (any thread)."""
        with self._lock:
            self._raw = (*self._raw, RawListener(listener, frozenset(event_types), wants))
            self._raw_changed()

    def remove(self, listener: Any) -> None:
        """Unregister an object from every kind (idempotent; any thread). Callbacks already
        queued in its hand-off are not run."""
        with self._lock:
            for reg in self._all:
                if reg.listener is listener:
                    reg.removed = True
            self._channel = tuple(x for x in self._channel if x.listener is not listener)
            self._call = tuple(x for x in self._call if x.listener is not listener)
            self._connection = tuple(x for x in self._connection if x.listener is not listener)
            self._all = tuple(x for x in self._all if x.listener is not listener)
            raws = tuple(r for r in self._raw if r.listener is not listener)
            if len(raws) != len(self._raw):
                self._raw = raws
                self._raw_changed()

    def watch_raw(self, on_change: Optional[RawChange]) -> None:
        """Have ``on_change(types, route)`` called now and on every raw change (``None``:
        stop). It runs under the registry's lock: keep it short, no I/O."""
        with self._lock:
            self._on_raw_change = on_change
            self._raw_changed()

    def _raw_changed(self) -> None:
        on_change = self._on_raw_change
        if on_change is None:
            return
        raws = self._raw
        types: Set[str] = set()
        for r in raws:
            types |= r.types
        on_change(frozenset(types), raw_route(raws))

    @property
    def connection_listeners(self) -> Tuple[Registration, ...]:
        """The active connection listeners now (waiting ones excluded)."""
        return tuple(r for r in self._connection if not r.waiting)

    @property
    def registrations(self) -> Tuple[Registration, ...]:
        """Every registration now."""
        return self._all

    # -- lane threads ----------------------------------------------------------------------------

    def deliver(self, item: Tuple[Group, Any]) -> None:
        """Deliver one item of the event lanes to its listeners (lane thread)."""
        group, event = item
        hook = self._hook
        if group == CHANNEL:
            etype = event.type
            methods = self._channel_methods.get(etype)
            if methods is None:
                method = method_for_event_type(etype)
                methods = ("on_event",) if method == "on_event" else ("on_event", method)
                if len(self._channel_methods) < 1024:
                    self._channel_methods[etype] = methods
            for reg in self._channel:
                if not reg.waiting:
                    reg.invoke(methods, event, hook)
        elif group == CALL:
            kind = event.kind
            methods = self._call_methods.get(kind)
            if methods is None:
                methods = self._call_methods[kind] = ("on_call_event", "on_" + str(kind))
            line = event.line
            for reg in self._call:
                if reg.waiting or (reg.pending and line in reg.pending):
                    continue  # submitted before its snapshot: the snapshot includes it
                reg.invoke(methods, event, hook)
        elif group == RAW:
            raw_event, targets = event
            for listener in targets:
                safe_call(listener, "on_event", raw_event, hook)
        elif group == SNAPSHOT:
            reg, key, snapshot = event
            reg.pending.discard(key)
            if not reg.removed:
                reg.invoke(("on_line_snapshot",), snapshot, hook)

    def deliver_notice(self, item: Tuple[Registration, Any]) -> None:
        """Deliver ``(registration, notice)`` of the notice lanes (lane thread)."""
        reg, event = item
        if reg.removed:
            return
        if isinstance(event, ConnectionEvent):
            method = "on_connected" if event.connected else "on_disconnected"
        else:
            method = CONNECTION_METHODS[type(event)]
        reg.invoke((method,), event, self._hook)
