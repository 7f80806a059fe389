"""Every public call-control method, on every unexpected target, returns or raises promptly
and leaves the client usable (issue 10, class 9: ``retrieve()`` on a call the SDK did not
hold took the state lock twice and wedged the whole client)."""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

from asterisk_cti.control.calls import (
    CallControl,
    CallStateError,
    Consultation,
    ControlledCall,
)
from asterisk_cti.errors import AsteriskCtiError, NotFoundError, NotInStasisError
from tests.control.conftest import Pbx, answered_call

BOUND = 4.0  # seconds: generous for a loaded machine; a wedged call never returns
OP_TIMEOUT = 1.0


def bounded(fn: Callable[[], Any], bound: float = BOUND) -> Tuple[str, Any]:
    """Run ``fn`` in a thread; ('ok', result) or ('raised', exc). Fails when it hangs."""
    out: Dict[str, Any] = {}

    def run() -> None:
        try:
            out["ok"] = fn()
        except BaseException as exc:  # recorded and checked by the caller
            out["raised"] = exc

    thread = threading.Thread(target=run, name="test-bounded", daemon=True)
    thread.start()
    thread.join(bound)
    assert not thread.is_alive(), f"{fn} did not return within {bound} s"
    return next(iter(out.items()))


def assert_client_alive(pbx: Pbx, control: CallControl) -> None:
    """The state lock is free and the client still answers."""
    lock = control._state._lock  # white-box: no operation may leave it held
    assert lock.acquire(timeout=1.0), "the call-control state lock is still held"
    lock.release()
    assert bounded(lambda: control.in_stasis("probe"), 1.0) == ("ok", False)
    assert bounded(lambda: repr(control), 1.0)[0] == "ok"
    pbx.idle()


def operations(target: Any, consult: Consultation) -> List[Tuple[str, Callable[[], Any]]]:
    """Every public control method, aimed at ``target``."""
    c = CONTROL[0]
    return [
        ("answer", lambda: c.answer(target, timeout=OP_TIMEOUT)),
        ("mute", lambda: c.mute(target)),
        ("unmute", lambda: c.unmute(target)),
        ("send_dtmf", lambda: c.send_dtmf(target, "12#")),
        ("redirect", lambda: c.redirect(target, "PJSIP/1006")),
        ("hold", lambda: c.hold(target)),
        ("retrieve", lambda: c.retrieve(target)),
        ("transfer", lambda: c.transfer(target, "1006", timeout=OP_TIMEOUT)),
        ("consult", lambda: c.consult(target, "1006", timeout=OP_TIMEOUT)),
        ("complete_transfer", lambda: c.complete_transfer(target, consult,
                                                          timeout=OP_TIMEOUT)),
        ("cancel_transfer", lambda: c.cancel_transfer(target, consult, timeout=OP_TIMEOUT)),
        ("conference", lambda: c.conference(target, "1006", timeout=OP_TIMEOUT)),
        ("in_stasis", lambda: c.in_stasis(target if isinstance(target, str) else "x")),
        ("hangup", lambda: c.hangup(target, timeout=OP_TIMEOUT)),  # last: it ends the call
    ]


CONTROL: List[CallControl] = []


def stale_consult(call: ControlledCall) -> Consultation:
    return Consultation("cti-c-gone", call, call.channel_id, "cti-c-gone", "cti-b-gone")


def run_all(pbx: Pbx, control: CallControl, target: Any,
            expect: Optional[Dict[str, type]] = None) -> Dict[str, Tuple[str, Any]]:
    CONTROL[:] = [control]
    call = target if isinstance(target, ControlledCall) else ControlledCall(
        str(target), str(target))
    results: Dict[str, Tuple[str, Any]] = {}
    for name, fn in operations(target, stale_consult(call)):
        for attempt in (1, 2):  # twice in a row
            kind, value = bounded(fn)
            if kind == "raised":
                assert isinstance(value, AsteriskCtiError), (name, attempt, repr(value))
            if expect and name in expect and attempt == 1:
                assert kind == "raised" and isinstance(value, expect[name]), (name, value)
            results[f"{name}#{attempt}"] = (kind, value)
            assert_client_alive(pbx, control)
    return results


