"""``asterisk-cti demo --callcentre``: the call centre on one machine. The embedded
simulator, a mosquitto broker (Debian package) on a free ``127.0.0.1`` port with the
generated per-agent rights, a :class:`~asterisk_cti.server.CtiServer`, and two desktop
clients (:class:`~asterisk_cti.remote.RemoteClient`, agents 1000 and 1002); the simulator
plays a few calls, desk 1000 controls its own call through the server and is refused
1002's, and every line shows what each desktop receives.

Needs the ``server`` extra (paho-mqtt) and mosquitto (``make broker-deps``).

Threads: :func:`run_callcentre_demo` runs on the caller's thread and blocks until done; the
desktops' listeners write from their lane threads (a :class:`~asterisk_cti.tools.session.
Writer` keeps lines whole). mosquitto, the server, the desktops and the simulator are all
stopped before it returns.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, TextIO

from asterisk_cti import (
    AsteriskCtiError,
    CallEvent,
    CallListener,
    ConfigurationError,
    ConnectionEvent,
    ConnectionListener,
    CtiConfig,
    LineSnapshotEvent,
)
from asterisk_cti.remote import RemoteClient, RemoteConfig
from asterisk_cti.server import AgentRights, CtiServer, ServerConfig, write_mosquitto_config
from asterisk_cti.server.broker import (
    find_mosquitto,
    free_port,
    start_mosquitto,
    stop_process,
)

from .events import format_event
from .session import Writer, scenario_functions

__all__ = ["CALLCENTRE_SCENARIOS", "find_mosquitto", "run_callcentre_demo"]

#: The simulator's scenarios the demo plays before the desktops' own control.
CALLCENTRE_SCENARIOS = ("basic", "hold", "attended_transfer")

_SITE = "demo"
_APP = "asterisk-cti-callcentre"




class _Desk(CallListener, ConnectionListener):
    """Prints what one desktop receives (lane and notice threads)."""

    def __init__(self, agent: str, say: Writer) -> None:
        self.agent, self._say = agent, say
        self.events = 0
        self.lines: Dict[str, None] = {}
        self.ready = threading.Event()

    def _write(self, text: str) -> None:
        self._say(f"desk {self.agent} | {text}")

    def on_line_snapshot(self, event: LineSnapshotEvent) -> None:
        line = event.line
        self._write(f"snapshot {line.name}: {line.phone_state}, "
                    f"{len(line.connections)} connection(s) ({event.reason})")
        self.ready.set()

    def on_call_event(self, event: CallEvent) -> None:
        self.events += 1
        self.lines[event.line] = None
        self._write(format_event(event))

    def on_connected(self, event: ConnectionEvent) -> None:
        self._write("connected: the broker and the CTI server are up")

    def on_disconnected(self, event: ConnectionEvent) -> None:
        self._write(f"disconnected: {event.reason}")




def _settle(desks: Sequence[RemoteClient]) -> None:
    """Until every desktop's lines are idle and what they received was delivered (10 s)."""
    deadline = time.monotonic() + 10.0
    pause = threading.Event()
    while time.monotonic() < deadline and any(
            line.connections for d in desks for line in d.lines):
        pause.wait(0.02)
    for d in desks:
        d.wait_idle(max(0.1, deadline - time.monotonic()))


def run_callcentre_demo(out: TextIO, speed: float = 8.0,
                        scenarios: Optional[Sequence[str]] = None) -> int:
    """Run the demo (see the module docstring), writing to ``out``; returns 0.

    :raises ConfigurationError: mosquitto is missing, or a bad speed or scenario.
    """
    say = Writer(out)
    if speed <= 0:
        raise ConfigurationError("--speed", "must be positive")
    names = list(CALLCENTRE_SCENARIOS if scenarios is None else scenarios)
    functions = scenario_functions(names)
    exe = find_mosquitto()
    from asterisk_cti.sim import AriSimulator

    with tempfile.TemporaryDirectory(prefix="asterisk-cti-callcentre-") as tmp:
        port = free_port()
        passwords = {a: secrets.token_urlsafe(16) for a in ("1000", "1002")}
        config = ServerConfig(
            site=_SITE, broker_port=port, broker_password=secrets.token_urlsafe(16),
            agents={a: AgentRights((f"PJSIP/{a}",)) for a in passwords})
        run_as = "root" if os.geteuid() == 0 else None
        try:
            files = write_mosquitto_config(Path(tmp), config, passwords, port=port,
                                           run_as=run_as)
        except ConfigurationError:  # no dynamic-security plugin: the classic ACL file
            files = write_mosquitto_config(Path(tmp), config, passwords, port=port,
                                           run_as=run_as, mode="acl_file")
        broker = start_mosquitto(files.conf, Path(tmp) / "mosquitto.log", port, exe=exe)
        desks: List[RemoteClient] = []
        try:
            say(f"# mosquitto on 127.0.0.1:{port}, agents 1000 and 1002 may read only "
                f"their own line's topics")
            with AriSimulator(speed=speed, stasis_app=_APP) as sim, CtiServer(
                    config, CtiConfig(url=sim.url, username=sim.username,
                                      password=sim.password, app=_APP)) as server:
                say(f"# CTI server {server.config.name!r} on the simulator at {sim.url}, "
                    f"site {_SITE!r}")
                printers = []
                for agent, password in passwords.items():
                    desk = RemoteClient(RemoteConfig(
                        site=_SITE, agent=agent, password=password, broker_port=port,
                        lines=(f"PJSIP/{agent}",)))
                    printer = _Desk(agent, say)
                    desk.add_listener(printer)
                    desks.append(desk.start())
                    printers.append(printer)
                for printer in printers:
                    printer.ready.wait(10)
                for name, function in zip(names, functions):
                    say(f"=== scenario: {name} (played on the simulator's phones)")
                    function(sim)
                    _settle(desks)
                _controlled(sim, desks, say)
                _settle(desks)
            for printer in printers:
                say(f"# desk {printer.agent} received {printer.events} CTI events, of "
                    f"line(s) {', '.join(printer.lines) or 'none'}")
        finally:
            for desk in desks:
                desk.stop()
            stop_process(broker, 10)
    return 0


def _controlled(sim: object, desks: Sequence[RemoteClient], say: Writer) -> None:
    """Desk 1000 drives its own call through the server; 1002's leg is refused to it."""
    from asterisk_cti.sim import AriSimulator

    assert isinstance(sim, AriSimulator)
    for ext in ("1000", "1002", "1006"):
        sim.phone(ext).auto_answer = 0.5
    d1000, d1002 = desks

    def step(text: str) -> None:
        for d in desks:  # what the previous step caused is printed before the next one
            d.wait_idle(2.0)
        say(f"# {text}")

    say("=== desk 1000 controls its own call through the server")
    step("desk 1000: originate to 1002, wait until established")
    call = d1000.control.originate("PJSIP/1000", "1002", wait_for="established")
    step("desk 1000: hold")
    d1000.control.hold(call)
    step("desk 1000: retrieve")
    d1000.control.retrieve(call)
    step("desk 1000: consult 1006")
    consult = d1000.control.consult(call, "1006", wait_for="established")
    step("desk 1000: conference")
    d1000.control.conference(call, consult)
    step("desk 1000 tries to hang up desk 1002's side of the call")
    peer = call.peer_channel_id or ""
    try:
        d1000.control.hangup(peer)
    except AsteriskCtiError as exc:
        say(f"# refused by the server: {type(exc).__name__}: {exc}")
    step("desk 1002 hangs up its own side, then desk 1000")
    d1002.control.hangup(peer)
    d1000.control.hangup(call)
