"""The handles call control gives back: :class:`ControlledCall` and :class:`Consultation`
(immutable; pass them back to any operation), and what an operation accepts as a target.

Threads: immutable values; any thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple, Union

__all__ = ["Consultation", "ControlledCall", "Target", "channel_id_of"]


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


def channel_id_of(target: Target, what: str = "channel id") -> str:
    """The channel (connection) id an operation's target names: a :class:`ControlledCall`'s
    or :class:`Consultation`'s channel, a non-empty id string, or a model object with a
    ``channel_id``/``connection_id`` (a Connection, a CallEvent) or ``connections`` (a Call).
    Pure; any thread.

    :param what: how an invalid string is named in the error.
    :raises ValueError: an empty string, or ``.``/``..`` (requests un-escapes ``%2E``, so such
        an id would climb the URL path).
    :raises TypeError: anything else.
    """
    if isinstance(target, (ControlledCall, Consultation)):
        return target.channel_id
    if isinstance(target, str):
        if not target.strip():
            raise ValueError(f"{what} must be a non-empty string")
        if target in (".", ".."):
            raise ValueError(f"{target!r} is not a {what}")
        return target
    for attr in ("channel_id", "connection_id"):
        value = getattr(target, attr, None)
        if isinstance(value, str) and value:
            return value
    connections = getattr(target, "connections", None)
    if connections:
        value = getattr(connections[0], "connection_id", None)
        if isinstance(value, str) and value:
            return value
    raise TypeError(
        "expected a ControlledCall, a channel id, or a model Connection/Call/CallEvent")
