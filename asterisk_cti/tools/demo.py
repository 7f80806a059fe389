"""``asterisk-cti demo``: the embedded simulator plays scenarios through a real client, shown
by the live :class:`~asterisk_cti.tools.Monitor` with a screen-pop line per ringing call.

The ``ivr_queue`` scenario goes through an IVR: an :class:`~asterisk_cti.ivr.IvrEngine` on the
demo's client runs the billing definition packaged with the SDK
(``asterisk_cti/ivr/examples/billing.json``, the same as ``examples/ivr/billing.json``); the
screen-pop of a call that carries call data shows it (:data:`DEMO_DATA_POP`).

It uses the public API only (:mod:`asterisk_cti`, :mod:`asterisk_cti.ivr`,
:mod:`asterisk_cti.sim`).

Threads: :func:`run_demo` runs on the caller's thread and blocks until the scenarios are
played; the monitor's, screen-pop's and IVR's threads (see their modules) are stopped before
it returns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Sequence, TextIO

from asterisk_cti import CallEvent, ConfigurationError, CtiClient, CtiConfig
from asterisk_cti.ivr import IvrDefinition, IvrEngine, load_definition

from .monitor import Monitor
from .screenpop import Action, MessageAction, ScreenPop, Sink
from .session import scenario_functions, settle

__all__ = ["BILLING_IVR", "DEMO_DATA_POP", "DEMO_POP", "DEMO_SCENARIOS", "billing_ivr",
           "run_demo"]

#: The scenarios ``demo`` plays by default, in order.
DEMO_SCENARIOS = ("basic", "hold", "attended_transfer", "conference", "blind_transfer",
                  "busy", "no_answer", "queue", "ivr_queue")

#: The demo's screen-pop line.
DEMO_POP = "SCREEN-POP {line}: caller {calling.number} {calling.name}"
#: The demo's screen-pop line for a call that carries call data (set by the IVR).
DEMO_DATA_POP = ("SCREEN-POP {line}: caller {calling.number} account {data.account} "
                 "({data.choice}) via {queue}")

#: The IVR definition the demo runs (package data of :mod:`asterisk_cti.ivr`).
BILLING_IVR = Path(__file__).resolve().parents[1] / "ivr" / "examples" / "billing.json"


def billing_ivr() -> IvrDefinition:
    """The billing IVR the demo runs: an account number, then 1 billing or 2 support, both
    to the ``support`` queue (2000) with ``account`` and ``choice`` as call data."""
    return load_definition(BILLING_IVR)


class _DemoPop(Action):
    """:data:`DEMO_DATA_POP` for a call with call data, :data:`DEMO_POP` otherwise."""

    name = "message"

    def __init__(self, sink: Sink) -> None:
        self._plain = MessageAction(DEMO_POP, sink)
        self._data = MessageAction(DEMO_DATA_POP, sink)

    def run(self, event: CallEvent, fields: Dict[str, str]) -> None:
        """Write the line. Pool thread."""
        (self._data if event.data else self._plain).run(event, fields)


def run_demo(out: TextIO, names: Sequence[str], speed: float, mode: str) -> int:
    """Play the scenarios ``names`` on a fresh simulator at ``speed`` and show them on
    ``out`` (``mode`` of :class:`~asterisk_cti.tools.Monitor`); returns the exit code."""
    from asterisk_cti.sim import AriSimulator

    functions = scenario_functions(names)
    if speed <= 0:
        raise ConfigurationError("--speed", "must be positive")
    app = "asterisk-cti-demo"
    # the simulator's IVR number (5000) enters the demo's own application, where the IVR runs
    with AriSimulator(speed=speed, stasis_app=app, channelvars=True) as sim:
        config = CtiConfig(url=sim.url, username=sim.username, password=sim.password, app=app)
        client = CtiClient(config)
        monitor = Monitor(lambda: client.lines, out, mode=mode,
                          title=f"asterisk-cti demo: simulated Asterisk at {sim.url}")
        pop = ScreenPop([_DemoPop(monitor.note)], ["PJSIP"])
        client.add_listener(monitor)
        client.add_listener(pop)
        client.monitor("PJSIP")
        # before the client starts: its first connect asks Asterisk for the IVR's events too
        ivr = IvrEngine(client, {sim.pbx.config.ivr_flow: billing_ivr()},
                        on_call_end=lambda r: monitor.note(
                            f"IVR call from {r.caller_number}: {' > '.join(r.path)}; "
                            f"{r.outcome}")).start()
        monitor.start()
        monitor.note(f"simulated Asterisk at {sim.url}; monitoring every PJSIP line")
        monitor.note(f"IVR {BILLING_IVR.name} on {sim.pbx.config.ivr_extension} "
                     f"(Stasis({app},ivr,{sim.pbx.config.ivr_flow}))")
        try:
            with client:
                try:
                    for name, function in zip(names, functions):
                        monitor.note(f"=== scenario: {name}")
                        function(sim)
                        settle(client)
                finally:
                    # the client stops right after: keep its event types (no filter update)
                    ivr.stop(detach=False)
        finally:
            ivr.stop(detach=False)  # idempotent (the client may not have started)
            pop.close()
            monitor.close()
    out.write(f"\n{len(names)} scenarios played, {monitor.events} CTI events, "
              f"{pop.pops} screen-pops\n")
    out.flush()
    return 0
