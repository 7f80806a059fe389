"""The ``asterisk-cti`` command line.

Commands: ``demo`` (the embedded simulator plays the scenarios through a real client, with the
live monitor and screen-pops), ``monitor`` (a live table of lines), ``screenpop`` (open a URL,
run a command or call a webhook when a call rings at a line), ``dial`` (click-to-dial),
``events`` (stream the channel events of lines), ``record FILE`` (capture raw events as JSON
lines for bug reports) and ``replay FILE`` (play a recording through the SDK). Connection
settings come from flags or the environment (:meth:`CtiConfig.from_env`); the password is
read from ``ASTERISK_CTI_PASSWORD`` only and never printed. ``monitor``, ``screenpop`` and
``dial`` take ``--sim`` to run against a freshly started embedded simulator instead.

Exit codes: 0 success, 1 runtime failure (connection, Asterisk error, failed call), 2 usage or
configuration error, 130 interrupted. Errors are one line; ``--debug`` shows tracebacks.

Threads: the command runs on the main thread and blocks there; listeners write their output
from the client's lane threads (a lock keeps lines whole); ``--play`` scenarios run on an
``asterisk-cti-play`` thread; the monitor and screen-pop threads are described in
:mod:`asterisk_cti.tools`. Every thread is stopped before the command returns.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import threading
import time
from typing import Any, Callable, Iterator, List, NoReturn, Optional, Sequence, TextIO

from . import (
    AsteriskCtiError,
    CallEvent,
    CallFailedError,
    CallListener,
    ChannelEventListener,
    ConfigurationError,
    ConnectionListener,
    CtiClient,
    CtiConfig,
    Event,
    __version__,
)
from .tools import (
    Action,
    CommandAction,
    MessageAction,
    Monitor,
    PostAction,
    ScreenPop,
    UrlAction,
    format_event,
)
from .tools.text import printable, printable_lines

logger = logging.getLogger(__name__)

#: The scenarios ``demo`` plays by default, in order.
DEMO_SCENARIOS = ("basic", "hold", "attended_transfer", "conference", "blind_transfer",
                  "busy", "no_answer", "queue")

#: The demo's screen-pop line.
DEMO_POP = "SCREEN-POP {line}: caller {calling.number} {calling.name}"


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


class _Writer:
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


def _format_channel_event(event: Event) -> str:
    """One line for a raw event; every field comes from Asterisk (channel names, caller
    names, bridge names), so the whole line goes through :func:`printable`."""
    return printable(_channel_event_text(event))


def _channel_event_text(event: Event) -> str:
    chan = event.channel
    if chan is None:
        return f"{event.timestamp[11:23]}  {event.type}"
    detail = ""
    if event.type in ("ChannelCreated", "ChannelStateChange"):
        detail = chan.state
    elif event.type == "ChannelConnectedLine":
        detail = f"-> {chan.connected.number} {chan.connected.name!r}"
    elif event.type == "ChannelDestroyed":
        detail = f"cause {event.raw.get('cause')} {event.raw.get('cause_txt', '')}"
    elif event.type in ("ChannelEnteredBridge", "ChannelLeftBridge"):
        bridge = event.raw.get("bridge") or {}
        detail = f"bridge {str(bridge.get('id', ''))[:8]} ({bridge.get('technology', '')})"
    return f"{event.timestamp[11:23]}  {chan.endpoint:<12} {event.type:<24} {detail}".rstrip()


class _Printer(ChannelEventListener, CallListener, ConnectionListener):
    """Prints events, one line each (a lane thread writes; a lock keeps lines whole)."""

    def __init__(self, out: TextIO, as_json: bool = False) -> None:
        self._out = out
        self._json = as_json
        self._lock = threading.Lock()
        self.count = 0

    def on_event(self, event: Event) -> None:
        if self._json:  # exact values; json.dumps escapes every control character itself
            line = json.dumps(event.raw, separators=(",", ":"))
        else:
            line = _format_channel_event(event)
        with self._lock:
            self.count += 1
            self._out.write(line + "\n")
            self._out.flush()

    def on_call_event(self, event: CallEvent) -> None:
        if self._json:
            return
        calling = event.calling
        party = f"{calling.number} '{calling.name}'" if calling.number else ""
        line = printable(f"  CTI  {event.line:<12} {event.kind.value:<20} {party}")
        with self._lock:
            self._out.write(line + "\n")
            self._out.flush()


# -- connection settings and the embedded simulator ------------------------------------------


def _config_from_args(args: argparse.Namespace, default_app: Optional[str] = None) -> CtiConfig:
    overrides = {k: v for k, v in (("url", args.url), ("username", args.user),
                                   ("app", args.app)) if v}
    if "app" not in overrides and default_app and not os.environ.get("ASTERISK_CTI_APP"):
        overrides["app"] = default_app
    if args.insecure:
        overrides["verify_tls"] = False
    return CtiConfig.from_env(**overrides)


def _add_connection_flags(p: argparse.ArgumentParser, sim: bool = False,
                          url_flags: Sequence[str] = ("--url", "--ari-url")) -> None:
    g = p.add_argument_group("connection")
    g.add_argument(*url_flags, dest="url",
                   help="Asterisk HTTP URL (default $ASTERISK_CTI_URL)")
    g.add_argument("--user", help="ARI user (default $ASTERISK_CTI_USERNAME)")
    g.add_argument("--app", help="ARI application name (default $ASTERISK_CTI_APP"
                   + (", else one of its own per process)" if sim else ")"))
    g.add_argument("--insecure", action="store_true", help="do not verify TLS certificates")
    p.epilog = "The password is read from $ASTERISK_CTI_PASSWORD only, never from a flag."
    if sim:
        g = p.add_argument_group("embedded simulator")
        g.add_argument("--sim", action="store_true",
                       help="run against a freshly started embedded ARI simulator")
        g.add_argument("--play", action="append", metavar="SCENARIO",
                       help="with --sim: play this scenario (repeatable), then exit")
        g.add_argument("--speed", type=float, default=8.0,
                       help="with --sim: simulated time speed-up (default 8)")


def _scenario_functions(names: Sequence[str]) -> List[Callable[[Any], None]]:
    from .sim import scenarios

    unknown = [n for n in names if n not in scenarios.SCENARIOS]
    if unknown:
        raise ConfigurationError(
            "scenario", f"unknown scenario(s): {', '.join(unknown)}; "
                        f"known: {', '.join(scenarios.SCENARIOS)}")
    return [scenarios.SCENARIOS[n] for n in names]


class _Target:
    """Where a command connects: a live Asterisk, or an embedded simulator (``sim``)."""

    def __init__(self, config: CtiConfig, sim: Any = None) -> None:
        self.config = config
        self.sim = sim


@contextlib.contextmanager
def _target(args: argparse.Namespace, info: Callable[[str], None],
            command: str) -> Iterator[_Target]:
    """The connection target of ``command``: validates the settings (before anything
    starts), starts the simulator for ``--sim`` and stops it on exit."""
    default_app = f"asterisk-cti-{command}-{os.getpid()}"
    if getattr(args, "play", None) and not args.sim:
        raise ConfigurationError("--play", "needs --sim")
    if not getattr(args, "sim", False):
        yield _Target(_config_from_args(args, default_app))
        return
    if args.url or args.user:
        raise ConfigurationError("--sim", "cannot be combined with --url or --user")
    if args.speed <= 0:
        raise ConfigurationError("--speed", "must be positive")
    _scenario_functions(args.play or ())
    from .sim import AriSimulator

    with AriSimulator(speed=args.speed) as sim:
        config = CtiConfig(url=sim.url, username=sim.username, password=sim.password,
                           app=args.app or default_app)
        info(f"# embedded simulator at {sim.url} (user {sim.username}; phones 1000 Kai, "
             f"1002 Ping, 1006 Lee; queue 2000)")
        yield _Target(config, sim)


def _settle(client: CtiClient, timeout: float = 10.0) -> None:
    """Wait until every line is idle and everything received was delivered (after a
    scenario: its last events reach the listeners before the next one starts)."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while time.monotonic() < deadline:
        if all(not ln.connections for ln in client.lines):
            break
        pause.wait(0.02)
    client.wait_idle(max(0.1, deadline - time.monotonic()))


