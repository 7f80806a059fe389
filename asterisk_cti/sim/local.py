"""Local channels: the ``;1``/``;2`` pairs an attended transfer or an ARI originate creates.

Runs with the PBX lock held.
"""

from __future__ import annotations

import time
from typing import Tuple

from .dialplan import TEST_CONTEXT, TEST_DIALPLAN, Dialplan
from .objects import Channel


class LocalChannels(Dialplan):
    """Creating a Local pair, running its dialplan, and one half following the other."""

    def _local_gone(self, other: Channel) -> None:
        """One half of a Local channel pair went away; the other half follows."""
        if other.destroyed:
            return
        if other.dial_forks:
            self.caller_cancel(other)
            return
        if other.dial_peer is not None and other.local_partner is not None:
            other.local_partner = None
            self.hangup(other, 16)
            return
        b = other.bridge
        other.local_partner = None
        if b is not None:
            self.leave_bridge(other)
        self._destroy(other, 16)
        self._after_leave(b)

    def new_local_pair(
        self,
        exten: str,
        context: str,
        channel_id: str | None = None,
        other_id: str | None = None,
        linkedid: str | None = None,
    ) -> Tuple[Channel, Channel]:
        """A ``Local/exten@context`` pair as ARI originate makes it (``;2`` gets ``id;2``
        when only the ``;1`` id is given, and ``other_id`` counts only with a ``;1`` id, as
        in Asterisk)."""
        n = next(self._local_seq)
        base = f"Local/{exten}@{context}-{n:08x}"
        l1 = self._new_channel(
            "local", base + ";1", "Down", ("", ""), channel_id=channel_id, linkedid=linkedid
        )
        # Asterisk uses the ;2 id only with a ;1 id (else both are generated)
        oid = (other_id or f"{channel_id};2") if channel_id else None
        l2 = self._new_channel(
            "local", base + ";2", "Ring", ("", ""), channel_id=oid, linkedid=l1.linkedid
        )
        l1.local_partner, l2.local_partner = l2, l1
        l1.dp_local = l2.dp_local = True
        l1.context = l2.context = context
        l1.exten = l2.exten = exten
        return l1, l2

    def local_dial(self, l1: Channel) -> None:
        """Dial the ``;1`` half of an originated pair: its ``;2`` half runs the dialplan."""
        l2 = l1.local_partner
        l1.dial_started = time.monotonic()
        if l2 is not None:
            self.copy_variables(l1, l2)
        self.dial_event(None, l1, "", l1.name.split("/", 1)[1].rsplit("-", 1)[0])
        if l2 is None:
            return
        if l2.context != TEST_CONTEXT or l2.exten not in TEST_DIALPLAN:
            self.dial_event(None, l1, "CHANUNAVAIL")
            self.dp_hangup(l2, 1)
            return
        self.dp_run(l2, l2.context, l2.exten, 1)

    def local_partner_hangup(self, p: Channel, cause: int) -> None:
        """The other half of a hung-up Local pair follows, with the same cause."""
        if p.destroyed:
            return
        p.local_partner = None
        self.hangup_request(p, cause)
        b = p.bridge
        if b is not None:
            self.leave_bridge(p)
        if p.in_stasis:
            self.varset(p, "STASISSTATUS", "SUCCESS")
            self.stasis_event("StasisEnd", p)
        self._destroy(p, cause)
        self._after_leave(b)
