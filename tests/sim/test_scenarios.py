"""The scripted scenarios and the load mode."""

from __future__ import annotations

from typing import Dict

from asterisk_cti.sim import AriSimulator, scenarios

from .conftest import Recorder


def test_scenarios_without_traces_run_to_the_end(
    sim: AriSimulator, recorders: Dict[str, Recorder]
) -> None:
    for name in ("conference", "queue", "stasis_control"):
        scenarios.SCENARIOS[name](sim)
    recorders["all"].settle()
    types = [e["type"] for e in recorders["all"].events]
    assert "BridgeAttendedTransfer" in types
    assert types.count("ChannelCreated") == types.count("ChannelDestroyed")


def test_load_mode_places_calls() -> None:
    with AriSimulator(speed=20) as sim:
        placed = scenarios.load(
            sim, calls_per_second=50, extensions=20, duration=0.4, talk_time=1.0
        )
        assert placed >= 10
        assert not sim.pbx.channels
