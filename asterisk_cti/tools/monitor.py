"""A live monitor of lines: a table redrawn in place on a terminal, a log line per CTI event
elsewhere, or CTI events as JSON lines.

:class:`Monitor` is a :class:`~asterisk_cti.CallListener`. Register it with
:meth:`CtiClient.add_listener <asterisk_cti.CtiClient.add_listener>` and give it a callable
that returns line snapshots (``lambda: client.lines``)::

    monitor = Monitor(lambda: client.lines, sys.stdout)      # mode "auto"
    client.add_listener(monitor)
    monitor.start()
    try:
        ...
    finally:
        monitor.close()

Threads: the listener methods run on the client's dispatcher lane threads. In ``lines`` and
``json`` modes they write the event to the stream at once (a lock keeps lines whole). In
``table`` mode they only record the event and wake the render thread
(``asterisk-cti-monitor``), which redraws at most ``max_rate`` times per second and once a
second anyway (call durations tick). :meth:`start` and :meth:`close` run on the caller's
thread; :meth:`close` draws the table one last time, restores the cursor and joins the render
thread. :meth:`note` (an extra line such as a screen-pop) may be called from any thread.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import sys
import threading
import time
from typing import Callable, Deque, List, Optional, Sequence, TextIO, Tuple

from asterisk_cti import CallEvent, CallListener, Connection, CtiClient, Line, Party, PhoneState

from .events import event_to_dict, format_event
from .session import TargetOptions, Writer, command_target, run_until_done
from .text import printable

__all__ = ["MODES", "Monitor", "render_table", "run_monitor"]

logger = logging.getLogger(__name__)

#: Output modes of :class:`Monitor`.
MODES = ("auto", "table", "lines", "json")

#: ANSI sequences used by the table mode.
HOME = "\x1b[H"
CLEAR_SCREEN = "\x1b[2J"
CLEAR_EOL = "\x1b[K"
CLEAR_BELOW = "\x1b[J"
HIDE_CURSOR = "\x1b[?25l"
SHOW_CURSOR = "\x1b[?25h"
RESET = "\x1b[0m"

_RANK = {
    PhoneState.CONNECTED: 7, PhoneState.RINGING: 6, PhoneState.RINGBACK: 5,
    PhoneState.DIALING: 4, PhoneState.HELD: 3, PhoneState.FAILED: 2,
    PhoneState.DISCONNECTED: 1, PhoneState.IDLE: 0,
}

_HEADER = ("LINE", "REG", "STATE", "PARTY", "NAME", "TIME", "TALK", "HELD", "CALLS")
_WIDTHS = (14, 8, 10, 14, 16, 7, 5, 5, 5)


def _main_connection(line: Line) -> Optional[Connection]:
    best: Optional[Connection] = None
    for conn in line.connections:
        if best is None or _RANK[conn.phone_state] > _RANK[best.phone_state]:
            best = conn
    return best


def _party_of(conn: Connection) -> Party:
    if conn.phone_state is PhoneState.RINGING:
        return conn.calling or conn.connected
    return conn.connected or conn.called or conn.calling


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    return f"{seconds // 60}:{seconds % 60:02d}"


def _row(cells: Sequence[str]) -> str:
    return " ".join(f"{printable(c):<{w}}" for c, w in zip(cells, _WIDTHS)).rstrip()


def render_table(lines: Sequence[Line], now: float) -> List[str]:
    """The monitor table for line snapshots at wall-clock time ``now`` (epoch seconds).

    One header row, then one row per line (sorted by name): the registration, the phone state
    in capitals (``RINGING``, ``CONNECTED``, ``HELD``, ...), the party (the caller while
    ringing, the connected party otherwise) as number and name, the time since the call was
    answered (since it started while not answered), ``yes`` when talking, ``yes`` when held,
    and the number of calls at the line. Control characters in any cell (a hostile caller
    name) are shown escaped (:func:`~asterisk_cti.tools.text.printable`). Pure; any thread.
    """
    rows = [_row(_HEADER)]
    for line in sorted(lines, key=lambda ln: ln.name):
        conn = _main_connection(line)
        state = line.phone_state.value.upper()
        if conn is None:
            rows.append(_row((line.name, line.registration, state, "", "", "", "", "", "")))
            continue
        party = _party_of(conn)
        since = conn.answer_time if conn.answer_time is not None else conn.start_time
        held = any(c.held for c in line.connections)
        rows.append(_row((
            line.name, line.registration, state, party.number, party.name,
            _duration(now - since) if since else "",
            "yes" if conn.talking else "-", "yes" if held else "-",
            str(len(line.call_ids)),
        )))
    return rows


def _terminal_size(out: TextIO) -> Tuple[int, int]:
    try:
        size = os.get_terminal_size(out.fileno())
        cols, rows = size.columns, size.lines
    except (OSError, ValueError, AttributeError):
        cols, rows = 0, 0
    return (cols if cols > 0 else 100, rows if rows > 0 else 30)


class Monitor(CallListener):
    """The live line monitor (see the module documentation for the threads).

    :param lines: returns the current line snapshots (``lambda: client.lines``); called on
        the render thread only.
    :param out: where to write (a terminal for ``table``).
    :param mode: ``auto`` (``table`` when ``out`` is a terminal, else ``lines``), ``table``,
        ``lines`` (one line per CTI event) or ``json`` (one :func:`event_to_dict
        <asterisk_cti.tools.events.event_to_dict>` object per line).
    :param title: the first row of the table.
    :param max_rate: at most this many redraws per second.
    :param recent: how many recent event lines and notes the table shows under the lines.
    :param lines_filter: show only these lines (endpoints ``PJSIP/1000`` or technologies
        ``PJSIP``); all when empty.
    :param clock: wall-clock time for durations (epoch seconds).
    """

    def __init__(self, lines: Callable[[], Sequence[Line]], out: TextIO, *, mode: str = "auto",
                 title: str = "asterisk-cti monitor", max_rate: float = 10.0, recent: int = 8,
                 lines_filter: Sequence[str] = (),
                 clock: Callable[[], float] = time.time) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        if mode == "auto":
            isatty = getattr(out, "isatty", None)
            mode = "table" if callable(isatty) and isatty() else "lines"
        if max_rate <= 0:
            raise ValueError("max_rate must be positive")
        self.mode = mode
        self._lines = lines
        self._out = out
        self._title = title
        self._interval = 1.0 / max_rate
        self._clock = clock
        self._filter = tuple(lines_filter)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._recent: Deque[str] = collections.deque(maxlen=max(0, recent))
        self._dirty = True
        self._stopping = False
        self._thread: Optional[threading.Thread] = None
        self._started = False
        #: CTI events shown so far; redraws done so far (``table`` mode).
        self.events = 0
        self.redraws = 0

    # -- life cycle (caller's thread) --------------------------------------------------------

    def start(self) -> Monitor:
        """Start rendering. In ``table`` mode this hides the cursor, clears the screen and
        starts the render thread; the other modes have nothing to start. Caller's thread."""
        with self._lock:
            if self._started:
                return self
            self._started = True
            self._stopping = False
        if self.mode == "table":
            self._write(HIDE_CURSOR + CLEAR_SCREEN + HOME)
            thread = threading.Thread(target=self._run, name="asterisk-cti-monitor", daemon=True)
            self._thread = thread
            thread.start()
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Stop rendering: the table is drawn a last time (left on the screen), the cursor
        shown again and the render thread joined. Idempotent; caller's thread."""
        with self._lock:
            if not self._started:
                return
            self._started = False
            self._stopping = True
            self._wake.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        if self.mode == "table":
            try:
                self._draw()
            finally:
                self._write(RESET + SHOW_CURSOR)

    def __enter__(self) -> Monitor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- input (lane threads, any thread) ----------------------------------------------------

    def _wanted(self, line: str) -> bool:
        if not self._filter:
            return True
        return any(line == f or line.startswith(f + "/") for f in self._filter)

    def on_call_event(self, event: CallEvent) -> None:
        """Every CTI event: written at once (``lines``/``json``), or recorded for the next
        redraw (``table``). Runs on a dispatcher lane thread."""
        if not self._wanted(event.line):
            return
        if self.mode == "json":
            self._emit(json.dumps(event_to_dict(event), separators=(",", ":")), count=True)
            return
        text = format_event(event)
        if self.mode == "lines":
            self._emit(text, count=True)
            return
        with self._lock:
            self.events += 1
            self._recent.append(text)
            self._dirty = True
            self._wake.notify_all()

    def note(self, text: str) -> None:
        """Show an extra line (a screen-pop, a scenario title): written at once in ``lines``
        mode, listed with the recent events in ``table`` mode, logged at info level in
        ``json`` mode (it would break the JSON stream). Any thread."""
        text = printable(text)
        if self.mode == "json":
            logger.info("%s", text)
        elif self.mode == "lines":
            self._emit(text)
        else:
            with self._lock:
                self._recent.append(text)
                self._dirty = True
                self._wake.notify_all()

    def refresh(self) -> None:
        """Ask for a redraw (``table`` mode) even without a new event. Any thread."""
        with self._lock:
            self._dirty = True
            self._wake.notify_all()

    # -- output ------------------------------------------------------------------------------

    def _emit(self, text: str, count: bool = False) -> None:
        text = printable(text)  # a no-op on JSON (json.dumps escapes control characters)
        with self._lock:
            if count:
                self.events += 1
            self._out.write(text + "\n")
            self._out.flush()

    def _write(self, text: str) -> None:
        with self._lock:
            self._out.write(text)
            self._out.flush()

    def frame(self) -> List[str]:
        """The rows of the table as the next redraw would show them, free of control
        characters (the redraw adds its own cursor sequences after them). Any thread (it
        reads line snapshots)."""
        now = self._clock()
        shown = [ln for ln in self._lines() if self._wanted(ln.name)]
        title = printable(self._title)
        rows = [f"{title}   {time.strftime('%H:%M:%S', time.localtime(now))}", ""]
        rows += render_table(shown, now)
        with self._lock:
            recent = list(self._recent)
        if recent:
            rows += ["", "recent:"] + [f"  {r}" for r in recent]
        return rows

    def _draw(self) -> None:
        cols, height = _terminal_size(self._out)
        rows = [r[:cols] for r in self.frame()][: max(1, height - 1)]
        text = HOME + "".join(r + CLEAR_EOL + "\n" for r in rows) + CLEAR_BELOW
        with self._lock:
            self.redraws += 1
            self._out.write(text)
            self._out.flush()

    def _run(self) -> None:
        """The render thread (``asterisk-cti-monitor``): redraw when something changed, at
        most ``max_rate`` times a second, and at least once a second."""
        last = 0.0
        while True:
            with self._lock:
                if not self._dirty and not self._stopping:
                    self._wake.wait(1.0)
                if self._stopping:
                    return
                self._dirty = False
            wait = last + self._interval - time.monotonic()
            if wait > 0:
                with self._lock:
                    if self._wake.wait_for(lambda: self._stopping, wait):
                        return
            try:
                self._draw()
            except (OSError, ValueError):
                logger.warning("monitor output failed; rendering stopped", exc_info=True)
                return
            last = time.monotonic()


def run_monitor(out: TextIO, options: TargetOptions, sources: Sequence[str], mode: str,
                duration: Optional[float]) -> int:
    """``asterisk-cti monitor``: show ``sources`` (endpoints or technologies) on ``out`` in
    ``mode`` until ``duration`` has passed, the ``--play`` scenarios are over or Ctrl-C;
    comments go to stderr in ``json`` mode. Caller's thread; returns the exit code."""
    info = Writer(sys.stderr if mode == "json" else out)
    with command_target(options, info, "monitor") as target:
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
                run_until_done(target, options, client, duration,
                               lambda name: monitor.note(f"=== scenario: {name}"))
        finally:
            monitor.close()
    return 0
