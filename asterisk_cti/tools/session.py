"""What every command of ``asterisk-cti`` shares: whole output lines, where it connects (a live
Asterisk or a freshly started embedded simulator), the ``--play`` scenarios, and the wait
until the command is over.

It uses the public API only (:mod:`asterisk_cti`, :mod:`asterisk_cti.sim`).

Threads: :class:`Writer` may be called from any thread (the client's lane threads write
through it). :func:`command_target` and :func:`run_until_done` run on the command's (main) thread;
the scenarios of ``--play`` run on an ``asterisk-cti-play`` thread, which ends when they are
over or when the simulator stops.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Sequence, TextIO

from asterisk_cti import ConfigurationError, CtiClient, CtiConfig

from .text import printable

if TYPE_CHECKING:
    from asterisk_cti.sim import AriSimulator

__all__ = ["Target", "TargetOptions", "Writer", "run_until_done", "scenario_functions",
           "settle", "command_target", "config_from"]

#: A scenario of :mod:`asterisk_cti.sim.scenarios`.
Scenario = Callable[["AriSimulator"], None]


class Writer:
    """Writes whole lines to a stream from any thread, control characters shown escaped
    (a line may carry a caller's name)."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._lock = threading.Lock()

    def __call__(self, text: str) -> None:
        text = printable(text)
        with self._lock:
            self._out.write(text + "\n")
            self._out.flush()


@dataclass(frozen=True)
class TargetOptions:
    """Where a command connects, as given on its command line: the connection flags (each
    ``None`` falls back to the environment, :meth:`CtiConfig.from_env`) and the embedded
    simulator's (``sim``, the scenarios to ``play`` on it, its ``speed``)."""

    url: Optional[str] = None
    user: Optional[str] = None
    app: Optional[str] = None
    insecure: bool = False
    sim: bool = False
    play: Sequence[str] = ()
    speed: float = 8.0


def config_from(options: TargetOptions, default_app: Optional[str] = None) -> CtiConfig:
    """The configuration of a live Asterisk: the flags over the environment; ``default_app``
    when neither names an application."""
    overrides: Dict[str, Any] = {k: v for k, v in (("url", options.url),
                                                   ("username", options.user),
                                                   ("app", options.app)) if v}
    if "app" not in overrides and default_app and not os.environ.get("ASTERISK_CTI_APP"):
        overrides["app"] = default_app
    if options.insecure:
        overrides["verify_tls"] = False
    return CtiConfig.from_env(**overrides)


def scenario_functions(names: Sequence[str]) -> List[Scenario]:
    """The scenarios named, in order; a :class:`ConfigurationError` names any unknown one."""
    from asterisk_cti.sim import scenarios

    unknown = [n for n in names if n not in scenarios.SCENARIOS]
    if unknown:
        raise ConfigurationError(
            "scenario", f"unknown scenario(s): {', '.join(unknown)}; "
                        f"known: {', '.join(scenarios.SCENARIOS)}")
    return [scenarios.SCENARIOS[n] for n in names]


class Target:
    """Where a command connects: a live Asterisk, or an embedded simulator (``sim``)."""

    def __init__(self, config: CtiConfig, sim: Optional[AriSimulator] = None) -> None:
        self.config = config
        self.sim = sim


@contextlib.contextmanager
def command_target(options: TargetOptions, info: Callable[[str], None],
                   command: str, own_stasis: bool = False) -> Iterator[Target]:
    """The connection target of ``command``: validates the settings (before anything
    starts), starts the simulator for ``options.sim`` and stops it on exit. With
    ``own_stasis`` the simulator's ``7XXX`` and IVR numbers enter the command's own
    application (``ivr`` runs the calls there)."""
    default_app = f"asterisk-cti-{command}-{os.getpid()}"
    if options.play and not options.sim:
        raise ConfigurationError("--play", "needs --sim")
    if not options.sim:
        yield Target(config_from(options, default_app))
        return
    if options.url or options.user:
        raise ConfigurationError("--sim", "cannot be combined with --url or --user")
    if options.speed <= 0:
        raise ConfigurationError("--speed", "must be positive")
    scenario_functions(options.play)
    from asterisk_cti.sim import AriSimulator

    app = options.app or default_app
    extra: Dict[str, Any] = {"stasis_app": app} if own_stasis else {}
    with AriSimulator(speed=options.speed, **extra) as sim:
        config = CtiConfig(url=sim.url, username=sim.username, password=sim.password,
                           app=app)
        info(f"# embedded simulator at {sim.url} (user {sim.username}; phones 1000 Kai, "
             f"1002 Ping, 1006 Lee; queue 2000)")
        yield Target(config, sim)


def settle(client: CtiClient) -> None:
    """Wait (10 s at most) until every line is idle and everything received was delivered
    (after a scenario: its last events reach the listeners before the next one starts)."""
    deadline = time.monotonic() + 10.0
    pause = threading.Event()
    while time.monotonic() < deadline:
        if all(not ln.connections for ln in client.lines):
            break
        pause.wait(0.02)
    client.wait_idle(max(0.1, deadline - time.monotonic()))


class _Player:
    """Plays scenarios on the simulator on the ``asterisk-cti-play`` thread (a daemon: the
    simulator's stop ends its waits)."""

    def __init__(self, sim: AriSimulator, client: CtiClient, names: Sequence[str],
                 before: Callable[[str], None]) -> None:
        self._sim = sim
        self._client = client
        self._names = list(names)
        self._functions = scenario_functions(names)
        self._before = before
        self.error: Optional[BaseException] = None
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="asterisk-cti-play", daemon=True)

    def start(self) -> _Player:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            for name, function in zip(self._names, self._functions):
                self._before(name)
                function(self._sim)
                settle(self._client)
        except BaseException as exc:  # handed to the main thread
            self.error = exc
        finally:
            self.done.set()


def run_until_done(target: Target, options: TargetOptions, client: CtiClient,
                   duration: Optional[float], before: Callable[[str], None]) -> None:
    """Block the calling thread: until the ``--play`` scenarios are over (``before`` is
    called with each scenario's name first), ``duration`` seconds have passed, or Ctrl-C
    (KeyboardInterrupt propagates)."""
    if target.sim is not None and options.play:
        player = _Player(target.sim, client, options.play, before).start()
        player.done.wait(duration)
        if player.error is not None:
            raise player.error
        return
    threading.Event().wait(duration)
