"""Screen-pop: do something once per incoming call when it rings at a line.

:class:`ScreenPop` is a :class:`~asterisk_cti.CallListener`. On ``delivered`` at one of its
lines (the call rings there; ``calling`` is the original caller, also when the call came
through a queue, a ring group or an IVR) it runs its actions, once per call and line: a call
that rings again at the same line (a queue ringing its members again) does not pop twice.

Actions (each built and validated at start-up, so a bad template fails before anything runs):

* :class:`UrlAction` opens a URL in the browser (``webbrowser``), or prints it when asked to
  or when there is no display. Values substituted into the URL are percent-encoded (every
  byte but letters, digits and ``_.-~``), and the template must begin with a literal
  ``http://`` or ``https://`` scheme and host: a field can never choose the scheme, the
  host or an option of the browser command.
* :class:`CommandAction` runs a program with ``subprocess``: the template is split into an
  argument list with ``shlex.split`` first, then each argument is formatted. No shell, so a
  caller name such as ``; rm -rf ~`` stays one harmless argument, and a value never splits
  into several arguments. A value is never taken as an option: an argument that *begins*
  with a field and would begin with ``-`` gets a space in front (``" --output=x"``), unless
  the template has a ``--`` argument before it (then it is passed verbatim). A template
  that puts a field inside the script of a shell or interpreter (``sh -c '... {field}'``,
  ``python -c``, ``perl -e``) is refused: pass the value as its own argument instead.
* :class:`PostAction` posts the event (:func:`~asterisk_cti.tools.events.event_to_dict`) as
  JSON to a webhook with ``requests``. Redirects are not followed (the event and any token
  in the URL go to the configured host only); credentials and tokens in the URL are
  redacted in logs, reprs and error messages (:func:`~asterisk_cti.tools.text.redact_url`).
* :class:`MessageAction` writes a formatted line (the demo's ``SCREEN-POP ...`` lines), with
  control characters shown escaped (:func:`~asterisk_cti.tools.text.printable`).

Templates use ``{field}`` with the fields of
:data:`~asterisk_cti.tools.events.TEMPLATE_FIELDS`: ``{calling.number}``,
``{calling.name}``, ``{called.number}``, ``{line}``, ``{call_id}``, ``{queue}`` (the queue the
call came from), ... and ``{data.KEY}`` for an item of the call data (``{data.account}``; a
key the call does not have renders empty). ``{{`` and ``}}`` are literal braces. Call data
is set by whoever can set a channel variable: its values are substituted like any other
(percent-encoded in URLs, one argument of a command, escaped in messages).

Threads: ``on_delivered`` and ``on_call_cleared`` run on a dispatcher lane thread and never
block: they only queue the pop. The actions run on the screen-pop's own bounded pool
(``asterisk-cti-screenpop_N``, ``workers`` threads, at most ``max_pending`` queued pops;
beyond that a pop is dropped with a warning). :meth:`ScreenPop.close` (caller's thread) waits
for the queued pops and stops the pool.
"""

from __future__ import annotations

import collections
import logging
import os
import shlex
import string
import subprocess
import sys
import threading
import urllib.parse
import webbrowser
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional, Sequence, TextIO, Tuple

import requests

from asterisk_cti import CallEvent, CallListener, ConfigurationError, CtiClient, Direction

from .events import TEMPLATE_FIELDS, event_fields, event_to_dict, is_data_field
from .session import TargetOptions, Writer, command_target, run_until_done
from .text import printable, redact_text, redact_url

__all__ = [
    "Action",
    "CommandAction",
    "MessageAction",
    "PostAction",
    "ScreenPop",
    "Template",
    "UrlAction",
    "build_actions",
    "has_display",
    "run_screenpop",
]

logger = logging.getLogger(__name__)

Sink = Callable[[str], None]


