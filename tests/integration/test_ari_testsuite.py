"""Asterisk's own ARI tests (our translation, ``tests/sim/testsuite/cases.py``) on the lab.

The same cases run against the simulator in ``make test``
(``tests/sim/testsuite/test_testsuite.py``); here they run against the real Asterisk 22, so
that the simulator's agreement with Asterisk is measured. They need the lab's ``default``
context (``lab/templates/asterisk/extensions.conf``, the same extensions as the simulator's
test dialplan) and phone 1000 answering by itself (two cases originate to ``PJSIP/1000``).
"""

from __future__ import annotations

from typing import Dict, Iterator

import pytest

from tests.sim.testsuite.cases import CASES
from tests.sim.testsuite.runner import AriTest, Runner

from .lab import AriConfig, Phone


@pytest.fixture
def answering(phones: Dict[str, Phone]) -> Iterator[Dict[str, Phone]]:
    """Idle phones, 1000 answering calls by itself (the ``phones`` fixture resets it)."""
    phones["1000"].set_auto_answer(True)
    yield phones


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_ari_testsuite_on_asterisk(
    ari_config: AriConfig, answering: Dict[str, Phone], case: AriTest
) -> None:
    outcome = Runner(ari_config.url, ari_config.user, ari_config.password).run(case)
    assert outcome.passed, "\n".join(outcome.errors)
