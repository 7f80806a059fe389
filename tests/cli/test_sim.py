"""``asterisk-cti sim``: serve a simulator, and drive a running one through its admin REST."""

from __future__ import annotations

import io
import re
import socket
from typing import Iterator

import pytest

from asterisk_cti.cli import main
from asterisk_cti.sim import AriSimulator
from asterisk_cti.tools.simctl import SIM_ACTIONS

from .helpers import PtyProcess


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[AriSimulator]:
    s = AriSimulator(speed=25).start()
    monkeypatch.setenv("ASTERISK_CTI_URL", s.url)
    monkeypatch.setenv("ASTERISK_CTI_USERNAME", s.username)
    monkeypatch.setenv("ASTERISK_CTI_PASSWORD", s.password)
    try:
        yield s
    finally:
        s.stop()


def _run(*argv: str) -> str:
    out = io.StringIO()
    assert main(["sim", *argv], out=out) == 0
    return out.getvalue()


def test_a_call_from_the_command_line(sim: AriSimulator) -> None:
    assert "PJSIP/1000" in _run("phones")
    line = _run("call", "1000", "1002")
    assert re.fullmatch(r"channel \S+\n", line)
    assert _run("wait-ringing", "1002", "--timeout", "5").startswith("ringing ")
    _run("answer", "1002")
    _run("hold", "1000")
    listing = _run("calls")
    assert re.search(r"PJSIP/1000-\S+ +Up +1000 -> 1002  held", listing), listing
    _run("resume", "1000")
    _run("dtmf", "1000", "123")
    _run("transfer", "1002", "1006")
    sim.phone("1006").wait_ringing()
    _run("answer", "1006")
    _run("hangup", "1000")
    assert _run("calls") == ""
    _run("call", "1000", "1002")
    sim.phone("1002").wait_ringing()
    _run("reject", "1002")
    assert _run("calls") == ""


def test_an_outside_caller_from_the_command_line(sim: AriSimulator) -> None:
    line = _run("trunk-call", "+33 1 23 45 67 89", "1006", "--name", "ACME")
    channel = line.split()[1]
    sim.phone("1006").wait_ringing()
    listing = _run("calls")
    assert re.search(r"PJSIP/trunk-\S+ +Ring +\+33123456789 -> ", listing), listing
    _run("hangup-call", channel)
    assert _run("calls") == ""


def test_a_refused_action_is_one_line_and_exit_code_1(
        sim: AriSimulator, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "answer", "1000"], out=io.StringIO()) == 1
    assert capsys.readouterr().err == (
        "asterisk-cti: SimAdminError: 409: phone 1000 has no ringing call\n")
    assert main(["sim", "answer", "1999"], out=io.StringIO()) == 1
    assert capsys.readouterr().err == "asterisk-cti: SimAdminError: 404: Phone not found\n"


def test_missing_credentials_are_a_configuration_error(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("ASTERISK_CTI_PASSWORD", raising=False)
    monkeypatch.setenv("ASTERISK_CTI_USERNAME", "u")
    assert main(["sim", "phones"], out=io.StringIO()) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ASTERISK_CTI_PASSWORD" in err


def test_serve_on_a_taken_port_is_one_line_and_exit_code_1(
        capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["sim", "serve", "--port", str(port)], out=io.StringIO()) == 1
    err = capsys.readouterr().err
    assert err == (f"asterisk-cti sim: error: port {port} on 127.0.0.1 is already in use; "
                   "choose another with --port (0: any free port)\n")


def test_serve_runs_until_ctrl_c_and_hides_a_given_password() -> None:
    proc = PtyProcess(["sim", "serve", "--port", "0", "--speed", "10"],
                      env={"ASTERISK_CTI_USERNAME": "tester",
                           "ASTERISK_CTI_PASSWORD": "s3cret-pw"})
    try:
        text = proc.read_until(lambda t: "Ctrl-C to stop" in t, 20, "the banner")
        url = re.search(r"admin REST: (http://127\.0\.0\.1:\d+)/sim/", text)
        assert url is not None
        assert "s3cret-pw" not in text and "user: tester" in text
        out = io.StringIO()
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("ASTERISK_CTI_PASSWORD", "s3cret-pw")
            assert main(["sim", "phones", "--url", url.group(1), "--user", "tester"],
                        out=out) == 0
        assert "PJSIP/1006" in out.getvalue()
        proc.interrupt()
        assert proc.read_to_end(20) == 0
        assert "Traceback" not in proc.text
    finally:
        proc.close()


def test_every_sim_action_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for action in ["serve", *SIM_ACTIONS]:
        with pytest.raises(SystemExit) as info:
            main(["sim", action, "--help"])
        assert info.value.code == 0
        assert capsys.readouterr().out.startswith(f"usage: asterisk-cti sim {action}")
    assert "(default 8088; 0: any free port)" in _help("serve", capsys)


def _help(action: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit):
        main(["sim", action, "--help"])
    return " ".join(capsys.readouterr().out.split())


def test_register_unregister_and_restart_from_the_command_line(sim: AriSimulator) -> None:
    _run("unregister", "1002")
    assert "PJSIP/1002     Ping       offline" in _run("phones")
    _run("register", "1002")
    assert "PJSIP/1002     Ping       online" in _run("phones")
    assert _run("restart", "--boot-time", "2") == "restart: ok\n"
    assert not sim.booted
