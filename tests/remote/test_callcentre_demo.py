"""``asterisk-cti demo --callcentre``: the simulator, a real mosquitto, the server and two
desktop clients; each desktop prints only its own line, desk 1000 is refused 1002's call."""

from __future__ import annotations

import io
import re

import pytest

from asterisk_cti.cli import main
from asterisk_cti.server import broker


def test_the_callcentre_demo_shows_each_desk_its_own_line() -> None:
    out = io.StringIO()
    assert main(["demo", "--callcentre", "--scenario", "basic", "--speed", "20"], out) == 0
    text = out.getvalue()
    desk_lines = [ln for ln in text.splitlines() if ln.startswith("desk ")]
    mine = {"1000": "PJSIP/1000", "1002": "PJSIP/1002"}
    for ln in desk_lines:
        agent = ln.split()[1]
        lines = set(re.findall(r"PJSIP/\d+", ln))
        assert lines <= {mine[agent]}, ln  # never another line's event
    for agent in mine:
        assert f"desk {agent} | connected: the broker and the CTI server are up" in text
        assert f"desk {agent} | snapshot {mine[agent]}: idle" in text
    assert re.search(r"desk 1000 \| .* PJSIP/1000 +held ", text)
    assert re.search(r"desk 1000 \| .* PJSIP/1000 +conferenced ", text)
    assert re.search(r"desk 1002 \| .* PJSIP/1002 +delivered ", text)
    assert "refused by the server: AccessDeniedError" in text
    assert re.search(r"# desk 1000 received \d+ CTI events, of line\(s\) PJSIP/1000\n", text)
    assert re.search(r"# desk 1002 received \d+ CTI events, of line\(s\) PJSIP/1002\n", text)


def test_without_mosquitto_the_error_names_make_broker_deps(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(broker.shutil, "which", lambda name: None)
    monkeypatch.setattr(broker.os, "access", lambda path, mode: False)
    assert main(["demo", "--callcentre"], io.StringIO()) == 2
    assert "make broker-deps" in capsys.readouterr().err
