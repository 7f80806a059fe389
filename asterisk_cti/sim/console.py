"""Serving the simulator until interrupted: what ``python -m asterisk_cti.sim`` and
``asterisk-cti sim serve`` run. Runs on the caller's (main) thread; scenarios play there too.
"""

from __future__ import annotations

import threading
from typing import Optional, Sequence, TextIO

from . import scenarios
from .server import AriSimulator, PortInUseError

__all__ = ["serve"]


def serve(
    out: TextIO,
    err: TextIO,
    *,
    prog: str,
    port: int,
    username: Optional[str] = None,
    password: Optional[str] = None,
    show_password: bool = True,
    speed: float = 1.0,
    stasis_app: str = "cti-ctl",
    channelvars: bool = False,
    play: Sequence[str] = (),
    stop: Optional[threading.Event] = None,
) -> int:
    """Start a simulator on ``127.0.0.1:port``, print how to reach it, serve until ``stop`` is
    set or Ctrl-C, playing ``play`` in a loop (a scenario that cannot run to its end, such as
    ``ivr_queue`` while no IVR serves the application, prints one line and is tried again).
    Returns the exit code: 0, or 1 with one line on ``err`` when the port is taken or cannot
    be bound (no traceback).

    :param show_password: print the password (for generated, throwaway ones).
    """
    stop = stop or threading.Event()
    sim = AriSimulator(port=port, username=username, password=password, speed=speed,
                       stasis_app=stasis_app, channelvars=channelvars)
    try:
        sim.start()
    except PortInUseError as exc:
        err.write(f"{prog}: error: {exc.strerror}\n")
        return 1
    except OSError as exc:
        err.write(f"{prog}: error: cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}\n")
        return 1
    try:
        out.write(f"ARI simulator: {sim.url}/ari  (websocket {sim.ws_url})\n")
        out.write(f"admin REST: {sim.url}/sim/  (same credentials)\n")
        shown = sim.password if show_password else "(from $ASTERISK_CTI_PASSWORD)"
        out.write(f"user: {sim.username}  password: {shown}\n")
        out.write(f"endpoints: {', '.join(sorted(sim.pbx.endpoints))} (Ctrl-C to stop)\n")
        out.flush()
        try:
            while not stop.wait(0 if play else 3600):
                for name in play:
                    out.write(f"scenario {name}\n")
                    out.flush()
                    try:
                        scenarios.SCENARIOS[name](sim)
                    except scenarios.ScenarioError as exc:
                        # e.g. ivr_queue before an IVR connected: said, then tried again
                        out.write(f"scenario {name} failed: {exc}\n")
                        out.flush()
                    sim.sleep(2)
                    if stop.is_set():
                        break
        except KeyboardInterrupt:
            out.write("stopping\n")
    finally:
        sim.stop()
    return 0
