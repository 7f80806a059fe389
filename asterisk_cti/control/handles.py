"""The handles call control gives back: :class:`ControlledCall` and :class:`Consultation`
(immutable; pass them back to any operation), and what an operation accepts as a target.

Threads: immutable values; any thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple, Union

__all__ = ["Consultation", "ControlledCall", "Target"]


@dataclass(frozen=True)
class ControlledCall:
    """A handle on a call, returned by :meth:`CallControl.originate` and by the transfer and
    conference operations. Immutable; pass it back to any operation.

    :ivar call_id: the call's id (the first channel's id, which is also the model's call id:
        the SDK originates the second leg with that channel as ``originator``).
    :ivar channel_id: the channel of the party that controls the call (the agent).
    :ivar peer_channel_id: the other party's channel, once known.
    :ivar bridge_id: the SDK's mixing bridge, for a controlled call.
    :ivar controlled: True when the call runs through the SDK's application (full control);
        False for an observed call (dialplan originate): only hangup works on it.
    :ivar channel_ids: every channel of the call the SDK knows of.
    """

    call_id: str
    channel_id: str
    peer_channel_id: Optional[str] = None
    bridge_id: Optional[str] = None
    controlled: bool = True
    channel_ids: Tuple[str, ...] = ()


@dataclass(frozen=True)
class Consultation:
    """An attended transfer in progress, returned by :meth:`CallControl.consult`.

    :ivar consult_id: the id of the consultation (the destination's channel id).
    :ivar call: the original call (held meanwhile).
    :ivar channel_id: the consulting agent's channel.
    :ivar peer_channel_id: the destination's channel.
    :ivar bridge_id: the consultation bridge (agent and destination).
    """

    consult_id: str
    call: ControlledCall
    channel_id: str
    peer_channel_id: str
    bridge_id: str


Target = Union[ControlledCall, str, Any]
