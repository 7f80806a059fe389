"""Fixtures and helpers the hardening tests share."""

from __future__ import annotations

import pytest

from asterisk_cti.control.calls import ControlOptions
from tests.control.conftest import control, pbx  # noqa: F401  (the call-control tests' own)


@pytest.fixture
def control_options() -> ControlOptions:
    """The hardening tests dial with a 2 s timeout (the call-control tests with 5 s)."""
    return ControlOptions(dial_timeout=2)
