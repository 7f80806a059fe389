"""The asterisk-cti command: replay and demo drive the real pipeline."""

from __future__ import annotations

import io

import pytest

from asterisk_cti.cli import build_parser, main
from tests.conftest import traces_dir


def test_replay_prints_the_filtered_events_of_a_trace() -> None:
    path = traces_dir() / "basic.jsonl"
    if not path.exists():
        pytest.skip("no traces")
    out = io.StringIO()
    assert main(["replay", str(path), "--application", "cti-rec"], out=out) == 0
    text = out.getvalue()
    assert "PJSIP/1002   ChannelStateChange       Ringing" in text
    assert "ChannelDestroyed         cause 16 Normal Clearing" in text
    assert "ChannelVarset" not in text
    assert "# 82 frames replayed, 13 events delivered" in text


def test_demo_plays_a_scenario_on_the_simulator() -> None:
    out = io.StringIO()
    assert main(["demo", "--scenario", "basic", "--speed", "20"], out=out) == 0
    text = out.getvalue()
    assert "=== scenario: basic" in text
    assert "PJSIP/1002   ChannelStateChange       Ringing" in text
    assert "ChannelEnteredBridge" in text


def test_configuration_errors_are_one_line_with_exit_code_2(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--scenario", "nope"], out=io.StringIO()) == 2
    err = capsys.readouterr().err
    assert err.startswith("asterisk-cti: configuration error: scenario:")
    assert "Traceback" not in err


def test_every_command_has_help() -> None:
    parser = build_parser()
    for cmd in ("demo", "events", "record", "replay"):
        with pytest.raises(SystemExit) as info:
            parser.parse_args([cmd, "--help"])
        assert info.value.code == 0
