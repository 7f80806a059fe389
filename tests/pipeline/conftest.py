"""The fake Asterisk the pipeline tests drive."""

from __future__ import annotations

import pytest

from asterisk_cti.testing import FakeAsterisk


@pytest.fixture
def fake() -> FakeAsterisk:
    return FakeAsterisk(endpoints=["PJSIP/1000", "PJSIP/1002", "PJSIP/1006"])
