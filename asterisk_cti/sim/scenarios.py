"""Scripted call scenarios on a running :class:`~asterisk_cti.sim.AriSimulator`.

Each scenario drives the simulated phones (and, for the ARI ones, the simulator's own REST
API over HTTP) like the recordings in the repository's ``tests/data/traces`` were made, with
the pauses of the recordings divided by the simulator's speed-up factor. They run on the
caller's thread and return when the scenario's last call is over (every channel it created
destroyed).

They are meant for demos, tests and benchmarks: subscribe your app first, then call e.g.
``scenarios.basic(sim)``. :data:`SCENARIOS` maps names to functions.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Dict, Optional, Set

from .media import DTMF_GAP
from .objects import Channel
from .server import AriSimulator

__all__ = [
    "SCENARIOS",
    "ScenarioError",
    "ari_originate",
    "attended_transfer",
    "basic",
    "blind_transfer",
    "busy",
    "conference",
    "hold",
    "ivr_queue",
    "load",
    "no_answer",
    "queue",
    "rejected",
    "stasis_control",
]

logger = logging.getLogger(__name__)


class ScenarioError(RuntimeError):
    """A scenario could not run to its end (a phone never rang, a call never ended)."""


def _wait(sim: AriSimulator, predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with sim.pbx.lock:
            if predicate():
                return
        if time.monotonic() > deadline:
            raise ScenarioError(f"timed out waiting for {what}")
        time.sleep(0.005)


def _idle(sim: AriSimulator, *extensions: str, timeout: float = 10.0) -> None:
    def idle() -> bool:
        return all(not sim.pbx.endpoints[f"PJSIP/{e}"].channel_ids for e in extensions)

    _wait(sim, idle, timeout + sim.pbx.scaled(20), "the phones to hang up")


def _ari(sim: AriSimulator, method: str, path: str, **params: Any) -> Any:
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    url = f"{sim.url}/ari{path}" + (f"?{query}" if query else "")
    req = urllib.request.Request(url, method=method, data=b"" if method != "GET" else None)
    token = base64.b64encode(f"{sim.username}:{sim.password}".encode()).decode()
    req.add_header("Authorization", "Basic " + token)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            body = resp.read()
    except urllib.error.HTTPError as exc:
        raise ScenarioError(f"{method} {path} -> {exc.code}: {exc.read()!r}") from exc
    return json.loads(body) if body else None


def _talk(sim: AriSimulator, a: str, b: str, dial: Optional[str] = None) -> None:
    """``a`` calls ``b`` (or ``dial``), it rings 1.5 s, ``b`` answers."""
    sim.phone(a).dial(dial or b)
    sim.phone(b).wait_ringing()
    sim.sleep(1.5)
    sim.phone(b).answer()


def basic(sim: AriSimulator) -> None:
    """1000 calls 1002, 1002 answers, talk 3 s, 1000 mutes 4 s, unmutes, 1000 hangs up."""
    _talk(sim, "1000", "1002")
    sim.sleep(3)
    sim.phone("1000").mute()
    sim.sleep(4)
    sim.phone("1000").unmute()
    sim.sleep(1)
    sim.phone("1000").hangup()
    _idle(sim, "1000", "1002")


def hold(sim: AriSimulator) -> None:
    """A basic call; 1000 holds from the phone for 3 s, resumes, hangs up."""
    _talk(sim, "1000", "1002")
    sim.sleep(2)
    sim.phone("1000").hold()
    sim.sleep(3)
    sim.phone("1000").resume()
    sim.sleep(2)
    sim.phone("1000").hangup()
    _idle(sim, "1000", "1002")


def _consult(sim: AriSimulator) -> None:
    _talk(sim, "1000", "1002")
    sim.sleep(2)
    sim.phone("1000").dtmf("*2")
    sim.sleep(1.5)
    sim.phone("1000").dtmf("1006")
    sim.phone("1006").wait_ringing()
    sim.sleep(1.5)
    sim.phone("1006").answer()
    sim.sleep(3)


def attended_transfer(sim: AriSimulator) -> None:
    """1000 calls 1002; ``*2 1006``; 1006 answers; 1000 hangs up (transfer); 1002 hangs up."""
    _consult(sim)
    sim.phone("1000").hangup()
    sim.sleep(3)
    sim.phone("1002").hangup()
    _idle(sim, "1000", "1002", "1006")


def conference(sim: AriSimulator) -> None:
    """Like :func:`attended_transfer`, but ``*3`` makes a three-way call; all hang up."""
    _consult(sim)
    sim.phone("1000").dtmf("*3")
    sim.sleep(3)
    sim.phone("1000").hangup()
    sim.sleep(1)
    sim.phone("1002").hangup()
    _idle(sim, "1000", "1002", "1006")


def blind_transfer(sim: AriSimulator) -> None:
    """1000 calls 1002; 1000's phone REFERs 1002 to 1006; 1006 answers, then hangs up."""
    _talk(sim, "1000", "1002")
    sim.sleep(2)
    sim.phone("1000").blind_transfer("1006")
    sim.phone("1006").wait_ringing()
    sim.sleep(1.5)
    sim.phone("1006").answer()
    sim.sleep(3)
    sim.phone("1006").hangup()
    _idle(sim, "1000", "1002", "1006")