class _Player:
    """Plays scenarios on the simulator on the ``asterisk-cti-play`` thread."""

    def __init__(self, sim: Any, client: CtiClient, names: Sequence[str],
                 before: Callable[[str], None]) -> None:
        self._sim = sim
        self._client = client
        self._names = list(names)
        self._functions = _scenario_functions(names)
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
                _settle(self._client)
        except BaseException as exc:  # handed to the main thread
            self.error = exc
        finally:
            self.done.set()

    def join(self, timeout: float = 60.0) -> None:
        self._thread.join(timeout)


def _run_until_done(args: argparse.Namespace, target: _Target, client: CtiClient,
                    before: Callable[[str], None]) -> None:
    """Block the main thread: until the ``--play`` scenarios are over, ``--duration`` has
    passed, or Ctrl-C (KeyboardInterrupt propagates)."""
    duration = getattr(args, "duration", None)
    if target.sim is not None and args.play:
        player = _Player(target.sim, client, args.play, before).start()
        try:
            player.done.wait(duration)
        finally:
            if not player.done.is_set():
                player.join(0)  # a daemon; the simulator's stop ends its waits
        if player.error is not None:
            raise player.error
        return
    threading.Event().wait(duration)


# -- commands -------------------------------------------------------------------------------


def _cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    from .sim import AriSimulator

    names = args.scenario or list(DEMO_SCENARIOS)
    functions = _scenario_functions(names)
    if args.speed <= 0:
        raise ConfigurationError("--speed", "must be positive")
    with AriSimulator(speed=args.speed) as sim:
        config = CtiConfig(url=sim.url, username=sim.username, password=sim.password,
                           app="asterisk-cti-demo")
        client = CtiClient(config)
        monitor = Monitor(lambda: client.lines, out, mode=args.mode,
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
                    _settle(client)
        finally:
            pop.close()
            monitor.close()
    out.write(f"\n{len(names)} scenarios played, {monitor.events} CTI events, "
              f"{pop.pops} screen-pops\n")
    out.flush()
    return 0


def _cmd_monitor(args: argparse.Namespace, out: TextIO) -> int:
    sources = args.lines or ["PJSIP"]
    info = _Writer(sys.stderr if args.json else out)
    mode = "json" if args.json else args.mode
    with _target(args, info, "monitor") as target:
        client = CtiClient(target.config)
        monitor = Monitor(lambda: client.lines, out, mode=mode, lines_filter=sources,
                          title=f"asterisk-cti monitor: {target.config.url} "
                                f"({', '.join(sources)}); Ctrl-C to quit")
        client.add_listener(monitor)
        client.monitor(*sources)
        try:
            with client:
                if monitor.mode != "table":
                    info(f"# connected to {target.config.ari_url} as app {target.config.app}; "
                         f"monitoring {', '.join(sources)}; Ctrl-C to stop")
                monitor.start()
                _run_until_done(args, target, client,
                                lambda name: monitor.note(f"=== scenario: {name}"))
        finally:
            monitor.close()
    return 0


def _actions(args: argparse.Namespace, write: Callable[[str], None]) -> List[Action]:
    actions: List[Action] = []
    if args.message:
        actions.append(MessageAction(args.message, write))
    if args.url_template:
        actions.append(UrlAction(args.url_template, write, print_only=args.print))
    elif args.print:
        raise ConfigurationError("--print", "goes with --url")
    if args.command_template:
        actions.append(CommandAction(args.command_template, timeout=args.action_timeout))
    if args.post:
        actions.append(PostAction(args.post, timeout=args.action_timeout))
    if not actions:
        raise ConfigurationError("screenpop", "give --url, --command, --post or --message")
    return actions


def _cmd_screenpop(args: argparse.Namespace, out: TextIO) -> int:
    if args.action_timeout <= 0:
        raise ConfigurationError("--action-timeout", "must be positive")
    write = _Writer(out)
    actions = _actions(args, write)  # validated before anything connects
    with _target(args, write, "screenpop") as target:
        client = CtiClient(target.config)
        pop = ScreenPop(actions, args.line)
        client.add_listener(pop)
        client.monitor(*args.line)
        try:
            with client:
                write(f"# screen-pop on {', '.join(args.line)} "
                      f"({', '.join(a.name for a in actions)}); Ctrl-C to stop")
                _run_until_done(args, target, client,
                                lambda name: write(f"=== scenario: {name}"))
        finally:
            pop.close()
        write(f"# {pop.pops} screen-pops")
    return 0


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

    def wait_cleared(self, connection_id: str, timeout: Optional[float]) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: connection_id in self._cleared, timeout)