class Template:
    """A ``{field}`` template over the fields of a CTI event, validated on creation.

    :param text: the template.
    :param option: the option it came from, for error messages (``--url``).
    :param quote: applied to each substituted value (``urllib.parse.quote`` for URLs).
    :raises ConfigurationError: an unknown field, a positional ``{}``, an attribute or item
        access (``{calling.__class__}``, ``{calling[0]}``), a conversion (``!r``), a format
        spec (``:>10``) or unbalanced braces; the message lists the allowed fields.

    Fields are looked up by their whole name in a dictionary of strings, never with
    ``str.format``, so a template cannot reach attributes of Python objects.
    """

    def __init__(self, text: str, option: str = "template",
                 quote: Optional[Callable[[str], str]] = None) -> None:
        self.text = text
        self._quote = quote
        self._parts: List[Tuple[str, Optional[str]]] = []
        # a URL template may hold a token: errors and the repr show it redacted
        shown_text = redact_url(text) if quote is not None else text
        self._shown = shown_text
        allowed = ", ".join("{" + f + "}" for f in TEMPLATE_FIELDS) + ", {data.KEY}"
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise ConfigurationError(option, f"bad template {shown_text!r}: {exc}") from None
        for literal, field, spec, conversion in parsed:
            if literal:
                self._parts.append((literal, None))
            if field is None:
                continue
            if field not in TEMPLATE_FIELDS and not is_data_field(field):
                shown = "{" + field + "}" if field else "{}"
                raise ConfigurationError(
                    option, f"unknown field {shown} in {shown_text!r}; allowed: {allowed}")
            if spec or conversion:
                raise ConfigurationError(
                    option, f"{{{field}}} in {shown_text!r} takes no format spec or conversion")
            self._parts.append(("", field))

    @property
    def fields(self) -> Tuple[str, ...]:
        """The fields the template uses."""
        return tuple(f for _, f in self._parts if f is not None)

    def render(self, values: Dict[str, str]) -> str:
        """The text with every field replaced (and quoted when a ``quote`` was given).

        Values are inserted verbatim (no second formatting pass). Pure; any thread."""
        out: List[str] = []
        for literal, field in self._parts:
            if field is None:
                out.append(literal)
            else:
                value = values.get(field, "")
                out.append(self._quote(value) if self._quote is not None else value)
        return "".join(out)

    def __repr__(self) -> str:
        return f"Template({self._shown!r})"


