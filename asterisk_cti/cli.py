"""The ``asterisk-cti`` command line.

Subcommands: ``demo`` (the embedded simulator plays the scenarios of the original design
through a real client), ``events`` (stream a live Asterisk's events of some lines),
``record FILE`` (capture raw events as JSON lines for bug reports) and ``replay FILE`` (play a
recording through the SDK). Connection settings come from flags or the environment
(:meth:`CtiConfig.from_env`); the password is never printed.

Exit codes: 0 success, 1 runtime failure (connection, Asterisk error), 2 usage or
configuration error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
from typing import Any, List, Optional, Sequence, TextIO

from . import __version__
from .client import CtiClient
from .config import CtiConfig
from .errors import AsteriskCtiError, ConfigurationError
from .events import Event
from .listeners import ChannelEventListener, ConnectionListener
from .model import CallListener

logger = logging.getLogger(__name__)


def _format_event(event: Event) -> str:
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
        line = json.dumps(event.raw, separators=(",", ":")) if self._json else _format_event(event)
        with self._lock:
            self.count += 1
            self._out.write(line + "\n")
            self._out.flush()

    def on_call_event(self, event: Any) -> None:
        if self._json:
            return
        calling = getattr(event, "calling", None)
        party = f"{calling.number} {calling.name!r}" if calling and calling.number else ""
        with self._lock:
            self._out.write(f"  CTI  {event.line:<12} {event.kind:<20} {party}\n")
            self._out.flush()


def _config_from_args(args: argparse.Namespace) -> CtiConfig:
    overrides = {k: v for k, v in (("url", args.url), ("username", args.user),
                                   ("app", args.app)) if v}
    if args.insecure:
        overrides["verify_tls"] = False
    return CtiConfig.from_env(**overrides)


def _add_connection_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="Asterisk HTTP URL (default $ASTERISK_CTI_URL)")
    p.add_argument("--user", help="ARI user (default $ASTERISK_CTI_USERNAME)")
    p.add_argument("--app", help="ARI application name (default $ASTERISK_CTI_APP)")
    p.add_argument("--insecure", action="store_true", help="do not verify TLS certificates")
    p.epilog = "The password is read from $ASTERISK_CTI_PASSWORD only, never from a flag."


def _cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    from .sim import AriSimulator, scenarios

    names = args.scenario or ["basic", "hold", "attended_transfer", "conference",
                              "blind_transfer", "busy", "no_answer", "queue"]
    unknown = [n for n in names if not callable(getattr(scenarios, n, None))]
    if unknown:
        raise ConfigurationError("scenario", f"unknown scenario(s): {', '.join(unknown)}")
    with AriSimulator(speed=args.speed) as sim:
        config = CtiConfig(url=sim.url, username=sim.username, password=sim.password,
                           app="asterisk-cti-demo")
        printer = _Printer(out)
        with CtiClient(config) as client:
            client.add_listener(printer)
            client.monitor("PJSIP")
            out.write(f"simulated Asterisk at {sim.url}; monitoring every PJSIP endpoint\n")
            for name in names:
                out.write(f"\n=== scenario: {name}\n")
                out.flush()
                getattr(scenarios, name)(sim)
                client.wait_idle(10)
        out.write(f"\n{printer.count} channel events delivered\n")
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for the documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="asterisk-cti", description="CTI for Asterisk over ARI: events, calls, control.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="log debug output and tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="run the scenarios on the embedded simulator")
    p.add_argument("--scenario", action="append", help="scenario to play (repeatable)")
    p.add_argument("--speed", type=float, default=8.0, help="simulated time speed-up")
    p.set_defaults(func=_cmd_demo)

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


def main(argv: Optional[Sequence[str]] = None, out: Optional[TextIO] = None) -> int:
    """Entry point of ``asterisk-cti``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stream = out or sys.stdout
    try:
        return int(args.func(args, stream))
    except KeyboardInterrupt:
        return 130
    except ConfigurationError as exc:
        if args.debug:
            raise
        sys.stderr.write(f"asterisk-cti: configuration error: {exc}\n")
        return 2
    except (AsteriskCtiError, OSError, ValueError) as exc:
        if args.debug:
            raise
        sys.stderr.write(f"asterisk-cti: {type(exc).__name__}: {exc}\n")
        return 1


def _argv() -> List[str]:
    return sys.argv[1:]


if __name__ == "__main__":
    sys.exit(main(_argv()))