def _sim_auto_answer(sim: Any, endpoint: str) -> Optional[Any]:
    """With ``--sim`` every phone answers by itself (the agent after 1 s, the others after
    2 s of simulated time); returns the agent's simulated phone, if it is one."""
    agent = None
    for ext in ("1000", "1002", "1006"):
        sim.phone(ext).auto_answer = 2.0
    if endpoint.startswith("PJSIP/"):
        try:
            agent = sim.phone(endpoint.split("/", 1)[1])
        except KeyError:
            return None
        agent.auto_answer = 1.0
    return agent


def _cmd_dial(args: argparse.Namespace, out: TextIO) -> int:
    if args.timeout <= 0:
        raise ConfigurationError("--timeout", "must be positive")
    if "/" not in args.endpoint:
        raise ConfigurationError("endpoint", f"{args.endpoint!r} is not TECH/RESOURCE "
                                             "(PJSIP/1000)")
    write = _Writer(out)
    with _target(args, write, "dial") as target:
        agent_phone = (_sim_auto_answer(target.sim, args.endpoint)
                       if target.sim is not None else None)
        client = CtiClient(target.config)
        follow = _Follow(write if args.verbose else (lambda _text: None))
        client.add_listener(follow)
        client.monitor(args.endpoint)
        with client:
            control = client.control
            write(f"# dialling {args.destination} from {args.endpoint} "
                  f"({'dialplan context ' + args.context if args.context else 'controlled'}); "
                  f"{args.endpoint} rings first")
            try:
                call = control.originate(args.endpoint, args.destination, context=args.context,
                                         caller_id=args.caller_id, timeout=args.timeout,
                                         wait_for=args.wait)
            except CallFailedError as exc:
                status = exc.dialstatus or "FAILED"
                sys.stderr.write(printable(f"asterisk-cti: call failed: {status}, cause "
                                           f"{exc.cause} ({exc})") + "\n")
                return 1
            write(f"{args.wait}: {args.endpoint} -> {args.destination} (call {call.call_id})")
            if args.detach or not call.controlled:
                return 0
            if agent_phone is not None:
                target.sim.sleep(4)  # the simulated agent talks a little, then hangs up
                with contextlib.suppress(Exception):
                    agent_phone.hangup()
            write("# following the call until it ends (Ctrl-C leaves it to Asterisk)")
            follow.wait_cleared(call.channel_id, None)
            write(f"call ended: {args.endpoint} -> {args.destination}")
    return 0