def busy(sim: AriSimulator) -> None:
    """1006 calls 1002 (answered); 1000 calls 1002, which is in a call: 486, BUSY, cause 17."""
    _talk(sim, "1006", "1002")
    sim.sleep(1)
    sim.phone("1000").dial("1002")
    _idle(sim, "1000")
    sim.sleep(1)
    sim.phone("1006").hangup()
    _idle(sim, "1000", "1002", "1006")


def rejected(sim: AriSimulator) -> None:
    """1000 calls 1002, 1002 rejects while ringing (486): BUSY, cause 17."""
    sim.phone("1000").dial("1002")
    sim.phone("1002").wait_ringing()
    sim.sleep(1.5)
    sim.phone("1002").reject()
    _idle(sim, "1000", "1002")


def no_answer(sim: AriSimulator) -> None:
    """1000 calls 1002, nobody answers, Dial() times out after 15 s: NOANSWER."""
    sim.phone("1000").dial("1002")
    _idle(sim, "1000", "1002", timeout=sim.pbx.scaled(20) + 5)


def queue(sim: AriSimulator) -> None:
    """1000 calls the queue extension (2000 -> ``support``, ringall 1002 and 1006); 1006
    answers, the other member's call is cancelled; 1000 hangs up after 2 s."""
    sim.phone("1000").dial(sim.pbx.config.queue_extension)
    sim.phone("1006").wait_ringing()
    sim.sleep(1.5)
    sim.phone("1006").answer()
    sim.sleep(2)
    sim.phone("1000").hangup()
    _idle(sim, "1000", "1002", "1006")


def ari_originate(sim: AriSimulator) -> None:
    """Click-to-dial by ARI only: ``POST /channels`` to PJSIP/1000 with extension 1002, both
    phones auto-answer, ``DELETE /channels/{id}`` after 4 s."""
    phones = [sim.phone("1000"), sim.phone("1002")]
    saved = [p.auto_answer for p in phones]
    for p in phones:
        p.auto_answer = 0.01
    try:
        ch = _ari(
            sim,
            "POST",
            "/channels",
            endpoint="PJSIP/1000",
            extension="1002",
            context="from-internal",
            priority="1",
            callerId='"Click2Dial" <1002>',
        )
        _wait(sim, lambda: sim.pbx.endpoints["PJSIP/1002"].channel_ids != [], 5, "1002 to ring")
        sim.sleep(4)
        _ari(sim, "DELETE", f"/channels/{ch['id']}")
        _idle(sim, "1000", "1002")
    finally:
        for p, value in zip(phones, saved):
            p.auto_answer = value