def has_display() -> bool:
    """Whether a browser window can be opened: always on macOS and Windows, on other systems
    when ``DISPLAY`` or ``WAYLAND_DISPLAY`` is set."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class Action:
    """One thing a screen-pop does. :meth:`run` runs on a screen-pop pool thread."""

    name = "action"

    def run(self, event: CallEvent, fields: Dict[str, str]) -> None:
        """Do it for ``event`` (``fields`` are its template fields). Pool thread."""
        raise NotImplementedError


class MessageAction(Action):
    """Write ``template`` formatted as one line to ``sink`` (a stream writer, or
    :meth:`Monitor.note <asterisk_cti.tools.monitor.Monitor.note>`)."""

    name = "message"

    def __init__(self, template: str, sink: Sink, option: str = "--message") -> None:
        self.template = Template(template, option)
        self._sink = sink

    def run(self, event: CallEvent, fields: Dict[str, str]) -> None:
        """Write the line (control characters shown escaped). Pool thread."""
        self._sink(printable(self.template.render(fields)))


def _quote_url_value(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _check_url_prefix(text: str, template: Template) -> None:
    """A URL template must fix its scheme and host before any field: ``{calling.name}`` alone
    would let a caller choose a ``file:`` or ``javascript:`` URL, another host, or a value
    starting with ``-`` that a browser command takes as an option."""
    head = text.split("{", 1)[0] if template.fields else text
    parts = urllib.parse.urlsplit(head.replace("{{", "{"))
    rest = head.split("//", 1)[1] if "//" in head else ""
    ok = parts.scheme in ("http", "https") and bool(parts.netloc)
    if ok and template.fields:
        ok = any(c in rest for c in "/?#")  # the host is complete before the first field
    if not ok:
        raise ConfigurationError(
            "--url", f"{redact_url(text)!r} must begin with http:// or https:// and a host "
                     "without fields (https://crm.example/pop?n={calling.number})")


class UrlAction(Action):
    """Open ``template`` (values URL-encoded) in the browser with :func:`webbrowser.open`, or
    write ``SCREEN-POP <line>: <url>`` to ``sink`` when ``print_only`` is true, when there is
    no display, or when no browser could be started."""

    name = "url"

    def __init__(self, template: str, sink: Sink, print_only: bool = False,
                 opener: Callable[[str], bool] = webbrowser.open) -> None:
        self.template = Template(template, "--url", quote=_quote_url_value)
        _check_url_prefix(template, self.template)
        self._sink = sink
        self._print = print_only or not has_display()
        self._opener = opener

    def run(self, event: CallEvent, fields: Dict[str, str]) -> None:
        """Open or print the URL. Pool thread (a browser start may block)."""
        url = self.template.render(fields)
        if not self._print:
            try:
                if self._opener(url):
                    logger.info("screen-pop %s: opened %s", printable(event.line),
                                redact_url(url))
                    return
            except webbrowser.Error as exc:
                logger.warning("no browser could open %s: %s", redact_url(url),
                               printable(redact_text(str(exc), [url])))
        self._sink(printable(f"SCREEN-POP {event.line}: {url}"))

    def __repr__(self) -> str:
        return f"UrlAction({self.template._shown!r})"


#: Interpreters whose script argument (after the option) must not contain fields.
_SCRIPT_OPTIONS = {
    "sh": "c", "bash": "c", "dash": "c", "zsh": "c", "ksh": "c", "mksh": "c", "ash": "c",
    "fish": "c", "csh": "c", "tcsh": "c", "busybox": "c", "python": "c", "pypy": "c",
    "perl": "e", "ruby": "e", "node": "e", "php": "r", "osascript": "e",
    "powershell": "c", "pwsh": "c", "cmd": "c",
}


def _interpreter_letter(program: str) -> Optional[str]:
    name = os.path.basename(program).lower()
    for suffix in (".exe",):
        name = name[: -len(suffix)] if name.endswith(suffix) else name
    name = name.rstrip("0123456789.")  # python3.12, perl5
    return _SCRIPT_OPTIONS.get(name)


class CommandAction(Action):
    """Run a program: ``shlex.split(template)`` gives the argument list, then each argument
    is formatted on its own (no shell), so a value is always exactly one argument. Output
    goes to this process's stdout/stderr; the program gets ``timeout`` seconds, a non-zero
    exit status is logged as a warning.

    Caller-controlled values are never options: an argument that begins with a field and
    whose value begins with ``-`` is passed with a space in front (``" --output=x"``),
    unless a ``--`` argument comes before it in the template (then it is passed verbatim:
    the program ends its options there). A NUL character (impossible in an argument) becomes U+FFFD.

    :raises ConfigurationError: the template cannot be split, is empty, names a field in
        the program, or puts a field inside the script of a shell or interpreter
        (``sh -c 'echo {calling.name}'``: pass ``sh -c 'echo "$1"' sh {calling.name}``).
    """

    name = "command"

    def __init__(self, template: str, timeout: float = 30.0) -> None:
        try:
            args = shlex.split(template)
        except ValueError as exc:
            raise ConfigurationError("--command", f"cannot split {template!r}: {exc}") from None
        if not args:
            raise ConfigurationError("--command", "is empty")
        self.args = [Template(a, "--command") for a in args]
        if self.args[0].fields:
            raise ConfigurationError("--command", "the program name must not contain fields")
        letter = _interpreter_letter(args[0])
        if letter is not None:
            for option, script in zip(self.args[1:], self.args[2:]):
                text = option.text
                is_script_option = (text.startswith("-") and not text.startswith("--")
                                    and letter in text[1:])
                if is_script_option and script.fields:
                    raise ConfigurationError(
                        "--command", f"{{{script.fields[0]}}} inside the {args[0]} {text} "
                        f"script would be run as code; pass it as its own argument, e.g. "
                        f"sh -c 'notify-send \"$1\"' sh {{{script.fields[0]}}}")
        # arguments at or after a literal "--" are past the program's options
        self._verbatim_from = next(
            (i for i, a in enumerate(args) if a == "--" and i > 0), len(args))
        self.timeout = timeout

    def argv(self, fields: Dict[str, str]) -> List[str]:
        """The argument list for an event's fields (see the class documentation for the
        rule that keeps values from being options). Pure; any thread."""
        out: List[str] = []
        for index, template in enumerate(self.args):
            text = template.render(fields).replace("\0", "\ufffd")
            leads = bool(template._parts) and template._parts[0][1] is not None
            if leads and index > self._verbatim_from:
                out.append(text)
            elif leads and text.startswith("-"):
                out.append(" " + text)
            else:
                out.append(text)
        return out

    def run(self, event: CallEvent, fields: Dict[str, str]) -> None:
        """Run the program and wait for it (bounded by ``timeout``). Pool thread."""
        argv = self.argv(fields)
        try:
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, timeout=self.timeout,
                                  check=False)
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            logger.warning("screen-pop command %s failed: %s", argv[0], printable(str(exc)))
            return
        if done.returncode != 0:
            logger.warning("screen-pop command %s exited with %s", argv[0], done.returncode)


class PostAction(Action):
    """POST the event dict as JSON to ``url`` (``requests``, ``timeout`` seconds). A failed
    request or a non-2xx answer is logged as a warning. A redirect is not followed (it is
    logged with its redacted ``Location``): the event and any credentials or token in the URL
    go to the configured host only. The URL's credentials (``user:pass@``) and secret query
    parameters (``token``, ``key``, ``sig``, ...) are redacted (:func:`redact_url
    <asterisk_cti.tools.text.redact_url>`) in every log, repr and error message."""

    name = "post"

    def __init__(self, url: str, timeout: float = 10.0,
                 session: Optional[requests.Session] = None) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(
                "--post", f"{redact_url(url)!r} is not an http:// or https:// URL")
        self.url = url
        self.timeout = timeout
        self._session = session or requests.Session()
        self._lock = threading.Lock()

    def run(self, event: CallEvent, fields: Dict[str, str]) -> None:
        """Send the POST and wait for the answer. Pool thread."""
        body = event_to_dict(event)
        try:
            with self._lock:  # a Session is not guaranteed thread-safe
                resp = self._session.post(self.url, json=body, timeout=self.timeout,
                                          allow_redirects=False)
                resp.close()
        except requests.RequestException as exc:
            logger.warning("screen-pop POST to %s failed: %s", self.display_url,
                           printable(redact_text(str(exc), [self.url])))
            return
        if resp.is_redirect:
            location = resp.headers.get("Location", "")
            logger.warning("screen-pop POST to %s answered %s (redirect to %s, not followed)",
                           self.display_url, resp.status_code, printable(redact_url(location)))
        elif not 200 <= resp.status_code < 300:
            logger.warning("screen-pop POST to %s answered %s", self.display_url,
                           resp.status_code)

    @property
    def display_url(self) -> str:
        """The URL with credentials and tokens redacted, for logs and messages."""
        return redact_url(self.url)

    def __repr__(self) -> str:
        return f"PostAction({self.display_url!r})"

    def close(self) -> None:
        """Close the HTTP session. Caller's thread."""
        self._session.close()