def _cmd_events(args: argparse.Namespace, out: TextIO) -> int:
    config = _config_from_args(args)
    if args.types:
        config = config.replace(event_types=tuple(args.types.split(",")))
    client = CtiClient(config, model=False)
    client.add_listener(_Printer(out, as_json=args.json))
    client.monitor(*(args.lines or ["PJSIP"]))
    stop = threading.Event()
    with client.start():
        out.write(f"# connected to {config.ari_url} as app {config.app}; Ctrl-C to stop\n")
        out.flush()
        try:
            stop.wait(args.duration if args.duration else None)
        except KeyboardInterrupt:
            return 130
    return 0


def _cmd_record(args: argparse.Namespace, out: TextIO) -> int:
    config = _config_from_args(args).replace(event_types=("*",), server_filter=False)
    count = 0
    with open(args.file, "w", encoding="utf-8") as fh:
        printer = _Printer(fh, as_json=True)
        client = CtiClient(config, model=False)
        client.add_listener(printer)
        client.monitor(*(args.lines or ["PJSIP"]))
        with client.start():
            out.write(f"# recording to {args.file}; Ctrl-C to stop\n")
            out.flush()
            try:
                threading.Event().wait(args.duration if args.duration else None)
            except KeyboardInterrupt:
                pass
        count = printer.count
    out.write(f"# {count} events recorded\n")
    return 0


