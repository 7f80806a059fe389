"""The example phone bar (examples/phonebar.py) under Xvfb, driven through the simulator's
admin REST: what its window shows when a call rings, is answered, held, transferred, and when
the PBX goes down and comes back, or refuses the credentials.

Widgets are read on the test's thread, which is the Tk thread (it pumps ``root.update``).
Screenshots of each state go to ``$PHONEBAR_SCREENSHOTS`` when set (``make screenshots``
writes docs/_static/phonebar-*.png), else to the test's tmp dir."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator

import pytest

from asterisk_cti import CtiConfig
from asterisk_cti.sim import AriSimulator

from .conftest import pump_until

PHONEBAR = Path(__file__).resolve().parents[2] / "examples" / "phonebar.py"


def load_phonebar() -> ModuleType:
    spec = importlib.util.spec_from_file_location("phonebar_example", PHONEBAR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return Path(os.environ.get("PHONEBAR_SCREENSHOTS") or tmp_path)


@pytest.fixture
def root(xvfb_display: str) -> Iterator[Any]:
    import tkinter

    root = tkinter.Tk(screenName=xvfb_display)
    try:
        yield root
    finally:
        root.destroy()


@pytest.fixture
def sim() -> Iterator[AriSimulator]:
    with AriSimulator(stasis_app="phonebar") as sim:
        yield sim


def screenshot(root: Any, display: str, path: Path) -> None:
    """The window's pixels as a PNG (ImageMagick's ``import``; ``make desktop-deps``)."""
    exe = shutil.which("import")
    if exe is None:
        pytest.fail("ImageMagick's import is needed for the screenshots: apt-get install -y "
                    "imagemagick (make desktop-deps installs it)")
    root.update()
    subprocess.run([exe, "-display", display, "-window", str(root.winfo_id()), str(path)],
                   check=True, timeout=20, capture_output=True)
    assert path.stat().st_size > 1000


def wait(root: Any, what: str, done: Callable[[], bool], timeout: float = 10.0) -> None:
    assert pump_until(root.update, done, timeout), (what, texts(root))


def texts(root: Any) -> list:
    """Every label's text in the window (for a failure's message)."""
    out, todo = [], [root]
    while todo:
        w = todo.pop()
        todo.extend(w.winfo_children())
        if w.winfo_class() == "Label":
            out.append(w["text"])
    return out


def enabled(bar: Any) -> set:
    return {label for label, b in bar.buttons.items() if str(b["state"]) == "normal"}


def test_the_phone_bar_shows_ringing_connected_held_transferred_and_pbx_down(
        root: Any, sim: AriSimulator, xvfb_display: str, shots: Path) -> None:
    config = CtiConfig(url=sim.url, username=sim.username, password=sim.password,
                       app="phonebar", reconnect_min=0.1, reconnect_max=0.5)
    bar = load_phonebar().run(root, config, "PJSIP/1000")
    admin = sim.admin_client()
    try:
        wait(root, "connected", lambda: bar.status["text"].startswith("connected"))
        assert bar.state["text"] == "IDLE" and enabled(bar) == {"Dial"}

        # 1002 calls 7000: the dialplan sends it through the SDK's switch, 1000 rings
        admin.dial("1002", "7000")
        wait(root, "ringing", lambda: bar.state["text"].startswith("RINGING"))
        assert "Ping" in bar.party["text"] and "1002" in bar.party["text"]
        assert enabled(bar) == {"Dial", "Hang up"}  # a ringing phone is answered on the phone
        screenshot(root, xvfb_display, shots / "phonebar-ringing.png")

        admin.answer("1000")  # the person picks up
        wait(root, "connected call", lambda: bar.state["text"].startswith("CONNECTED")
             and "Hold" in enabled(bar))
        assert "1002" in bar.party["text"]
        assert enabled(bar) == {"Dial", "Hang up", "Hold", "Transfer"}
        screenshot(root, xvfb_display, shots / "phonebar-connected.png")

        bar.buttons["Hold"].invoke()  # returns at once: the operation is a future
        wait(root, "held", lambda: bar.state["text"].startswith("HELD")
             and "Retrieve" in enabled(bar))
        assert "Hold" not in enabled(bar) and "Transfer" in enabled(bar)
        wait(root, "hold done", lambda: bar.note["text"] == "Hold: done")
        screenshot(root, xvfb_display, shots / "phonebar-held.png")

        bar.buttons["Retrieve"].invoke()
        wait(root, "retrieved", lambda: bar.state["text"].startswith("CONNECTED")
             and "Hold" in enabled(bar))

        sim.phone("1006").auto_answer = 0.2
        bar.number.insert(0, "1006")
        bar.buttons["Transfer"].invoke()
        wait(root, "transferred", lambda: bar.state["text"].startswith("IDLE")
             and "transferred" in bar.state["text"])
        assert enabled(bar) == {"Dial"} and bar.party["text"] == ""
        wait(root, "transfer done", lambda: bar.note["text"] == "Transfer: done")
        screenshot(root, xvfb_display, shots / "phonebar-transferred.png")

        admin.restart(boot_time=2)  # core restart now: down for 2 s
        wait(root, "PBX down", lambda: "PBX down" in bar.status["text"])
        assert "retrying" in bar.status["text"]
        screenshot(root, xvfb_display, shots / "phonebar-pbx-down.png")
        wait(root, "back", lambda: bar.status["text"].startswith("connected"), timeout=20)
        assert bar.state["text"].startswith("IDLE")
    finally:
        bar.cti.stop()
        root.update()


def test_the_phone_bar_shows_a_permanent_error_at_once(
        root: Any, sim: AriSimulator, xvfb_display: str, shots: Path) -> None:
    config = CtiConfig(url=sim.url, username=sim.username, password="not-the-password",
                       app="phonebar")
    bar = load_phonebar().run(root, config, "PJSIP/1000")
    try:
        wait(root, "error", lambda: bar.status["text"].startswith("error:"), timeout=5)
        assert "not-the-password" not in bar.status["text"]
        assert enabled(bar) == {"Dial"}
        screenshot(root, xvfb_display, shots / "phonebar-error.png")
    finally:
        bar.cti.stop()
        root.update()


def test_dial_and_hang_up_from_the_phone_bar(root: Any, sim: AriSimulator) -> None:
    for ext in ("1000", "1002"):  # as with --sim: the phones answer by themselves
        sim.phone(ext).auto_answer = 0.2
    config = CtiConfig(url=sim.url, username=sim.username, password=sim.password,
                       app="phonebar")
    bar = load_phonebar().run(root, config, "PJSIP/1000")
    try:
        wait(root, "connected", lambda: bar.status["text"].startswith("connected"))
        bar.number.insert(0, "1002")
        bar.buttons["Dial"].invoke()
        assert bar.note["text"] == "Dial..."  # painted at once: the Tk thread never waits
        wait(root, "call up", lambda: bar.state["text"].startswith("CONNECTED")
             and "1002" in bar.party["text"] and "Hold" in enabled(bar))
        bar.buttons["Hang up"].invoke()
        wait(root, "hung up", lambda: bar.state["text"].startswith("IDLE")
             and enabled(bar) == {"Dial"})
        admin = sim.admin_client()
        wait(root, "both legs gone", lambda: admin.calls() == [])
    finally:
        bar.cti.stop()
        root.update()


def test_an_outside_caller_rings_and_an_observed_call_offers_hang_up_only(
        root: Any, sim: AriSimulator) -> None:
    config = CtiConfig(url=sim.url, username=sim.username, password=sim.password,
                       app="phonebar")
    bar = load_phonebar().run(root, config, "PJSIP/1000")
    admin = sim.admin_client()
    try:
        wait(root, "connected", lambda: bar.status["text"].startswith("connected"))
        admin.trunk_call("+33123456789", "1000", name="ACME")  # plain Dial(): observed
        wait(root, "ringing", lambda: bar.state["text"].startswith("RINGING"))
        assert "+33123456789" in bar.party["text"]
        admin.answer("1000")
        wait(root, "connected call", lambda: bar.state["text"].startswith("CONNECTED"))
        assert enabled(bar) == {"Dial", "Hang up"}  # not in the SDK's application
        bar.buttons["Hang up"].invoke()
        wait(root, "hung up", lambda: bar.state["text"].startswith("IDLE")
             and admin.calls() == [])
    finally:
        bar.cti.stop()
        root.update()
