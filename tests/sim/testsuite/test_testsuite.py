"""Asterisk's own ARI tests (our translation, :mod:`.cases`) against the embedded simulator.

Each test runs on a fresh simulator, as the testsuite runs each test on a fresh Asterisk.
"""

from __future__ import annotations

from typing import Iterator

import pytest

from asterisk_cti.sim import AriSimulator

from .cases import CASES
from .runner import AriTest, Runner


@pytest.fixture
def sim() -> Iterator[AriSimulator]:
    with AriSimulator(speed=10) as s:
        for ext in ("1000", "1002", "1006"):
            s.phone(ext).auto_answer = 0.1
        yield s


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_ari_testsuite(sim: AriSimulator, case: AriTest) -> None:
    outcome = Runner(sim.url, sim.username, sim.password).run(case)
    assert outcome.passed, "\n".join(outcome.errors)
