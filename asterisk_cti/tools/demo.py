"""``asterisk-cti demo``: the embedded simulator plays scenarios through a real client, shown
by the live :class:`~asterisk_cti.tools.Monitor` with a screen-pop line per ringing call.

It uses the public API only (:mod:`asterisk_cti`, :mod:`asterisk_cti.sim`).

Threads: :func:`run_demo` runs on the caller's thread and blocks until the scenarios are
played; the monitor's and screen-pop's threads (see their modules) are stopped before it
returns.
"""

from __future__ import annotations

from typing import Sequence, TextIO

from asterisk_cti import ConfigurationError, CtiClient, CtiConfig

from .monitor import Monitor
from .screenpop import MessageAction, ScreenPop
from .session import scenario_functions, settle

__all__ = ["DEMO_POP", "DEMO_SCENARIOS", "run_demo"]

#: The scenarios ``demo`` plays by default, in order.
DEMO_SCENARIOS = ("basic", "hold", "attended_transfer", "conference", "blind_transfer",
                  "busy", "no_answer", "queue")

#: The demo's screen-pop line.
DEMO_POP = "SCREEN-POP {line}: caller {calling.number} {calling.name}"


def run_demo(out: TextIO, names: Sequence[str], speed: float, mode: str) -> int:
    """Play the scenarios ``names`` on a fresh simulator at ``speed`` and show them on
    ``out`` (``mode`` of :class:`~asterisk_cti.tools.Monitor`); returns the exit code."""
    from asterisk_cti.sim import AriSimulator

    functions = scenario_functions(names)
    if speed <= 0:
        raise ConfigurationError("--speed", "must be positive")
    with AriSimulator(speed=speed) as sim:
        config = CtiConfig(url=sim.url, username=sim.username, password=sim.password,
                           app="asterisk-cti-demo")
        client = CtiClient(config)
        monitor = Monitor(lambda: client.lines, out, mode=mode,
                          title=f"asterisk-cti demo: simulated Asterisk at {sim.url}")
        pop = ScreenPop([MessageAction(DEMO_POP, monitor.note)], ["PJSIP"])
        client.add_listener(monitor)
        client.add_listener(pop)
        client.monitor("PJSIP")
        monitor.start()
        monitor.note(f"simulated Asterisk at {sim.url}; monitoring every PJSIP line")
        try:
            with client:
                for name, function in zip(names, functions):
                    monitor.note(f"=== scenario: {name}")
                    function(sim)
                    settle(client)
        finally:
            pop.close()
            monitor.close()
    out.write(f"\n{len(names)} scenarios played, {monitor.events} CTI events, "
              f"{pop.pops} screen-pops\n")
    out.flush()
    return 0
