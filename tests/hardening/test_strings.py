"""Issue 10, class 10: caller-controlled strings are data.

A caller's name and number, channel names, dialplan fields and bridge names come from a
possibly hostile peer. They must never act on the terminal (monitor, screenpop, events,
replay), never become options of a ``--command`` program or code of an interpreter, never
escape their place in a URL, and a webhook's credentials never reach a log line.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asterisk_cti import (
    AsteriskCtiError,
    CallEvent,
    ConfigurationError,
    ConnectionState,
    CtiClient,
    CtiConfig,
    Direction,
    Party,
    PhoneState,
)
from asterisk_cti.cli import _SafeFormatter, main
from asterisk_cti.testing import FakeAsterisk, load_trace
from asterisk_cti.tools import (
    CommandAction,
    MessageAction,
    Monitor,
    PostAction,
    Template,
    UrlAction,
    event_fields,
    format_event,
    render_table,
)
from asterisk_cti.tools.record import EventPrinter
from asterisk_cti.tools.text import printable, redact_text, redact_url
from tests.conftest import traces_dir

#: Every character that must never reach a terminal raw (defined here, not imported, so the
#: test checks the helper against the requirement and not against itself).
UNSAFE = ({chr(c) for c in range(0x20)} | {"\x7f"} | {chr(c) for c in range(0x80, 0xa0)}
          | {chr(c) for c in range(0x202a, 0x202f)} | {chr(c) for c in range(0x2066, 0x206a)})

#: Also escaped (directional marks, line and paragraph separators), beyond the requirement.
ESCAPED = UNSAFE | {"\u200e", "\u200f", "\u2028", "\u2029"}

#: A caller name as an attacker would send it: set the window title, clear the screen, colour,
#: the 8-bit CSI, a right-to-left override, DEL, NUL, a fake new line, a bidi isolate.
HOSTILE = ("\x1b]0;pwned\x07\x1b[2J\x1b[31mEvil\u202eeman\x9b1m\x7f\x00\n"
           "12:00:00.000  PJSIP/9999 fake line\r\t\u2066x\u2069")


def _raw_unsafe(text: str) -> List[str]:
    return sorted({c for c in text if c in UNSAFE}, key=ord)


def _event(name: str = "Kai", number: str = "1000", line: str = "PJSIP/1002") -> CallEvent:
    from asterisk_cti.model import EventKind
    from asterisk_cti.model.types import Reason

    return CallEvent(
        kind=EventKind("delivered"), line=line, call_id="k1", connection_id=f"k1-{line}",
        state=ConnectionState.ALERTING, previous_state=ConnectionState.NULL,
        phone_state=PhoneState.RINGING, direction=Direction.INCOMING,
        calling=Party(number, name), called=Party("1002", ""), connected=Party(number, name),
        cause=0, dialstatus="", reason=Reason.NORMAL, timestamp=1795665211.25, raw=(),
        talking=False, held=False)


# -- the shared helper ---------------------------------------------------------------------


@pytest.mark.parametrize("char, shown", [
    ("\x1b", "\\x1b"), ("\x00", "\\x00"), ("\x07", "\\x07"), ("\n", "\\n"), ("\r", "\\r"),
    ("\t", "\\t"), ("\x7f", "\\x7f"), ("\x9b", "\\x9b"), ("\x85", "\\x85"),
    ("\u202a", "\\u202a"), ("\u202e", "\\u202e"), ("\u2066", "\\u2066"),
    ("\u2069", "\\u2069"), ("\u2028", "\\u2028"),
])
def test_strings_printable_escapes_each_class_visibly(char: str, shown: str) -> None:
    assert printable(f"a{char}b") == f"a{shown}b"


def test_strings_printable_leaves_no_unsafe_character_and_is_idempotent() -> None:
    every = "".join(sorted(UNSAFE)) + HOSTILE
    once = printable(every)
    assert _raw_unsafe(once) == []
    assert printable(once) == once
    assert "\\x1b]0;pwned\\x07" in printable(HOSTILE)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=60))
def test_strings_printable_property_any_text(text: str) -> None:
    shown = printable(text)
    assert _raw_unsafe(shown) == []
    assert printable(shown) == shown
    rest = iter(shown)                    # every safe character is kept, in order
    assert all(any(c == d for d in rest) for c in text if c not in ESCAPED)
    # each escaped character became one visible escape (a backslash sequence)
    assert shown.count("\\") == text.count("\\") + sum(c in ESCAPED for c in text)


def test_strings_printable_keeps_names_of_any_script() -> None:
    names = "Jürgen Łukasz Ñandú Ωμέγα Иван 李小龙 محمد שלום 👩‍💻 O'Brien \"Bob\" back\\slash"
    assert printable(names) == names


# -- monitor, screenpop, events and replay output --------------------------------------------


def test_strings_format_event_escapes_name_number_and_line() -> None:
    text = format_event(_event(name=HOSTILE, number="\x1b[8m1000", line="PJSIP/1002\x1b[2J"))
    assert _raw_unsafe(text) == []
    assert "\\x1b[8m1000" in text and "PJSIP/1002\\x1b[2J" in text
    assert "\n" not in text and "\\n12:00:00.000  PJSIP/9999 fake line" in text


def _hostile_trace(tmp_path: Path, trace: str = "basic.jsonl",
                   application: Optional[str] = "cti-rec") -> Path:
    """A trace with the caller's name, the cause text and the bridge technology hostile
    (JSON-escaped in the file, as Asterisk would send them)."""
    frames = load_trace(traces_dir() / trace, application=application)
    text = "\n".join(json.dumps(f) for f in frames)
    text = text.replace('"Kai"', json.dumps(HOSTILE))
    text = text.replace('"Normal Clearing"', json.dumps("Normal\x1b[2J\u202eClearing"))
    text = text.replace('"simple_bridge"', json.dumps("simple\x9b2Jbridge"))
    path = tmp_path / "hostile.jsonl"
    path.write_text(text + "\n", encoding="utf-8")
    return path


def test_strings_replay_text_output_escapes_hostile_strings(tmp_path: Path) -> None:
    out = io.StringIO()
    assert main(["replay", str(_hostile_trace(tmp_path))], out=out) == 0
    text = out.getvalue()
    assert _raw_unsafe(text.replace("\n", "")) == []
    # one line per event: the hostile name's newline did not forge a line
    assert not any(line.startswith("12:00:00.000  PJSIP/9999") for line in text.splitlines())
    assert "cause 16 Normal\\x1b[2J\\u202eClearing" in text
    assert "\\x1b]0;pwned\\x07" in text                       # the CTI lines show the name
    assert "# 82 frames replayed" in text


def test_strings_replay_text_output_escapes_hostile_bridge_names(tmp_path: Path) -> None:
    out = io.StringIO()
    # the bridge events of this trace went to the controlling application (cti-ctl)
    trace = _hostile_trace(tmp_path, "stasis_control.jsonl", application=None)
    assert main(["replay", str(trace), "--types", "ChannelEnteredBridge,ChannelLeftBridge"],
                out=out) == 0
    text = out.getvalue()
    assert _raw_unsafe(text.replace("\n", "")) == []
    bridge_lines = [ln for ln in text.splitlines() if "Bridge " in ln]
    assert len(bridge_lines) == 4                            # entered and left, two channels
    assert all(ln.endswith("(simple\\x9b2Jbridge)") for ln in bridge_lines)


def test_strings_replay_json_output_is_exact_and_escaped_by_json(tmp_path: Path) -> None:
    out = io.StringIO()
    assert main(["replay", str(_hostile_trace(tmp_path)), "--json"], out=out) == 0
    lines = out.getvalue().splitlines()
    assert lines and _raw_unsafe(out.getvalue().replace("\n", "")) == []
    names = {json.loads(line).get("channel", {}).get("caller", {}).get("name") for line in lines}
    assert HOSTILE in names                                  # byte for byte after json.loads


def _monitor_run(mode: str, tmp_path: Path) -> tuple[Monitor, str]:
    frames = load_trace(_hostile_trace(tmp_path))
    fake = FakeAsterisk(endpoints=["PJSIP/1000", "PJSIP/1002"])
    client = fake.client()
    out = io.StringIO()
    monitor = Monitor(lambda: client.lines, out, mode=mode, max_rate=1000.0)
    client.add_listener(monitor)
    client.monitor("PJSIP/1000", "PJSIP/1002")
    with client.start(timeout=5):
        monitor.start()
        try:
            # stop after the caller rings at 1002: the table then shows the hostile name
            ringing = next(i for i, f in enumerate(frames)
                           if f.get("type") == "ChannelStateChange"
                           and f["channel"]["state"] == "Ringing")
            fake.replay(frames[: ringing + 1])
            assert fake.settle(client, 10)
            rows = monitor.frame()
        finally:
            monitor.close()
    return monitor, out.getvalue() if mode != "table" else "\n".join(rows) + out.getvalue()


def test_strings_monitor_lines_mode_escapes_a_hostile_caller(tmp_path: Path) -> None:
    monitor, text = _monitor_run("lines", tmp_path)
    assert monitor.events > 0
    assert _raw_unsafe(text.replace("\n", "")) == []
    assert "from 1000 '\\x1b]0;pwned\\x07\\x1b[2J" in text


def test_strings_monitor_table_shows_only_its_own_escape_sequences(tmp_path: Path) -> None:
    from asterisk_cti.tools import monitor as monitor_module

    _monitor, text = _monitor_run("table", tmp_path)
    assert "\\x1b]0;pwned" in text                            # the name is in the table
    own = (monitor_module.HOME, monitor_module.CLEAR_SCREEN, monitor_module.CLEAR_EOL,
           monitor_module.CLEAR_BELOW, monitor_module.HIDE_CURSOR, monitor_module.SHOW_CURSOR,
           monitor_module.RESET)
    for seq in own:
        text = text.replace(seq, "")
    assert _raw_unsafe(text.replace("\n", "")) == []


def test_strings_render_table_escapes_every_cell(tmp_path: Path) -> None:
    fake = FakeAsterisk(endpoints=["PJSIP/1000", "PJSIP/1002"])
    client = fake.client()
    client.monitor("PJSIP/1000", "PJSIP/1002")
    frames = load_trace(_hostile_trace(tmp_path))
    with client.start(timeout=5):
        ringing = next(i for i, f in enumerate(frames) if f.get("type") == "ChannelStateChange"
                       and f["channel"]["state"] == "Ringing")
        fake.replay(frames[: ringing + 1])
        assert fake.settle(client, 10)
        rows = render_table(client.lines, 1795665300.0)
    assert any("\\x1b]0;pwned" in row for row in rows)
    assert _raw_unsafe("".join(rows)) == []


def test_strings_monitor_json_mode_is_exact(tmp_path: Path) -> None:
    monitor, text = _monitor_run("json", tmp_path)
    assert monitor.events > 0 and _raw_unsafe(text.replace("\n", "")) == []
    events = [json.loads(line) for line in text.splitlines()]
    assert any(e["calling"]["name"] == HOSTILE for e in events)


def test_strings_screenpop_message_and_printed_url_are_escaped() -> None:
    lines: List[str] = []
    event = _event(name=HOSTILE, line="PJSIP/1002\x1b[2J")
    MessageAction("pop {line}: {calling.name}", lines.append).run(event, event_fields(event))
    UrlAction("https://crm.example/?who={calling.name}", lines.append, print_only=True).run(
        event, event_fields(event))
    assert len(lines) == 2 and _raw_unsafe("".join(lines)) == []
    assert lines[0].startswith("pop PJSIP/1002\\x1b[2J: \\x1b]0;pwned")
    assert lines[1].startswith("SCREEN-POP PJSIP/1002\\x1b[2J: https://crm.example/?who=%1B%5D0")


def test_strings_events_printer_escapes_cti_lines_and_keeps_json_one_line() -> None:
    text_out, json_out = io.StringIO(), io.StringIO()
    EventPrinter(text_out).on_call_event(_event(name=HOSTILE, number="1000\x1b[5m"))
    assert _raw_unsafe(text_out.getvalue().rstrip("\n")) == []
    assert "1000\\x1b[5m '\\x1b]0;pwned" in text_out.getvalue()

    class _Raw:
        raw = {"type": "ChannelCreated", "channel": {"caller": {"name": HOSTILE}}}

    printer = EventPrinter(json_out, as_json=True)   # what `record` writes to its file
    printer.on_event(_Raw())  # type: ignore[arg-type]
    assert json_out.getvalue().count("\n") == 1
    assert json.loads(json_out.getvalue())["channel"]["caller"]["name"] == HOSTILE


def test_strings_cli_log_lines_and_tracebacks_are_escaped() -> None:
    formatter = _SafeFormatter("asterisk-cti: %(levelname)s: %(message)s")
    record = logging.LogRecord("asterisk_cti.x", logging.WARNING, __file__, 1,
                               "screen-pop for %s dropped", (HOSTILE,), None)
    text = formatter.format(record)
    assert _raw_unsafe(text) == [] and "\\x1b]0;pwned" in text
    try:
        raise ValueError(HOSTILE)
    except ValueError:
        record = logging.LogRecord("asterisk_cti.x", logging.ERROR, __file__, 1, "failed",
                                   (), sys.exc_info())
    text = formatter.format(record)
    assert "Traceback" in text and "\\x1b]0;pwned" in text
    assert _raw_unsafe(text.replace("\n", "")) == []


# -- --command: values are data, never options or code ---------------------------------------


def test_strings_command_value_starting_with_a_dash_is_not_an_option() -> None:
    action = CommandAction("notify-send {calling.name} -u low {calling.number}")
    fields = event_fields(_event(name="--output=/etc/passwd", number="-rf"))
    assert action.argv(fields) == ["notify-send", " --output=/etc/passwd", "-u", "low", " -rf"]
    # a literal prefix is the user's own option: the value is its argument, unchanged
    assert CommandAction("prog --name={calling.name}").argv(fields) == [
        "prog", "--name=--output=/etc/passwd"]


def test_strings_command_values_after_double_dash_are_verbatim() -> None:
    action = CommandAction("prog -v -- {calling.name} {calling.number}")
    fields = event_fields(_event(name="--output=x", number="-1"))
    assert action.argv(fields) == ["prog", "-v", "--", "--output=x", "-1"]


def test_strings_command_argparse_program_gets_the_name_as_data(tmp_path: Path) -> None:
    script = tmp_path / "pop.py"
    record, victim = tmp_path / "record.txt", tmp_path / "victim.txt"
    script.write_text(
        "import argparse\n"
        "p = argparse.ArgumentParser()\n"
        "p.add_argument('record'); p.add_argument('name')\n"
        "p.add_argument('--output')\n"
        "a = p.parse_args()\n"
        "if a.output: open(a.output, 'w').write('owned')\n"
        "open(a.record, 'w').write(repr(a.name))\n")
    action = CommandAction(f"'{sys.executable}' '{script}' '{record}' {{calling.name}}",
                           timeout=20)
    event = _event(name=f"--output={victim}")
    action.run(event, event_fields(event))
    assert not victim.exists()
    assert record.read_text() == repr(f" --output={victim}")


def test_strings_command_value_is_always_one_argument() -> None:
    action = CommandAction("prog {calling.name} 'x {calling.number} y'")
    fields = event_fields(_event(name="a b 'c' \"d\" ; e | f $(g) \n h\x00i", number="1 2"))
    assert action.argv(fields) == ["prog", "a b 'c' \"d\" ; e | f $(g) \n h\ufffdi", "x 1 2 y"]


@pytest.mark.parametrize("template", [
    "sh -c 'notify-send {calling.name}'",
    "/bin/bash -ec 'echo {calling.number}'",
    "python3.11 -c 'print(\"{calling.name}\")'",
    "perl -e 'print \"{calling.name}\"'",
    "zsh -c '{line}'",
])
def test_strings_command_refuses_fields_inside_interpreter_code(template: str) -> None:
    with pytest.raises(ConfigurationError, match="would be run as code; pass it as its own"):
        CommandAction(template)


def test_strings_command_allows_values_as_interpreter_arguments() -> None:
    action = CommandAction("sh -c 'notify-send \"$1\"' sh {calling.name}")
    assert action.argv(event_fields(_event(name="$(id)"))) == [
        "sh", "-c", 'notify-send "$1"', "sh", "$(id)"]


@pytest.mark.parametrize("text", [
    "{calling.__class__}", "{calling.name.__class__}", "{calling[0]}", "{0}",
    "{calling.name!s}", "{line:{call_id}}", "{__import__}",
])
def test_strings_template_refuses_attribute_item_and_format_access(text: str) -> None:
    with pytest.raises(ConfigurationError):
        Template(text, "--message")


def test_strings_template_inserts_values_verbatim_without_a_second_pass() -> None:
    template = Template("{calling.name}|{line}")
    fields = event_fields(_event(name="{line}{0}{calling.__class__}%s"))
    assert template.render(fields) == "{line}{0}{calling.__class__}%s|PJSIP/1002"


# -- --url: values are percent-encoded, the scheme and host are the template's --------------


def test_strings_url_values_are_percent_encoded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPLAY", ":0")
    opened: List[str] = []
    action = UrlAction("https://crm.example/pop?n={calling.number}&who={calling.name}",
                       lambda _t: None, opener=lambda u: opened.append(u) or True)
    event = _event(name="a&admin=1#x/../?y %25\n\u202e", number="javascript:alert(1)")
    action.run(event, event_fields(event))
    assert opened == ["https://crm.example/pop?n=javascript%3Aalert%281%29"
                      "&who=a%26admin%3D1%23x%2F..%2F%3Fy%20%2525%0A%E2%80%AE"]


@pytest.mark.parametrize("template", [
    "{calling.name}", "https://{calling.name}/", "https://crm.example{line}/x",
    "file:///tmp/{calling.name}", "javascript:{calling.name}", "//crm/{calling.name}",
    "ftp://crm/{calling.name}",
])
def test_strings_url_template_must_fix_scheme_and_host(template: str) -> None:
    with pytest.raises(ConfigurationError, match="must begin with http:// or https://"):
        UrlAction(template, lambda _t: None, print_only=True)


# -- webhook URLs: credentials and tokens are redacted ---------------------------------------


def test_strings_redact_url_hides_credentials_and_tokens() -> None:
    url = ("https://user:p%40ss@hook.example:8443/in/abc?token=T0K&x=1&api_key=K3Y"
           "&Signature=S1G#access_token=AT")
    red = redact_url(url)
    assert red == ("https://***:***@hook.example:8443/in/abc?token=***&x=1&api_key=***"
                   "&Signature=***#access_token=***")
    message = ("HTTPSConnectionPool(host='hook.example', port=8443): Max retries exceeded "
               "with url: /in/abc?token=T0K&x=1&api_key=K3Y&Signature=S1G (p@ss)")
    cleaned = redact_text(message, [url])
    for secret in ("T0K", "K3Y", "S1G", "p@ss", "p%40ss"):
        assert secret not in cleaned


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_strings_webhook_credentials_never_in_logs_repr_or_errors(
        caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://hookuser:hookpass@127.0.0.1:{_closed_port()}/in?token=tok123&sig=sig456"
    action = PostAction(url, timeout=2)
    try:
        with caplog.at_level(logging.DEBUG):
            action.run(_event(), {})
    finally:
        action.close()
    shown = repr(action) + "\n".join(r.getMessage() for r in caplog.records)
    assert any("screen-pop POST to" in r.getMessage() for r in caplog.records)
    for secret in ("hookpass", "tok123", "sig456"):
        assert secret not in shown
    with pytest.raises(ConfigurationError) as info:
        PostAction("ftp://u:ftppass@host/x?token=tok123")
    assert "ftppass" not in str(info.value) and "tok123" not in str(info.value)


class _Server:
    """An HTTP server on 127.0.0.1 answering POST with ``status`` (and a Location)."""

    def __init__(self, status: int, location: str = "") -> None:
        self.posts: List[Dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                server.posts.append({"path": self.path, "body": self.rfile.read(length),
                                     "auth": self.headers.get("Authorization")})
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.http.server_address[1]
        self.thread = threading.Thread(target=self.http.serve_forever, name="test-http",
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()
        self.thread.join(5)


@pytest.fixture
def servers() -> Iterator[List[_Server]]:
    made: List[_Server] = []
    try:
        yield made
    finally:
        for s in made:
            s.close()


def test_strings_webhook_redirect_is_not_followed(servers: List[_Server],
                                                  caplog: pytest.LogCaptureFixture) -> None:
    other = _Server(204)
    servers.append(other)
    hook = _Server(307, f"http://127.0.0.1:{other.port}/steal?token=stolen")
    servers.append(hook)
    action = PostAction(f"http://u:pw@127.0.0.1:{hook.port}/in?token=tok123", timeout=5)
    try:
        with caplog.at_level(logging.WARNING):
            action.run(_event(), {})
    finally:
        action.close()
    assert len(hook.posts) == 1 and hook.posts[0]["auth"] is not None
    assert other.posts == []
    messages = "\n".join(r.getMessage() for r in caplog.records)
    assert "redirect to" in messages and "not followed" in messages
    for secret in ("tok123", "stolen", ":pw@"):
        assert secret not in messages


# -- the simulator accepts a non-ASCII password ---------------------------------------------


def test_strings_simulator_accepts_a_non_ascii_password() -> None:
    from asterisk_cti.sim import AriSimulator

    password = "pässwörd-€-密码"
    with AriSimulator(password=password) as sim:
        good = CtiClient(CtiConfig(url=sim.url, username=sim.username, password=password,
                                   app="strings-utf8", connect_timeout=5))
        with good.start(timeout=10):
            assert good.connected
        bad = CtiClient(CtiConfig(url=sim.url, username=sim.username, password="passwörd",
                                  app="strings-utf8-bad", connect_timeout=2))
        with pytest.raises(AsteriskCtiError) as info:
            bad.start(timeout=3)
        bad.stop()
    assert "passwörd" not in str(info.value)


def test_strings_url_template_tokens_are_redacted_in_repr_and_errors() -> None:
    action = UrlAction("https://crm.example/pop?api_key=K3Y123&n={calling.number}",
                       lambda _t: None, print_only=True)
    assert "K3Y123" not in repr(action) and "api_key=***" in repr(action)
    for bad in ("https://crm.example/pop?token=T0K456&n={caller}",
                "https://crm.example{line}/?token=T0K456"):
        with pytest.raises(ConfigurationError) as info:
            UrlAction(bad, lambda _t: None, print_only=True)
        assert "T0K456" not in str(info.value) and "token=***" in str(info.value)


def test_strings_screenpop_command_line_never_prints_webhook_secrets() -> None:
    import subprocess

    from tests.conftest import REPO

    url = f"http://hookuser:hookpass@127.0.0.1:{_closed_port()}/in?token=tok123"
    done = subprocess.run(
        [sys.executable, "-m", "asterisk_cti.cli", "screenpop", "--sim", "--play", "basic",
         "--speed", "20", "--line", "PJSIP/1002", "--post", url, "--action-timeout", "5"],
        capture_output=True, text=True, timeout=120, cwd=str(REPO),
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert "screen-pop POST to http://***:***@127.0.0.1:" in done.stderr
    assert "/in?token=*** failed" in done.stderr
    for secret in ("hookpass", "tok123"):
        assert secret not in done.stderr + done.stdout
