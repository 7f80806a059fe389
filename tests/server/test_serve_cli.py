"""``asterisk-cti serve`` as a child process: online on the broker, offline on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from asterisk_cti.cli import main
from asterisk_cti.sim import AriSimulator
from tests.conftest import REPO

from .conftest import SERVER_PASSWORD, SITE, Agent, Broker


def _config_file(tmp_path: Path, broker: Broker) -> Path:
    path = tmp_path / "server.json"
    path.write_text(json.dumps({
        "site": SITE, "broker": f"mqtt://127.0.0.1:{broker.port}",
        "agents": {"1000": {"lines": ["PJSIP/1000"]}, "1002": {"lines": ["PJSIP/1002"]},
                   "sup": {"lines": ["PJSIP/1000", "PJSIP/1002"], "supervisor": True}}}))
    return path


def test_serve_publishes_online_then_offline_on_sigterm(
        tmp_path: Path, broker: Broker, sim: AriSimulator,
        agents: Callable[..., Agent]) -> None:
    agent = agents("1000")
    assert agent.subscribe(f"cti/{SITE}/server/status") == [1]
    assert agent.subscribe(f"cti/{SITE}/line/1000/state") == [1]
    env = dict(os.environ, PYTHONPATH=str(REPO), ASTERISK_CTI_PASSWORD=sim.password,
               ASTERISK_CTI_BROKER_PASSWORD=SERVER_PASSWORD)
    proc = subprocess.Popen(
        [sys.executable, "-m", "asterisk_cti.cli", "serve", "--config",
         str(_config_file(tmp_path, broker)), "--url", sim.url, "--user", sim.username,
         "--app", "cti-serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        cwd=str(REPO))
    try:
        agent.wait(lambda t, p: t.endswith("/server/status") and p["status"] == "online",
                   timeout=20)
        _, snap, _, _ = agent.wait(lambda t, p: t.endswith("/state"), timeout=20)
        assert snap["line"] == "PJSIP/1000"
        proc.send_signal(signal.SIGTERM)
        agent.wait(lambda t, p: t.endswith("/server/status") and p["status"] == "offline")
        output, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, output
    text = output.decode()
    assert "serving 2 lines of site paris for 3 agents" in text
    assert sim.password not in text and SERVER_PASSWORD not in text


def test_serve_without_broker_password_is_a_usage_error(
        tmp_path: Path, broker: Broker, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("ASTERISK_CTI_BROKER_PASSWORD", raising=False)
    assert main(["serve", "--config", str(_config_file(tmp_path, broker))]) == 2
    assert "ASTERISK_CTI_BROKER_PASSWORD" in capsys.readouterr().err


def test_serve_with_a_malformed_config_is_a_usage_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"site": "a/b", "agents": {}}')
    assert main(["serve", "--config", str(bad)]) == 2
    assert "site" in capsys.readouterr().err


def test_a_second_serve_is_a_standby_and_takes_over_a_killed_one(
        tmp_path: Path, broker: Broker, sim: AriSimulator,
        agents: Callable[..., Agent]) -> None:
    agent = agents("1000")
    assert agent.subscribe(f"cti/{SITE}/server/status") == [1]
    env = dict(os.environ, PYTHONPATH=str(REPO), ASTERISK_CTI_PASSWORD=sim.password,
               ASTERISK_CTI_BROKER_PASSWORD=SERVER_PASSWORD)
    config = _config_file(tmp_path, broker)

    def serve(name: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "asterisk_cti.cli", "serve", "--config", str(config),
             "--url", sim.url, "--user", sim.username, "--app", "cti-serve", "--name", name,
             "--keepalive", "2", "--takeover-delay", "1.5"], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=str(REPO))

    procs = [serve("east")]
    try:
        agent.wait(lambda t, p: p["status"] == "online" and p["server"] == "east", timeout=20)
        procs.append(serve("west"))
        assert procs[1].stdout is not None
        first_line = procs[1].stdout.readline().decode()  # blocks until it is serving
        assert first_line.startswith("standby: serving 2 lines"), first_line
        procs[0].kill()  # SIGKILL: no clean disconnect, the broker publishes the will
        procs[0].wait(10)
        agent.wait(lambda t, p: p["status"] == "offline" and p["server"] == "east")
        agent.wait(lambda t, p: p["status"] == "online" and p["server"] == "west",
                   timeout=10)
        assert procs[1].stdout.readline().decode().startswith("active (instance west-")
        procs[1].send_signal(signal.SIGTERM)
        agent.wait(lambda t, p: p["status"] == "offline" and p["server"] == "west")
        assert procs[1].wait(20) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
            if proc.stdout is not None:
                proc.stdout.close()


def test_serve_with_named_asterisk_servers_needs_their_passwords(
        tmp_path: Path, broker: Broker, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "multi.json"
    path.write_text(json.dumps({
        "site": SITE, "broker": f"mqtt://127.0.0.1:{broker.port}",
        "agents": {"1000": {"lines": ["PJSIP/1000"]}, "2000": {"lines": ["PJSIP/2000"]}},
        "asterisk": {"pbx1": {"url": "http://127.0.0.1:9", "lines": ["PJSIP/1000"],
                              "password_env": "PBX1_PW"},
                     "pbx2": {"url": "http://127.0.0.1:9", "lines": ["PJSIP/2000"],
                              "password_env": "PBX2_PW"}}}))
    monkeypatch.setenv("ASTERISK_CTI_BROKER_PASSWORD", SERVER_PASSWORD)
    monkeypatch.setenv("PBX1_PW", "one")
    monkeypatch.delenv("PBX2_PW", raising=False)
    assert main(["serve", "--config", str(path)]) == 2
    assert "$PBX2_PW" in capsys.readouterr().err
    monkeypatch.setenv("PBX2_PW", "two")  # --url names one server, but there are two
    assert main(["serve", "--config", str(path), "--url", "http://127.0.0.1:9"]) == 2
    assert "per server" in capsys.readouterr().err