def _cmd_replay(args: argparse.Namespace, out: TextIO) -> int:
    from .testing import FakeAsterisk, load_trace, trace_endpoints

    frames = load_trace(args.file, application=args.application)
    lines = args.lines or trace_endpoints(frames)
    fake = FakeAsterisk(endpoints=lines)
    types = tuple(args.types.split(",")) if args.types else None
    config = fake.config(**({"event_types": types} if types else {}))
    printer = _Printer(out, as_json=args.json)
    client = fake.client(config)
    client.add_listener(printer)
    client.monitor(*lines)
    with client.start():
        fake.replay(frames)
        fake.settle(client, 30)
    if not args.json:
        out.write(f"# {len(frames)} frames replayed, {printer.count} events delivered\n")
    return 0


_EXIT_CODES = ("exit codes: 0 success, 1 runtime failure (connection, Asterisk error, failed "
               "call), 2 usage or configuration error, 130 interrupted")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for the documentation and tests)."""
    parser = _Parser(
        prog="asterisk-cti", description="CTI for Asterisk over ARI: events, calls, control.",
        epilog=_EXIT_CODES)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="log debug output and tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="play the scenarios on the embedded simulator, with the "
                                    "live monitor and screen-pops", epilog=_EXIT_CODES)
    p.add_argument("--scenario", action="append",
                   help="scenario to play (repeatable; default: " + ", ".join(DEMO_SCENARIOS)
                   + ")")
    p.add_argument("--speed", type=float, default=8.0, help="simulated time speed-up")
    p.add_argument("--mode", choices=("auto", "table", "lines"), default="auto",
                   help="table (redrawn in place) or one line per event; auto: table on a "
                        "terminal")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("monitor", help="a live table of lines (state, party, duration)")
    p.add_argument("lines", nargs="*", metavar="LINES",
                   help="endpoints or technologies to show (default: PJSIP)")
    p.add_argument("--json", action="store_true", help="one CTI event per line as JSON")
    p.add_argument("--mode", choices=("auto", "table", "lines"), default="auto",
                   help="table (redrawn in place) or one line per event; auto: table on a "
                        "terminal")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    _add_connection_flags(p, sim=True)
    p.epilog = f"{p.epilog} {_EXIT_CODES}."
    p.set_defaults(func=_cmd_monitor)

    p = sub.add_parser(
        "screenpop", help="act once per incoming call when it rings at a line",
        description="Fire once per incoming call when it rings at a line, with the caller's "
                    "number and name (also for queue calls). Template fields: {line}, "
                    "{call_id}, {calling.number}, {calling.name}, {called.number}, ...")
    p.add_argument("--line", action="append", required=True, metavar="LINE",
                   help="endpoint or technology to watch (repeatable): PJSIP/1002")
    p.add_argument("--url", dest="url_template", metavar="TEMPLATE",
                   help="open this URL in the browser (values URL-encoded)")
    p.add_argument("--print", action="store_true",
                   help="print the --url instead of opening it (automatic without a display)")
    p.add_argument("--command", dest="command_template", metavar="TEMPLATE",
                   help="run this program (split like a shell line, no shell)")
    p.add_argument("--post", metavar="URL", help="POST the event as JSON to this webhook")
    p.add_argument("--message", metavar="TEMPLATE", help="print this line")
    p.add_argument("--action-timeout", type=float, default=10.0,
                   help="seconds a --command or --post may take (default 10)")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    # --url names the template here; the connection URL is --ari-url for this command
    _add_connection_flags(p, sim=True, url_flags=("--ari-url",))
    p.epilog = ("The password is read from $ASTERISK_CTI_PASSWORD only, never from a flag. "
                f"{_EXIT_CODES}.")
    p.set_defaults(func=_cmd_screenpop)

    p = sub.add_parser("dial", help="click-to-dial: ring an endpoint, then call a number")
    p.add_argument("endpoint", help="the phone that rings first: PJSIP/1000")
    p.add_argument("destination", help="the number it then calls: 1002")
    p.add_argument("--wait", choices=("originated", "delivered", "established"),
                   default="delivered", help="return once the destination rings (delivered, "
                                             "the default) or answered (established)")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds each phone may ring (default 30)")
    p.add_argument("--context", help="a dialplan originate into this context (an observed "
                                     "call; the command exits after the outcome)")
    p.add_argument("--caller-id", help='caller id the destination sees: \'"Sales" <200>\'')
    p.add_argument("--detach", action="store_true",
                   help="exit after the outcome (a controlled call is otherwise followed "
                        "until it ends, so the SDK can manage it)")
    p.add_argument("--verbose", "-v", action="store_true",
                   help="print the CTI events of the endpoint")
    _add_connection_flags(p, sim=True)
    p.epilog = f"{p.epilog} {_EXIT_CODES}."
    p.set_defaults(func=_cmd_dial)

    p = sub.add_parser("events", help="stream the channel events of lines from Asterisk")
    p.add_argument("lines", nargs="*", help="endpoints or technologies (default: PJSIP)")
    p.add_argument("--json", action="store_true", help="one raw ARI event per line")
    p.add_argument("--types", help="comma-separated event types (default: the ten)")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    _add_connection_flags(p)
    p.set_defaults(func=_cmd_events)

    p = sub.add_parser("record", help="capture raw ARI events of lines as JSON lines")
    p.add_argument("file")
    p.add_argument("lines", nargs="*", help="endpoints or technologies (default: PJSIP)")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    _add_connection_flags(p)
    p.set_defaults(func=_cmd_record)

    p = sub.add_parser("replay", help="play a JSON-lines recording through the SDK")
    p.add_argument("file")
    p.add_argument("lines", nargs="*", help="lines to monitor (default: all in the file)")
    p.add_argument("--application", help="keep only frames of this ARI application")
    p.add_argument("--types", help="comma-separated event types (default: the ten)")
    p.add_argument("--json", action="store_true", help="print raw events")
    p.set_defaults(func=_cmd_replay)
    return parser


class _SafeFormatter(logging.Formatter):
    """Log records as text with control characters escaped: a message (or a traceback) may
    quote a caller's name or another string from Asterisk."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(super().formatMessage(record))

    def formatException(self, ei: Any) -> str:
        return printable_lines(super().formatException(ei))