def test_every_method_on_an_unknown_id(pbx: Pbx, control: CallControl) -> None:
    results = run_all(pbx, control, "no-such-channel", expect={
        "hangup": NotFoundError, "mute": NotFoundError, "unmute": NotFoundError,
        "send_dtmf": NotFoundError, "redirect": NotFoundError, "hold": NotFoundError,
        "retrieve": NotFoundError, "answer": NotFoundError, "transfer": CallStateError,
        "consult": CallStateError, "complete_transfer": CallStateError,
        "cancel_transfer": CallStateError, "conference": CallStateError,
    })
    assert results["in_stasis#1"] == ("ok", False)


def test_every_method_on_a_call_that_is_gone(pbx: Pbx, control: CallControl) -> None:
    agent, peer, bridge = answered_call(pbx, control)
    call = ControlledCall(agent, agent, peer, bridge, True, (agent, peer))
    control.hangup(call, timeout=2)
    pbx.idle()
    assert not pbx.channels
    run_all(pbx, control, call, expect={
        "hangup": NotFoundError, "retrieve": NotFoundError, "transfer": CallStateError,
        "complete_transfer": CallStateError,
    })


def test_every_method_on_a_call_not_in_stasis(pbx: Pbx, control: CallControl) -> None:
    outside = pbx.observed_channel("PJSIP/1000", state="Up")
    pbx.idle()
    run_all(pbx, control, outside, expect={
        "mute": NotInStasisError, "unmute": NotInStasisError, "send_dtmf": NotInStasisError,
        "redirect": NotInStasisError, "hold": NotInStasisError,
        "retrieve": NotInStasisError, "answer": NotInStasisError,
        "transfer": NotInStasisError,
    })


def test_every_method_on_a_channel_asterisk_says_is_not_in_stasis(
        pbx: Pbx, control: CallControl) -> None:
    # a channel the SDK never saw: Asterisk itself answers 409
    cid = pbx.new_channel("PJSIP/1002", state="Up")
    run_all(pbx, control, cid, expect={
        "mute": NotInStasisError, "hold": NotInStasisError, "retrieve": NotInStasisError,
    })


def test_retrieve_of_a_call_held_from_the_desk_phone(pbx: Pbx, control: CallControl) -> None:
    """Not held by the SDK (ChannelHold came from the phone): the peers are taken off hold,
    promptly, twice in a row, and the client stays usable."""
    agent, peer, _ = answered_call(pbx, control)
    for _ in range(2):
        assert bounded(lambda: control.retrieve(agent)) == ("ok", None)
        assert_client_alive(pbx, control)
    unholds = [r.path for r in pbx.requests("DELETE") if r.path.endswith("/hold")]
    assert unholds == [f"/channels/{peer}/hold"] * 2
    # and hold/retrieve still work afterwards
    control.hold(agent)
    control.retrieve(agent)
    assert pbx.model.held[-2:] == [(agent, True), (agent, False)]


def test_hold_and_retrieve_twice_in_a_row(pbx: Pbx, control: CallControl) -> None:
    agent, peer, _ = answered_call(pbx, control)
    for op in (control.hold, control.hold, control.retrieve, control.retrieve):
        assert bounded(lambda op=op: op(agent)) == ("ok", None)  # type: ignore[misc]
        assert_client_alive(pbx, control)
    holds = [f"{r.method} {r.path}" for r in pbx.requests() if r.path.endswith("/hold")]
    assert holds == [f"POST /channels/{peer}/hold", f"DELETE /channels/{peer}/hold",
                     f"DELETE /channels/{peer}/hold"]
