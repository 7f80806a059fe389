"""The Dial event: caller and peer correlation, ringback, answer, failure, divert, REFER.

:class:`Dialing` handles ``Dial`` (begin, RINGING, final DIALSTATUS, forward): it relates the
caller and the peer into one call, tells the caller's line ``originated`` / ``ringback`` /
``established`` / ``failed``, the peer's ``diverted``, and detects a blind transfer by REFER
(a called channel that starts dialling once its first peer is gone). Processor thread only;
no I/O.
"""

from __future__ import annotations

from typing import (
    Any,
    Mapping,
    Optional,
)

from .hints import Hints
from .records import (
    CONNECTED,
    DIAL_FAILURES,
    FINAL_DIALSTATUS,
    HOLD,
    INCOMING,
    NO_CALL,
    NULL,
    QUEUED,
    ChannelRecord,
    as_dict,
    local_sibling,
    queue_of,
)
from .registry import handles
from .transitions import S
from .types import (
    NOBODY,
    Party,
    Reason,
)


class Dialing(Hints):
    """Handles ``Dial``: correlation, ringback, answer, failure, divert and REFER."""

    @handles("Dial")
    def _on_dial(self, raw: Mapping[str, Any]) -> None:
        peer_data = as_dict(raw.get("peer"))
        caller_data = as_dict(raw.get("caller"))
        peer = self._lookup(peer_data)
        caller = self._lookup(caller_data)
        if peer is None and caller is None:
            self._unknown(peer_data)
            self._unknown(caller_data)
            return
        if peer is None and peer_data is not None and caller is not None:
            peer_id = peer_data.get("id")
            if type(peer_id) is str:
                peer = self._adopt(peer_id, peer_data, caller.call)
        if caller is None and caller_data is not None and peer is not None:
            cid = caller_data.get("id")
            if type(cid) is str:
                caller = self._adopt(cid, caller_data, peer.call)
        if caller is not None and peer is not None and caller.call is not peer.call:
            self._relate(peer, caller.call)
        if peer is not None:
            peer.call_is_guess = False
        status = str(raw.get("dialstatus") or "")
        if not status:
            if caller is not None:
                self._queue_dials(caller, caller_data, peer)
            self._dial_begins(caller, peer, peer_data, raw)
        elif status == "RINGING":
            if peer is not None and peer.line is not None and not peer.cleared:
                self._ring(peer)
            if caller is not None and caller.refer_wait is not None:
                self._refer_target_reached(caller)
            if (caller is not None and caller.line is not None and not caller.cleared
                    and not caller.ringback):
                caller.ringback = True
                self._fire(caller, S.RINGBACK)
        elif status in FINAL_DIALSTATUS:
            if (status == "ANSWER" and caller is not None and not caller.connected
                    and peer_data is not None
                    and not str(peer_data.get("name") or "").startswith("Local/")):
                # the far end is known now (a Queue answers the caller with the agent's
                # channel): established names it, and its connected line follows silently
                caller.connected = Party.from_raw(peer_data.get("caller"))
            self._dial_ends(caller, peer, status)
        forward = raw.get("forward")
        if forward and peer is not None and peer.line is not None and not peer.cleared:
            peer.reason = Reason.DIVERTED
            peer.dialstatus = status
            self._end(peer, S.DIVERTED)
            forwarded_data = as_dict(raw.get("forwarded"))
            if forwarded_data is not None and peer.call is not NO_CALL:
                forwarded = self._chans.get(str(forwarded_data.get("id")))
                if forwarded is not None:
                    self._relate(forwarded, peer.call)

    def _dial_begins(
        self,
        caller: Optional[ChannelRecord],
        peer: Optional[ChannelRecord],
        peer_data: Optional[Mapping[str, Any]],
        raw: Mapping[str, Any],
    ) -> None:
        if peer is not None:
            peer.peer = caller.id if caller is not None else peer.peer
        if caller is None:
            return
        prev_peer = caller.peer
        if peer is not None:
            caller.peer = peer.id
        caller.open_dials += 1
        if caller.line is None or caller.cleared:
            return
        target = Party.from_raw(peer_data.get("caller")) if peer_data is not None else NOBODY
        if caller.awaits_transfer_dial:
            caller.awaits_transfer_dial = False
            return
        prev_alive = prev_peer is not None and prev_peer in self._chans and not (
            self._chans[prev_peer].cleared
        )
        if (
            caller.direction is INCOMING
            and caller.state in (CONNECTED, HOLD)
            and prev_peer is not None
            and prev_peer != caller.peer
            and not prev_alive
        ):
            # A called channel now dials: its caller transferred it (blind transfer, REFER).
            # Told when the target rings (or answers): until then nothing is transferred.
            caller.refer_wait = (caller.connected, target)
            return
        if caller.state is CONNECTED or caller.state is NULL or not caller.called:
            dialled = self._dial_target(raw, target)
            if dialled:
                caller.called = dialled
        self._fire(caller, S.DIAL_OUT)

    def _queue_dials(self, caller: ChannelRecord, caller_data: Optional[Mapping[str, Any]],
                     peer: Optional[ChannelRecord]) -> None:
        """A Dial by a caller waiting in a queue (app_queue rings an agent): the caller is
        queued (if its ChannelDialplan was missed), the agent's leg came from the queue."""
        queue = queue_of(caller_data) if caller_data is not None else ""
        if not queue and (caller.state is QUEUED or caller.line is None):
            queue = caller.queue
        if not queue:
            return
        if caller.line is not None and not caller.cleared and caller.state is not QUEUED:
            self._enter_queue(caller, queue)
        if peer is not None:
            peer.queue = queue
            sibling_name = local_sibling(peer.name) if peer.name.startswith("Local/") else None
            sibling_id = self._local_id_of.get(sibling_name) if sibling_name else None
            sibling = self._chans.get(sibling_id) if sibling_id is not None else None
            if sibling is not None:
                sibling.queue = queue  # its half that dials the agent's phone

    def _refer_target_reached(self, ch: ChannelRecord) -> None:
        """The target of a REFER blind transfer rings (or answered): the transferee is told."""
        wait, ch.refer_wait = ch.refer_wait, None
        if wait is None or ch.line is None or ch.cleared:
            return
        transferring, target = wait
        if target:
            ch.connected = target
        self._fire(ch, S.TRANSFERRED, transferring=transferring or None,
                   transferred=ch.own or None, transfer_target=target or None)

    @staticmethod
    def _dial_target(raw: Mapping[str, Any], peer_caller: Party) -> Party:
        dialstring = str(raw.get("dialstring") or "")
        number = dialstring.rsplit("/", 1)[-1].split("@", 1)[0]
        if not number:
            return peer_caller
        return Party(number, peer_caller.name if peer_caller.number == number else "")

    def _dial_ends(
        self, caller: Optional[ChannelRecord], peer: Optional[ChannelRecord], status: str
    ) -> None:
        failure = DIAL_FAILURES.get(status)
        if peer is not None:
            peer.dialstatus = status
            if failure is not None:
                peer.reason = failure[1]
            elif status == "CANCEL":
                peer.reason = Reason.CANCELLED
            if (status == "ANSWER" and peer.line is not None and not peer.cleared
                    and not self._agent_waits(peer)
                    and (peer.hint is None or peer.hint.role != "leg")):
                self._fire(peer, S.ANSWERED)
        if caller is None:
            return
        if caller.open_dials > 0:
            caller.open_dials -= 1
        if caller.refer_wait is not None:
            if status == "ANSWER":
                self._refer_target_reached(caller)
            else:
                caller.refer_wait = None  # the target failed: no transfer happened
        if caller.line is None or caller.cleared:
            return
        if status == "ANSWER":
            caller.dialstatus = status
            self._fire(caller, S.ANSWERED)
        elif failure is not None and caller.open_dials == 0 and caller.state is not QUEUED:
            # (a queue rings its agents again: a caller waiting in it has not failed)
            caller.dialstatus = status
            caller.cause = peer.cause if peer is not None and peer.cause else failure[0]
            caller.reason = failure[1]
            self._fire(caller, S.DIAL_FAILED)
