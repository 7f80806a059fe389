"""The Tk hand-off under Xvfb: callbacks run on the Tk thread, in order, one at a time."""

from __future__ import annotations

import threading
from typing import Any, Iterator, List, Tuple

import pytest

from asterisk_cti.desktop import tk_call_soon
from asterisk_cti.testing import FakeAsterisk

from .conftest import Seen, pump_until
from .test_late_listeners import frame


@pytest.fixture
def tk_root(xvfb_display: str) -> Iterator[Any]:
    try:
        import tkinter
    except ImportError as exc:  # a missing feature must fail, not skip
        pytest.fail(f"tkinter is needed for the Tk hand-off tests (apt-get install -y "
                    f"python3-tk): {exc}")
    root = tkinter.Tk(screenName=xvfb_display)
    root.withdraw()
    try:
        yield root
    finally:
        root.destroy()


def test_tk_call_soon_runs_functions_from_any_thread_on_the_tk_thread(tk_root: Any) -> None:
    call_soon = tk_call_soon(tk_root, interval_ms=5)
    tk_thread = threading.current_thread()
    got: List[Tuple[int, int, threading.Thread]] = []
    label_texts: List[str] = []
    import tkinter

    label = tkinter.Label(tk_root, text="")

    def produce(p: int) -> None:
        for i in range(100):
            def run(p: int = p, i: int = i) -> None:
                label["text"] = f"{p}:{i}"  # touching Tk: only legal on the Tk thread
                label_texts.append(label["text"])
                got.append((p, i, threading.current_thread()))
            call_soon(run)

    producers = [threading.Thread(target=produce, args=(p,)) for p in range(3)]
    for t in producers:
        t.start()
    assert pump_until(tk_root.update, lambda: len(got) == 300)
    for t in producers:
        t.join()
    assert {g[2] for g in got} == {tk_thread}
    for p in range(3):
        assert [i for q, i, _ in got if q == p] == list(range(100))
    assert label_texts[-1] == f"{got[-1][0]}:{got[-1][1]}"
    call_soon.close()
    call_soon(lambda: got.append((9, 9, threading.current_thread())))
    tk_root.update()
    assert len(got) == 300 and call_soon.pending() == 1  # closed: no more polling


def test_a_listener_through_tk_gets_state_and_events_on_the_tk_thread(
        tk_root: Any, fake: FakeAsterisk) -> None:
    seen = Seen()
    client = fake.client()
    client.monitor("PJSIP/1000")
    client.start()
    try:
        client.add_listener(seen, call_soon=tk_call_soon(tk_root, interval_ms=5))
        fake.push(frame("ChannelCreated", "1.1", "PJSIP/1000-00000001"))
        fake.push(frame("ChannelStateChange", "1.1", "PJSIP/1000-00000001", state="Up"))
        fake.push(frame("ChannelDestroyed", "1.1", "PJSIP/1000-00000001", cause=16))
        assert fake.settle(client)
        assert pump_until(tk_root.update, lambda: any(
            "call_cleared" in c[1] for c in seen.calls))
        assert seen.threads() == {threading.current_thread()}
        assert seen.names()[:2] == ["connected", "snapshot"]
        kinds = [c[1].split(":")[1] for c in seen.calls if c[0] == "call"]
        assert kinds[:2] == ["originated", "established"]
        assert kinds.index("established") < kinds.index("connection_cleared") \
            < kinds.index("call_cleared")
        assert seen.overlaps == 0
    finally:
        client.stop()


def test_tk_polling_stops_when_the_window_is_destroyed(xvfb_display: str) -> None:
    import tkinter

    root = tkinter.Tk(screenName=xvfb_display)
    call_soon = tk_call_soon(root, interval_ms=5)
    root.destroy()
    call_soon(lambda: None)  # still safe to call: it only queues
    assert call_soon.pending() == 1
