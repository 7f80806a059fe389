"""CtiClient: the façade that composes the pipeline.

::

    Asterisk ─ws─> Reactor ─put─> Ring ─get─> Processor ─submit─> Dispatcher lanes ─> listeners
                                                  │ sync/resync (REST)                    │
    Asterisk <────────────── AriRest (one pooled requests.Session) <── CallControl <──────┘

The client owns the threads' life: :meth:`CtiClient.start` starts the dispatcher, the
processor and the reactor and returns once connected and subscribed; :meth:`CtiClient.stop`
stops them in the order the data flows (reactor, ring, processor, dispatcher), is idempotent,
bounded by a timeout, and safe to call from a listener.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    FrozenSet,
    Iterable,
    Literal,
    Optional,
    Tuple,
    Union,
)

import requests

from .announce import Announcer
from .ari.rest import AriRest
from .ari.subscriptions import Subscriptions, normalize_source
from .config import CtiConfig
from .errors import (
    ClientStoppedError,
    CtiTimeoutError,
    WouldDeadlockError,
)
from .listeners import ConnectionEvent
from .pipeline.delivery import CallSoon, ListenerRegistry, RawRoute
from .pipeline.dispatcher import Dispatcher, ErrorHook
from .pipeline.markers import Action, Barrier, InOrder, MonitorChange
from .pipeline.processor import Processor
from .pipeline.reactor import Reactor
from .pipeline.ring import Ring
from .pipeline.sync import app_free_probe
from .pipeline.transport import TransportFactory, websocket_transport
from .pipeline.waiters import Waiters

if TYPE_CHECKING:  # the model and call control import the client's modules
    from .control.calls import CallControl
    from .model import CallModel, Line

logger = logging.getLogger(__name__)


#: Parsed events waiting in moving lanes before the processor pauses (see
#: :meth:`Dispatcher.wait_for_room`), and the longest pause per batch.
_LANE_ROOM = 2048
_LANE_ROOM_WAIT = 0.25  # per step; the processor takes up to 3 steps, announcing losses
#: Threads that deliver connection notices: one lane per ConnectionListener, so a listener
#: that blocks delays only itself (threads start on demand).
_NOTICE_WORKERS = 32


class ListenerHandle:
    """Returned by :meth:`CtiClient.add_listener`; :meth:`remove` unregisters the listener."""

    __slots__ = ("_client", "listener")

    def __init__(self, client: CtiClient, listener: Any) -> None:
        self._client = client
        self.listener = listener

    def remove(self) -> None:
        """Stop delivering to this listener (idempotent; safe from inside a callback)."""
        self._client.remove_listener(self.listener)


class CtiClient:
    """A CTI connection to one Asterisk: events in, call control out.

    :param config: where and as whom to connect (:class:`CtiConfig`).
    :param transport_factory: opens the event websocket; default the real one
        (:func:`asterisk_cti.pipeline.transport.websocket_transport`); tests pass
        :class:`asterisk_cti.testing.FakeWebSocket` ``.factory``.
    :param session: the :class:`requests.Session` for REST (tests mount
        :class:`asterisk_cti.testing.FakeAri` on one); default a new pooled session.
    :param model: the call model; by default a new :class:`asterisk_cti.model.CallModel`.
        Pass ``False`` for channel events only.
    :param error_hook: ``hook(listener, event, exception)`` called on the lane thread when a
        listener raises.

    Threading: every public method may be called from any thread, including a listener.
    Listeners run on the dispatcher's lane threads (``asterisk-cti-lane_N``).

    Example::

        with CtiClient(CtiConfig(url="http://127.0.0.1:8088", username="cti",
                                 password="...", app="desk-1000")) as cti:
            cti.add_listener(MyListener())
            cti.monitor("PJSIP/1000")
    """

    def __init__(
        self,
        config: CtiConfig,
        *,
        transport_factory: Optional[TransportFactory] = None,
        session: Optional[requests.Session] = None,
        model: Union[CallModel, Literal[False], None] = None,
        error_hook: Optional[ErrorHook] = None,
    ) -> None:
        self.config = config
        self._factory: TransportFactory = transport_factory or websocket_transport
        self.rest = AriRest(config, session)
        self.subscriptions = Subscriptions(
            config.app, subscribe_bridges=config.subscribe_bridges,
            server_filter=config.server_filter,
        )
        self.waiters = Waiters()
        #: the call model (None with ``model=False``); its snapshots may be read from any
        #: thread, its methods run on the processor thread only
        self.model: Optional[CallModel] = self._make_model(model)
        self._lock = threading.RLock()
        from .model import CallListener

        self._listeners = ListenerRegistry(error_hook, CallListener)
        self._announcer = Announcer(self._listeners, config.events_url, self.model,
                                    lambda: (self._processor, self._dispatcher, self._notices))
        self._running = False
        self._ring: Optional[Ring] = None
        self._reactor: Optional[Reactor] = None
        self._processor: Optional[Processor] = None
        self._dispatcher: Optional[Dispatcher] = None
        self._notices: Optional[Dispatcher] = None
        self._control: Optional[CallControl] = None

    @staticmethod
    def _make_model(model: Union[CallModel, Literal[False], None]) -> Optional[CallModel]:
        if model is False:
            return None
        if model is not None:
            return model
        from .model import CallModel

        return CallModel()

    def __repr__(self) -> str:
        state = "running" if self._running else "stopped"
        return f"<CtiClient app={self.config.app!r} url={self.config.url!r} {state}>"

    # -- life cycle ---------------------------------------------------------------------------

    def start(self, timeout: Optional[float] = None, *, wait: bool = True) -> CtiClient:
        """Start the threads, connect, subscribe, and resynchronise.

        With ``wait=True`` (the default) it blocks the calling thread until connected and
        subscribed. With ``wait=False`` it returns at once and the client keeps trying in
        the background, forever, with the reconnect backoff (``reconnect_min`` ..
        ``reconnect_max``): :class:`ConnectionListener` listeners get ``on_disconnected``
        (``event.reason``) when an attempt fails for a new reason, and ``on_connected`` once
        up. An error that retrying cannot fix (listed below) is never retried: with
        ``wait=False`` it arrives as ``on_disconnected`` with ``event.error`` set, the client
        stops trying and :attr:`failure` holds it (the threads stay until :meth:`stop`;
        calling :meth:`start` again retries from scratch). The calling thread (any; a GUI
        thread with ``wait=False``) runs it.

        :param timeout: seconds to wait (default: ``connect_timeout`` + ``request_timeout``);
            ignored with ``wait=False``.
        :param wait: whether to block until connected (see above).
        :returns: the client itself.
        :raises AuthenticationError: at once when Asterisk refuses the credentials (401;
            :class:`ForbiddenError` for 403).
        :raises RedirectError: at once when the server answers the websocket upgrade with
            a redirect (never followed; the client is stopped again).
        :raises TlsVerificationError: at once when the server's certificate is not trusted.
        :raises NotAriServerError: at once when the url does not serve ARI (404, an HTML
            page, not HTTP, not a websocket).
        :raises InvalidApplicationError: at once when Asterisk refuses the app name (400).
        :raises UnknownSourceError: when Asterisk does not know a monitored source (the
            client is stopped again; the error names the sources).
        :raises CtiTimeoutError: when not connected in time (the client is stopped again);
            the message says what the last attempt got.

        With ``wait=True``, whatever ends it early — an error above, or ``KeyboardInterrupt``
        while it waits — the client is stopped before the exception propagates: no thread
        keeps running and no connect stays pending. A connect still in progress at the
        deadline is aborted. With ``wait=False`` nothing is raised for the connection.
        """
        self.control  # noqa: B018 - created now so that its Stasis switch sees every call
        cfg = self.config
        wait_s = timeout if timeout is not None else cfg.connect_timeout + cfg.request_timeout
        deadline = time.monotonic() + wait_s
        if self.failure is not None:
            self.stop()  # it gave up: start again from scratch
        with self._lock:
            if self._running:
                return self
            ring = Ring(cfg.ring_capacity, cfg.ring_bytes)
            dispatcher = Dispatcher(self._listeners.deliver, workers=cfg.workers,
                                    backlog_warning=cfg.lane_backlog_warning,
                                    lane_capacity=cfg.lane_capacity,
                                    total_capacity=cfg.lane_total_capacity,
                                    one_runner=True)
            notices = Dispatcher(self._listeners.deliver_notice, workers=_NOTICE_WORKERS,
                                 backlog_warning=cfg.lane_backlog_warning,
                                 thread_name_prefix="asterisk-cti-notice",
                                 lane_capacity=cfg.lane_capacity)
            reactor = Reactor(cfg, self._factory, ring)
            processor = Processor(
                ring, dispatcher.submit_many, self.rest, self.subscriptions, reactor,
                self.waiters, self._notify, cfg.event_types, model=self.model,
                model_types=_model_types(self.model), url=cfg.events_url,
                throttle=lambda: dispatcher.wait_for_room(_LANE_ROOM, _LANE_ROOM_WAIT),
                watch=dispatcher.watch,
                dedup_window_bytes=cfg.dedup_window_bytes, server_filter=cfg.server_filter,
            )
            self._ring, self._dispatcher, self._reactor, self._processor = (
                ring, dispatcher, reactor, processor)
            self._notices = notices
            self._listeners.watch_raw(self._raw_changed)
            self.waiters.reopen()
            self._running = True
        try:
            notices.start()
            dispatcher.start()
            processor.start()
            reactor.start()
            if not wait:
                return self
            _wait_ready(processor, reactor, cfg.ari_url, wait_s, deadline)
            if self.subscriptions.refused:  # an unknown monitored source: fail fast
                raise self.subscriptions.refused_error()
        except BaseException:
            # Ctrl-C, a failed thread start, or our own errors: leave nothing running.
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop every thread and close the websocket (idempotent, bounded, listener-safe).

        Pending call-control waits fail with :class:`ClientStoppedError`. A stopped client
        can be started again.

        :param timeout: seconds for all threads together.
        :returns: True when every thread ended in time (a listener blocked forever is the
            only reason it may not; it is logged).
        """
        with self._lock:
            if not self._running:
                return True
            self._running = False
            ring, reactor, processor, dispatcher = (
                self._ring, self._reactor, self._processor, self._dispatcher)
            notices = self._notices
        deadline = time.monotonic() + timeout
        ok = True
        self.waiters.close()
        control = self._control  # control.nonblocking(): queued ones fail, joined at the end
        if control is not None:
            control.stop_operations(None)
        if reactor is not None:
            ok &= reactor.stop(max(0.0, deadline - time.monotonic()))
        if ring is not None:
            ring.close()
        if processor is not None:
            ok &= processor.join(max(0.0, deadline - time.monotonic()))
        if dispatcher is not None:
            ok &= dispatcher.stop(max(0.0, deadline - time.monotonic()))
        if notices is not None:
            ok &= notices.stop(max(0.0, deadline - time.monotonic()))
        if control is not None:
            ok &= control.stop_operations(max(0.0, deadline - time.monotonic()))
        if not ok:
            logger.error("stop: some threads did not end within %.1f s", timeout)
        return ok

    def close(self) -> None:
        """:meth:`stop`, then release the REST session's connections."""
        self.stop()
        self.rest.close()

    def __enter__(self) -> CtiClient:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def running(self) -> bool:
        """Whether :meth:`start` was called and :meth:`stop` not yet."""
        return self._running

    @property
    def failure(self) -> Optional[BaseException]:
        """Why the client stopped trying to connect, or ``None``: the typed error of a
        failure that retrying cannot fix (see :meth:`start`); cleared by :meth:`stop` and
        :meth:`start`. Any thread."""
        reactor = self._reactor
        return reactor.permanent_error if reactor is not None and self._running else None

    @property
    def connected(self) -> bool:
        """Whether the websocket is up and subscribed right now."""
        p = self._processor
        return bool(self._running and p is not None and p.connected)

    # -- monitoring ---------------------------------------------------------------------------

    def monitor(self, *sources: str, timeout: Optional[float] = None) -> None:
        """Monitor endpoints (``"PJSIP/1000"``) or whole technologies (``"PJSIP"``).

        Before :meth:`start` it only records them; while running it subscribes at once and
        resynchronises the new lines, blocking the caller until Asterisk agreed.

        :raises ConfigurationError: for a malformed source.
        :raises UnknownSourceError: when Asterisk does not know a source (422); the other
            sources are monitored, the unknown ones are dropped from :attr:`monitored`.
        :raises AriHttpError: when Asterisk refuses the subscription.
        """
        added = self.subscriptions.add(sources)
        if added:
            self._apply_monitor_change(timeout)
            refused = [s for s in added if s in self.subscriptions.refused]
            if refused:  # the others are subscribed; forget the unknown ones
                self.unmonitor(*refused, timeout=timeout)
                raise self.subscriptions.refused_error(refused)

    def unmonitor(self, *sources: str, timeout: Optional[float] = None) -> None:
        """Stop monitoring endpoints or technologies (see :meth:`monitor`)."""
        removed = self.subscriptions.remove(sources)
        if removed:
            self._apply_monitor_change(timeout)

    @property
    def monitored(self) -> Tuple[str, ...]:
        """The monitored endpoints and technologies."""
        return self.subscriptions.wanted

    def _apply_monitor_change(self, timeout: Optional[float]) -> None:
        with self._lock:
            ring, processor = self._ring, self._processor
            running = self._running
        if not running or ring is None or processor is None:
            return
        change = MonitorChange()
        ring.put(change)
        wait = timeout if timeout is not None else self.config.request_timeout * 2
        if threading.current_thread().name == "asterisk-cti-processor":
            return  # cannot wait for ourselves; it is applied after the current batch
        if not change.done.wait(wait):
            raise CtiTimeoutError(f"monitor change not applied within {wait:g} s")
        if change.error is not None:
            raise change.error

    # -- listeners ---------------------------------------------------------------------------

    def add_listener(self, listener: Any, *,
                     call_soon: Optional[CallSoon] = None) -> ListenerHandle:
        """Register a listener object (any thread, also from a callback).

        It receives what its base classes declare: :class:`ChannelEventListener` callbacks,
        :class:`~asterisk_cti.model.CallListener` callbacks, :class:`ConnectionListener`
        callbacks (one object may subclass several).

        The current state comes first, so the order of ``add_listener`` and :meth:`start`
        does not matter: added while connected, a connection listener gets
        ``on_connected`` (``event.current`` True) and a call listener one
        ``on_line_snapshot`` per monitored line, before any later event of that line (the
        line's events queued before it are not delivered to it: the snapshot includes them);
        added before :meth:`start` or while reconnecting, the real ``on_connected`` and the
        snapshots after the next resynchronisation.

        :param call_soon: ``call_soon(fn)`` that runs ``fn()`` soon on a thread of your
            choice, safe to call from any thread: every callback of this listener is handed
            to it (a GUI loop: :func:`asterisk_cti.desktop.tk_call_soon`,
            :func:`~asterisk_cti.desktop.qt_call_soon`,
            :meth:`PollQueue.call_soon <asterisk_cti.desktop.PollQueue.call_soon>`). The
            callbacks then run on that thread, one at a time, each line's in order. Default
            None: they run on the SDK's lane threads (``asterisk-cti-lane_N``) and notice
            threads (``asterisk-cti-notice_N``).
        :returns: a handle whose :meth:`ListenerHandle.remove` unregisters it.
        :raises TypeError: when the object subclasses none of the listener classes, or
            ``call_soon`` is not callable.
        """
        with self._lock:
            ring, running = self._ring, self._running
            reg = self._listeners.add(listener, call_soon, waiting=running)
            if reg is None:
                raise TypeError(
                    f"{type(listener).__name__} is not a ChannelEventListener, CallListener "
                    "or ConnectionListener"
                )
            if running and ring is not None:
                # Activated on the processor thread, in order with the events: what was
                # submitted before is not delivered to it, what follows is.
                ring.put(InOrder(lambda: self._announcer.activate(reg)))
        return ListenerHandle(self, listener)

    def remove_listener(self, listener: Any) -> None:
        """Unregister a listener (idempotent; any thread, also from its own callback).

        Callbacks already queued in its ``call_soon`` hand-off do not run after this.

        Never blocks on Asterisk: when the event types the client consumes change, the
        processor thread has the server-side event filter updated.
        """
        self._listeners.remove(listener)

    def add_raw_listener(self, listener: Any, event_types: Iterable[str],
                         wants: Optional[Callable[[str], bool]] = None) -> ListenerHandle:
        """Deliver ARI events of ``event_types`` the application receives, on any channel
        (not filtered by monitored line), to ``listener.on_event(event)``.

        The seam for Stasis applications built on the client (call control's switch uses
        it). Runs on a lane per channel id, in order.

        :param wants: ``wants(channel_id) -> bool``, called on the processor thread (keep it
            to a few dict look-ups): only events of channels it wants are delivered, plus
            every ``StasisStart``. ``None`` delivers every event of ``event_types`` — on a
            busy PBX that is a lane hand-off per event, so prefer a filter.
        """
        self._listeners.add_raw(listener, event_types, wants)
        return ListenerHandle(self, listener)

    def _raw_changed(self, types: FrozenSet[str], route: RawRoute) -> None:
        # Under the registry's lock (so in order); the processor re-installs the event
        # filter itself, through the ring.
        processor = self._processor
        if processor is not None:
            processor.set_raw_types(types, route)

    def _watch_replaced(self) -> None:
        """After ``ApplicationReplaced``: have the reactor re-check, with backoff, whether
        the name is free, and take it back only then (see :func:`app_free_probe`)."""
        reactor = self._reactor
        if reactor is not None:
            cfg = self.config
            reactor.replaced(app_free_probe(self.rest, cfg.app, cfg.subscribe_bridges,
                                            min(2.0, cfg.request_timeout)))

    # -- connection notices ---------------------------------------------------------------------

    def _notify(self, event: Any) -> None:
        # Processor thread.
        if isinstance(event, ConnectionEvent) and not event.connected and (
                "replaced" in (event.reason or "")):
            self._watch_replaced()
        self._announcer.notify(event)

    # -- call control, queries, stats ---------------------------------------------------------

    def set_held(self, channel_id: str, held: bool, timeout: float = 5.0) -> None:
        """Tell the call model that a channel was held or retrieved through ARI (which emits
        no ChannelHold), so that listeners get ``on_held`` / ``on_retrieved``.

        Used by call control; any thread. The model is updated on the processor thread, in
        order with the events; this returns once it was.
        """
        model = self.model
        if model is not None:
            self._in_order(lambda: model.set_held(channel_id, held), timeout)

    def set_call_data(self, channel_id: str, value: str, timeout: float = 5.0) -> None:
        """Tell the call model the ``CTI_DATA`` value call control just set on a channel (the
        server-side filter keeps ChannelVarset away; the model reads ``channelvars`` too).

        Used by call control; any thread. Returns once the processor thread applied it.
        """
        model = self.model
        if model is not None:
            self._in_order(lambda: model.set_call_data(channel_id, value), timeout)

    def _in_order(self, fn: Action, timeout: float) -> None:
        with self._lock:
            ring, running = self._ring, self._running
        if ring is None or not running:
            return
        marker = InOrder(fn)
        ring.put(marker)
        if threading.current_thread().name != "asterisk-cti-processor":
            marker.done.wait(timeout)

    @property
    def control(self) -> CallControl:
        """The blocking :class:`~asterisk_cti.control.CallControl` of this client (created on
        first use; any thread)."""
        with self._lock:
            if self._control is None:
                from .control.calls import CallControl

                self._control = CallControl(self)
            return self._control

    @property
    def lines(self) -> Tuple[Line, ...]:
        """Snapshots of every monitored line with its calls (any thread)."""
        model = self.model
        return tuple(model.lines) if model is not None else ()

    def line(self, endpoint: str) -> Optional[Line]:
        """The snapshot of one line (``"PJSIP/1000"``), or None (any thread)."""
        model = self.model
        return model.line(normalize_source(endpoint)) if model is not None else None

    def stats(self) -> Dict[str, Any]:
        """Counters of every stage: ring, processor, dispatcher, connection, call model (its
        stimuli that did not fit, the call data values it could not decode). Any thread."""
        out: Dict[str, Any] = {"running": self._running, "connected": self.connected}
        if self._ring is not None:
            out["ring"] = self._ring.stats()._asdict()
        if self._processor is not None:
            out["processor"] = self._processor.stats.as_dict()
        if self._dispatcher is not None:
            out["dispatcher"] = {**self._dispatcher.stats.as_dict(),
                                 "backlog": self._dispatcher.backlog()}
        if self._notices is not None:
            out["notices"] = {**self._notices.stats.as_dict(),
                              "backlog": self._notices.backlog()}
        if self._reactor is not None:
            out["reactor"] = self._reactor.stats()
        model = self.model
        if model is not None:
            out["model"] = {"unfit": model.unfit_count,
                            "call_data_errors": model.call_data_errors}
        return out

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until everything received so far was delivered to listeners (for tests and
        tools): a barrier goes through the ring behind every frame already in it, then the
        dispatcher's lanes are drained.

        Call control's reactions to those events (the switch dialling, bridging) are waited
        for too.

        :returns: False on timeout.
        :raises ClientStoppedError: when the client is not running.
        :raises WouldDeadlockError: when called from a listener (a lane thread) or the
            processor thread: it would wait for the very thread it runs on.
        """
        name = threading.current_thread().name
        if name.startswith(("asterisk-cti-lane", "asterisk-cti-processor")):
            raise WouldDeadlockError(
                f"wait_idle() called on {name}: a listener cannot wait for its own lane to "
                "drain; call it from another thread")
        deadline = time.monotonic() + timeout
        ring, dispatcher, notices = self._ring, self._dispatcher, self._notices
        if ring is None or dispatcher is None or not self._running:
            raise ClientStoppedError("the client is not running")
        barrier = Barrier()
        ring.put(barrier)
        if not barrier.done.wait(timeout):
            return False
        if not dispatcher.wait_idle(max(0.0, deadline - time.monotonic())):
            return False
        control = self._control
        if control is not None and not control.wait_engine_idle(
                max(0.0, deadline - time.monotonic())):
            return False
        return notices is None or notices.wait_idle(max(0.0, deadline - time.monotonic()))


def _model_types(model: Optional[CallModel]) -> Iterable[str]:
    if model is None:
        return ()
    from .model import MODEL_EVENT_TYPES

    return MODEL_EVENT_TYPES


def _wait_ready(processor: Processor, reactor: Reactor, ari_url: str, wait: float,
                deadline: float) -> None:
    """Block until the first connect was subscribed and resynchronised (the caller of
    :meth:`CtiClient.start`); fail at once on an error retrying cannot fix (the reactor's
    :attr:`~Reactor.permanent_error`: credentials, redirect, TLS, not ARI, app name, an
    unknown monitored source)."""
    while True:
        ready = processor.ready.wait(min(0.05, max(0.0, deadline - time.monotonic())))
        err = reactor.permanent_error
        if err is not None:
            raise err
        if ready:
            return
        if time.monotonic() >= deadline:
            last = processor.sync_error or reactor.last_error
            raise CtiTimeoutError(
                f"not connected to {ari_url} within {wait:g} s"
                + (f" (last error: {last})" if last else "")
            )
