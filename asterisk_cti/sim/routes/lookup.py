"""What several routes share: finding a channel, checking an id, Asterisk's messages.

Runs on an HTTP handler thread with the PBX lock held.
"""

from __future__ import annotations

from typing import Dict

from ..objects import Channel
from ..pbx import AriError, Pbx

STASIS_ONLY = "Channel not in Stasis application"
INVALID_STATE = "Channel in invalid state"


def channel_of(pbx: Pbx, cid: str) -> Channel:
    ch = pbx.channels.get(cid)
    if ch is None:
        raise AriError(404, "Channel not found")
    return ch


def id_in_use(channels: Dict[str, Channel], cid: str) -> bool:
    """Asterisk 22 refuses a new channel id that starts an existing one, ignoring case
    (measured on the lab: ``abc`` and ``ABC-LONG`` conflict with ``abc-long``)."""
    low = cid.lower()
    return any(existing.lower().startswith(low) for existing in channels)
