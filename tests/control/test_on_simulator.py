"""Call control through a real CtiClient (call model on) against the embedded simulator."""

from __future__ import annotations

import time
from typing import Iterator

import pytest

from asterisk_cti import CtiClient, CtiConfig
from asterisk_cti.model import PhoneState
from asterisk_cti.sim import AriSimulator


@pytest.fixture
def sim() -> Iterator[AriSimulator]:
    with AriSimulator(speed=20) as s:
        yield s


def test_click_to_dial_hold_retrieve_and_hangup_with_the_model_on(sim: AriSimulator) -> None:
    for ext in ("1000", "1002"):
        sim.phone(ext).auto_answer = True
    config = CtiConfig(url=sim.url, username=sim.username, password=sim.password, app="ctl")
    with CtiClient(config) as cti:
        cti.monitor("PJSIP/1000", "PJSIP/1002")
        call = cti.control.originate("PJSIP/1000", "1002", wait_for="established", timeout=10)
        assert call.controlled and call.bridge_id
        cti.control.hold(call)
        assert cti.wait_idle(5)
        line = cti.line("PJSIP/1000")
        assert line is not None and line.connections[0].phone_state is PhoneState.HELD
        cti.control.retrieve(call)
        assert cti.wait_idle(5)
        assert cti.line("PJSIP/1000").connections[0].phone_state is PhoneState.CONNECTED
        # CTI events are offered to the same waiters as ARI events: hangup must not trip
        # over them.
        cti.control.hangup(call, timeout=10)
        assert cti.wait_idle(5)
        assert not cti.line("PJSIP/1000").connections
        # the SDK owns the bridge: the far party is hung up with the agent
        deadline = time.monotonic() + 5
        while cti.line("PJSIP/1002").connections and time.monotonic() < deadline:
            cti.wait_idle(1)
        assert not cti.line("PJSIP/1002").connections
