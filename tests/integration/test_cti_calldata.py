"""Call data and QUEUED on the real Asterisk 22 (the lab's ari.conf lists
``channelvars = CHANNEL(linkedid),CTI_DATA``).

1000 calls the lab's queue-with-data extension (``Set(__CTI_DATA=account=4711&choice=billing)``
then ``Queue(support)``, ringall over 1002 and 1006): the caller is ``queued`` in ``support``,
both agents ring with the data and the queue, 1006 answers. And data set through call control
on a call in the SDK's application shows on that call's next events.
"""

from __future__ import annotations

from typing import Dict, List

from asterisk_cti import ConnectionState

from .calls import NOISE, agent_answers_queued, expect_queued, keep_sequences
from .conftest import LAB_LINES, CtiFactory, LabCti
from .lab import Lab, Phone

K, P, L = "PJSIP/1000", "PJSIP/1002", "PJSIP/1006"
DATA = {"account": "4711", "choice": "billing"}


def _sequence(cti: LabCti, since: int) -> List[str]:
    """``line kind state queue data`` of every CTI event since ``since`` (for the report)."""
    out = []
    for e in cti.events.call_events(None, since):
        if e.kind.value in NOISE:
            continue
        out.append(f"{e.line} {e.kind.value} {e.previous_state.value}->{e.state.value} "
                   f"queue={e.queue or '-'} data={dict(e.data)}")
    return out


def test_queue_call_with_dialplan_data(lab: Lab, cti: LabCti,
                                       phones: Dict[str, Phone]) -> None:
    kai, lee = phones["1000"], phones["1006"]
    start = cti.events.mark()
    kai.dial(lab.config.queue_data_exten)
    expect_queued(cti.events, start, K, (P, L), DATA)
    answered = agent_answers_queued(cti, lee, L, K, start, DATA)
    assert answered.previous_state is ConnectionState.QUEUED
    cti.events.wait_call("call_cleared", P, since=start)
    kai.hangup()
    lee.wait_for("CALL_CLOSED")
    for line in (K, L):
        cti.events.wait_call("call_cleared", line, since=start)
    assert cti.wait_idle(5.0)
    assert cti.events.kinds(K, start, skip=NOISE) == [
        "originated", "queued", "established", "connection_cleared", "call_cleared"]
    assert cti.events.kinds(P, start, skip=NOISE) == [
        "delivered", "connection_cleared", "call_cleared"]
    assert cti.events.kinds(L, start, skip=NOISE) == [
        "delivered", "established", "connection_cleared", "call_cleared"]
    assert cti.stats()["model"] == {"unfit": 0, "call_data_errors": 0}
    print("\nobserved (queue with dialplan data):\n  " + "\n  ".join(_sequence(cti, start)))
    keep_sequences("queue with call data (1000 dials 2004, 1006 answers)", cti.events,
                   LAB_LINES, start)


def test_caller_hangs_up_while_queued(lab: Lab, cti: LabCti,
                                      phones: Dict[str, Phone]) -> None:
    kai = phones["1000"]
    start = cti.events.mark()
    kai.dial(lab.config.queue_exten)
    cti.events.wait_call("queued", K, since=start)
    for line in (P, L):
        cti.events.wait_call("delivered", line, since=start)
    kai.hangup()
    cleared = cti.events.wait_call("connection_cleared", K, since=start)
    assert cleared.previous_state is ConnectionState.QUEUED
    for line in (K, P, L):
        cti.events.wait_call("call_cleared", line, since=start)
    assert cti.events.kinds(K, start, skip=NOISE) == [
        "originated", "queued", "connection_cleared", "call_cleared"]
    for line in (P, L):
        assert cti.events.kinds(line, start, skip=NOISE) == [
            "delivered", "connection_cleared", "call_cleared"]
    print("\nobserved (caller hangs up while queued):\n  "
          + "\n  ".join(_sequence(cti, start)))


def test_call_data_set_by_call_control_shows_on_the_next_events(
        cti_factory: CtiFactory, lab: Lab, phones: Dict[str, Phone]) -> None:
    """1000 dials 7002 (the switch: the caller in the SDK's application, 1002 dialled with
    the caller as originator); set_call_data on the caller: call control tells the model
    (ChannelVarset stays filtered on the server), the next events of both lines carry the
    data; a leg the SDK dials afterwards for the caller (a blind transfer to 1006) inherits
    the variable in Asterisk."""
    for phone in phones.values():
        phone.set_auto_answer(True)
    cti = cti_factory(app=lab.config.app)
    start = cti.events.mark()
    phones["1000"].dial("7002")
    kai_up = cti.events.wait_call("established", K, since=start)
    cti.events.wait_call("established", P, since=start)
    assert dict(kai_up.data) == {}
    merged = cti.control.set_call_data(kai_up.connection_id, {"ticket": "T-42"})
    assert merged == {"ticket": "T-42"}
    assert cti.control.call_data(kai_up.connection_id) == {"ticket": "T-42"}
    cti.control.hold(kai_up.connection_id)
    held = cti.events.wait_call("held", K, since=start)
    assert dict(held.data) == {"ticket": "T-42"}
    assert dict(cti.line(P).connections[0].data) == {"ticket": "T-42"}
    cti.control.retrieve(kai_up.connection_id)
    cti.events.wait_call("retrieved", K, since=start)
    # 1002 blind-transfers 1000 to 1006: the SDK originates 1006's leg with 1000 as
    # originator, and Asterisk copies 1000's inheritable __CTI_DATA onto it
    ping = cti.line(P).connections[0]
    cti.control.transfer(ping.connection_id, "1006", wait_for="established")
    delivered = cti.events.wait_call("delivered", L, since=start)
    assert dict(delivered.data) == {"ticket": "T-42"}
    lee = cti.line(L).connections[0].connection_id
    inherited = lab.ari("GET", f"/channels/{lee}/variable", params={"variable": "CTI_DATA"})
    assert inherited.json() == {"value": "ticket=T-42"}, inherited.text
    cti.control.hangup(kai_up.connection_id)
    for line in (K, P, L):
        cleared = cti.events.wait_call("call_cleared", line, since=start)
        assert dict(cleared.data) == {"ticket": "T-42"}
    assert cti.stats()["model"]["call_data_errors"] == 0
    print("\nobserved (set_call_data on a switch call):\n  "
          + "\n  ".join(_sequence(cti, start)))