def stasis_control(sim: AriSimulator) -> None:
    """Part 2 of the ``stasis_control`` recording: 1000 dials 7000 into the Stasis app (which
    must be connected); ring, answer, hold/unhold, moh, originate 1002 into the app, mixing
    bridge, addChannel both, removeChannel 1002, redirect 1002, hang up 1000, delete the
    bridge, hang up 1002."""
    app = sim.pbx.config.stasis_app
    sim.phone("1000").dial("7000")
    _wait(sim, lambda: any(c.in_stasis for c in sim.phone("1000").channels()), 5, "StasisStart")
    cid = sim.phone("1000").channels()[0].id
    for method, op in (
        ("POST", "ring"),
        ("POST", "answer"),
        ("POST", "hold"),
        ("DELETE", "hold"),
        ("POST", "moh"),
        ("DELETE", "moh"),
    ):
        _ari(sim, method, f"/channels/{cid}/{op}")
        sim.sleep(0.5)
    callee = sim.phone("1002")
    saved = callee.auto_answer
    callee.auto_answer = 0.01
    try:
        other = _ari(
            sim,
            "POST",
            "/channels",
            endpoint="PJSIP/1002",
            app=app,
            appArgs="callee",
            callerId='"Kai via ARI" <1000>',
        )
        _wait(
            sim,
            lambda: (
                sim.pbx.channels.get(other["id"]) is not None
                and sim.pbx.channels[other["id"]].in_stasis
            ),
            5,
            "the callee's StasisStart",
        )
    finally:
        callee.auto_answer = saved
    bridge = _ari(sim, "POST", "/bridges", type="mixing", name="lab-ari")
    _ari(sim, "POST", f"/bridges/{bridge['id']}/addChannel", channel=f"{cid},{other['id']}")
    sim.sleep(2)
    _ari(sim, "POST", f"/bridges/{bridge['id']}/removeChannel", channel=other["id"])
    _ari(sim, "POST", f"/channels/{other['id']}/redirect", endpoint="PJSIP/1006")
    sim.sleep(1)
    _ari(sim, "DELETE", f"/channels/{cid}")
    _ari(sim, "DELETE", f"/bridges/{bridge['id']}")
    _ari(sim, "DELETE", f"/channels/{other['id']}")
    _idle(sim, "1000", "1002")


#: The outside caller of :func:`ivr_queue` and what it keys.
IVR_CALLER = "+33123456789"
IVR_ACCOUNT = "12345"
IVR_CHOICE = "1"


def _prompt(sim: AriSimulator, ch: Channel, seen: Set[str], what: str) -> str:
    """Wait until a playback not in ``seen`` plays on ``ch`` (the IVR prompts the caller);
    returns its id."""

    def playing() -> bool:
        return ch.destroyed or any(
            state == "playing" and pid not in seen for pid, state in sim.pbx.playbacks_on(ch))

    _wait(sim, playing, 10 + sim.pbx.scaled(30), what)
    with sim.pbx.lock:
        if ch.destroyed:
            raise ScenarioError(f"the IVR hung up on the caller before {what}")
        return next(pid for pid, state in sim.pbx.playbacks_on(ch)
                    if state == "playing" and pid not in seen)


