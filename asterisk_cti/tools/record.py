"""Raw ARI events: ``asterisk-cti events`` streams them, ``record`` captures them as JSON lines
(for bug reports) and ``replay`` plays such a recording through the SDK.

It uses the public API only (:mod:`asterisk_cti`, :mod:`asterisk_cti.testing`).

Threads: the ``run_*`` functions run on the caller's thread and block there;
:class:`EventPrinter` writes from the client's lane threads (a lock keeps lines whole).
"""

from __future__ import annotations

import json
import threading
from typing import Optional, Sequence, TextIO

from asterisk_cti import CallEvent, CallListener, ChannelEventListener, CtiClient, Event

from .session import TargetOptions, config_from
from .text import printable

__all__ = ["EventPrinter", "format_channel_event", "run_events", "run_record", "run_replay"]


def format_channel_event(event: Event) -> str:
    """One line for a raw event; every field comes from Asterisk (channel names, caller
    names, bridge names), so the whole line goes through :func:`~.text.printable`. Any
    thread."""
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


class EventPrinter(ChannelEventListener, CallListener):
    """Prints raw events, one line each (:func:`format_channel_event`, or the event exactly
    as received as one JSON object with ``as_json``), and in text mode the CTI events too.
    ``count`` counts the raw events printed. Lane threads; a lock keeps lines whole."""

    def __init__(self, out: TextIO, as_json: bool = False) -> None:
        self._out = out
        self._json = as_json
        self._lock = threading.Lock()
        self.count = 0

    def on_event(self, event: Event) -> None:
        if self._json:  # exact values; json.dumps escapes every control character itself
            line = json.dumps(event.raw, separators=(",", ":"))
        else:
            line = format_channel_event(event)
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


def run_events(out: TextIO, options: TargetOptions, lines: Sequence[str],
               types: Sequence[str] = (), as_json: bool = False,
               duration: Optional[float] = None) -> int:
    """``asterisk-cti events``: print the channel events (``types``; default the
    configuration's) of ``lines`` from a live Asterisk until ``duration`` (if not zero) has
    passed or Ctrl-C (exit code 130). Caller's thread; returns the exit code."""
    config = config_from(options)
    if types:
        config = config.replace(event_types=tuple(types))
    client = CtiClient(config, model=False)
    client.add_listener(EventPrinter(out, as_json=as_json))
    client.monitor(*lines)
    with client.start():
        out.write(f"# connected to {config.ari_url} as app {config.app}; Ctrl-C to stop\n")
        out.flush()
        try:
            threading.Event().wait(duration or None)
        except KeyboardInterrupt:
            return 130
    return 0


def run_record(out: TextIO, options: TargetOptions, path: str, lines: Sequence[str],
               duration: Optional[float] = None) -> int:
    """``asterisk-cti record``: write every raw event of ``lines`` to ``path`` as JSON lines
    until ``duration`` (if not zero) has passed or Ctrl-C, then the count to ``out``.
    Caller's thread; returns the exit code."""
    config = config_from(options).replace(event_types=("*",), server_filter=False)
    with open(path, "w", encoding="utf-8") as fh:
        printer = EventPrinter(fh, as_json=True)
        client = CtiClient(config, model=False)
        client.add_listener(printer)
        client.monitor(*lines)
        with client.start():
            out.write(f"# recording to {path}; Ctrl-C to stop\n")
            out.flush()
            try:
                threading.Event().wait(duration or None)
            except KeyboardInterrupt:
                pass
    out.write(f"# {printer.count} events recorded\n")
    return 0


def run_replay(out: TextIO, path: str, lines: Sequence[str] = (),
               application: Optional[str] = None, types: Sequence[str] = (),
               as_json: bool = False) -> int:
    """``asterisk-cti replay``: play the recording at ``path`` (only the frames of
    ``application``, if given) through the SDK against a fake Asterisk, monitoring ``lines``
    (default: every endpoint in it), and print what the listeners receive. Caller's thread;
    returns the exit code."""
    from asterisk_cti.testing import FakeAsterisk, load_trace, trace_endpoints

    frames = load_trace(path, application=application)
    endpoints = list(lines) or trace_endpoints(frames)
    fake = FakeAsterisk(endpoints=endpoints)
    config = fake.config(**({"event_types": tuple(types)} if types else {}))
    printer = EventPrinter(out, as_json=as_json)
    client = fake.client(config)
    client.add_listener(printer)
    client.monitor(*endpoints)
    with client.start():
        fake.replay(frames)
        fake.settle(client, 30)
    if not as_json:
        out.write(f"# {len(frames)} frames replayed, {printer.count} events delivered\n")
    return 0
