"""asterisk-cti dial: click-to-dial on the simulator, success and failure."""

from __future__ import annotations

import io
import re
from typing import Iterator

import pytest

from asterisk_cti.cli import main
from asterisk_cti.sim import AriSimulator


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[AriSimulator]:
    with AriSimulator(speed=10) as s:
        monkeypatch.setenv("ASTERISK_CTI_PASSWORD", s.password)
        monkeypatch.delenv("ASTERISK_CTI_APP", raising=False)
        s.phone("1000").auto_answer = 0.5
        s.phone("1002").auto_answer = 1.0
        yield s


def _conn(sim: AriSimulator) -> list[str]:
    return ["--url", sim.url, "--user", sim.username]


def test_dial_with_sim_is_established_then_followed_to_the_end() -> None:
    out = io.StringIO()
    code = main(["dial", "--sim", "--speed", "10", "PJSIP/1000", "1002", "--wait",
                 "established", "--verbose"], out=out)
    text = out.getvalue()
    assert code == 0, text
    assert re.search(r"^established: PJSIP/1000 -> 1002 \(call cti-c-", text, re.M)
    assert re.search(r"PJSIP/1000 +established +connected", text)
    assert text.rstrip().endswith("call ended: PJSIP/1000 -> 1002")


def test_dial_delivered_detach_returns_while_the_destination_rings(sim: AriSimulator) -> None:
    sim.phone("1002").auto_answer = None
    out = io.StringIO()
    assert main(["dial", "PJSIP/1000", "1002", "--detach", *_conn(sim)], out=out) == 0
    assert "delivered: PJSIP/1000 -> 1002" in out.getvalue()
    with sim.pbx.lock:
        states = [sim.pbx.channels[c].state for c in sim.pbx.endpoints["PJSIP/1002"].channel_ids]
    assert states == ["Ringing"]


def test_dial_busy_exits_1_with_the_cause(sim: AriSimulator,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    sim.phone("1002").busy = True
    out = io.StringIO()
    assert main(["dial", "PJSIP/1000", "1002", "--timeout", "5", *_conn(sim)], out=out) == 1
    err = capsys.readouterr().err
    assert err.startswith("asterisk-cti: call failed: BUSY, cause 17")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert sim.password not in err + out.getvalue()


def test_dial_dialplan_context_is_an_observed_call(sim: AriSimulator) -> None:
    out = io.StringIO()
    code = main(["dial", "PJSIP/1000", "1002", "--context", "from-internal", "--wait",
                 "established", *_conn(sim)], out=out)
    assert code == 0, out.getvalue()
    assert "established: PJSIP/1000 -> 1002" in out.getvalue()
    assert "following" not in out.getvalue()  # Asterisk's dialplan owns the call


def test_dial_usage_and_configuration_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["dial", "PJSIP/1000", "1002", "--wait", "answered"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid choice: 'answered'" in err
    assert main(["dial", "1000", "1002"], out=io.StringIO()) == 2
    assert "endpoint: '1000' is not TECH/RESOURCE" in capsys.readouterr().err
    assert main(["dial", "PJSIP/1000", "1002", "--timeout", "0"], out=io.StringIO()) == 2


def test_dial_unreachable_asterisk_is_one_line_exit_1(capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("ASTERISK_CTI_CONNECT_TIMEOUT", "1")
    monkeypatch.setenv("ASTERISK_CTI_REQUEST_TIMEOUT", "1")
    monkeypatch.setenv("ASTERISK_CTI_PASSWORD", "s3cret-pw")
    code = main(["dial", "PJSIP/1000", "1002", "--url", f"http://127.0.0.1:{port}"],
                out=io.StringIO())
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("asterisk-cti: ") and err.count("\n") == 1
    assert "s3cret-pw" not in err
