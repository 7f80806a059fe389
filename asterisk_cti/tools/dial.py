"""``asterisk-cti dial``: click-to-dial through ``client.control.originate``, then (for a
controlled call) follow the call until the agent's connection is cleared.

It uses the public API only (:mod:`asterisk_cti`, :mod:`asterisk_cti.sim`).

Threads: :func:`run_dial` runs on the caller's thread and blocks there; the CTI events of the
agent's line are printed from the client's lane threads (:class:`~.session.Writer` keeps
lines whole).
"""

from __future__ import annotations

import contextlib
import sys
import threading
from typing import TYPE_CHECKING, Callable, Optional, TextIO

from asterisk_cti import CallEvent, CallFailedError, CallListener, ConfigurationError, CtiClient

from .events import format_event
from .session import TargetOptions, Writer, command_target
from .text import printable

if TYPE_CHECKING:
    from asterisk_cti.sim import AriSimulator, Phone

__all__ = ["run_dial"]


class _Follow(CallListener):
    """Prints the CTI events of the agent's line while ``dial`` waits (lane thread) and
    notes when a connection is cleared."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write
        self._cond = threading.Condition()
        self._cleared: set[str] = set()

    def on_call_event(self, event: CallEvent) -> None:
        if event.kind.value != "line_state_changed":
            self._write(format_event(event))
        if event.kind.value == "connection_cleared":
            with self._cond:
                self._cleared.add(event.connection_id)
                self._cond.notify_all()

    def wait_cleared(self, connection_id: str) -> None:
        """Block the caller until the connection is cleared (Ctrl-C interrupts)."""
        with self._cond:
            self._cond.wait_for(lambda: connection_id in self._cleared)


def _sim_auto_answer(sim: AriSimulator, endpoint: str) -> Optional[Phone]:
    """With ``--sim`` every phone answers by itself (the agent after 1 s, the others after
    2 s of simulated time); returns the agent's simulated phone, if it is one."""
    for ext in ("1000", "1002", "1006"):
        sim.phone(ext).auto_answer = 2.0
    if not endpoint.startswith("PJSIP/"):
        return None
    try:
        agent = sim.phone(endpoint.split("/", 1)[1])
    except KeyError:
        return None
    agent.auto_answer = 1.0
    return agent


def run_dial(out: TextIO, options: TargetOptions, endpoint: str, destination: str, *,
             wait: str = "delivered", timeout: float = 30.0, context: Optional[str] = None,
             caller_id: Optional[str] = None, detach: bool = False,
             verbose: bool = False) -> int:
    """``asterisk-cti dial``: ring ``endpoint``, then call ``destination``; print the
    outcome and (unless ``detach``, or for a dialplan ``context`` originate) follow a
    controlled call until it ends. Caller's thread; returns the exit code (1: the call
    failed, one line on stderr)."""
    if timeout <= 0:
        raise ConfigurationError("--timeout", "must be positive")
    if "/" not in endpoint:
        raise ConfigurationError("endpoint", f"{endpoint!r} is not TECH/RESOURCE "
                                             "(PJSIP/1000)")
    write = Writer(out)
    with command_target(options, write, "dial") as target:
        agent_phone = (_sim_auto_answer(target.sim, endpoint)
                       if target.sim is not None else None)
        client = CtiClient(target.config)
        follow = _Follow(write if verbose else (lambda _text: None))
        client.add_listener(follow)
        client.monitor(endpoint)
        with client:
            control = client.control
            write(f"# dialling {destination} from {endpoint} "
                  f"({'dialplan context ' + context if context else 'controlled'}); "
                  f"{endpoint} rings first")
            try:
                call = control.originate(endpoint, destination, context=context,
                                         caller_id=caller_id, timeout=timeout, wait_for=wait)
            except CallFailedError as exc:
                status = exc.dialstatus or "FAILED"
                sys.stderr.write(printable(f"asterisk-cti: call failed: {status}, cause "
                                           f"{exc.cause} ({exc})") + "\n")
                return 1
            write(f"{wait}: {endpoint} -> {destination} (call {call.call_id})")
            if detach or not call.controlled:
                return 0
            if agent_phone is not None and target.sim is not None:
                target.sim.sleep(4)  # the simulated agent talks a little, then hangs up
                with contextlib.suppress(Exception):
                    agent_phone.hangup()
            write("# following the call until it ends (Ctrl-C leaves it to Asterisk)")
            follow.wait_cleared(call.channel_id)
            write(f"call ended: {endpoint} -> {destination}")
    return 0
