"""What the pipeline needs from its neighbours, as small protocols: the call model (fed on
the processor thread) and the reactor (told which frames to keep, asked to reconnect).

The processor depends on these, never on the concrete classes, so that it can be driven by
fakes and the import graph stays one way (``reactor`` does not know the processor either).
"""

from __future__ import annotations

from typing import Any, FrozenSet, Iterable, Mapping, Optional, Protocol, Sequence, Set, Tuple

from ..events.catalogue import Event


class CallModelProtocol(Protocol):
    """What the processor needs from the call model (see :mod:`asterisk_cti.model`).

    Every method runs on the processor thread. The CTI events returned carry a ``line``
    (their lane key).
    """

    defer_publish: bool

    def set_monitored(self, sources: Iterable[str]) -> None: ...
    def apply(self, event: Event) -> Sequence[Any]: ...
    def resync(self, channels: Sequence[Mapping[str, Any]], bridges: Sequence[Mapping[str, Any]],
               endpoints: Sequence[Mapping[str, Any]]) -> Tuple[Sequence[Any], Any]: ...
    @property
    def needs_repair(self) -> Set[str]: ...
    def repair(self, channel_id: str, channel: Optional[Mapping[str, Any]]) -> Sequence[Any]: ...
    def flush(self) -> None: ...


class ReactorLink(Protocol):
    """What the processor needs from the reactor (any thread)."""

    def set_wanted(self, wanted: Optional[FrozenSet[bytes]]) -> None:
        """The ARI event types to keep (``None``: all)."""

    def reconnect(self, reason: str) -> None:
        """Drop the connection; it comes back with backoff."""

    def give_up(self, error: BaseException) -> None:
        """Stop connecting for good: retrying cannot help (``error`` says why)."""
