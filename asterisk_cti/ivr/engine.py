"""The IVR engine: calls the dialplan sends into the SDK's application with
``Stasis(<app>,ivr,<flow>[,args...])`` each run a flow on a thread of their own.

How it hooks into the client (:class:`~asterisk_cti.CtiClient`, the one that owns the
application):

- a **tap** on the processor thread (:meth:`~asterisk_cti.pipeline.waiters.Waiters.tap`) notes
  a channel as an IVR channel on its ``StasisStart`` whose first argument is ``ivr`` (one set
  insertion), and forgets it on its ``StasisEnd`` (or ``ChannelDestroyed``);
- a **raw listener** (:meth:`~asterisk_cti.CtiClient.add_raw_listener`) for
  ``StasisStart``, ``StasisEnd``, ``ChannelHangupRequest``, ``ChannelDestroyed``,
  ``ChannelDtmfReceived``, ``PlaybackStarted`` and ``PlaybackFinished``: adding these types
  makes the websocket, the transport and Asterisk's event filter let them through; its
  ``wants`` filter (a set look-up on the processor thread) drops the DTMF and playback
  events of every other channel before they reach a lane. Playback events are routed by the
  channel of their ``target_uri``, so a call's DTMF and playback events arrive in order on
  the channel's lane, where the listener only queues them for the call's thread;
- call control's switch leaves these calls alone: it only takes ``StasisStart`` whose first
  argument is :attr:`~asterisk_cti.control.ControlOptions.switch_arg` (``dial``).

Limits: at most ``max_calls`` calls at once (one thread each); a call beyond is not taken: it
goes back to the dialplan at the priority after ``Stasis()`` with the channel variable
``IVR_STATUS=BUSY`` (so the dialplan can send it to a queue directly or play "all lines
busy"). A flow name the engine does not know: ``IVR_STATUS=NOFLOW``, likewise. A flow that
returns without sending the call on: ``IVR_STATUS=DONE``; one that raises: ``IVR_STATUS=ERROR``
(logged). When the engine stops, calls in progress go back to the dialplan with
``IVR_STATUS=STOPPED``.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Deque, Dict, List, Mapping, Optional, Set, Tuple, Union

from ..client import CtiClient, ListenerHandle
from ..errors import AsteriskCtiError, NotFoundError
from ..events.catalogue import Event, channel_ids_of
from .call import STOP, EngineStoppedError, IvrCall
from .definition import IvrDefinition, QueueTarget
from .errors import CallerHangupError, CallReleasedError
from .flow import DefinitionFlow, IvrFlow

logger = logging.getLogger(__name__)

__all__ = ["EVENT_TYPES", "FLOW_ARG", "STATUS_VARIABLE", "CallRecord", "IvrEngine"]

#: The first ``Stasis()`` argument that sends a call to the IVR.
FLOW_ARG = "ivr"
#: The event types the engine needs.
EVENT_TYPES = frozenset({
    "StasisStart", "StasisEnd", "ChannelHangupRequest", "ChannelDestroyed",
    "ChannelDtmfReceived", "PlaybackStarted", "PlaybackFinished",
})
#: The channel variable the engine sets on calls it gives back to the dialplan.
STATUS_VARIABLE = "IVR_STATUS"

FlowLike = Union[IvrFlow, IvrDefinition]
#: How many ended calls :attr:`IvrEngine.history` keeps.
HISTORY = 100


@dataclass(frozen=True)
class CallRecord:
    """One call the engine ran: its channel, caller, flow, the steps it went through
    (:attr:`IvrCall.path`) and how the flow ended: ``"done"``, ``"caller hung up"``,
    ``"stopped"`` or ``"error"``."""

    channel_id: str
    caller_number: str
    flow: str
    path: Tuple[str, ...]
    outcome: str


def _as_flow(flow: FlowLike) -> IvrFlow:
    if isinstance(flow, IvrDefinition):
        return DefinitionFlow(flow)
    if isinstance(flow, IvrFlow):
        return flow
    raise TypeError("a flow is an IvrFlow or an IvrDefinition")


class IvrEngine:
    """Runs IVR flows for the calls the dialplan sends into the client's application.

    :param client: a :class:`~asterisk_cti.CtiClient` (started or not); the engine uses its
        ``control`` (created if needed) and registers a raw listener on :meth:`start`.
    :param flows: one flow (an :class:`IvrFlow` or an :class:`IvrDefinition`) for every flow
        name, or a mapping flow name -> flow (``Stasis(app,ivr,<name>)``).
    :param max_calls: calls handled at once (one thread each); beyond, see the module
        docstring.
    :param queues: where queues are reached (name -> :class:`QueueTarget`), for flows that
        call :meth:`IvrCall.route_to_queue`; a definition's own ``queues`` come first.
    :param max_prompt_seconds: the longest one :meth:`IvrCall.play` waits.
    :param on_call_end: called with the :class:`CallRecord` of every call whose flow ended,
        on that call's thread, after the call was sent on or given back (keep it short; an
        exception it raises is logged).

    Thread safety: :meth:`start`, :meth:`stop` and the properties may be called from any
    thread; flows run on the calls' threads (``asterisk-cti-ivr-N``).
    """

    _ids = itertools.count(1)

    def __init__(self, client: CtiClient, flows: Union[FlowLike, Mapping[str, FlowLike]], *,
                 max_calls: int = 50, queues: Optional[Mapping[str, QueueTarget]] = None,
                 max_prompt_seconds: float = 300.0,
                 on_call_end: Optional[Callable[[CallRecord], None]] = None) -> None:
        if max_calls < 1:
            raise ValueError("max_calls must be at least 1")
        if max_prompt_seconds <= 0:
            raise ValueError("max_prompt_seconds must be positive")
        self._client = client
        if isinstance(flows, Mapping):
            if not flows:
                raise ValueError("flows is empty")
            self._flows: Dict[str, IvrFlow] = {str(k): _as_flow(v) for k, v in flows.items()}
            self._default: Optional[IvrFlow] = None
        else:
            self._flows = {}
            self._default = _as_flow(flows)
        self._max_calls = max_calls
        self._queues = dict(queues or {})
        self._max_prompt = max_prompt_seconds
        self._on_call_end = on_call_end
        self._lock = threading.Lock()
        self._channels: Set[str] = set()  # IVR channels (tap, processor thread; read by wants)
        self._calls: Dict[str, IvrCall] = {}  # the channel's current call
        self._threads: Dict[threading.Thread, IvrCall] = {}  # every flow still running
        self._running = False
        self._tapped = False
        self._handle: Optional[ListenerHandle] = None
        self._idle = threading.Condition(self._lock)
        self._history: Deque[CallRecord] = deque(maxlen=HISTORY)
        #: calls a flow ran for; calls given back to the dialplan at once (busy, no flow)
        self.calls_handled = 0
        self.calls_refused = 0

    def __repr__(self) -> str:
        return (f"IvrEngine(flows={sorted(self._flows) or ['*']}, active={self.active_calls}, "
                f"max_calls={self._max_calls})")

    # -- life cycle -------------------------------------------------------------------------------
    def start(self) -> IvrEngine:
        """Take IVR calls from now on (idempotent; any thread). Start the client as well (before
        or after) so that events arrive."""
        client = self._client
        with self._lock:
            if self._running:
                return self
            self._running = True
            tap = not self._tapped
            self._tapped = True
        _ = client.control  # the switch exists (and ignores 'ivr' calls)
        if tap:
            client.waiters.tap(self._tap)
        self._handle = client.add_raw_listener(self, EVENT_TYPES, self._wants)
        logger.info("IVR engine started (flows: %s, max_calls %d)",
                    ", ".join(sorted(self._flows)) or "any", self._max_calls)
        return self

    def stop(self, timeout: float = 5.0, *, detach: bool = True) -> bool:
        """Stop taking calls; calls in progress end their flow (their blocking operation raises
        :class:`EngineStoppedError`) and go back to the dialplan. Waits for their threads at
        most ``timeout`` seconds. Idempotent; any thread but a call's.

        :param detach: remove the engine's raw listener (the client then asks Asterisk for
            fewer event types); False keeps it, ignoring everything, for a client about to
            stop anyway (no filter update races the websocket's close).
        :returns: True when every call thread ended.
        """
        with self._lock:
            self._running = False
            handle, self._handle = self._handle, None
            if not detach:
                handle = None
            calls = list(self._threads.values())
            threads = list(self._threads)
        if handle is not None:
            handle.remove()
        for call in calls:
            call.feed(STOP)
        deadline = time.monotonic() + timeout
        for t in threads:
            if t is not threading.current_thread():
                t.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in threads if t.is_alive()]
        if alive:
            logger.warning("IVR engine: call threads still running after %ss: %s", timeout,
                           ", ".join(alive))
        return not alive

    def __enter__(self) -> IvrEngine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop` (any thread)."""
        return self._running

    @property
    def active_calls(self) -> int:
        """Calls whose flow is running now (any thread)."""
        with self._lock:
            return len(self._threads)

    @property
    def history(self) -> Tuple[CallRecord, ...]:
        """The last calls whose flow ended, oldest first (any thread)."""
        with self._lock:
            return tuple(self._history)

    def wait_idle(self, timeout: float) -> bool:
        """Block until no flow runs (any thread but a call's).

        :returns: False on timeout.
        """
        with self._idle:
            return self._idle.wait_for(lambda: not self._threads, timeout)

    # -- the processor thread -------------------------------------------------------------------
    def _tap(self, item: object) -> None:
        """Processor thread, every event: note IVR channels (never raises, never blocks)."""
        if not isinstance(item, Event):
            return
        etype = item.type
        if etype == "StasisStart":
            if not self._running:
                return
            args = item.raw.get("args")
            channel = item.raw.get("channel")
            if (isinstance(args, list) and args and args[0] == FLOW_ARG
                    and isinstance(channel, dict) and isinstance(channel.get("id"), str)):
                self._channels.add(channel["id"])
        elif etype == "StasisEnd" or etype == "ChannelDestroyed":
            # after the event was routed: the call's thread still gets this one
            channel = item.raw.get("channel")
            cid = channel.get("id") if isinstance(channel, dict) else None
            if cid in self._channels:
                self._channels.discard(cid)

    def _wants(self, channel_id: str) -> bool:
        """Processor thread: is this an IVR channel (one set look-up)."""
        return channel_id in self._channels

    # -- the lanes ------------------------------------------------------------------------------
    def on_event(self, event: Event) -> None:
        """The channel's lane thread: start a call on its ``StasisStart``, queue the other
        events for the call's thread. Never blocks for long (a refused call is two short
        requests)."""
        ids = channel_ids_of(event)
        if not ids:
            return
        cid = ids[0]
        if event.type == "StasisStart":
            args = event.raw.get("args")
            if isinstance(args, list) and args and args[0] == FLOW_ARG:
                self._begin(event, cid, [str(a) for a in args[1:]])
            return
        with self._lock:
            call = self._calls.get(cid)
        if call is not None:
            call.feed(event)

    def _begin(self, event: Event, cid: str, args: List[str]) -> None:
        flow_name = args[0] if args else ""
        flow = self._flows.get(flow_name, self._default)
        chan = event.channel
        with self._lock:
            current = self._calls.get(cid)
            # a second StasisStart of a call in its flow is a duplicate; one after the flow
            # sent the call on (to an extension that enters the IVR again) is a new call
            if not self._running or (current is not None and not current.released):
                return
            busy = len(self._threads) >= self._max_calls
            if flow is not None and not busy:
                queues = dict(self._queues)
                if isinstance(flow, DefinitionFlow):
                    queues.update(flow.definition.queues)
                call = IvrCall(
                    self._client.control,
                    cid, caller_number=chan.caller.number if chan else "",
                    caller_name=chan.caller.name if chan else "", flow=flow_name,
                    args=tuple(args[1:]),
                    language=flow.language or (chan.language if chan else ""),
                    queues=queues, max_prompt_seconds=self._max_prompt)
                thread = threading.Thread(
                    target=self._run, args=(call, flow), daemon=True,
                    name=f"asterisk-cti-ivr-{next(self._ids)}")
                self._calls[cid] = call
                self._threads[thread] = call
                self.calls_handled += 1
                thread.start()
                return
            self.calls_refused += 1
        status = "BUSY" if flow is not None else "NOFLOW"
        logger.warning("IVR: call %s (flow %r) not taken: %s", cid, flow_name, status)
        self._give_back(cid, status)

    def _give_back(self, cid: str, status: str) -> None:
        control = self._client.control
        try:
            control.continue_in_dialplan(cid, variables={STATUS_VARIABLE: status})
        except NotFoundError:
            pass
        except AsteriskCtiError as exc:
            logger.info("IVR: could not give call %s back to the dialplan: %s", cid, exc)

    # -- the call's thread ---------------------------------------------------------------------
    def _run(self, call: IvrCall, flow: IvrFlow) -> None:
        outcome = "done"
        try:
            flow.run(call)
        except CallerHangupError:
            outcome = "caller hung up"
        except EngineStoppedError:
            outcome = "stopped"
        except CallReleasedError:
            outcome = "error"
            logger.exception("IVR flow used call %s after sending it on", call.channel_id)
        except Exception:
            outcome = "error"
            logger.exception("IVR flow failed on call %s", call.channel_id)
        finally:
            self._end(call, outcome)

    def _end(self, call: IvrCall, outcome: str) -> None:
        try:
            call.settle()
            call.stop_playbacks()
            if not call.released and not call.gone:
                status = {"done": "DONE", "stopped": "STOPPED"}.get(outcome, "ERROR")
                call.path.append(f"dialplan ({STATUS_VARIABLE}={status})")
                self._give_back(call.channel_id, status)
        except Exception:
            logger.exception("IVR: cleaning up call %s failed", call.channel_id)
        finally:
            logger.info("IVR call %s from %s, flow %r: %s; %s", call.channel_id,
                        call.caller_number or "unknown", call.flow, " > ".join(call.path),
                        outcome)
            record = CallRecord(call.channel_id, call.caller_number, call.flow,
                                tuple(call.path), outcome)
            if self._on_call_end is not None:
                try:
                    self._on_call_end(record)
                except Exception:
                    logger.exception("IVR: on_call_end raised")
            with self._lock:
                self._history.append(record)
                if self._calls.get(call.channel_id) is call:
                    del self._calls[call.channel_id]
                self._threads.pop(threading.current_thread(), None)
                self._idle.notify_all()
