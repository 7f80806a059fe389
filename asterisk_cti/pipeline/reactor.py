"""The reactor thread: owns the event websocket and nothing else.

It connects (HTTP basic auth in a header, never in the URL), reads frames as fast as they come
and puts them into the :class:`~asterisk_cti.pipeline.ring.Ring` in batches, pings when the line is
quiet, and reconnects forever with jittered exponential backoff until :meth:`Reactor.stop`.
It never waits long on a consumer: a slow reader is dangerous for Asterisk itself (its
per-app queue fills and PJSIP stops taking new requests). Only while more than 1 MiB waits in
the ring does it pause, at most 20 ms per read, for the processor to take them
(:meth:`~asterisk_cti.pipeline.ring.Ring.wait_for_room`): a burst then waits in the socket
buffers instead of the ring. Connection changes travel through the ring
as :class:`~asterisk_cti.pipeline.markers.Connected` /
:class:`~asterisk_cti.pipeline.markers.Disconnected` markers, so the processor sees them in
order with the events around them.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any, Callable, Dict, FrozenSet, Optional

from ..backoff import Backoff
from ..config import CtiConfig
from ..errors import (
    AsteriskCtiError,
    ConnectError,
    PermanentConnectError,
    RedirectError,
    TransportError,
    WebSocketProtocolError,
    http_error,
)
from .markers import Connected, Disconnected
from .ring import Ring
from .transport import (
    Canceller,
    EventStream,
    TransportFactory,
    WireLimits,
    basic_auth_header,
    factory_accepts,
)

logger = logging.getLogger(__name__)


class Reactor:
    """The thread that owns the websocket.

    :param config: connection settings.
    :param factory: opens the websocket (see :mod:`asterisk_cti.pipeline.transport`).
    :param ring: where frames go.
    :param rng: randomness for the jitter (tests pass a seeded one).

    Thread contract: :meth:`start`, :meth:`stop` and :meth:`reconnect` from any thread (stop
    is idempotent, aborts a connect in progress, and never joins the calling thread).

    Backoff: a connection counts as healthy only once it stayed up ``healthy_after``
    seconds; one that the server closes sooner does not reset the backoff, so a server that
    drops every websocket right after the upgrade sees attempts at growing intervals
    (``reconnect_min`` doubling up to ``reconnect_max``), not a tight loop.
    """

    def __init__(self, config: CtiConfig, factory: TransportFactory, ring: Ring,
                 rng: Optional[random.Random] = None) -> None:
        self._config = config
        self._factory = factory
        self._ring = ring
        self._rng = rng or random.Random()
        self._backoff = Backoff(config.reconnect_min, config.reconnect_max,
                                config.reconnect_jitter)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._stream: Optional[EventStream] = None
        self._connecting: Optional[Canceller] = None
        self._thread: Optional[threading.Thread] = None
        self._extra: Dict[str, Any] = {}
        if factory_accepts(factory, "limits"):
            self._extra["limits"] = WireLimits(config.max_message_size,
                                               config.max_handshake_bytes,
                                               config.max_handshake_headers)
        self._cancellable = factory_accepts(factory, "cancel")
        self._replaced_probe: Optional[Callable[[], bool]] = None
        self._replaced_at = 0.0
        self._replaced_checks = 0
        self._headers = {"Authorization": basic_auth_header(config.username, config.password)}
        self._wanted: Optional[FrozenSet[bytes]] = None
        self._dropped_before = 0
        self.last_error: Optional[ConnectError] = None
        #: why the reactor stopped trying (retrying cannot help), or None
        self.permanent_error: Optional[BaseException] = None
        self.connects = 0
        self.failed_attempts = 0
        self.short_lived = 0
        self.protocol_errors = 0
        self.replaced_rechecks = 0

    def start(self) -> None:
        """Start the reactor thread (idempotent)."""
        with self._lock:
            if self._thread is not None:
                return
            self._stop.clear()
            self.permanent_error = None
            self._thread = threading.Thread(target=self._run, name="asterisk-cti-reactor",
                                            daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop reading and close the websocket; wakes a blocked read at once.

        :returns: True when the thread ended within ``timeout``.
        """
        self._stop.set()
        with self._lock:
            stream, thread, connecting = self._stream, self._thread, self._connecting
            self._thread = None
        if connecting is not None:
            connecting.cancel()
        if stream is not None:
            stream.abort()
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def give_up(self, error: BaseException) -> None:
        """Stop connecting for good: retrying cannot help (an unknown monitored source on
        the first connect). Drops the connection; the thread ends without reconnecting
        and without another notice (the caller told the listeners). Any thread."""
        with self._lock:
            self.permanent_error = error
            stream = self._stream
        logger.error("giving up connecting: %s", error)
        if stream is not None:
            stream.abort()

    def set_wanted(self, wanted: Optional[FrozenSet[bytes]]) -> None:
        """The ARI event types to keep (``None``: all). Frames of other types are dropped by
        the transport as they are read, before they are copied, buffered or parsed; this is
        what keeps the ring small when Asterisk floods us with ChannelVarset. Any thread."""
        self._wanted = wanted
        with self._lock:
            stream = self._stream
        if stream is not None:
            stream.set_wanted(wanted)

    @property
    def dropped(self) -> int:
        """Frames dropped by type as they were read, over all connections."""
        stream = self._stream
        return self._dropped_before + (stream.dropped if stream is not None else 0)

    def reconnect(self, reason: str) -> None:
        """Drop the current connection; the loop reconnects with backoff (any thread)."""
        logger.info("reconnecting: %s", reason)
        with self._lock:
            stream = self._stream
        if stream is not None:
            stream.abort()

    def replaced(self, probe: Callable[[], bool]) -> None:
        """Another client took the application name (``ApplicationReplaced``): from now on,
        check ``probe()`` at growing intervals (``replaced_recheck`` doubling up to
        ``10 * reconnect_max``) on the reactor thread, and reconnect as soon as it returns
        True (the name is free). Any thread; cleared by the next connect.

        :param probe: returns True when nobody holds the application any more; it runs on
            the reactor thread and must be bounded (a REST call with its timeout).
        """
        with self._lock:
            self._replaced_probe = probe
            self._replaced_checks = 0
            self._replaced_at = time.monotonic() + self._config.replaced_recheck

    def _check_replaced(self) -> bool:
        """Whether the replaced application is free again (run a due probe)."""
        probe = self._replaced_probe
        if probe is None or time.monotonic() < self._replaced_at:
            return False
        self._replaced_checks += 1
        self.replaced_rechecks += 1
        try:
            free = probe()
        except Exception as exc:  # a probe error means "not known to be free"
            logger.debug("application re-check failed: %s", exc)
            free = False
        cfg = self._config
        interval = Backoff(cfg.replaced_recheck, max(cfg.replaced_recheck,
                                                     10.0 * cfg.reconnect_max)
                           ).delay(self._replaced_checks + 1)
        self._replaced_at = time.monotonic() + interval
        if free:
            logger.info("the ARI application is free again; taking it back")
        else:
            logger.debug("the ARI application is still held elsewhere; next check in %.0f s",
                         interval)
        return free

    def stats(self) -> Dict[str, int]:
        """Counters of the connection (any thread)."""
        return {"connects": self.connects, "failed_attempts": self.failed_attempts,
                "dropped_early": self.dropped, "short_lived": self.short_lived,
                "protocol_errors": self.protocol_errors,
                "replaced_rechecks": self.replaced_rechecks}

    # -- the thread ---------------------------------------------------------------------------

    def _open(self, url: str) -> EventStream:
        cfg = self._config
        extra = dict(self._extra)
        canceller: Optional[Canceller] = None
        if self._cancellable:
            canceller = Canceller()
            extra["cancel"] = canceller
            with self._lock:
                self._connecting = canceller
            if self._stop.is_set():
                canceller.cancel()
        try:
            return self._factory(
                url, self._headers, connect_timeout=cfg.connect_timeout,
                read_timeout=cfg.ping_interval, verify_tls=cfg.verify_tls, **extra,
            )
        finally:
            if canceller is not None:
                with self._lock:
                    self._connecting = None

    def _run(self) -> None:
        cfg = self._config
        url = cfg.events_url
        attempt = 0
        ever_connected = False
        reported = ""
        while not self._stop.is_set() and self.permanent_error is None:
            try:
                stream = self._open(url)
            except ConnectError as exc:
                if self._stop.is_set():
                    break
                self.last_error = exc
                self.failed_attempts += 1
                attempt += 1
                shown = url.split("?", 1)[0]
                permanent = None if ever_connected else permanent_error(exc)
                if permanent is not None:
                    # Retrying cannot help: say so at once and stop trying.
                    self.permanent_error = permanent
                    logger.error("connect to %s failed: %s; not retrying", shown, permanent)
                    self._ring.put(Disconnected(str(permanent), permanent, attempt))
                    break
                if not ever_connected and str(exc) != reported:
                    # Not connected yet: tell the listeners why (once per new reason).
                    reported = str(exc)
                    self._ring.put(Disconnected(reported, None, attempt))
                delay = self._backoff.delay(attempt, self._rng)
                logger.warning("connect to %s failed (%s); retry %d in %.1f s",
                               shown, exc, attempt, delay)
                self._stop.wait(delay)
                continue
            except Exception as exc:  # a broken transport factory must not kill the thread
                self.last_error = ConnectError(f"{type(exc).__name__}: {exc}")
                logger.exception("the transport factory raised")
                attempt += 1
                self._stop.wait(self._backoff.delay(attempt, self._rng))
                continue
            stream.set_wanted(self._wanted)
            with self._lock:
                self._stream = stream
            if self._stop.is_set():
                stream.abort()
            self.connects += 1
            self.last_error = None
            ever_connected = True
            reported = ""
            with self._lock:
                self._replaced_probe = None
            logger.info("connected to %s", url.split("?", 1)[0])
            self._ring.put(Connected(attempt))
            up_since = time.monotonic()
            reason = self._read(stream)
            with self._lock:
                self._stream = None
                self._dropped_before += stream.dropped
            try:
                stream.close()
            except Exception as exc:
                logger.debug("closing the websocket: %s", exc)
            if self._stop.is_set() or self.permanent_error is not None:
                break
            self._ring.put(Disconnected(reason))
            if time.monotonic() - up_since >= cfg.healthy_after:
                attempt = 1
            else:
                # Not healthy: the server dropped us right away; keep backing off.
                self.short_lived += 1
                attempt += 1
            delay = self._backoff.delay(attempt, self._rng)
            logger.warning("websocket disconnected: %s; reconnect in %.1f s", reason, delay)
            self._stop.wait(delay)

    def _read(self, stream: EventStream) -> str:
        put_many = self._ring.put_many
        # A short, bounded wait before each read while the processor is far behind (see
        # Ring.wait_for_room): a burst then waits in the socket buffers, not in the ring.
        pace = self._ring.wait_for_room
        silence_limit = 2.0 * self._config.ping_interval
        last = time.monotonic()
        while True:
            pace()
            try:
                frames = stream.recv_batch()
            except WebSocketProtocolError as exc:
                self.protocol_errors += 1
                return f"protocol error: {exc}"
            except TransportError as exc:
                return "stopped" if self._stop.is_set() else str(exc)
            except Exception as exc:
                return f"{type(exc).__name__}: {exc}"
            if self._replaced_probe is not None and self._check_replaced():
                return "application name free again after ApplicationReplaced"
            if frames is None:
                if self._stop.is_set():
                    return "stopped"
                if time.monotonic() - last > silence_limit:
                    return "no answer to the keep-alive ping"
                try:
                    stream.ping()
                except TransportError as exc:
                    return str(exc)
                continue
            last = time.monotonic()
            if frames:
                put_many(frames)


def permanent_error(exc: ConnectError) -> Optional[AsteriskCtiError]:
    """The typed error for a connect failure that retrying cannot fix, or ``None`` for a
    transient one (refused, DNS, timeout, 5xx, closed before an answer).

    Permanent: refused credentials (401 :class:`~asterisk_cti.AuthenticationError`, 403
    :class:`~asterisk_cti.ForbiddenError`), a redirect, and every
    :class:`~asterisk_cti.PermanentConnectError` the transport raises (TLS verification,
    not an ARI server, an invalid application name). Any thread.
    """
    if isinstance(exc, (PermanentConnectError, RedirectError)):
        return exc
    if exc.status in (401, 403):
        return http_error("GET", "/events", exc.status, "websocket handshake " + (
            "forbidden (ari.conf ACL?)" if exc.status == 403 else
            "refused: check username/password"))
    return None
