"""The ``asterisk-cti`` command line.

Commands: ``demo`` (the embedded simulator plays the scenarios through a real client, with the
live monitor and screen-pops), ``monitor`` (a live table of lines), ``screenpop`` (open a URL,
run a command or call a webhook when a call rings at a line), ``dial`` (click-to-dial),
``ivr FILE`` (run an IVR definition, :mod:`asterisk_cti.ivr`),
``events`` (stream the channel events of lines), ``record FILE`` (capture raw events as JSON
lines for bug reports), ``replay FILE`` (play a recording through the SDK), ``sim`` (run the
embedded simulator, or drive a running one: ``asterisk-cti sim call 1000 1002``) and
``serve`` (the call-centre server over MQTT, :mod:`asterisk_cti.server.serve`; needs the
``server`` extra, imported only by this command). Connection
settings come from flags or the environment (:meth:`CtiConfig.from_env`); the password is
read from ``ASTERISK_CTI_PASSWORD`` only and never printed. ``monitor``, ``screenpop`` and
``dial`` take ``--sim`` to run against a freshly started embedded simulator instead.

Exit codes: 0 success, 1 runtime failure (connection, Asterisk error, failed call), 2 usage or
configuration error, 130 interrupted. Errors are one line; ``--debug`` shows tracebacks.

This module is the argument parser, the logging set-up and the error handling (:func:`main`);
each command's work is a ``run_*`` function of :mod:`asterisk_cti.tools` (``demo``,
``monitor``, ``screenpop``, ``dial``, and ``record`` for ``events``/``record``/``replay``;
``session`` holds what they share), which use the public API only.

Threads: the command runs on the main thread and blocks there; listeners write their output
from the client's lane threads (a lock keeps lines whole); ``--play`` scenarios run on an
``asterisk-cti-play`` thread; the monitor and screen-pop threads are described in
:mod:`asterisk_cti.tools`. Every thread is stopped before the command returns.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, NoReturn, Optional, Sequence, TextIO

from . import AsteriskCtiError, ConfigurationError, __version__
from .tools.demo import DEMO_SCENARIOS, run_demo
from .tools.dial import run_dial
from .tools.ivr import run_ivr
from .tools.monitor import run_monitor
from .tools.record import run_events, run_record, run_replay
from .tools.screenpop import run_screenpop
from .tools.session import TargetOptions
from .tools.simctl import SIM_ACTIONS, run_sim_action, run_sim_serve
from .tools.text import printable, printable_lines

__all__ = ["DEMO_SCENARIOS", "build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


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


# -- commands: the parsed arguments handed to their tools (asterisk_cti.tools) --------------


def _target(args: argparse.Namespace) -> TargetOptions:
    """The connection flags of ``args`` (``events`` and ``record`` have no simulator)."""
    return TargetOptions(url=args.url, user=args.user, app=args.app, insecure=args.insecure,
                         sim=getattr(args, "sim", False), play=getattr(args, "play", None) or (),
                         speed=getattr(args, "speed", 8.0))


def _types(args: argparse.Namespace) -> Sequence[str]:
    return args.types.split(",") if args.types else ()


def _cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    if args.callcentre:
        try:  # the server and desktop clients need the optional paho-mqtt
            from .tools.callcentre import run_callcentre_demo
        except ImportError as exc:
            raise ConfigurationError("--callcentre", str(exc)) from None
        return run_callcentre_demo(out, args.speed, args.scenario)
    return run_demo(out, args.scenario or list(DEMO_SCENARIOS), args.speed, args.mode)


def _cmd_monitor(args: argparse.Namespace, out: TextIO) -> int:
    return run_monitor(out, _target(args), args.lines or ["PJSIP"],
                       "json" if args.json else args.mode, args.duration)


def _cmd_screenpop(args: argparse.Namespace, out: TextIO) -> int:
    return run_screenpop(out, _target(args), args.line, args.duration,
                         message=args.message, url=args.url_template, print_only=args.print,
                         command=args.command_template, post=args.post,
                         action_timeout=args.action_timeout)


def _cmd_dial(args: argparse.Namespace, out: TextIO) -> int:
    return run_dial(out, _target(args), args.endpoint, args.destination, wait=args.wait,
                    timeout=args.timeout, context=args.context, caller_id=args.caller_id,
                    detach=args.detach, verbose=args.verbose)


def _cmd_ivr(args: argparse.Namespace, out: TextIO) -> int:
    return run_ivr(out, _target(args), args.file, flow=args.flow, max_calls=args.max_calls,
                   duration=args.duration, calls=args.call or ())


def _cmd_events(args: argparse.Namespace, out: TextIO) -> int:
    return run_events(out, _target(args), args.lines or ["PJSIP"], _types(args), args.json,
                      args.duration)


def _cmd_record(args: argparse.Namespace, out: TextIO) -> int:
    return run_record(out, _target(args), args.file, args.lines or ["PJSIP"], args.duration)


def _cmd_replay(args: argparse.Namespace, out: TextIO) -> int:
    return run_replay(out, args.file, args.lines, args.application, _types(args), args.json)


def _cmd_sim(args: argparse.Namespace, out: TextIO) -> int:
    if args.action == "serve":
        return run_sim_serve(out, args.port, args.speed, args.scenario or (), args.user)
    values = [getattr(args, n) for n in SIM_ACTIONS[args.action][0]]
    return run_sim_action(out, args.action, values, args.url, args.user,
                          timeout=getattr(args, "timeout", 5.0), name=getattr(args, "name", ""))


def _cmd_serve(args: argparse.Namespace, out: TextIO) -> int:
    try:  # the server needs the optional paho-mqtt: import it only for this command
        from .server.serve import run_serve
    except ImportError as exc:
        raise ConfigurationError("serve", str(exc)) from None
    return run_serve(out, args.config, url=args.url, user=args.user, app=args.app,
                     insecure=args.insecure, broker=args.broker, site=args.site,
                     name=args.name, broker_ca=args.broker_ca, broker_cert=args.broker_cert,
                     broker_key=args.broker_key, keepalive=args.keepalive,
                     fence_timeout=args.fence_timeout, takeover_delay=args.takeover_delay)


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError("a port is 0 to 65535")
    return port


def _add_sim_parser(sub: Any) -> None:
    from .sim import scenarios
    from .sim.server import DEFAULT_PORT

    p = sub.add_parser(
        "sim", help="run the embedded simulator, or drive a running one (call, answer, ...)",
        description="Run the embedded ARI simulator (serve), or drive a running one through "
                    "its admin REST: place calls from a phone or an outside caller, answer, "
                    "hang up, hold, DTMF, transfer, list phones and calls.",
        epilog="The simulator's URL and user come from --url/--user or $ASTERISK_CTI_URL/"
               "$ASTERISK_CTI_USERNAME, the password from $ASTERISK_CTI_PASSWORD only. "
               f"{_EXIT_CODES}.")
    acts = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    s = acts.add_parser("serve", help="run a simulator until Ctrl-C",
                        description="Run the simulator on 127.0.0.1 until Ctrl-C; a taken "
                                    "port is one line and exit code 1.")
    s.add_argument("--port", type=_port, default=DEFAULT_PORT,
                   help=f"TCP port on 127.0.0.1 (default {DEFAULT_PORT}; 0: any free port)")
    s.add_argument("--speed", type=float, default=1.0, help="simulated time speed-up")
    s.add_argument("--scenario", action="append", choices=sorted(scenarios.SCENARIOS),
                   help="play it in a loop (repeatable)")
    s.add_argument("--user", help="ARI user (default $ASTERISK_CTI_USERNAME, else generated); "
                                  "the password is $ASTERISK_CTI_PASSWORD, else generated")
    s.set_defaults(func=_cmd_sim)
    for action, (names, help_text) in SIM_ACTIONS.items():
        a = acts.add_parser(action, help=help_text, description=help_text)
        for n in names:
            a.add_argument(n)
        if action == "wait-ringing":
            a.add_argument("--timeout", type=float, default=5.0,
                           help="seconds to wait (default 5, at most 30)")
        if action == "restart":
            a.add_argument("--boot-time", dest="timeout", type=float, default=2.0,
                           help="seconds the PBX stays down (default 2, at most 60)")
        if action == "trunk-call":
            a.add_argument("--name", default="", help="the caller's name (default none)")
        a.add_argument("--url", help="the simulator's URL (default $ASTERISK_CTI_URL, else "
                                     f"http://127.0.0.1:{DEFAULT_PORT})")
        a.add_argument("--user", help="ARI user (default $ASTERISK_CTI_USERNAME)")
        a.set_defaults(func=_cmd_sim)


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
    p.add_argument("--callcentre", action="store_true",
                   help="the call centre: the simulator, a mosquitto broker, the CTI server "
                        "and two desktop clients (agents 1000 and 1002; needs "
                        "asterisk-cti[server] and mosquitto: make broker-deps)")
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

    p = sub.add_parser(
        "ivr", help="run an IVR definition (JSON) for calls sent in with Stasis(app,ivr,flow)",
        description="Run an IVR definition against Asterisk until Ctrl-C: calls the dialplan "
                    "sends into the application with Stasis(<app>,ivr,<flow>) go through its "
                    "menus; one line per call with its path. See docs/ivr.rst.")
    p.add_argument("file", type=Path, help="the definition (JSON)")
    p.add_argument("--flow", help="serve only this flow name (default: every flow name)")
    p.add_argument("--max-calls", type=int, default=50,
                   help="calls at once (default 50); more go back to the dialplan with "
                        "IVR_STATUS=BUSY")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--call", action="append", metavar="DIGITS",
                   help="with --sim: an outside caller calls the IVR number (5000) and keys "
                        "DIGITS (repeatable); exit when the calls are through")
    _add_connection_flags(p, sim=True)
    p.epilog = f"{p.epilog} {_EXIT_CODES}."
    p.set_defaults(func=_cmd_ivr)

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

    _add_sim_parser(sub)
    p = sub.add_parser("serve", help="the call-centre server: publish lines over MQTT, "
                       "execute agents' requests (needs asterisk-cti[server])")
    p.add_argument("--config", required=True, type=Path, metavar="FILE",
                   help="the server's JSON configuration (site, broker, agents)")
    p.add_argument("--broker", help="the broker URL mqtt://HOST:PORT, or mqtts://HOST:PORT "
                   "for TLS (overrides the file)")
    p.add_argument("--site", help="the site's topic level (overrides the file)")
    p.add_argument("--name", help="the server's name in its status (overrides the file)")
    g = p.add_argument_group("broker TLS (with an mqtts:// broker; always verified)")
    g.add_argument("--broker-ca", metavar="FILE",
                   help="CA certificates (PEM) the broker's certificate must chain to "
                        "(default: the system's)")
    g.add_argument("--broker-cert", metavar="FILE", help="a client certificate (PEM)")
    g.add_argument("--broker-key", metavar="FILE", help="its private key (PEM)")
    g = p.add_argument_group("high availability (a second serve with the same settings "
                             "is a standby)")
    g.add_argument("--keepalive", type=int, metavar="SECONDS",
                   help="MQTT keepalive; the broker declares a silent server dead after "
                        "1.5 times it (default 10)")
    g.add_argument("--fence-timeout", type=float, metavar="SECONDS",
                   help="an active server without the broker this long steps down "
                        "(default: the keepalive)")
    g.add_argument("--takeover-delay", type=float, metavar="SECONDS",
                   help="a standby waits this long after the active's last will before it "
                        "takes over (default 2)")
    _add_connection_flags(p)
    p.epilog = ("The ARI password is read from $ASTERISK_CTI_PASSWORD and the broker password "
                "from $ASTERISK_CTI_BROKER_PASSWORD only, never from a flag.")
    p.set_defaults(func=_cmd_serve)
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


if __name__ == "__main__":
    sys.exit(main())