class ScreenPop(CallListener):
    """Runs ``actions`` once per incoming call ringing at one of ``lines``.

    :param actions: what to do (built and validated beforehand).
    :param lines: endpoints (``PJSIP/1002``) or technologies (``PJSIP``); empty: every line
        the client reports.
    :param workers: threads of the action pool.
    :param max_pending: pops queued or running at most; more are dropped with a warning.
    :param remember: how many (line, call) pairs are remembered to pop only once (the
        pair is forgotten when the call is cleared at the line).

    See the module documentation for the threads. ``pops`` counts the pops started.
    """

    def __init__(self, actions: Sequence[Action], lines: Sequence[str] = (), *,
                 workers: int = 2, max_pending: int = 64, remember: int = 10000) -> None:
        if not actions:
            raise ConfigurationError("screenpop", "needs at least one action")
        self.actions = tuple(actions)
        self.lines = tuple(lines)
        self._slots = threading.BoundedSemaphore(max_pending)
        self._seen: collections.OrderedDict[Tuple[str, str], None] = collections.OrderedDict()
        self._remember = remember
        self._lock = threading.Lock()
        self._pool: Optional[ThreadPoolExecutor] = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="asterisk-cti-screenpop")
        self.pops = 0
        self.dropped = 0

    def _wanted(self, line: str) -> bool:
        if not self.lines:
            return True
        return any(line == f or line.startswith(f + "/") for f in self.lines)

    def on_delivered(self, event: CallEvent) -> None:
        """A call rings at a line: queue the pop unless this call already popped there.
        Lane thread; does not block."""
        if not self._wanted(event.line) or event.direction is Direction.OUTGOING:
            return
        key = (event.line, event.call_id)
        with self._lock:
            if key in self._seen or self._pool is None:
                return
            self._seen[key] = None
            while len(self._seen) > self._remember:
                self._seen.popitem(last=False)
            if not self._slots.acquire(blocking=False):
                self.dropped += 1
                logger.warning("screen-pop for %s dropped: %s pops pending", printable(event.line),
                               "too many")
                return
            self.pops += 1
            future: Future[None] = self._pool.submit(self._pop, event)
        future.add_done_callback(self._release)

    def on_call_cleared(self, event: CallEvent) -> None:
        """The call left the line: a later call with the same id may pop again. Lane
        thread."""
        with self._lock:
            self._seen.pop((event.line, event.call_id), None)

    def _release(self, _future: Future[None]) -> None:
        self._slots.release()

    def _pop(self, event: CallEvent) -> None:
        fields = event_fields(event)
        for action in self.actions:
            try:
                action.run(event, fields)
            except Exception:
                logger.exception("screen-pop action %s failed for %s", action.name,
                                 printable(event.line))

    def close(self, wait: bool = True) -> None:
        """Stop taking pops, let the queued ones finish (``wait``) and stop the pool threads.
        Idempotent; caller's thread (not a pool thread)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait)
        for action in self.actions:
            close: Any = getattr(action, "close", None)
            if callable(close):
                close()


def build_actions(write: Sink, *, message: Optional[str] = None,
                  url: Optional[str] = None, print_only: bool = False,
                  command: Optional[str] = None, post: Optional[str] = None,
                  timeout: float = 10.0) -> List[Action]:
    """The actions of ``asterisk-cti screenpop``, built and validated (a
    :class:`ConfigurationError` before anything connects): ``message`` and a printed ``url``
    go to ``write``; ``timeout`` bounds a ``command`` or a ``post``. Caller's thread."""
    actions: List[Action] = []
    if message:
        actions.append(MessageAction(message, write))
    if url:
        actions.append(UrlAction(url, write, print_only=print_only))
    elif print_only:
        raise ConfigurationError("--print", "goes with --url")
    if command:
        actions.append(CommandAction(command, timeout=timeout))
    if post:
        actions.append(PostAction(post, timeout=timeout))
    if not actions:
        raise ConfigurationError("screenpop", "give --url, --command, --post or --message")
    return actions


