"""Non-blocking call control: ``client.control.nonblocking(call_soon)`` runs each operation on
the bounded ``asterisk-cti-control-op-N`` pool and completes a future with its result or its
typed exception; callbacks go through the caller's ``call_soon``; ``stop()`` ends the pool."""

from __future__ import annotations

import inspect
import logging
import queue
import threading
import time
from concurrent.futures import CancelledError, Future
from typing import Callable, Iterator, List, Optional

import pytest

from asterisk_cti.control import CallControl, ControlFutures, ControlledCall, OperationPool
from asterisk_cti.control.futures import THREAD_PREFIX, ControlFuture
from asterisk_cti.errors import ClientStoppedError, NotInStasisError

from .conftest import Pbx, answered_call


def _op_threads() -> List[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)]


class GuiLoop:
    """A stand-in for a GUI main loop: one thread running what ``call_soon`` queued."""

    def __init__(self) -> None:
        self.jobs: queue.Queue[Optional[Callable[[], None]]] = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="test-gui-loop")
        self.thread.start()

    def call_soon(self, fn: Callable[[], None]) -> None:
        self.jobs.put(fn)

    def _run(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            job()

    def close(self) -> None:
        self.jobs.put(None)
        self.thread.join(5)
        assert not self.thread.is_alive()


@pytest.fixture
def gui() -> Iterator[GuiLoop]:
    loop = GuiLoop()
    try:
        yield loop
    finally:
        loop.close()


def test_originate_returns_at_once_and_the_future_completes_on_answer(
        pbx: Pbx, control: CallControl) -> None:
    pbx.behaviour["PJSIP/1002"] = "ring"
    started = time.monotonic()
    future = control.nonblocking().originate("PJSIP/1000", "1002", wait_for="established",
                                             timeout=5)
    assert time.monotonic() - started < 0.5  # the blocking call would wait for the answer
    assert isinstance(future, Future)
    assert pbx.seen.wait_for(lambda e: e["type"] == "ChannelStateChange"
                             and e["channel"]["name"].startswith("PJSIP/1002")
                             and e["channel"]["state"] == "Ringing")
    pbx.idle()
    assert not future.done()  # 1002 still rings
    ringing = [c for c, ch in pbx.channels.items() if ch["name"].startswith("PJSIP/1002")]
    assert len(ringing) == 1
    pbx.answer(ringing[0])
    call = future.result(5)
    assert isinstance(call, ControlledCall)
    assert call.peer_channel_id == ringing[0] and call.bridge_id in pbx.bridges
    assert future.operation == "originate"


def test_operations_run_on_the_named_pool_threads(pbx: Pbx, control: CallControl) -> None:
    names = control.nonblocking().submit("probe", lambda: threading.current_thread().name)
    assert names.result(5) == f"{THREAD_PREFIX}-1"


def test_a_failed_operation_raises_the_same_typed_error_from_the_future(
        pbx: Pbx, control: CallControl) -> None:
    cid = pbx.observed_channel("PJSIP/1000")
    pbx.idle()
    nb = control.nonblocking()
    future = nb.hold(cid)
    error = future.exception(5)
    assert isinstance(error, NotInStasisError)
    with pytest.raises(NotInStasisError):
        future.result(0)
    with pytest.raises(NotInStasisError):  # the blocking call: the same class
        control.hold(cid)
    bad = nb.hangup(cid, reason="because")
    assert isinstance(bad.exception(5), ValueError)  # bad arguments arrive in the future too


def test_hold_and_retrieve_as_futures_do_what_the_blocking_calls_do(
        pbx: Pbx, control: CallControl) -> None:
    agent, peer, _ = answered_call(pbx, control)
    nb = control.nonblocking()
    assert nb.hold(agent).result(5) is None
    assert f"POST /channels/{peer}/hold" in pbx.paths("POST")
    assert nb.retrieve(agent).result(5) is None
    assert f"DELETE /channels/{peer}/hold" in pbx.paths("DELETE")
    assert pbx.model.held[-2:] == [(agent, True), (agent, False)]


def test_callbacks_run_on_the_thread_call_soon_hands_them_to(
        pbx: Pbx, control: CallControl, gui: GuiLoop) -> None:
    agent, _, _ = answered_call(pbx, control)
    nb = control.nonblocking(gui.call_soon)
    assert nb.call_soon == gui.call_soon
    release = threading.Event()
    ran: queue.Queue[tuple[str, object]] = queue.Queue()
    gate = nb.submit("gate", release.wait)  # keeps the next operation pending
    future = nb.hold(agent)
    future.add_done_callback(lambda f: ran.put((threading.current_thread().name, f)))
    release.set()
    name, done = ran.get(timeout=5)
    assert name == "test-gui-loop" and done is future and future.result(0) is None
    assert gate.result(5) is True
    # a callback added once the future is done goes through call_soon as well
    future.add_done_callback(lambda f: ran.put((threading.current_thread().name, f)))
    assert ran.get(timeout=5)[0] == "test-gui-loop"


def test_without_call_soon_callbacks_run_on_the_operation_thread(
        pbx: Pbx, control: CallControl) -> None:
    release = threading.Event()
    names: queue.Queue[str] = queue.Queue()
    future = control.nonblocking().submit("wait", release.wait)
    future.add_done_callback(lambda f: names.put(threading.current_thread().name))
    release.set()
    assert names.get(timeout=5).startswith(THREAD_PREFIX)


def test_a_failing_callback_or_call_soon_is_logged_and_the_others_still_run(
        pbx: Pbx, control: CallControl, gui: GuiLoop,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, "asterisk_cti.control.futures")
    got: queue.Queue[int] = queue.Queue()
    release = threading.Event()
    future = control.nonblocking(gui.call_soon).submit("op", release.wait)
    future.add_done_callback(lambda f: 1 / 0)  # type: ignore[arg-type, return-value]
    future.add_done_callback(lambda f: got.put(1))

    def refuse(fn: Callable[[], None]) -> None:
        raise RuntimeError("the window is gone")

    refused_logged = threading.Event()
    refused: List[str] = []

    class Signal(logging.Handler):
        # The logger's own handlers run before the record propagates to caplog's (on the
        # pool thread): the refusal is read from here, not from caplog, once it is set.
        def emit(self, record: logging.LogRecord) -> None:
            if "call_soon refused" in record.getMessage():
                refused.append(record.getMessage())
                refused_logged.set()

    signal = Signal()
    logging.getLogger("asterisk_cti.control.futures").addHandler(signal)
    try:
        other = control.nonblocking(refuse).submit("op2", release.wait)
        other.add_done_callback(lambda f: got.put(2))
        release.set()
        assert got.get(timeout=5) == 1
        assert other.result(5) is True
        # the result is set before the done callbacks run: wait for the refusal's log line
        assert refused_logged.wait(5)
    finally:
        logging.getLogger("asterisk_cti.control.futures").removeHandler(signal)
    done = threading.Event()
    gui.call_soon(done.set)  # the loop ran everything queued before this
    assert done.wait(5)
    assert got.empty()  # the refused hand-off delivered nothing
    messages = [r.getMessage() for r in caplog.records]
    assert any("completion callback" in m and "of op raised" in m for m in messages)
    assert refused == ["call_soon refused the completion callback of op2"]


def test_a_queued_operation_can_be_cancelled_a_running_one_cannot(
        pbx: Pbx, control: CallControl) -> None:
    control.configure(operation_workers=1)
    agent, peer, _ = answered_call(pbx, control)
    nb = control.nonblocking()
    release = threading.Event()
    running = nb.submit("block", release.wait)
    queued = nb.hold(agent)
    deadline = time.monotonic() + 5
    while not running.running() and time.monotonic() < deadline:
        time.sleep(0.01)  # polling a state, bounded
    assert running.running()
    assert not running.cancel()
    assert queued.cancel()
    release.set()
    assert running.result(5) is True
    with pytest.raises(CancelledError):
        queued.result(0)
    # the pool drains: a later operation runs, and the cancelled hold was never sent
    assert nb.submit("after", lambda: 7).result(5) == 7
    assert f"POST /channels/{peer}/hold" not in pbx.paths("POST")


def test_the_pool_is_bounded_and_names_its_threads_one_to_n(
        pbx: Pbx, control: CallControl) -> None:
    control.configure(operation_workers=2)
    nb = control.nonblocking()
    release = threading.Event()
    inside: queue.Queue[str] = queue.Queue()

    def work() -> str:
        inside.put(threading.current_thread().name)
        release.wait(5)
        return threading.current_thread().name

    futures = [nb.submit(f"w{i}", work) for i in range(5)]
    first = {inside.get(timeout=5), inside.get(timeout=5)}
    assert first == {f"{THREAD_PREFIX}-1", f"{THREAD_PREFIX}-2"}
    assert inside.empty() and sum(f.running() for f in futures) == 2
    assert len(_op_threads()) == 2
    release.set()
    assert {f.result(5) for f in futures} <= first


def test_stop_ends_the_pool_and_fails_running_and_queued_operations(pbx: Pbx) -> None:
    control = pbx.client.control
    control.configure(operation_workers=1)
    pbx.behaviour["PJSIP/1002"] = "ring"
    nb = control.nonblocking()
    running = nb.originate("PJSIP/1000", "1002", wait_for="established", timeout=5)
    queued = nb.submit("queued", lambda: 1)
    assert pbx.seen.wait_for(lambda e: e["type"] == "ChannelStateChange"
                             and e["channel"]["name"].startswith("PJSIP/1002"))
    pbx.idle()
    assert running.running() and not queued.done()
    assert _op_threads()
    assert pbx.client.stop(5)
    assert not _op_threads()  # at once, not after the grace period
    assert isinstance(running.exception(0), ClientStoppedError)
    assert isinstance(queued.exception(0), ClientStoppedError)


def test_a_pool_thread_ends_when_idle_and_the_pool_starts_again() -> None:
    pool = OperationPool(workers=1, idle=0.05)
    first: Future[str] = Future()
    pool.submit(first, lambda: threading.current_thread().name)
    assert first.result(5) == f"{THREAD_PREFIX}-1"
    for thread in pool.threads():
        thread.join(5)
    assert not pool.threads()
    again: Future[int] = Future()
    pool.submit(again, lambda: 2)
    assert again.result(5) == 2
    assert pool.shutdown(5) and not pool.threads()


def test_shutdown_from_a_pool_thread_does_not_wait_for_itself() -> None:
    pool = OperationPool(workers=1)
    inner: Future[bool] = Future()
    pool.submit(inner, lambda: pool.shutdown(5))
    assert inner.result(5) is True
    for thread in pool.threads():
        thread.join(5)


def test_pool_and_view_reject_bad_arguments(pbx: Pbx, control: CallControl) -> None:
    with pytest.raises(ValueError):
        OperationPool(workers=0)
    with pytest.raises(ValueError):
        control.configure(operation_workers=0)
    with pytest.raises(TypeError):
        control.nonblocking("root.after")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        control.nonblocking().submit("x", 3)  # type: ignore[arg-type]


def test_every_blocking_operation_has_a_future_with_the_same_parameters() -> None:
    operations = ["originate", "answer", "hangup", "mute", "unmute", "send_dtmf", "redirect",
                  "hold", "retrieve", "transfer", "consult", "complete_transfer",
                  "cancel_transfer", "conference", "call_data", "set_call_data", "play",
                  "stop_playback", "continue_in_dialplan"]
    public = {name for name, member in inspect.getmembers(CallControl, inspect.isfunction)
              if not name.startswith("_")}
    not_operations = {"nonblocking", "stop_operations", "wait_engine_idle", "configure",
                      "in_stasis", "close", "actions", "adopt_calls"}
    assert public - not_operations == set(operations)
    for name in operations:
        blocking = inspect.signature(getattr(CallControl, name))
        future = inspect.signature(getattr(ControlFutures, name))
        assert list(future.parameters.values()) == list(blocking.parameters.values()), name
        assert "ControlFuture" in str(future.return_annotation), name


def test_future_repr_names_the_operation_and_its_state() -> None:
    future: ControlFuture[int] = ControlFuture("hold")
    assert repr(future) == "<ControlFuture hold pending>"
    future.set_result(1)
    assert repr(future) == "<ControlFuture hold done>"
