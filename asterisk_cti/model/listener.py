"""The listener interface of the call model: CSTA-named callbacks taking one CallEvent."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .types import CallEvent, Line


@dataclass(frozen=True)
class LineSnapshotEvent:
    """The state of one monitored line, sent to a call listener once when it starts
    receiving (see :meth:`CallListener.on_line_snapshot`). Immutable; any thread.

    :ivar line: the line's snapshot (its registration and connections) at that moment; the
        line's events that follow continue from it.
    :ivar reason: ``"listener_added"`` (the listener was added while connected) or
        ``"connected"`` (it was added earlier; sent after the first resynchronisation).
    :ivar timestamp: when it was taken (epoch seconds).
    """

    line: Line
    reason: str
    timestamp: float = field(default_factory=time.time)


class CallListener:
    """Base class for CTI listeners: override the methods you need; the others do nothing.

    For every :class:`~asterisk_cti.model.CallEvent` the dispatcher calls
    :meth:`on_call_event` first, then the method named ``on_<kind>``. All methods run on a
    dispatcher lane thread; events of one line arrive in order; do not block for long.
    """

    def on_line_snapshot(self, event: LineSnapshotEvent) -> None:
        """The current state of one monitored line (``event.line``), once per line when the
        listener starts receiving: at once when it was added while the client is
        connected, otherwise after the first resynchronisation that follows. Events of that
        line delivered afterwards continue from this snapshot (none is delivered twice or
        lost in between). :meth:`on_call_event` is not called for it.

        Runs on the line's dispatcher lane thread (or through the listener's ``call_soon``),
        before the line's later events.
        """

    def on_call_event(self, event: CallEvent) -> None:
        """Every CTI event, before its specific method.

        Runs on a dispatcher lane thread; events of one line arrive in order; do not block for
        long.
        """

    def on_service_initiated(self, event: CallEvent) -> None:
        """This client's click-to-dial started at the line: the agent's own phone rings
        (state initiated, direction outgoing; ``called`` is the destination). Not a
        screen-pop: the agent is placing the call.

        Runs on a dispatcher lane thread; events of one line arrive in order; do not block for
        long.
        """

    def on_originated(self, event: CallEvent) -> None:
        """The monitored line started an outgoing call (state initiated).

        Runs on a dispatcher lane thread; events of one line arrive in order; do not block for
        long.
        """

    def on_ringback(self, event: CallEvent) -> None:
        """The far end of the line's outgoing call rings (phone state ringback).

        Runs on a dispatcher lane thread; events of one line arrive in order; do not block for
        long.
        """

    def on_delivered(self, event: CallEvent) -> None:
        """A call rings at the monitored line; ``calling`` is the original caller.

        Runs on a dispatcher lane thread; events of one line arrive in order; do not block for
        long.
        """

    def on_established(self, event: CallEvent) -> None:
        """The connection was answered (state connected).

        Runs on a dispatcher lane thread; events of one line arrive in order; do not block for
        long.
        """

    def on_held(self, event: CallEvent) -> None:
        """The line put the call on hold.

        Runs on a dispatcher lane thread; events of one line arrive in order; do not block for
        long.
        """

    def on_retrieved(self, event: CallEvent) -> None:
        """The line took the call off hold.

        Runs on a dispatcher lane thread; events of one line arrive in order; do not block for
        long.
        """

    def on_queued(self, event: CallEvent) -> None:
        """The line's caller waits in an Asterisk queue (state ``queued``; ``queue`` names
        it; phone state ``ringback``: the caller hears ringing or music on hold). An agent
        answering gives ``established`` naming the agent; the caller hanging up first gives
        ``connection_cleared``.

        Runs on a dispatcher lane thread; events of one line arrive in order; do not block for
        long.
        """

    def on_transferred(self, event: CallEvent) -> None:
        """The call was transferred; ``connected`` is the new party, ``transferring`` who did it.

        Runs on a dispatcher lane thread; events of one line arrive in order; do not block for
        long.
        """

    def on_conferenced(self, event: CallEvent) -> None:
        """Three or more parties are now in the call; ``conference`` lists them.

        Runs on a dispatcher lane thread; events of one line arrive in order; do not block for
        long.
        """

    def on_diverted(self, event: CallEvent) -> None:
        """A call ringing at the line was forwarded elsewhere.

        Runs on a dispatcher lane thread; events of one line arrive in order; do not block for
        long.
        """

    def on_failed(self, event: CallEvent) -> None:
        """An outgoing call failed (busy, no answer, ...); see ``cause`` and ``dialstatus``.

        Runs on a dispatcher lane thread; events of one line arrive in order; do not block for
        long.
        """

    def on_connection_cleared(self, event: CallEvent) -> None:
        """The connection is gone (``reason`` ``transferred`` for a transferer).

        Runs on a dispatcher lane thread; events of one line arrive in order; do not block for
        long.
        """

    def on_call_cleared(self, event: CallEvent) -> None:
        """The line has no connection left in this call.

        Runs on a dispatcher lane thread; events of one line arrive in order; do not block for
        long.
        """

    def on_talking_started(self, event: CallEvent) -> None:
        """Talk detection saw speech start on the line's channel.

        Runs on a dispatcher lane thread; events of one line arrive in order; do not block for
        long.
        """

    def on_talking_stopped(self, event: CallEvent) -> None:
        """Talk detection saw speech stop on the line's channel.

        Runs on a dispatcher lane thread; events of one line arrive in order; do not block for
        long.
        """

    def on_party_changed(self, event: CallEvent) -> None:
        """The connected party changed (``connected``).

        Runs on a dispatcher lane thread; events of one line arrive in order; do not block for
        long.
        """

    def on_call_id_changed(self, event: CallEvent) -> None:
        """Two calls turned out to be one (Asterisk joined them, or a guess was corrected):
        this connection's events carry ``call_id`` from now on, instead of
        ``previous_call_id``. A record keyed by call id merges the two.

        Runs on a dispatcher lane thread; events of one line arrive in order; do not block for
        long.
        """

    def on_line_state_changed(self, event: CallEvent) -> None:
        """The line's registration changed (``line_state``, ``previous_line_state``).

        Runs on a dispatcher lane thread; events of one line arrive in order; do not block for
        long.
        """
