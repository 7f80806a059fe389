"""The call model's state: every mutable attribute, and the per-call scratch primitives.

:class:`ModelState` is the bottom of the :class:`~asterisk_cti.model.core.CallModel` mixin
stack. It owns the tracked records (lines, channels, calls), the correlation indexes, the
pending call-control hints, the per-call output buffer and dirty sets, and the published
snapshots; and the few primitives every layer uses: start a call (:meth:`_begin`), the event
time (:meth:`_now`), monitoring (:meth:`_is_monitored`), mark for republishing
(:meth:`_dirty`), count an event that does not fit (:meth:`_mark_unfit`).

Thread: the processor thread mutates all of it; only ``_hints`` is written by any thread
(under ``_hint_lock``) and the snapshot dicts are read by any thread (see
:mod:`~asterisk_cti.model.snapshots`). No threads, no I/O.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import (
    Any,
    Callable,
    Dict,
    List,
    Mapping,
    Optional,
    Set,
    Tuple,
)

from .records import (
    NO_RAW,
    CallRecord,
    ChannelRecord,
    LineRecord,
    PendingMerge,
    epoch_of,
)
from .types import (
    Call,
    CallEvent,
    Connection,
    ControlHint,
    Line,
)

_LOG = logging.getLogger(__name__)


class ModelState:
    """Every mutable attribute of the call model, and the primitives all mixins use."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        #: When True, :meth:`apply` leaves publishing the snapshots to :meth:`flush`: the
        #: processor flushes once per batch, before it delivers the batch's events, instead
        #: of rebuilding snapshots after every event.
        self.defer_publish = False
        self._endpoints: Set[str] = set()
        self._technologies: Set[str] = set()
        self._lines: Dict[str, LineRecord] = {}
        self._chans: Dict[str, ChannelRecord] = {}
        self._calls: Dict[str, CallRecord] = {}
        self._by_number: Dict[str, Dict[str, ChannelRecord]] = {}
        self._local_id_of: Dict[str, str] = {}
        self._local_name_of: Dict[str, str] = {}
        self._merging: Dict[str, PendingMerge] = {}
        self._destroyed: OrderedDict[str, None] = OrderedDict()
        self._repair: Set[str] = set()
        # Call control's hints (channel id -> hint), written by any thread under _hint_lock.
        self._hint_lock = threading.Lock()
        self._hints: Dict[str, ControlHint] = {}
        self._seq = 0
        self._ts_cache: Dict[str, float] = {}
        #: How many stimuli did not fit the transition table since creation.
        self.unfit_count = 0
        # Per-call (apply/resync/...) scratch state.
        self._out: List[CallEvent] = []
        self._raw: Tuple[Mapping[str, Any], ...] = NO_RAW
        # The raw event whose ``timestamp`` _now reads (None: use the clock), and its time
        # once read; the last timestamp text and its value (bursts share one).
        self._ts_src: Optional[Mapping[str, Any]] = None
        self._ts: Optional[float] = None
        self._last_ts_text = ""
        self._last_ts = 0.0
        self._dirty_chans: Dict[str, ChannelRecord] = {}
        self._dirty_lines: Dict[str, None] = {}
        self._dirty_calls: Set[str] = set()
        # Published snapshots.
        self._lock = threading.Lock()
        self._line_snaps: Dict[str, Line] = {}
        self._conn_snaps: Dict[str, Connection] = {}
        self._call_snaps: Dict[str, Call] = {}

    def _is_monitored(self, endpoint: str) -> bool:
        if endpoint in self._endpoints:
            return True
        if self._technologies:
            return endpoint.partition("/")[0] in self._technologies
        return False

    def _begin(self) -> None:
        """Start a mutating call that is not an ARI event (REST data, a hint, a hold): fresh
        output, no raw event, the clock's time."""
        self._out = []
        self._raw = NO_RAW
        self._ts_src = None
        self._ts = None

    def _now(self) -> float:
        ts = self._ts
        if ts is None:
            src = self._ts_src
            text = src.get("timestamp") if src is not None else None
            if type(text) is str and text:
                if text == self._last_ts_text:
                    ts = self._last_ts
                else:
                    ts = epoch_of(text, self._ts_cache)
                    if ts is not None:
                        self._last_ts_text, self._last_ts = text, ts
            if ts is None:
                ts = float(self._clock())
            self._ts = ts
        return ts

    def _dirty(self, ch: ChannelRecord) -> None:
        if ch.line is not None:
            self._dirty_chans[ch.id] = ch
            self._dirty_lines[ch.line] = None
            self._dirty_calls.add(ch.call.id)

    def _mark_unfit(self, cid: str, what: object) -> None:
        self.unfit_count += 1
        if cid not in self._repair:
            self._repair.add(cid)
            _LOG.debug("call model: %s does not fit (%s); channel needs repair", cid, what)
