"""asterisk-cti monitor: the live table on a pseudo-terminal, line mode, JSON lines."""

from __future__ import annotations

import io
import json
import re
import threading
import time
from typing import Iterator, List

import pytest

from asterisk_cti import Connection, ConnectionState, Direction, Line, Party, PhoneState
from asterisk_cti.cli import main
from asterisk_cti.sim import AriSimulator, scenarios
from asterisk_cti.tools import EVENT_KEYS, render_table

from .helpers import PtyProcess


@pytest.fixture
def sim() -> Iterator[AriSimulator]:
    with AriSimulator(speed=4) as s:
        yield s


def _frames(text: str) -> List[str]:
    return text.split("\x1b[H")


def _first_frame(frames: List[str], pattern: str, start: int = 0) -> int:
    rx = re.compile(pattern)
    for i in range(start, len(frames)):
        if rx.search(frames[i]):
            return i
    return -1


def test_monitor_redraws_the_table_in_place_on_a_terminal(sim: AriSimulator) -> None:
    env = {"ASTERISK_CTI_PASSWORD": sim.password}
    proc = PtyProcess(["monitor", "PJSIP/1000", "PJSIP/1002", "--url", sim.url,
                       "--user", sim.username], env=env)
    try:
        proc.read_until(lambda t: re.search(r"PJSIP/1002\s+online\s+IDLE", t) is not None,
                        20, "the table with 1002 idle")
        started = time.monotonic()
        mark = len(proc.data)
        player = threading.Thread(target=scenarios.basic, args=(sim,), name="test-play")
        player.start()
        try:
            proc.read_until(
                lambda t: _first_frame(_frames(t[mark:]), r"PJSIP/1002\s+online\s+IDLE") > 0
                and _first_frame(_frames(t[mark:]), r"PJSIP/1002 +online +CONNECTED") >= 0,
                20, "1002 connected and idle again")
        finally:
            player.join(30)
        assert not player.is_alive()
        elapsed = time.monotonic() - started
        frames = _frames(proc.text[mark:])
        ringing = _first_frame(frames, r"PJSIP/1002 +online +RINGING +1000 +Kai")
        connected = _first_frame(frames, r"PJSIP/1002 +online +CONNECTED +1000 +Kai +0:0\d +yes",
                                 max(ringing, 0))
        assert ringing >= 0, "no frame showed 1002 ringing"
        assert connected > ringing
        assert re.search(r"PJSIP/1000 +online +CONNECTED +1002 +Ping", proc.text)
        # the redraw codes: hide the cursor, home, clear to end of line and below
        assert "\x1b[?25l" in proc.text
        assert "\x1b[K" in proc.text and "\x1b[J" in proc.text
        # at most ~10 redraws a second (+ the one-second ticks and slack)
        assert len(frames) - 1 <= 12 * elapsed + 3
        proc.interrupt()
        assert proc.read_to_end(20) == 130
        tail = proc.text[-200:]
        assert tail.endswith("\x1b[0m\x1b[?25h") or "\x1b[?25h" in tail, repr(tail)
        assert "Traceback" not in proc.text
    finally:
        proc.close()


def test_monitor_off_a_terminal_prints_a_line_per_cti_event() -> None:
    out = io.StringIO()
    code = main(["monitor", "--sim", "--play", "basic", "--speed", "20"], out=out)
    assert code == 0
    text = out.getvalue()
    assert text.startswith("# embedded simulator at http://127.0.0.1:")
    assert "=== scenario: basic" in text
    assert re.search(r"PJSIP/1002 +delivered +ringing +from 1000 'Kai'", text)
    assert re.search(r"PJSIP/1002 +established +connected +with 1000 'Kai'", text)
    assert re.search(r"PJSIP/1000 +connection_cleared +disconnected +with 1002 'Ping'.*cause 16",
                     text)
    assert "\x1b[" not in text


def test_monitor_json_streams_the_stable_event_dicts(capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    code = main(["monitor", "--json", "--sim", "--play", "busy", "--speed", "20"], out=out)
    assert code == 0
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert events and all(tuple(e) == EVENT_KEYS for e in events)
    failed = [e for e in events if e["kind"] == "failed"]
    assert len(failed) == 1
    assert failed[0]["line"] == "PJSIP/1000"
    assert (failed[0]["cause"], failed[0]["dialstatus"], failed[0]["reason"]) == (17, "BUSY",
                                                                                  "busy")
    delivered = [e for e in events if e["kind"] == "delivered"]
    assert delivered[0]["line"] == "PJSIP/1002"
    assert delivered[0]["calling"] == {"number": "1006", "name": "Lee"}
    assert delivered[0]["direction"] == "incoming"
    assert isinstance(delivered[0]["timestamp"], float)
    # comments go to stderr so that stdout stays JSON
    assert "# embedded simulator" in capsys.readouterr().err


def test_render_table_shows_party_duration_talking_and_held() -> None:
    conn = Connection(
        connection_id="c1", line="PJSIP/1000", call_id="k1", channel_name="PJSIP/1000-01",
        state=ConnectionState.HOLD, phone_state=PhoneState.HELD, direction=Direction.OUTGOING,
        calling=Party("1000", "Kai"), called=Party("1002", ""), connected=Party("1002", "Ping"),
        held=True, talking=False, cause=0, dialstatus="ANSWER", start_time=1000.0,
        answer_time=1005.0, end_time=None)
    rows = render_table([Line("PJSIP/1000", "online", (conn,)),
                         Line("PJSIP/1002", "offline", ())], now=1130.0)
    assert rows[0].split() == ["LINE", "REG", "STATE", "PARTY", "NAME", "TIME", "TALK", "HELD",
                               "CALLS"]
    assert rows[1].split() == ["PJSIP/1000", "online", "HELD", "1002", "Ping", "2:05", "-",
                               "yes", "1"]
    assert rows[2].split() == ["PJSIP/1002", "offline", "IDLE"]
