"""Call control's vocabulary: its options (:class:`ControlOptions`), what it needs from the
client (:class:`ControlHost`), and the small pure helpers every part of it uses (ids, parties,
endpoints).

Threads: pure data and pure functions; any thread.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterable, List, Mapping, Optional, Protocol

from ..ari.resources import Ari
from ..ari.rest import AriRest
from ..config import CtiConfig
from ..model.types import ControlHint, Party
from ..pipeline.waiters import Waiters
from .state import Leg

__all__ = [
    "ControlHost",
    "EngineOps",
    "ControlOptions",
    "channel_ids",
    "default_endpoint_for",
    "new_id",
    "party_of",
]


def new_id(prefix: str) -> str:
    """A fresh id for a channel, bridge or playback the SDK creates (``cti-c-<uuid4>``)."""
    return f"{prefix}-{uuid.uuid4()}"


def party_of(identity: Optional[str], endpoint: str = "") -> Party:
    """The party of a caller id (``"Kai" <1000>``); without one, the endpoint's resource
    (``PJSIP/1000`` -> ``1000``) as the number, so identities never depend on the dynamic
    configuration route."""
    if identity:
        text = identity.strip()
        if "<" in text and text.endswith(">"):
            name, _, number = text[:-1].partition("<")
            return Party(number.strip(), name.strip().strip('"').strip())
        return Party(text, "")
    resource = endpoint.partition("/")[2] if "/" in endpoint else endpoint
    return Party(resource.split("@", 1)[0], "") if resource else Party("", "")


def default_endpoint_for(destination: str) -> str:
    """Map a destination to a dial endpoint: ``1002`` -> ``PJSIP/1002``; a destination that
    already names a technology (``SIP/x``, ``Local/1002@from-internal``) is kept as is."""
    return destination if "/" in destination else f"PJSIP/{destination}"


class ControlHost(Protocol):
    """What call control needs from the client (:class:`~asterisk_cti.CtiClient` has it)."""

    @property
    def config(self) -> CtiConfig: ...

    @property
    def rest(self) -> AriRest: ...

    @property
    def waiters(self) -> Waiters: ...

    @property
    def model(self) -> Any: ...

    def add_raw_listener(self, listener: Any, event_types: Iterable[str],
                         wants: Optional[Callable[[str], bool]] = None) -> Any: ...

    def set_held(self, channel_id: str, held: bool, timeout: float = 5.0) -> None: ...

    def set_call_data(self, channel_id: str, value: str, timeout: float = 5.0) -> None: ...


class EngineOps(Protocol):
    """What the engine offers the parts that act for it (the switch, the transfers): short
    best-effort requests and the steps of legs and bridges
    (:class:`~asterisk_cti.control.engine.StasisEngine` has them)."""

    @property
    def ari(self) -> Ari: ...

    def options(self) -> ControlOptions: ...

    def quiet(self, what: str, fn: Callable[[], Any]) -> bool: ...

    def hangup(self, channel_id: str, reason: str = "normal") -> bool: ...

    def add_to_bridge(self, bridge_id: str, channels: Iterable[str]) -> None: ...

    def remove_from_bridge(self, bridge_id: str, channel_id: str) -> bool: ...

    def destroy_bridge(self, bridge_id: str) -> None: ...

    def protect(self, bridge_id: str, delta: int) -> None: ...

    def teardown_if_over(self, bridge_id: str) -> None: ...

    def play(self, target: str, target_id: str, media: str) -> str: ...

    def stop_playback(self, playback_id: Optional[str]) -> None: ...

    def hint(self, channel_id: str, hint: ControlHint) -> None: ...

    def identity(self, endpoint: str) -> Optional[str]: ...

    def party(self, endpoint: str) -> Party: ...

    def unhold(self, holder: str) -> None: ...

    def dial(self, leg: Leg, caller_id: Optional[str] = None,
             variables: Optional[Mapping[str, str]] = None,
             timeout: Optional[float] = None) -> None: ...

    def leg_answered(self, channel_id: str) -> None: ...

    def leg_failed(self, channel_id: str, dialstatus: str, cause: int) -> None: ...

    def cancel_legs_of(self, peer_id: str) -> None: ...


@dataclass(frozen=True)
class ControlOptions:
    """How call control dials and how the switch behaves.

    :param endpoint_for: maps a destination (``1002``) to the endpoint to dial
        (``PJSIP/1002``). Called on lane and caller threads; must be fast and thread-safe.
    :param switch: handle calls the dialplan sends into the application with
        ``Stasis(<app>,<switch_arg>[,<destination>])``.
    :param switch_arg: the first ``Stasis()`` argument that asks for the switch.
    :param dial_timeout: seconds the switch lets the destination ring.
    :param on_failure: what the switch does with the caller when the destination fails:
        ``"hangup"`` (with the matching cause: busy, no answer, congestion) or ``"continue"``
        (set ``DIALSTATUS`` on the caller and continue it at the next dialplan priority).
    :param moh_class: the music-on-hold class for :meth:`CallControl.hold`; ``None`` uses
        ``POST /channels/{id}/hold`` (Asterisk plays its default class), a name uses
        ``POST /channels/{id}/moh?mohClass=<name>``.
    :param ringback: the media played to a party that waits for a leg to answer (agent of a
        click-to-dial, transferee of a blind transfer, consulting agent).
    :param phone_transfers: let the phones transfer the calls the SDK controls: the SDK sets
        ``PJSIP_TRANSFER_HANDLING(ari-only)`` on the PJSIP channels it controls, so Asterisk
        hands a phone's REFER to the application (``ChannelTransfer``), and carries the
        transfer out in its bridges.
    :param operation_workers: how many operations of ``client.control.nonblocking()`` run at
        once (the threads ``asterisk-cti-control-op-1`` .. ``-N``); read when the first one is
        submitted.
    """

    endpoint_for: Callable[[str], str] = default_endpoint_for
    switch: bool = True
    switch_arg: str = "dial"
    dial_timeout: float = 30.0
    on_failure: str = "hangup"
    moh_class: Optional[str] = None
    ringback: str = "tone:ring"
    phone_transfers: bool = True
    operation_workers: int = 4

    def __post_init__(self) -> None:
        if self.on_failure not in ("hangup", "continue"):
            raise ValueError("on_failure must be 'hangup' or 'continue'")
        if self.dial_timeout <= 0:
            raise ValueError("dial_timeout must be positive")
        if not isinstance(self.operation_workers, int) or not 1 <= self.operation_workers <= 64:
            raise ValueError("operation_workers must be an integer from 1 to 64")


def channel_ids(items: Iterable[Optional[str]]) -> List[str]:
    """The non-empty ids of ``items``, without duplicates, in order."""
    out: List[str] = []
    for item in items:
        if item and item not in out:
            out.append(item)
    return out
