"""Publishing the immutable snapshots readers see (copy-on-write per line, call, connection).

:class:`Snapshots` turns the records that a mutating call marked dirty into :class:`Line`,
:class:`Call` and :class:`Connection` snapshots and swaps them in under a short lock
(:meth:`_publish`), and serves them (:attr:`lines`, :meth:`line`, :meth:`find_call`,
:meth:`connection`). Publishing runs on the processor thread; the accessors on any thread.
"""

from __future__ import annotations

from typing import (
    Dict,
    Optional,
    Tuple,
)

from .records import (
    HOLD,
    ChannelRecord,
)
from .state import ModelState
from .transitions import phone_state_of
from .types import (
    Call,
    Connection,
    Line,
)

#: Builds a snapshot named tuple from the full tuple of its fields (no keyword matching).
_make = tuple.__new__


class Snapshots(ModelState):
    """Builds and serves the snapshots; readers never see a half-applied event."""

    @property
    def lines(self) -> Tuple[Line, ...]:
        """Snapshots of every line. Any thread."""
        with self._lock:
            return tuple(self._line_snaps.values())

    def line(self, name: str) -> Optional[Line]:
        """The snapshot of line ``name`` (``PJSIP/1000``), or ``None``. Any thread."""
        return self._line_snaps.get(name)

    def find_call(self, call_id: str) -> Optional[Call]:
        """The snapshot of a call with a connection at a monitored line, or ``None``. Any thread."""
        return self._call_snaps.get(call_id)

    def connection(self, channel_id: str) -> Optional[Connection]:
        """The snapshot of the connection of channel ``channel_id``, or ``None``. Any thread."""
        return self._conn_snaps.get(channel_id)

    def _snapshot_of(self, ch: ChannelRecord) -> Connection:
        state = ch.state
        call = ch.call
        return _make(Connection, (
            ch.id, ch.line or "", call.id, ch.name, state, phone_state_of(state, ch.ringback),
            ch.direction, ch.calling, ch.called, ch.connected, state is HOLD, ch.talking,
            ch.cause, ch.dialstatus, ch.start, ch.answer, ch.end, call.data, ch.queue,
        ))

    def _publish(self) -> None:
        """Rebuild the snapshots of what changed and publish them atomically."""
        chans = self._chans
        snapshot_of = self._snapshot_of
        conn_up: Dict[str, Optional[Connection]] = {}
        for cid, ch in self._dirty_chans.items():
            live = ch.line is not None and not ch.cleared and chans.get(cid) is ch
            conn_up[cid] = snapshot_of(ch) if live else None
        up_get = conn_up.get
        old_get = self._conn_snaps.get

        def snap_of(ch: ChannelRecord) -> Connection:
            snap = up_get(ch.id)
            if snap is None:
                snap = old_get(ch.id)
            return snap if snap is not None else snapshot_of(ch)

        line_up: Dict[str, Optional[Line]] = {}
        lines = self._lines
        for name in self._dirty_lines:
            rec = lines.get(name)
            if rec is None:
                line_up[name] = None
            else:
                line_up[name] = _make(Line, (
                    name, rec.registration,
                    tuple([snap_of(ch) for ch in rec.connections.values()]),
                ))
        call_up: Dict[str, Optional[Call]] = {}
        calls = self._calls
        for call_id in self._dirty_calls:
            call = calls.get(call_id)
            if call is None or call.id != call_id:
                call_up[call_id] = None
                continue
            connections = tuple([
                snap_of(ch)
                for ch in call.chans.values()
                if ch.line is not None and not ch.cleared
            ])
            call_up[call_id] = (
                _make(Call, (call_id, connections, call.data)) if connections else None
            )
        with self._lock:
            for cid, conn in conn_up.items():
                if conn is None:
                    self._conn_snaps.pop(cid, None)
                else:
                    self._conn_snaps[cid] = conn
            for name, line in line_up.items():
                if line is None:
                    self._line_snaps.pop(name, None)
                else:
                    self._line_snaps[name] = line
            for call_id, snap in call_up.items():
                if snap is None:
                    self._call_snaps.pop(call_id, None)
                else:
                    self._call_snaps[call_id] = snap
        self._dirty_chans.clear()
        self._dirty_lines.clear()
        self._dirty_calls.clear()
