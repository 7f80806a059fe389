"""asterisk-cti screenpop: webhook, command, URL, queue calls, template validation."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

from asterisk_cti import (
    CallEvent,
    ConfigurationError,
    ConnectionState,
    Direction,
    Party,
    PhoneState,
)
from asterisk_cti.cli import main
from asterisk_cti.tools import (
    EVENT_KEYS,
    TEMPLATE_FIELDS,
    CommandAction,
    MessageAction,
    ScreenPop,
    Template,
    UrlAction,
    event_fields,
)
from asterisk_cti.tools.events import event_to_dict

from .helpers import Webhook


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    try:
        yield hook
    finally:
        hook.close()


def _event(kind: str = "delivered", line: str = "PJSIP/1002", call_id: str = "k1",
           name: str = "Kai", direction: Direction = Direction.INCOMING,
           data: Optional[Dict[str, str]] = None, queue: str = "") -> CallEvent:
    from types import MappingProxyType

    from asterisk_cti.model import NO_DATA, EventKind
    from asterisk_cti.model.types import Reason

    return CallEvent(
        kind=EventKind(kind), line=line, call_id=call_id, connection_id=f"{call_id}-{line}",
        state=ConnectionState.ALERTING, previous_state=ConnectionState.NULL,
        phone_state=PhoneState.RINGING, direction=direction, calling=Party("1000", name),
        called=Party("1002", ""), connected=Party("1000", name), cause=0, dialstatus="",
        reason=Reason.NORMAL, timestamp=1795665211.25, raw=(), talking=False, held=False,
        data=MappingProxyType(dict(data)) if data else NO_DATA, queue=queue)


def test_post_fires_once_per_queue_call_at_each_ringing_member(webhook: Webhook) -> None:
    out = io.StringIO()
    code = main(["screenpop", "--sim", "--play", "queue", "--play", "basic", "--speed", "20",
                 "--line", "PJSIP/1002", "--line", "PJSIP/1006", "--post", webhook.url],
                out=out)
    assert code == 0, out.getvalue()
    # close() waited for the queued pops: every POST has arrived
    bodies = webhook.bodies
    assert all(tuple(b) == EVENT_KEYS for b in bodies)
    assert all(b["kind"] == "delivered" for b in bodies)
    assert all(b["calling"] == {"number": "1000", "name": "Kai"} for b in bodies)
    lines = sorted(b["line"] for b in bodies)
    # the queue call rang 1002 and 1006 (one pop each), the basic call 1002
    assert lines == ["PJSIP/1002", "PJSIP/1002", "PJSIP/1006"]
    assert len({(b["line"], b["call_id"]) for b in bodies}) == 3
    assert set(webhook.paths) == {"/pop"}
    assert "# 3 screen-pops" in out.getvalue()


def test_command_runs_without_a_shell_and_gets_the_fields(tmp_path: Path) -> None:
    script = tmp_path / "pop.py"
    record = tmp_path / "pops.txt"
    script.write_text("import sys\nwith open(sys.argv[1], 'a') as f:\n"
                      "    f.write('|'.join(sys.argv[2:]) + '\\n')\n")
    template = f"'{sys.executable}' '{script}' '{record}' {{line}} {{calling.number}} " \
               "'{calling.name} at {called.number}'"
    out = io.StringIO()
    code = main(["screenpop", "--sim", "--play", "queue", "--speed", "20", "--line", "PJSIP",
                 "--command", template], out=out)
    assert code == 0, out.getvalue()
    assert sorted(record.read_text().splitlines()) == [
        "PJSIP/1002|1000|Kai at 1002", "PJSIP/1006|1000|Kai at 1006"]


def test_command_arguments_are_never_shell_parsed() -> None:
    action = CommandAction("notify-send 'Call from {calling.name}' {calling.number}")
    fields = event_fields(_event(name="$(rm -rf ~); `id` > /tmp/x"))
    assert action.argv(fields) == ["notify-send", "Call from $(rm -rf ~); `id` > /tmp/x", "1000"]


def test_url_with_print_prints_the_url_encoded() -> None:
    out = io.StringIO()
    code = main(["screenpop", "--sim", "--play", "basic", "--speed", "20", "--line", "PJSIP/1002",
                 "--url", "https://crm.example/pop?n={calling.number}&who={calling.name}"
                          "&line={line}", "--print"], out=out)
    assert code == 0
    assert ("SCREEN-POP PJSIP/1002: https://crm.example/pop?n=1000&who=Kai&line=PJSIP%2F1002"
            in out.getvalue().splitlines())


def test_url_opens_the_browser_when_there_is_a_display(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPLAY", ":0")
    opened: List[str] = []
    printed: List[str] = []

    def opener(url: str) -> bool:
        opened.append(url)
        return True

    action = UrlAction("http://crm/?q={calling.name}", printed.append, opener=opener)
    event = _event(name="Kai & Co/ü")
    action.run(event, event_fields(event))
    assert opened == ["http://crm/?q=Kai%20%26%20Co%2F%C3%BC"] and not printed


def test_screenpop_pops_once_per_call_and_line_and_stops_its_threads() -> None:
    lines: List[str] = []
    pop = ScreenPop([MessageAction("{line} {calling.name} {call_id}", lines.append)],
                    ["PJSIP/1002"])
    pop.on_delivered(_event())
    pop.on_delivered(_event())                          # rings again: no second pop
    pop.on_delivered(_event(line="PJSIP/1006"))         # another line: not watched
    pop.on_delivered(_event(direction=Direction.OUTGOING, call_id="k9"))  # click-to-dial
    pop.on_call_cleared(_event(kind="call_cleared"))
    pop.on_delivered(_event())                          # the line's next call with that id
    pop.on_delivered(_event(call_id="k2"))
    pop.close()
    assert lines == ["PJSIP/1002 Kai k1", "PJSIP/1002 Kai k1", "PJSIP/1002 Kai k2"]
    assert pop.pops == 3
    pop.on_delivered(_event(call_id="k3"))              # after close: ignored
    assert pop.pops == 3


def test_every_template_field_renders() -> None:
    fields: Dict[str, str] = event_fields(_event())
    assert set(fields) == set(TEMPLATE_FIELDS)
    text = " ".join("{" + f + "}" for f in TEMPLATE_FIELDS)
    rendered = Template(text).render(fields)
    assert rendered.startswith("delivered PJSIP/1002 k1 k1-PJSIP/1002 alerting null ringing "
                               "incoming 1000 Kai 1002  1000 Kai 0  normal  1795665211.25 false "
                               "false")
    assert event_to_dict(_event())["calling"] == {"number": "1000", "name": "Kai"}


@pytest.mark.parametrize(("args", "expected"), [
    (["--url", "http://crm/?n={caller}"], "--url: unknown field {caller} in"),
    (["--url", "http://crm/?n={}"], "--url: unknown field {} in"),
    (["--command", "echo {calling.number!r}"], "takes no format spec or conversion"),
    (["--message", "{calling.number:>10}"], "takes no format spec or conversion"),
    (["--command", "echo 'unbalanced"], "--command: cannot split"),
    (["--command", "{line} x"], "the program name must not contain fields"),
    (["--url", "http://crm/{line"], "--url: bad template"),
    (["--post", "ftp://hook"], "--post: 'ftp://hook' is not an http:// or https:// URL"),
    (["--print"], "--print: goes with --url"),
    ([], "screenpop: give --url, --command, --post or --message"),
])
def test_template_and_action_errors_are_one_line_with_exit_2(
        capsys: pytest.CaptureFixture[str], args: List[str], expected: str) -> None:
    code = main(["screenpop", "--line", "PJSIP/1002", *args], out=io.StringIO())
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("asterisk-cti: configuration error: ")
    assert expected in err
    if "unknown field" in expected:
        assert "allowed: {kind}, {line}, {call_id}" in err and "{calling.number}" in err


def test_template_rejects_unknown_fields_with_the_allowed_list() -> None:
    with pytest.raises(ConfigurationError, match=r"allowed: .*\{calling\.name\}"):
        Template("{calling.nmae}", "--url")
    assert Template("{{literal}} {line}").render({"line": "PJSIP/1"}) == "{literal} PJSIP/1"


def test_every_json_form_of_an_event_is_the_events_own_dict() -> None:
    """monitor --json, screenpop --post and the CTI server publish one dictionary."""
    from asterisk_cti.model import CALL_EVENT_KEYS
    from asterisk_cti.server.schema import SCHEMA_VERSION, event_payload

    event = _event()
    assert tuple(event.as_dict()) == CALL_EVENT_KEYS
    assert event_to_dict(event) == event.as_dict()
    # the server adds the fields as_dict leaves out (for the desktop client), nothing else
    assert event_payload(event) == {"version": SCHEMA_VERSION, **event.as_dict(),
                                    **event.extras_dict()}
    assert event.as_dict()["calling"] == {"number": "1000", "name": "Kai"}


HOSTILE = {"account": "4711", "name": "x&evil=1#/../?", "cmd": "-rf; $(reboot)"}


def test_data_fields_render_and_missing_keys_are_empty() -> None:
    event = _event(data=HOSTILE, queue="support")
    fields = event_fields(event)
    assert fields["data.account"] == "4711" and fields["queue"] == "support"
    text = Template("{data.account}|{data.missing}|{queue}|{data.name}").render(fields)
    assert text == "4711||support|x&evil=1#/../?"
    # an event without data: every data field is empty, nothing raises
    assert Template("[{data.account}]").render(event_fields(_event())) == "[]"


def test_data_values_cannot_inject_into_urls_or_commands() -> None:
    printed: List[str] = []
    action = UrlAction("https://crm.example/pop?acct={data.account}&n={data.name}&q={queue}",
                       printed.append, print_only=True)
    event = _event(data=HOSTILE, queue="sup port")
    action.run(event, event_fields(event))
    assert printed == ["SCREEN-POP PJSIP/1002: https://crm.example/pop?acct=4711"
                       "&n=x%26evil%3D1%23%2F..%2F%3F&q=sup%20port"]
    command = CommandAction("notify-send {data.cmd} {data.name}")
    assert command.argv(event_fields(event)) == [
        "notify-send", " -rf; $(reboot)", "x&evil=1#/../?"]


@pytest.mark.parametrize("field", ["data", "data.", "data.1x", "data.a b", "data.a/b"])
def test_data_fields_must_name_a_valid_key(field: str) -> None:
    with pytest.raises(ConfigurationError, match=r"unknown field .*\{data\.KEY\}"):
        Template("{" + field + "}", "--url")


def test_screenpop_message_shows_the_call_data_of_a_queue_call() -> None:
    lines: List[str] = []
    pop = ScreenPop([MessageAction("{calling.number} via {queue}: account {data.account}, "
                                   "{data.choice}", lines.append)], ["PJSIP/1002"])
    pop.on_delivered(_event(data={"account": "4711", "choice": "billing"}, queue="support"))
    pop.close()
    assert lines == ["1000 via support: account 4711, billing"]
