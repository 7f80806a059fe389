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

import threading
from enum import IntEnum
from typing import Any, Callable, FrozenSet, Hashable, Iterable, List, Optional, Set, Tuple

from ..listeners import (
    CONNECTION_METHODS,
    ChannelEventListener,
    ConnectionEvent,
    ConnectionListener,
    method_for_event_type,
)
from .dispatcher import ErrorHook, safe_call


class Group(IntEnum):
    """What kind of listener a dispatched item is for."""

    #: a typed ARI event for :class:`~asterisk_cti.ChannelEventListener` objects
    CHANNEL = 0
    #: a CTI event of the call model for :class:`~asterisk_cti.model.CallListener` objects
    CALL = 1
    #: ``(event, listeners)``: an ARI event for the raw listeners the route chose
    RAW = 2


CHANNEL, CALL, RAW = Group.CHANNEL, Group.CALL, Group.RAW

#: What the processor hands the dispatcher: ``(lane key, (group, payload))``.
LaneItem = Tuple[Hashable, Tuple[Group, Any]]
#: ``route(event_type, channel_ids) -> listeners``: who gets a raw event.
RawRoute = Callable[[str, List[str]], Tuple[Any, ...]]


def nobody(etype: str, ids: List[str]) -> Tuple[Any, ...]:
    """The route when there is no raw listener."""
    return ()


class RawListener:
    """A raw listener: ``listener.on_event(event)`` for ``types``, filtered by ``wants``."""

    __slots__ = ("listener", "types", "wants")

    def __init__(self, listener: Any, types: FrozenSet[str],
                 wants: Optional[Callable[[str], bool]]) -> None:
        self.listener = listener
        self.types = types
        self.wants = wants


def raw_route(raws: Tuple[RawListener, ...]) -> RawRoute:
    """The route over these raw listeners: every listener of the event's type whose
    ``wants`` accepts one of its channels (every ``StasisStart``; all when ``wants`` is
    None)."""

    def route(etype: str, ids: List[str]) -> Tuple[Any, ...]:
        # Runs for every event of a raw type on the processor thread: plain loops, no
        # generator objects.
        out: Tuple[Any, ...] = ()
        for r in raws:
            if etype not in r.types:
                continue
            wants = r.wants
            if wants is None or etype == "StasisStart":
                out += (r.listener,)
                continue
            for cid in ids:
                if wants(cid):
                    out += (r.listener,)
                    break
        return out

    return route if raws else nobody


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
        self._channel: Tuple[Any, ...] = ()
        self._call: Tuple[Any, ...] = ()
        self._connection: Tuple[Any, ...] = ()
        self._raw: Tuple[RawListener, ...] = ()
        self._on_raw_change: Optional[RawChange] = None

    def add(self, listener: Any) -> bool:
        """Register an object for every listener kind it subclasses (any thread).

        :returns: False when it subclasses none (nothing registered).
        """
        kinds = 0
        with self._lock:
            if isinstance(listener, ChannelEventListener):
                self._channel = (*self._channel, listener)
                kinds += 1
            if isinstance(listener, self._call_type):
                self._call = (*self._call, listener)
                kinds += 1
            if isinstance(listener, ConnectionListener):
                self._connection = (*self._connection, listener)
                kinds += 1
        return bool(kinds)

    def add_raw(self, listener: Any, event_types: Iterable[str],
                wants: Optional[Callable[[str], bool]]) -> None:
        """Register a raw listener (any thread)."""
        with self._lock:
            self._raw = (*self._raw, RawListener(listener, frozenset(event_types), wants))
            self._raw_changed()

    def remove(self, listener: Any) -> None:
        """Unregister an object from every kind (idempotent; any thread)."""
        with self._lock:
            self._channel = tuple(x for x in self._channel if x is not listener)
            self._call = tuple(x for x in self._call if x is not listener)
            self._connection = tuple(x for x in self._connection if x is not listener)
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
    def connection_listeners(self) -> Tuple[Any, ...]:
        """The connection listeners now."""
        return self._connection

    # -- lane threads ----------------------------------------------------------------------------

    def deliver(self, item: Tuple[Group, Any]) -> None:
        """Deliver one item of the event lanes to its listeners (lane thread)."""
        group, event = item
        hook = self._hook
        if group == CHANNEL:
            method = method_for_event_type(event.type)
            for listener in self._channel:
                safe_call(listener, "on_event", event, hook)
                if method != "on_event":
                    safe_call(listener, method, event, hook)
        elif group == CALL:
            method = "on_" + str(event.kind)
            for listener in self._call:
                safe_call(listener, "on_call_event", event, hook)
                safe_call(listener, method, event, hook)
        elif group == RAW:
            raw_event, targets = event
            for listener in targets:
                safe_call(listener, "on_event", raw_event, hook)

    def deliver_notice(self, item: Tuple[Any, Any]) -> None:
        """Deliver ``(listener, notice)`` of the notice lanes (lane thread)."""
        listener, event = item
        if isinstance(event, ConnectionEvent):
            method = "on_connected" if event.connected else "on_disconnected"
        else:
            method = CONNECTION_METHODS[type(event)]
        safe_call(listener, method, event, self._hook)