def _setup_logging(debug: bool) -> None:
    if debug:
        fmt = "%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"
    else:
        fmt = "asterisk-cti: %(levelname)s: %(message)s"
    root = logging.getLogger()
    before = list(root.handlers)
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format=fmt)
    for handler in root.handlers:
        if handler not in before:  # the one basicConfig added (none if logging was set up)
            handler.setFormatter(_SafeFormatter(fmt))


def main(argv: Optional[Sequence[str]] = None, out: Optional[TextIO] = None) -> int:
    """Entry point of ``asterisk-cti``; returns the exit code (see the module documentation).

    :param argv: the arguments (default ``sys.argv[1:]``).
    :param out: where the command writes its output (default ``sys.stdout``); errors go to
        ``sys.stderr``.
    """
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    _setup_logging(args.debug)
    stream = out or sys.stdout
    try:
        return int(args.func(args, stream))
    except KeyboardInterrupt:
        return 130
    except ConfigurationError as exc:
        if args.debug:
            raise
        sys.stderr.write(f"asterisk-cti: configuration error: {printable(str(exc))}\n")
        return 2
    except (AsteriskCtiError, OSError, ValueError, RuntimeError) as exc:
        if args.debug:
            raise
        sys.stderr.write(f"asterisk-cti: {type(exc).__name__}: {printable(str(exc))}\n")
        return 1


def _argv() -> List[str]:
    return sys.argv[1:]


if __name__ == "__main__":
    sys.exit(main(_argv()))