def ivr_queue(sim: AriSimulator) -> None:
    """An outside caller (:data:`IVR_CALLER`, through ``PJSIP/trunk``) dials the IVR number
    (5000: ``Stasis(<stasis_app>,ivr,main)``); during the first prompt it keys the account
    number ``12345#``, during the next prompt (the menu) ``1`` for billing; the IVR sets the
    call data and sends the caller to the ``support`` queue (2000), which rings 1002 and 1006;
    1006 answers after 1.5 s, they talk 3 s, the caller hangs up.

    The IVR is not part of the simulator: an :class:`~asterisk_cti.ivr.IvrEngine` running
    ``asterisk_cti/ivr/examples/billing.json`` (or any flow with the same keys) must serve
    the simulator's ``stasis_app`` (``asterisk-cti ivr FILE --sim --play ivr_queue``, the
    demo). Every wait is bounded: :class:`ScenarioError` when the IVR does not take the call,
    prompt or queue it.
    """
    config = sim.pbx.config
    cid = sim.trunk_call(IVR_CALLER, config.ivr_extension)
    with sim.pbx.lock:
        found = sim.pbx.channels.get(cid)
    if found is None:  # Stasis() failed: nobody is connected to the application
        raise ScenarioError(f"the IVR number {config.ivr_extension} hung up at once: no IVR "
                            f"is connected to the application {config.stasis_app}")
    ch = found
    seen: Set[str] = set()
    seen.add(_prompt(sim, ch, seen, f"the IVR's first prompt (an IVR must serve "
                                    f"Stasis({config.stasis_app},ivr,{config.ivr_flow}))"))
    sim.sleep(1)
    sim.trunk_dtmf(cid, IVR_ACCOUNT + "#")
    sim.sleep(DTMF_GAP * (len(IVR_ACCOUNT) + 1))
    seen.add(_prompt(sim, ch, seen, "the IVR's menu after the account number"))
    sim.sleep(1)
    sim.trunk_dtmf(cid, IVR_CHOICE)
    _wait(sim, lambda: ch.queued or ch.destroyed, 10 + sim.pbx.scaled(30),
          "the IVR to queue the caller")
    if ch.destroyed:
        raise ScenarioError("the IVR hung up on the caller instead of queueing it")
    sim.phone("1006").wait_ringing()
    sim.sleep(1.5)
    sim.phone("1006").answer()
    sim.sleep(3)
    with sim.pbx.lock:
        sim.pbx.hangup(ch, 16)
    _idle(sim, "trunk", "1002", "1006")


SCENARIOS: Dict[str, Callable[[AriSimulator], None]] = {
    "basic": basic,
    "hold": hold,
    "attended_transfer": attended_transfer,
    "conference": conference,
    "blind_transfer": blind_transfer,
    "busy": busy,
    "rejected": rejected,
    "no_answer": no_answer,
    "queue": queue,
    "ivr_queue": ivr_queue,
    "ari_originate": ari_originate,
    "stasis_control": stasis_control,
}


def load(
    sim: AriSimulator,
    *,
    calls_per_second: float = 10.0,
    extensions: int = 100,
    duration: float = 10.0,
    talk_time: float = 2.0,
    first_extension: int = 100000,
    stop: Optional[threading.Event] = None,
) -> int:
    """Generate traffic: ``calls_per_second`` new calls across ``extensions`` extra endpoints
    (created on first use, numbered from ``first_extension``) for ``duration`` real seconds.
    Each call rings until the callee auto-answers (0.2 s), talks ``talk_time`` simulated
    seconds, then the caller hangs up. Runs on the caller's thread; returns the number of
    calls placed once every call has ended.

    :param stop: set it to end the load early.
    """
    if extensions < 2:
        raise ValueError("load needs at least two extensions")
    numbers = [str(first_extension + i) for i in range(extensions)]
    sim.add_endpoints([(n, f"Load {n}") for n in numbers])
    for n in numbers:
        p = sim.phone(n)
        p.auto_answer = 0.2
        p.call_waiting = True
    half = extensions // 2
    pbx = sim.pbx
    placed = 0
    start = time.monotonic()
    interval = 1.0 / calls_per_second
    while time.monotonic() - start < duration and not (stop is not None and stop.is_set()):
        caller = numbers[placed % half]
        callee = numbers[half + placed % (extensions - half)]
        with pbx.lock:
            ch = pbx.phone_dial(pbx.endpoints[f"PJSIP/{caller}"], callee)

            def hang(ch: Any = ch) -> None:
                pbx.hangup(ch, 16)

            pbx.later(ch, talk_time + 0.2, hang)
        placed += 1
        next_at = start + placed * interval
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    _wait(
        sim,
        lambda: all(not sim.pbx.endpoints[f"PJSIP/{n}"].channel_ids for n in numbers),
        sim.pbx.scaled(talk_time + 20) + 10,
        "the load calls to end",
    )
    logger.info("load placed %s calls", placed)
    return placed
