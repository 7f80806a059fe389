"""What call control waits for: predicates over ARI events, registered with
:meth:`~asterisk_cti.pipeline.waiters.Waiters.expect` before the request that should cause
the event is sent.

Threads: the predicates run on the processor thread; build them on any thread.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

from ..causes import FAILED_DIALSTATUS, dialstatus_for_cause
from ..errors import CallFailedError
from ..events.catalogue import Event
from ..pipeline.waiters import Predicate

__all__ = ["DialOutcome", "dial_by", "entered", "event_of", "ringing_or_up", "state_up"]


class DialOutcome:
    """A waiter predicate for a dial: success by ``success(event)``, failure when a watched
    channel is destroyed (with the last failed Dial status seen for it)."""

    def __init__(self, success: Any, watched: Sequence[str]) -> None:
        self._success = success
        self._watched = set(watched)
        self._status: Dict[str, str] = {}
        self.failed: Optional[CallFailedError] = None

    def __call__(self, item: Any) -> bool:
        if not isinstance(item, Event):
            return False
        if self._success(item):
            return True
        etype = item.type
        raw = item.raw
        if etype == "Dial":
            peer = raw.get("peer")
            caller = raw.get("caller")
            status = str(raw.get("dialstatus") or "")
            for party in (peer, caller):
                pid = party.get("id") if isinstance(party, dict) else None
                if pid in self._watched and status in FAILED_DIALSTATUS:
                    self._status[pid] = status
        elif etype == "ChannelDestroyed":
            chan = raw.get("channel")
            cid = chan.get("id") if isinstance(chan, dict) else None
            if cid in self._watched:
                cause = int(raw.get("cause") or 0)
                status = self._status.get(cid) or dialstatus_for_cause(cause)
                self.failed = CallFailedError(
                    f"call to {cid} failed: {status} (cause {cause}"
                    f" {raw.get('cause_txt') or ''})".replace(" )", ")"),
                    dialstatus=status, cause=cause, channel_id=cid)
                return True
        return False


def event_of(etype: str, channel_id: str) -> Predicate:
    def pred(e: Event) -> bool:
        ch = e.raw.get("channel")
        return e.type == etype and isinstance(ch, dict) and ch.get("id") == channel_id
    return pred


def entered(channel_id: str, bridge_id: str) -> Predicate:
    def pred(e: Event) -> bool:
        if e.type != "ChannelEnteredBridge":
            return False
        ch, br = e.raw.get("channel"), e.raw.get("bridge")
        return (isinstance(ch, dict) and ch.get("id") == channel_id
                and isinstance(br, dict) and br.get("id") == bridge_id)
    return pred


def ringing_or_up(channel_id: str) -> Predicate:
    def pred(e: Event) -> bool:
        raw = e.raw
        if e.type == "Dial":
            peer = raw.get("peer")
            return (isinstance(peer, dict) and peer.get("id") == channel_id
                    and raw.get("dialstatus") in ("RINGING", "ANSWER", "PROGRESS"))
        ch = raw.get("channel")
        if not isinstance(ch, dict) or ch.get("id") != channel_id:
            return False
        if e.type == "ChannelStateChange":
            return ch.get("state") in ("Ringing", "Up")
        return e.type == "StasisStart"
    return pred


def dial_by(caller_id: str, statuses: Tuple[str, ...]) -> Predicate:
    def pred(e: Event) -> bool:
        if e.type != "Dial":
            return False
        caller = e.raw.get("caller")
        return (isinstance(caller, dict) and caller.get("id") == caller_id
                and e.raw.get("dialstatus") in statuses)
    return pred



def state_up(channel_id: str) -> Predicate:
    """ChannelStateChange to ``Up`` of the channel."""
    def pred(e: Any) -> bool:
        if not isinstance(e, Event) or e.type != "ChannelStateChange":
            return False
        ch = e.raw.get("channel")
        return isinstance(ch, dict) and ch.get("id") == channel_id and ch.get("state") == "Up"
    return pred
