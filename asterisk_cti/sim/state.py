"""The simulated PBX's state: its objects, its lock, its clock, and its tunables.

:class:`PbxState` is the bottom of the stack of classes that make :class:`~.pbx.Pbx`, one
module per concern, each building on the ones below it: :mod:`.emit` (the events and who gets
them), :mod:`.lifecycle` (channels, bridges, talk detection), :mod:`.dialplan` (the dialplan and
``Dial()``), :mod:`.local` (Local channel pairs), :mod:`.features` (phone hold, DTMF features,
transfers), :mod:`.ari_ops` (what ARI requests do) and :mod:`.pbx` (hangups, which touch all of
them). The three methods a lower layer calls on a higher one are declared here as abstract.

Threads: see :mod:`.pbx`. Everything here runs with :attr:`PbxState.lock` held, except
:meth:`PbxState.scaled`.
"""

from __future__ import annotations

import itertools
import threading
from abc import ABC, abstractmethod
from typing import Callable, Dict, Iterable, Sequence, Tuple

from .objects import LAB_CHANNELVARS, App, Bridge, Channel, Endpoint, ari_timestamp
from .scheduler import Scheduler, TimerHandle


class AriError(Exception):
    """An ARI request failed: the HTTP status and Asterisk's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class PbxConfig:
    """Tunables of the simulated PBX (see :class:`~asterisk_cti.sim.AriSimulator`)."""

    def __init__(
        self,
        *,
        endpoints: Sequence[Tuple[str, str]] = (("1000", "Kai"), ("1002", "Ping"), ("1006", "Lee")),
        speed: float = 1.0,
        stasis_app: str = "cti-ctl",
        queue_extension: str = "2000",
        queue_name: str = "support",
        queue_members: Sequence[str] = ("1002", "1006"),
        dial_timeout: float = 15.0,
        channelvars: bool | Sequence[str] = False,
        queue_data_extension: str = "2004",
        queue_data: str = "account=4711&choice=billing",
        asterisk_id: str = "02:fc:00:00:00:01",
        ivr_extension: str = "5000",
        ivr_flow: str = "main",
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.endpoints = list(endpoints)
        self.speed = speed
        self.stasis_app = stasis_app
        self.queue_extension = queue_extension
        self.queue_name = queue_name
        self.queue_members = list(queue_members)
        self.dial_timeout = dial_timeout
        #: the ``channelvars`` names of ari.conf (``True``: the lab's, CHANNEL(linkedid) and
        #: CTI_DATA; ``False``: none)
        self.channelvars: Tuple[str, ...] = (
            LAB_CHANNELVARS if channelvars is True
            else () if channelvars is False else tuple(channelvars))
        #: the extension that sets call data then queues (the lab's
        #: ``Set(__CTI_DATA=...)`` + ``Queue(support)``), and the data it sets
        self.queue_data_extension = queue_data_extension
        self.queue_data = queue_data
        self.asterisk_id = asterisk_id
        #: ``ivr_extension`` answers, then enters ``Stasis(<stasis_app>,ivr,<ivr_flow>)``
        self.ivr_extension = ivr_extension
        self.ivr_flow = ivr_flow


class PhoneHooks:
    """What the PBX tells the simulated phones; :class:`~asterisk_cti.sim.phones.Phone` sets it."""

    def is_busy(self, resource: str, new: Channel) -> bool:  # pragma: no cover - overridden
        return False

    def incoming(self, resource: str, channel: Channel) -> None:  # pragma: no cover
        pass


class PbxState(ABC):
    """The PBX's objects under one re-entrant lock, the timer helpers, and the upward hooks."""

    def __init__(self, config: PbxConfig, scheduler: Scheduler) -> None:
        self.config = config
        self.lock = threading.RLock()
        self.scheduler = scheduler
        self.hooks: PhoneHooks = PhoneHooks()
        self.endpoints: Dict[str, Endpoint] = {}
        for resource, name in config.endpoints:
            ep = Endpoint("PJSIP", resource, name)
            self.endpoints[ep.id] = ep
        self.apps: Dict[str, App] = {}
        self.channels: Dict[str, Channel] = {}
        self.bridges: Dict[str, Bridge] = {}
        self.startup_time = ari_timestamp()
        self._pjsip_seq = itertools.count()
        self._local_seq = itertools.count()
        self._snoop_seq = itertools.count()
        self._chan_seq = itertools.count()
        self.device_states: Dict[str, str] = {}  # Stasis:<name> custom device states

    def scaled(self, seconds: float) -> float:
        """A simulated duration in real seconds, after the speed-up factor."""
        return seconds / self.config.speed

    def later(self, ch: Channel | None, seconds: float, fn: Callable[[], None]) -> TimerHandle:
        """Run ``fn`` under the lock after a simulated delay (dropped if ``ch`` is gone)."""

        def run() -> None:
            with self.lock:
                if ch is not None and ch.destroyed:
                    return
                fn()

        handle = self.scheduler.call_later(self.scaled(seconds), run)
        if ch is not None:
            ch.timers.append(handle)
        return handle

    def reset(self) -> None:
        """Forget everything (a restart): apps, channels, bridges; endpoints stay idle."""
        with self.lock:
            self.apps.clear()
            for ch in self.channels.values():
                ch.destroyed = True
            self.channels.clear()
            self.bridges.clear()
            for ep in self.endpoints.values():
                ep.channel_ids.clear()
                ep.device_state = "NOT_INUSE"
            self.startup_time = ari_timestamp()

    def add_endpoints(self, resources: Iterable[Tuple[str, str]]) -> None:
        """Create more PJSIP endpoints (load mode)."""
        with self.lock:
            for resource, name in resources:
                ep = Endpoint("PJSIP", resource, name)
                self.endpoints.setdefault(ep.id, ep)

    # ------------------------------------------------------------------ defined by higher layers
    @abstractmethod
    def hangup(self, ch: Channel, cause: int = 16, *, ari: bool = False) -> None:
        """Hang ``ch`` up (:meth:`.pbx.Pbx.hangup`)."""

    @abstractmethod
    def _after_leave(self, b: Bridge | None) -> None:
        """A party left ``b`` (:meth:`.pbx.Pbx._after_leave`)."""

    @abstractmethod
    def local_partner_hangup(self, p: Channel, cause: int) -> None:
        """One half of a Local pair hung up (:meth:`.local.LocalChannels.local_partner_hangup`)."""
