"""Shared fixtures: every test must leave no asterisk-cti thread behind."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[1]


def traces_dir() -> Path:
    """Where the recorded Asterisk 22 traces are: $ASTERISK_CTI_TRACES or ../shared/traces."""
    env = os.environ.get("ASTERISK_CTI_TRACES")
    return Path(env) if env else REPO.parent / "shared" / "traces"


def _ours() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("asterisk-cti")]


@pytest.fixture(autouse=True)
def no_thread_leak() -> Iterator[None]:
    """Fail a test that leaves an ``asterisk-cti-*`` thread running.

    A thread gets a short grace period to finish the callback it is in (a lane thread that
    called ``stop()`` itself ends right after it returns)."""
    before = set(_ours())
    yield
    deadline = time.monotonic() + 2.0
    leaked = [t for t in _ours() if t not in before]
    while leaked and time.monotonic() < deadline:
        leaked[0].join(deadline - time.monotonic())
        leaked = [t for t in _ours() if t not in before and t.is_alive()]
    assert not leaked, f"threads leaked: {[t.name for t in leaked]}"
