"""Handlers of the transfer events Asterisk publishes: BridgeAttendedTransfer, BridgeBlindTransfer.

The transfer itself (who is cleared, who is told ``transferred``) is
:meth:`~asterisk_cti.model.connections.Connections._transfer`, shared with the transfers the
model infers and those call control makes. Processor thread only; no I/O.
"""

from __future__ import annotations

from typing import (
    Any,
    List,
    Mapping,
)

from .bridges import Bridges
from .records import (
    ChannelRecord,
    as_dict,
)
from .registry import handles
from .types import (
    NOBODY,
    Party,
)


class TransferHandlers(Bridges):
    """Handles BridgeAttendedTransfer and BridgeBlindTransfer."""

    @handles("BridgeAttendedTransfer")
    def _on_attended_transfer(self, raw: Mapping[str, Any]) -> None:
        if raw.get("result") != "Success":
            return
        first = self._lookup(as_dict(raw.get("transferer_first_leg")))
        second = self._lookup(as_dict(raw.get("transferer_second_leg")))
        transferee_data = as_dict(raw.get("transferee"))
        target_data = as_dict(raw.get("transfer_target"))
        transferee = self._lookup(transferee_data)
        target = self._lookup(target_data)
        known = [ch for ch in (first, second, transferee, target) if ch is not None]
        if not known:
            return
        call = known[0].call
        for other in known[1:]:
            if other.call is not call:
                call = self._merge(other.call, call)
        if raw.get("destination_type") == "threeway":
            # The transferer stays, with the transferee and the target: a conference of the
            # real parties (the target is often a Local channel: the party behind it counts).
            bridge_data = as_dict(raw.get("destination_threeway_bridge"))
            if bridge_data is not None:
                ids = [i for i in bridge_data.get("channels") or () if type(i) is str]
                self._bridge_members(ids, str(bridge_data.get("id") or ""), True)
            self._settle_transfer(raw)
            return
        legs: List[ChannelRecord] = []
        for leg in (first, second):
            if leg is not None and leg not in legs:
                legs.append(leg)
        transferee_party = (
            Party.from_raw(transferee_data.get("caller")) if transferee_data is not None else NOBODY
        )
        if transferee is not None and transferee.own:
            transferee_party = transferee.own
        target_party = (
            Party.from_raw(target_data.get("caller")) if target_data is not None else NOBODY
        )
        if not target_party and second is not None:
            target_party = second.connected
        self._transfer(legs, transferee, transferee_party, target_party, call)
        self._settle_transfer(raw)

    def _settle_transfer(self, raw: Mapping[str, Any]) -> None:
        """A BridgeAttendedTransfer explains the merge of the bridges it names."""
        if not self._merging:
            return
        for key in ("transferer_first_leg_bridge", "transferer_second_leg_bridge",
                    "destination_threeway_bridge"):
            bridge = as_dict(raw.get(key))
            if bridge is not None:
                self._settle_merge(str(bridge.get("id") or ""))
        dest = raw.get("destination_bridge")
        if type(dest) is str:
            self._settle_merge(dest)

    @handles("BridgeBlindTransfer")
    def _on_blind_transfer(self, raw: Mapping[str, Any]) -> None:
        if raw.get("result") != "Success":
            return
        transferer = self._lookup(as_dict(raw.get("channel")))
        transferee_data = as_dict(raw.get("transferee"))
        transferee = self._lookup(transferee_data)
        if transferer is None and transferee is None:
            return
        call = (transferer or transferee).call  # type: ignore[union-attr]
        exten = str(raw.get("exten") or "")
        transferee_party = transferee.own if transferee is not None and transferee.own else (
            Party.from_raw(transferee_data.get("caller")) if transferee_data is not None else NOBODY
        )
        self._transfer(
            [transferer] if transferer is not None else [], transferee, transferee_party,
            Party(exten, "") if exten else NOBODY, call, pending=True,
        )
