"""The ``ivr`` command: run an IVR definition against Asterisk until Ctrl-C (or
``--duration``), one line per call that went through it (its path and outcome).

With ``--sim`` the embedded simulator's IVR number (5000) enters the command's own
application, and each ``--call DIGITS`` places an outside call to it that keys ``DIGITS``
once the IVR took it; the command exits when those calls are through. ``--play SCENARIO``
plays scenarios of :mod:`asterisk_cti.sim.scenarios` instead (``ivr_queue``: an outside
caller through the billing IVR to the queue and an agent), then exits.

Threads: the command runs on the main thread; the engine's call threads print through a
:class:`~asterisk_cti.tools.session.Writer`; everything is stopped before it returns.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Optional, Sequence, TextIO

from asterisk_cti import ConfigurationError, CtiClient
from asterisk_cti.ivr import CallRecord, IvrDefinitionError, IvrEngine, load_definition

from .session import TargetOptions, Writer, command_target, run_until_done

__all__ = ["run_ivr"]


def run_ivr(out: TextIO, options: TargetOptions, file: Path, *, flow: Optional[str] = None,
            max_calls: int = 50, duration: Optional[float] = None,
            calls: Sequence[str] = ()) -> int:
    """Run the definition in ``file`` (main thread; blocks until done).

    :param flow: serve only ``Stasis(app,ivr,<flow>)`` (default: every flow name).
    :param calls: with ``options.sim``: the digits each simulated outside caller keys.
    :raises ConfigurationError: the file is not a valid definition (before connecting; the
        message names the key and line).
    """
    try:
        definition = load_definition(file)
    except IvrDefinitionError as exc:
        raise ConfigurationError("FILE", str(exc)) from None
    if calls and not options.sim:
        raise ConfigurationError("--call", "needs --sim")
    if max_calls < 1:
        raise ConfigurationError("--max-calls", "must be at least 1")
    write = Writer(out)
    ended = threading.Semaphore(0)

    def report(record: CallRecord) -> None:
        write(f"call {record.channel_id} from {record.caller_number or 'unknown'} "
              f"(flow {record.flow or '-'}): {' > '.join(record.path)}; {record.outcome}")
        ended.release()

    with command_target(options, write, "ivr", own_stasis=True) as target:
        client = CtiClient(target.config)
        engine = IvrEngine(client, {flow: definition} if flow else definition,
                           max_calls=max_calls, on_call_end=report)
        # the engine first: the client's first connect installs the event filter with the
        # IVR's types, so no early digit is filtered out by Asterisk
        engine.start()
        try:
            client.start()
            write(f"# IVR {file.name} on application {target.config.app}: "
                  f"Stasis({target.config.app},ivr,{flow or '<flow>'}); Ctrl-C stops")
            if target.sim is not None and calls:
                _simulate(target.sim, engine, calls, ended, duration)
            elif target.sim is not None and options.play:
                run_until_done(target, options, client, duration,
                               lambda name: write(f"# scenario {name}"))
            else:
                threading.Event().wait(duration)
        finally:
            engine.stop(detach=False)
            client.stop()
    return 0


def _simulate(sim: object, engine: IvrEngine, calls: Sequence[str],
              ended: threading.Semaphore, duration: Optional[float]) -> None:
    from asterisk_cti.sim import AriSimulator

    assert isinstance(sim, AriSimulator)
    deadline = time.monotonic() + (duration if duration is not None else 120.0)
    pause = threading.Event()
    ivr = sim.pbx.config.ivr_extension
    for i, digits in enumerate(calls):
        before = engine.calls_handled
        cid = sim.trunk_call(f"+3312345{i:04d}", ivr, "")
        while engine.calls_handled == before and time.monotonic() < deadline:
            pause.wait(0.01)  # the IVR takes the call
        sim.trunk_dtmf(cid, digits)
        if not ended.acquire(timeout=max(0.0, deadline - time.monotonic())):
            return
        try:
            sim.admin_client().hangup_call(cid)  # the queue keeps it; the demo call is over
        except Exception:  # already gone (hung up by the IVR)
            pass
