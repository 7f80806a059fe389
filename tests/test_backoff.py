"""The one retry policy (asterisk_cti.backoff) and the schedules built from it."""

from __future__ import annotations

import random

from asterisk_cti.backoff import REST_RETRY, RESYNC_RETRY, Backoff


def test_backoff_grows_exponentially_with_jitter_and_cap() -> None:
    rng = random.Random(1)
    assert Backoff(0.5, 30, 0).delay(1, rng) == 0.5
    assert Backoff(0.5, 30, 0).delay(4, rng) == 4.0
    assert Backoff(0.5, 30, 0).delay(50, rng) == 30
    delays = {round(Backoff(1, 30, 0.2).delay(3, rng), 3) for _ in range(20)}
    assert len(delays) > 5 and all(3.2 <= d <= 4.8 for d in delays)


def test_jitter_never_passes_the_jittered_cap() -> None:
    rng = random.Random(7)
    policy = Backoff(1, 10, 0.5)
    assert all(0.0 <= policy.delay(n, rng) <= 15.0 for n in range(1, 60))


def test_rest_and_resync_schedules_are_the_ones_they_always_were() -> None:
    # REST: 0.1 * 2**attempt capped at 1 s; resync: 2**(failures-1) capped at 30 s
    assert [REST_RETRY.delay(n) for n in (1, 2, 3, 4)] == [0.2, 0.4, 0.8, 1.0]
    assert [RESYNC_RETRY.delay(n) for n in (1, 2, 3, 5, 6, 9)] == [1, 2, 4, 16, 30, 30]
