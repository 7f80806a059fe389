"""asterisk-cti ivr: a definition run on the embedded simulator, and its errors."""

from __future__ import annotations

import io
import json
import re
import threading
from pathlib import Path

import pytest

from asterisk_cti.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ivr" / "billing.json"


def test_ivr_with_sim_runs_the_calls_and_prints_each_path() -> None:
    out = io.StringIO()
    code = main(["ivr", str(EXAMPLE), "--sim", "--speed", "50", "--call", "12345#1",
                 "--call", "777777#0"], out=out)
    text = out.getvalue()
    assert code == 0, text
    lines = [ln for ln in text.splitlines() if ln.startswith("call ")]
    assert len(lines) == 2, text
    assert re.fullmatch(r"call \S+ from \+33123450000 \(flow main\): menu account > 5 digits > "
                        r"data:account > menu main > key 1 > data:choice > queue support; done",
                        lines[0])
    assert lines[1].endswith("menu main > key 0 > hangup; done")
    assert "12345" not in lines[0].split(":", 1)[1]  # collected digits are not printed
    assert not [t for t in threading.enumerate() if t.name.startswith("asterisk-cti-ivr-")]


def test_ivr_with_sim_plays_the_ivr_queue_scenario() -> None:
    out = io.StringIO()
    code = main(["ivr", str(EXAMPLE), "--sim", "--speed", "50", "--play", "ivr_queue"],
                out=out)
    text = out.getvalue()
    assert code == 0, text
    assert "# scenario ivr_queue\n" in text
    (line,) = [ln for ln in text.splitlines() if ln.startswith("call ")]
    assert line.endswith("from +33123456789 (flow main): menu account > 5 digits > "
                         "data:account > menu main > key 1 > data:choice > queue support; done")
    assert not [t for t in threading.enumerate() if t.name.startswith("asterisk-cti-ivr-")]


def test_a_bad_definition_exits_2_naming_the_key_and_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = json.loads(EXAMPLE.read_text())
    spec["menus"]["main"]["options"]["1"][2]["queue"] = "sales"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(spec, indent=2))
    assert main(["ivr", str(bad), "--sim"], out=io.StringIO()) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert re.search(r"bad\.json:\d+: menus\.main\.options\.1\[2\]\.queue: names no queue", err)
    assert main(["ivr", str(EXAMPLE), "--call", "1#"], out=io.StringIO()) == 2
    assert "--call: needs --sim" in capsys.readouterr().err
    assert main(["ivr", str(tmp_path / "missing.json"), "--sim"], out=io.StringIO()) == 1
