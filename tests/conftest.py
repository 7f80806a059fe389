"""Shared fixtures: every test must leave no asterisk-cti thread behind."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[1]


#: The recorded Asterisk 22 traces, vendored with the tests (tests/data/traces/README.md).
TRACES = REPO / "tests" / "data" / "traces"


def traces_dir() -> Path:
    """Where the recorded Asterisk 22 traces are: in the repository, never outside it.

    :raises FileNotFoundError: when the vendored traces are missing (a broken checkout must
        fail, not skip the tests that need them).
    """
    if not any(TRACES.glob("*.jsonl")):
        raise FileNotFoundError(f"the vendored traces are missing from {TRACES}")
    return TRACES


#: Threads a test must not leave running, by name prefix, with the grace each gets to end:
#: the SDK's, the call-centre server's and desktops' (``asterisk-cti-*``), and paho's network
#: threads of the MQTT clients (whose ``loop_stop`` may wait for a keep-alive round).
_THREAD_GRACE = {"asterisk-cti": 2.0, "paho-mqtt-client-": 5.0}


def _ours() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(tuple(_THREAD_GRACE))]


def _grace(thread: threading.Thread) -> float:
    return max(g for prefix, g in _THREAD_GRACE.items() if thread.name.startswith(prefix))


@pytest.fixture(autouse=True)
def no_thread_leak() -> Iterator[None]:
    """Fail a test that leaves one of its threads running (:data:`_THREAD_GRACE`).

    A thread gets a short grace period to finish the callback it is in (a lane thread that
    called ``stop()`` itself ends right after it returns)."""
    before = set(_ours())
    yield
    start = time.monotonic()
    leaked = [t for t in _ours() if t not in before]
    for thread in leaked:
        thread.join(max(0.0, start + _grace(thread) - time.monotonic()))
    leaked = [t for t in leaked if t.is_alive()]
    assert not leaked, f"threads leaked: {[t.name for t in leaked]}"


@pytest.fixture(scope="session")
def tls_cert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a fresh self-signed ``cert.pem`` / ``key.pem`` for ``127.0.0.1`` (made
    once per run with ``openssl``): servers load it, clients trust it as their CA bundle."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make a test certificate (apt-get install openssl)")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
        check=True, capture_output=True)
    return d
