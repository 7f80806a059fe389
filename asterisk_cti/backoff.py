"""The one retry policy: how long to wait before attempt *n* of something that failed.

Exponential from ``minimum``, capped at ``maximum``, moved by up to ``±jitter`` of itself.
Every retry of the SDK picks its delays here: the websocket reconnect and the
``ApplicationReplaced`` re-check (:mod:`asterisk_cti.pipeline.reactor`), the REST retries of
idempotent requests (:mod:`asterisk_cti.ari.rest`) and the resynchronisation retry
(:mod:`asterisk_cti.pipeline.sync`). Immutable, so any thread may use one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Backoff:
    """A retry delay policy.

    :param minimum: delay before the first retry, seconds.
    :param maximum: cap of the delay, seconds (before jitter).
    :param jitter: random fraction (0..1) added to or removed from each delay; the result
        never exceeds ``maximum * (1 + jitter)``.
    """

    minimum: float
    maximum: float
    jitter: float = 0.0

    def delay(self, attempt: int, rng: Optional[random.Random] = None) -> float:
        """Seconds to wait before retry ``attempt`` (1-based): ``minimum * 2**(attempt-1)``
        capped at ``maximum``, then jittered with ``rng`` (any thread)."""
        base = float(min(self.maximum, self.minimum * (2.0 ** min(max(attempt, 1) - 1, 32))))
        if self.jitter:
            base *= 1.0 + (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.0, min(base, self.maximum * (1.0 + self.jitter)))


#: Pauses between the attempts of an idempotent REST request (0.2 s, 0.4 s, ... up to 1 s;
#: the request's deadline bounds them all).
REST_RETRY = Backoff(0.2, 1.0)
#: Waits between the attempts of a failed resynchronisation (1 s doubling up to 30 s).
RESYNC_RETRY = Backoff(1.0, 30.0)
