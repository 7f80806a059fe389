"""The asterisk-cti command: replay and demo drive the real pipeline; help and exit codes."""

from __future__ import annotations

import io
import re

import pytest

from asterisk_cti.cli import DEMO_SCENARIOS, build_parser, main
from tests.conftest import traces_dir

from .helpers import PtyProcess

COMMANDS = ("demo", "monitor", "screenpop", "dial", "events", "record", "replay")


def test_replay_prints_the_filtered_events_of_a_trace() -> None:
    path = traces_dir() / "basic.jsonl"
    out = io.StringIO()
    assert main(["replay", str(path), "--application", "cti-rec"], out=out) == 0
    text = out.getvalue()
    assert "PJSIP/1002   ChannelStateChange       Ringing" in text
    assert "ChannelDestroyed         cause 16 Normal Clearing" in text
    assert "ChannelVarset" not in text
    assert "# 82 frames replayed, 13 events delivered" in text


def test_demo_plays_a_scenario_with_monitor_lines_and_screen_pops() -> None:
    out = io.StringIO()
    assert main(["demo", "--scenario", "basic", "--speed", "20"], out=out) == 0
    text = out.getvalue()
    assert "=== scenario: basic" in text
    assert re.search(r"PJSIP/1002 +delivered +ringing +from 1000 'Kai'", text)
    assert text.count("SCREEN-POP PJSIP/1002: caller 1000 Kai\n") == 1
    cti_lines = re.findall(r"^\d\d:\d\d:\d\d\.\d{3}  PJSIP/", text, re.M)
    assert text.rstrip().endswith(f"1 scenarios played, {len(cti_lines)} CTI events, "
                                  "1 screen-pops")


def test_the_whole_demo_finishes_by_itself_off_a_terminal() -> None:
    out = io.StringIO()
    assert main(["demo"], out=out) == 0
    text = out.getvalue()
    for name in DEMO_SCENARIOS:
        assert f"=== scenario: {name}\n" in text
    pops = re.findall(r"^SCREEN-POP (PJSIP/\d+): caller (\d+) (\w+)$", text, re.M)
    # queue: 1000 -> 2000 rings both members, each pops once with the original caller
    queue = text.split("=== scenario: queue\n")[1].split("=== scenario: ivr_queue")[0]
    assert queue.count("SCREEN-POP") == 2
    assert ("PJSIP/1006", "1002", "Ping") in pops      # blind transfer: 1002 sent it to 1006
    assert ("PJSIP/1002", "1006", "Lee") in pops       # busy: 1006 called 1002 first
    assert len(pops) == 12
    assert re.search(r"PJSIP/1000 +failed +failed +.*cause 17 BUSY \(busy\)", text)
    assert re.search(r"PJSIP/1000 +held +held", text)
    # ivr_queue: the outside caller keys its account and 1 (billing) in the IVR, waits in
    # the queue; both agents pop with the collected data and the queue
    ivr = text.split("=== scenario: ivr_queue")[1]
    assert re.search(r"PJSIP/trunk +queued +ringback +with 5000 queue support", ivr)
    for line in ("PJSIP/1002", "PJSIP/1006"):
        assert ivr.count(f"SCREEN-POP {line}: caller +33123456789 account 12345 (billing) "
                         "via support\n") == 1
    assert "IVR call from +33123456789: menu account > 5 digits > data:account > menu main " \
           "> key 1 > data:choice > queue support; done" in ivr
    assert re.search(r"PJSIP/1006 +established +connected +with \+33123456789 queue support",
                     ivr)
    assert text.rstrip().endswith("14 screen-pops")
    assert "9 scenarios played" in text


def test_demo_on_a_terminal_redraws_and_restores_the_terminal() -> None:
    proc = PtyProcess(["demo", "--scenario", "basic", "--scenario", "queue", "--speed", "16"])
    try:
        assert proc.read_to_end(60) == 0
    finally:
        proc.close()
    text = proc.text
    assert text.count("\x1b[H") >= 3
    assert re.search(r"PJSIP/1006 +online +RINGING +1000 +Kai", text)
    assert "SCREEN-POP PJSIP/1006: caller 1000 Kai" in text
    tail = text.split("\x1b[?25h")[-1]
    assert "2 scenarios played" in tail and "\x1b[" not in tail


def test_configuration_errors_are_one_line_with_exit_code_2(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--scenario", "nope"], out=io.StringIO()) == 2
    err = capsys.readouterr().err
    assert err.startswith("asterisk-cti: configuration error: scenario:")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert main(["monitor", "--play", "basic"], out=io.StringIO()) == 2
    assert "--play: needs --sim" in capsys.readouterr().err


def test_usage_errors_are_one_line_with_exit_code_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["nope"], ["monitor", "--bogus"], ["screenpop", "--post", "http://x"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.endswith("(see --help)\n"), err


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    for cmd in COMMANDS:
        with pytest.raises(SystemExit) as info:
            parser.parse_args([cmd, "--help"])
        assert info.value.code == 0
        text = capsys.readouterr().out
        assert text.startswith(f"usage: asterisk-cti {cmd}")
        if cmd in ("monitor", "screenpop", "dial"):
            assert "--sim" in text and "130 interrupted" in text
    assert "asterisk-cti" in build_parser().format_help()
