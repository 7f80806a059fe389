"""What every call-control operation shares: the client, the options, the state and the
engine, and the helpers that turn a target into a channel, check that it is in the
application, and register a wait before sending the request that should satisfy it.

:class:`ControlBase` is the base of :class:`~asterisk_cti.control.calls.CallControl`; the
operations are in :mod:`asterisk_cti.control.calls` and :mod:`asterisk_cti.control.transfers`.

Threads: every method may be called from any thread; internal state is guarded by locks that
are never held while a request or a wait is in progress.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from typing import Any, Callable, Optional, Sequence, Tuple

from ..ari.rest import ari_path
from ..errors import (
    AsteriskCtiError,
    CallFailedError,
    CtiTimeoutError,
    NotInStasisError,
    ServerError,
)
from ..events.catalogue import Event
from ..model.types import Connection
from ..pipeline.delivery import keep_types_only
from ..pipeline.waiters import Predicate, Waiter
from .actions import Actions, actions_for
from .engine import StasisEngine
from .futures import OperationPool
from .handles import ControlledCall, Target, channel_id_of
from .options import ControlHost, ControlOptions, channel_ids
from .predicates import DialOutcome
from .state import ENGINE_EVENT_TYPES, StasisState

logger = logging.getLogger(__name__)

_WAIT_FOR = ("originated", "delivered", "established")


def _unavailable(exc: AsteriskCtiError, endpoint: str, channel_id: str) -> AsteriskCtiError:
    """``POST /channels`` answered 500 "Allocation failed": Asterisk 22 could not create the
    channel (``ast_dial_prerun`` failed: an unknown PJSIP endpoint, or one with no registered
    contact). That is a call that failed with CHANUNAVAIL, not a server fault."""
    if (isinstance(exc, ServerError) and exc.status == 500
            and exc.message.strip().lower() == "allocation failed"):
        return CallFailedError(
            f"call to {endpoint} failed: CHANUNAVAIL (Asterisk could not create the channel: "
            "unknown endpoint, or not registered)",
            dialstatus="CHANUNAVAIL", channel_id=channel_id)
    return exc


def _raise_unavailable(exc: AsteriskCtiError, endpoint: str, channel_id: str) -> None:
    err = _unavailable(exc, endpoint, channel_id)
    if err is not exc:
        raise err from exc


def _check_wait_for(wait_for: str) -> None:
    if wait_for not in _WAIT_FOR:
        raise ValueError(f"wait_for must be one of {', '.join(_WAIT_FOR)}")


def _check_text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string")
    return value


class _KeepTypes:
    """A raw listener that asks the processor for call control's event types; it is routed
    nothing (:func:`~asterisk_cti.pipeline.delivery.keep_types_only`)."""

    def on_event(self, event: Event) -> None:
        """Lane thread; never called."""


class ControlBase:
    """The state and helpers of :class:`~asterisk_cti.control.calls.CallControl` (see there).

    :param client: the :class:`~asterisk_cti.CtiClient` (or anything with ``config``, ``rest``,
        ``waiters``, ``model``, ``add_raw_listener`` and ``set_held``).
    :param options: dialling and switch options (see :class:`ControlOptions`).
    """

    def __init__(self, client: ControlHost, options: Optional[ControlOptions] = None) -> None:
        self._client = client
        self._options = options or ControlOptions()
        self._lock = threading.Lock()
        self._state = StasisState()
        self._engine = StasisEngine(client, self._state, self._get_options, self._model_held)
        self._ari = self._engine.ari
        # The engine's tap feeds the state and queues the engine's actions, on the processor
        # thread before any wait sees the event; it stays installed for the client's life.
        client.waiters.tap(self._engine.tap, ari_only=True)
        # The engine acts on its own thread (StasisEngine.tap queues it); this listener
        # only makes the processor keep the engine's event types, and takes nothing on the
        # lanes.
        self._handle = client.add_raw_listener(_KeepTypes(), ENGINE_EVENT_TYPES,
                                              keep_types_only)
        self._pool: Optional[OperationPool] = None

    # -- non-blocking -------------------------------------------------------------------------

    def _operation_pool(self) -> OperationPool:
        """The one pool of :meth:`CallControl.nonblocking` (created on first use)."""
        with self._lock:
            if self._pool is None:
                self._pool = OperationPool(self._options.operation_workers)
            return self._pool

    def stop_operations(self, timeout: Optional[float]) -> bool:
        """End the operation threads of :meth:`CallControl.nonblocking`: queued operations
        fail with :class:`~asterisk_cti.errors.ClientStoppedError`, running ones are waited
        for (at most ``timeout`` seconds; ``None``: not at all). Called twice by the client's
        ``stop()``: without waiting at its start (nothing queued starts any more), then
        waiting at its end. The threads start again on the next submission. Any thread.

        :returns: True when no operation thread is left.
        """
        with self._lock:
            pool = self._pool
        return True if pool is None else pool.shutdown(timeout)

    def adopt_calls(self) -> Tuple[str, ...]:
        """Take over the calls an earlier process of this application left in its bridges
        (a restarted server, a standby that took over): their bridges become this call
        control's again, so that when one party hangs up the other is hung up and the bridge
        destroyed, as for calls bridged here. A call one of whose parties left meanwhile is
        ended now. Call it once the client is started. Blocking (two ``GET /bridges`` and
        the clean-up); any thread.

        :returns: the adopted bridge ids.
        :raises AsteriskCtiError: the listing failed.
        """
        return tuple(self._engine.adopt_bridges())

    def wait_engine_idle(self, timeout: float) -> bool:
        """Block until the switch acted on every event it was given so far (any thread; used
        by :meth:`CtiClient.wait_idle`).

        :returns: False on timeout.
        """
        return self._engine.wait_idle(timeout)

    # -- configuration ------------------------------------------------------------------------

    @property
    def options(self) -> ControlOptions:
        """The current :class:`ControlOptions`."""
        with self._lock:
            return self._options

    def configure(self, options: Optional[ControlOptions] = None, **changes: Any) -> ControlOptions:
        """Replace the options, or change some fields (``configure(on_failure="continue")``).

        Any thread; takes effect for the next call the switch or an operation dials.

        :returns: the new options.
        """
        with self._lock:
            base = options or self._options
            self._options = replace(base, **changes) if changes else base
            return self._options

    def _get_options(self) -> ControlOptions:
        with self._lock:
            return self._options

    def _model_held(self, channel_id: str, held: bool) -> None:
        # The model is the processor thread's: the client's hook runs set_held there (through
        # the ring) and delivers the held/retrieved events.
        try:
            self._client.set_held(channel_id, held)
        except Exception:
            logger.exception("the call model refused set_held(%s, %s)", channel_id, held)

    # -- helpers ------------------------------------------------------------------------------

    @property
    def _app(self) -> str:
        return self._client.config.app

    def _timeout(self, timeout: Optional[float]) -> float:
        if timeout is None:
            return float(self._client.config.request_timeout)
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        return float(timeout)

    def _expect(self, predicate: Any) -> Waiter:
        """Wait for an ARI event matching ``predicate``. The waiters are also offered the
        call model's CTI events; call control's predicates read ARI fields, so those are
        filtered out here, once, rather than in every predicate."""
        return self._client.waiters.expect(
            lambda item: isinstance(item, Event) and bool(predicate(item)))

    def _send(self, send: Callable[[], Any], until: Optional[Predicate] = None,
              creates: Optional[Tuple[str, str]] = None) -> Optional[Waiter]:
        """The one register-wait / send / cancel step: register a wait for an ARI event
        matching ``until`` (when given) *before* the request, send it, and cancel the wait
        when the request fails.

        :param creates: ``(endpoint, channel_id)`` for a request that creates a channel: a
            500 "Allocation failed" then raises :class:`CallFailedError` (CHANUNAVAIL).
        :returns: the wait to block on (None without ``until``).
        """
        waiter = self._expect(until) if until is not None else None
        try:
            send()
        except AsteriskCtiError as exc:
            if waiter is not None:
                waiter.cancel()
            if creates is not None:
                _raise_unavailable(exc, *creates)
            raise
        return waiter

    def _channel_of(self, target: Target) -> str:
        return channel_id_of(target)

    def _require_stasis(self, channel_id: str, method: str, *path: str) -> None:
        if self._state.known_outside(channel_id):
            other = self._state.other_app(channel_id, self._app)
            where = (f"in another application '{other}'" if other
                     else f"outside application '{self._app}'")
            raise NotInStasisError(
                method, ari_path("channels", channel_id, *path), 409,
                f"Channel not in Stasis application (the SDK saw channel {channel_id} {where}; "
                "no request was sent)", other_app=other)

    def _handle_for(self, call_id: str, holder: str, bridge_id: Optional[str]) -> ControlledCall:
        _, peers = self._state.bridge_members(holder)
        return ControlledCall(
            call_id=call_id, channel_id=holder, peer_channel_id=peers[0] if peers else None,
            bridge_id=bridge_id, controlled=True, channel_ids=tuple(channel_ids([holder, *peers])))

    def _call_id_of(self, target: Target, channel_id: str) -> str:
        if isinstance(target, ControlledCall):
            return target.call_id
        bid = self._state.bridge_members(channel_id)[0]
        owner = self._state.call_of_bridge(bid)
        if owner is not None:
            return owner
        value = getattr(target, "call_id", None)
        return value if isinstance(value, str) and value else channel_id

    def _await(self, waiter: Waiter, outcome: DialOutcome, timeout: float, what: str,
               cleanup: Sequence[str] = ()) -> Any:
        try:
            event = waiter.wait(timeout, what)
        except CtiTimeoutError:
            for channel_id in cleanup:
                self._engine.hangup(channel_id)
            for channel_id in cleanup:
                self._state.take_plan(channel_id)
            raise
        if outcome.failed is not None:
            raise outcome.failed
        return event

    # -- introspection --------------------------------------------------------------------------

    def in_stasis(self, channel_id: str) -> bool:
        """True when the channel is in the SDK's application (StasisStart seen, no StasisEnd
        since), so every operation works on it. Any thread; does not block."""
        return self._state.is_in_stasis(channel_id)

    def actions(self, connection: Connection) -> Actions:
        """What a phone bar may offer for ``connection`` (a call-model snapshot, say
        ``line.active_connection``): the operations that can be done given its state and
        whether its channel is in the SDK's application, and for the others why not (for an
        observed call: what to change in the dialplan). The rule is
        :func:`~asterisk_cti.control.actions.actions_for`.

        Any thread; does not block, sends nothing.
        """
        if not isinstance(connection, Connection):
            raise TypeError("expected a call-model Connection (line.active_connection)")
        cid = connection.connection_id
        bridge, peers = self._state.bridge_members(cid)
        return actions_for(
            connection, app=self._app, in_stasis=self._state.is_in_stasis(cid),
            channel_state=self._state.state_of(cid), bridged=bridge is not None and bool(peers),
            known_outside=self._state.known_outside(cid),
            dialling=self._state.is_dialling(cid),
            other_app=self._state.other_app(cid, self._app))

    def close(self) -> None:
        """Stop the switch (remove the raw listener). Calls in progress keep running in
        Asterisk. Any thread."""
        remove = getattr(self._handle, "remove", None)
        if remove is not None:
            remove()

    def __repr__(self) -> str:
        in_stasis, bridges, legs = self._state.counts()
        return (f"CallControl(app={self._app!r}, in_stasis={in_stasis}, bridges={bridges}, "
                f"legs={legs})")