def run_screenpop(out: TextIO, options: TargetOptions, lines: Sequence[str],
                  duration: Optional[float], *, message: Optional[str] = None,
                  url: Optional[str] = None, print_only: bool = False,
                  command: Optional[str] = None, post: Optional[str] = None,
                  action_timeout: float = 10.0) -> int:
    """``asterisk-cti screenpop``: run the actions (see :func:`build_actions`; validated
    before anything connects) once per incoming call at ``lines`` until ``duration`` has
    passed, the ``--play`` scenarios are over or Ctrl-C. Caller's thread; returns the exit
    code."""
    if action_timeout <= 0:
        raise ConfigurationError("--action-timeout", "must be positive")
    write = Writer(out)
    actions = build_actions(write, message=message, url=url, print_only=print_only,
                            command=command, post=post, timeout=action_timeout)
    with command_target(options, write, "screenpop") as target:
        client = CtiClient(target.config)
        pop = ScreenPop(actions, lines)
        client.add_listener(pop)
        client.monitor(*lines)
        try:
            with client:
                write(f"# screen-pop on {', '.join(lines)} "
                      f"({', '.join(a.name for a in actions)}); Ctrl-C to stop")
                run_until_done(target, options, client, duration,
                               lambda name: write(f"=== scenario: {name}"))
        finally:
            pop.close()
        write(f"# {pop.pops} screen-pops")
    return 0
