"""The Qt hand-off with the offscreen platform: callbacks run on the GUI thread, in order.

PySide6 comes with the test extras (``qt``); without PySide6 or PyQt6 these tests fail with
what to install, they do not skip."""

from __future__ import annotations

import os
import threading
from typing import Any, Iterator, List, Tuple

import pytest

from asterisk_cti.desktop import qt_binding, qt_call_soon
from asterisk_cti.testing import FakeAsterisk

from .conftest import Seen, pump_until
from .test_late_listeners import frame


@pytest.fixture(scope="module")
def qt_app() -> Iterator[Any]:
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    try:
        name = qt_binding()
    except ImportError as exc:
        pytest.fail(f"{exc} (the test extras install PySide6)")
    import importlib

    widgets: Any = importlib.import_module(name + ".QtWidgets")
    app = widgets.QApplication.instance() or widgets.QApplication([])
    assert app.platformName() == "offscreen"
    yield app


def test_qt_call_soon_runs_functions_from_any_thread_on_the_gui_thread(qt_app: Any) -> None:
    call_soon = qt_call_soon()
    gui = threading.current_thread()
    got: List[Tuple[int, int, threading.Thread]] = []

    def produce(p: int) -> None:
        for i in range(100):
            call_soon(lambda p=p, i=i: got.append((p, i, threading.current_thread())))

    producers = [threading.Thread(target=produce, args=(p,)) for p in range(3)]
    for t in producers:
        t.start()
    assert pump_until(qt_app.processEvents, lambda: len(got) == 300)
    for t in producers:
        t.join()
    assert {g[2] for g in got} == {gui}
    for p in range(3):
        assert [i for q, i, _ in got if q == p] == list(range(100))


def test_a_listener_through_qt_gets_state_and_events_on_the_gui_thread(
        qt_app: Any, fake: FakeAsterisk) -> None:
    seen = Seen()
    client = fake.client()
    client.monitor("PJSIP/1000")
    client.start()
    try:
        client.add_listener(seen, call_soon=qt_call_soon())
        fake.push(frame("ChannelCreated", "1.1", "PJSIP/1000-00000001"))
        fake.push(frame("ChannelStateChange", "1.1", "PJSIP/1000-00000001", state="Up"))
        assert fake.settle(client)
        assert pump_until(qt_app.processEvents, lambda: any(
            "established" in c[1] for c in seen.calls))
        assert seen.threads() == {threading.current_thread()}
        assert seen.names()[:2] == ["connected", "snapshot"]
        kinds = [c[1].split(":")[1] for c in seen.calls if c[0] == "call"]
        assert kinds == ["originated", "established"]
        assert seen.overlaps == 0
    finally:
        client.stop()
