"""A call logger keyed by call id gets exactly one correct record per call (``calling`` = who
placed it) for a basic call, a blind and an attended transfer and a conference, made on the
phones and by the SDK, on the real Asterisk 22 lab and on the simulator.

The logger is ``tests/control/sdk_scenarios.CallRecords``: one record per ``call_id``; every
line's events must agree on the caller (a transfer target may name the transferee).
"""

from __future__ import annotations

from typing import Dict

import pytest

from asterisk_cti import CtiClient, CtiConfig
from asterisk_cti.sim import AriSimulator

from ..control.sdk_scenarios import (
    PHONE_SCENARIOS,
    SDK_SCENARIOS,
    CallRecords,
    Recorder,
    Scenario,
    SimDrive,
    run,
)
from .conftest import LAB_LINES, CtiFactory, LabCti
from .lab import Lab, Phone
from .test_cti_control import LabDrive

CASES = [
    *(("phones", n) for n in sorted(PHONE_SCENARIOS)),
    *(("sdk", n) for n in sorted(SDK_SCENARIOS)),
]


def _scenario(driver: str, name: str) -> Scenario:
    return (PHONE_SCENARIOS if driver == "phones" else SDK_SCENARIOS)[name]


@pytest.fixture
def control(cti_factory: CtiFactory, lab: Lab, phones: Dict[str, Phone]) -> LabCti:
    """A client of the lab's own application (the ``7XXX`` switch), phones on auto-answer."""
    for phone in phones.values():
        phone.set_auto_answer(True)
    return cti_factory(app=lab.config.app)


@pytest.mark.parametrize("driver,name", CASES)
def test_one_record_per_call_on_the_lab(control: LabCti, phones: Dict[str, Phone],
                                        driver: str, name: str) -> None:
    records, rec = CallRecords(), Recorder()
    control.add_listener(rec)
    control.add_listener(records)
    run(_scenario(driver, name), control, rec, LabDrive(phones))
    got = records.records()
    assert list(got.values()) == ["1000"], (got, rec.sequences())


@pytest.mark.parametrize("driver,name", CASES)
def test_one_record_per_call_on_the_simulator(driver: str, name: str) -> None:
    records, rec = CallRecords(), Recorder()
    with AriSimulator(speed=20) as sim:
        for ext in ("1000", "1002", "1006"):
            sim.phone(ext).auto_answer = True
        config = CtiConfig(url=sim.url, username=sim.username, password=sim.password,
                           app="cti-ctl")
        with CtiClient(config) as cti:
            cti.add_listener(rec)
            cti.add_listener(records)
            cti.monitor(*LAB_LINES)
            run(_scenario(driver, name), cti, rec, SimDrive(sim))
    got = records.records()
    assert list(got.values()) == ["1000"], (got, rec.sequences())
