"""Fixtures of the desktop hand-off tests: a private X server (Xvfb) for Tk, the offscreen
Qt platform, and a recording listener.

Nothing here skips: a missing Xvfb, tkinter or Qt binding fails the test with what to
install (``make test`` installs the system packages on Debian)."""

from __future__ import annotations

import gc
import os
import select
import shutil
import subprocess
import threading
import time
from typing import Any, Callable, Iterator, List, Tuple

import pytest

from asterisk_cti import CallListener, ConnectionListener, LineSnapshotEvent
from asterisk_cti.testing import FakeAsterisk

_XVFB_HINT = ("Xvfb is needed for the Tk hand-off tests: apt-get install -y xvfb "
              "(make test installs it on Debian)")


@pytest.fixture(scope="session")
def xvfb_display() -> Iterator[str]:
    """Start Xvfb on a free display number (it picks one itself: ``-displayfd``), yield
    ``":N"``, stop it afterwards."""
    exe = shutil.which("Xvfb")
    if exe is None:
        pytest.fail(_XVFB_HINT)
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        [exe, "-displayfd", str(write_fd), "-nolisten", "tcp", "-screen", "0", "640x480x24"],
        pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.close(write_fd)
    try:
        ready, _, _ = select.select([read_fd], [], [], 10.0)
        number = os.read(read_fd, 64).decode().strip() if ready else ""
        if not number:
            proc.kill()
            err = proc.communicate(timeout=5)[1].decode(errors="replace")[-500:]
            pytest.fail(f"Xvfb did not start within 10 s: {err}")
        yield ":" + number
    finally:
        os.close(read_fd)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@pytest.fixture(autouse=True)
def collect_on_the_gui_thread() -> Iterator[None]:
    """Tk and Qt objects must be freed on their own thread: collect what a test leaves in
    reference cycles now, on the test's (the GUI) thread, not later during another test on
    some SDK thread."""
    yield
    gc.collect()


def pump_until(step: Callable[[], Any], done: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Run the GUI loop's ``step`` (``root.update``, ``app.processEvents``) until
    ``done()`` or the timeout; returns ``done()``."""
    deadline = time.monotonic() + timeout
    idle = threading.Event()
    while not done():
        if time.monotonic() >= deadline:
            return done()
        step()
        idle.wait(0.002)  # let the other threads run between two turns of the loop
    return True


class Seen(CallListener, ConnectionListener):
    """Records ``(callback, detail, thread)`` in the order the callbacks ran."""

    def __init__(self) -> None:
        self.calls: List[Tuple[str, str, threading.Thread]] = []
        self.lock = threading.Lock()
        self.running = 0
        self.overlaps = 0

    def _add(self, name: str, detail: str) -> None:
        with self.lock:
            self.running += 1
            if self.running > 1:
                self.overlaps += 1
        try:
            self.calls.append((name, detail, threading.current_thread()))
        finally:
            with self.lock:
                self.running -= 1

    def on_connected(self, event: Any) -> None:
        self._add("connected", "current" if event.current else "new")

    def on_disconnected(self, event: Any) -> None:
        self._add("disconnected", "current" if event.current else "new")

    def on_line_snapshot(self, event: LineSnapshotEvent) -> None:
        self._add("snapshot", f"{event.line.name}:{event.reason}:{len(event.line.connections)}")

    def on_call_event(self, event: Any) -> None:
        self._add("call", f"{event.line}:{event.kind}:{event.connection_id}")

    def names(self) -> List[str]:
        return [c[0] for c in self.calls]

    def threads(self) -> set:
        return {c[2] for c in self.calls}


@pytest.fixture
def fake() -> FakeAsterisk:
    return FakeAsterisk(endpoints=["PJSIP/1000", "PJSIP/1002"])
