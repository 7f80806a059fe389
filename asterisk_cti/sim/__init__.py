"""``asterisk_cti.sim``: an embedded ARI simulator, a stateful fake Asterisk 22.

It serves ARI over real HTTP and a real websocket on 127.0.0.1 so the SDK, its demo, tests and
benchmarks run without a PBX. It imports nothing else of the SDK: it speaks raw JSON, shaped
like the events of a real Asterisk 22.10.1 (see ``docs/simulator.rst``).

Quick start::

    from asterisk_cti.sim import AriSimulator
    from asterisk_cti.sim import scenarios

    with AriSimulator(speed=10) as sim:
        print(sim.url, sim.username, sim.password)
        scenarios.basic(sim)
"""

from .client import SimAdmin, SimAdminError
from .phones import Phone, PhoneError
from .server import DEFAULT_PORT, AriSimulator, PortInUseError

__all__ = [
    "DEFAULT_PORT",
    "AriSimulator",
    "Phone",
    "PhoneError",
    "PortInUseError",
    "SimAdmin",
    "SimAdminError",
]
