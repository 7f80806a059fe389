"""Property tests: lost and reordered events never crash the model, and a resync with the true
REST state makes it converge to what a clean replay gives."""

from __future__ import annotations

import random
import threading
from functools import cache
from typing import Any, Dict, List, Tuple

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asterisk_cti.events.catalogue import channel_ids_of, parse_event
from asterisk_cti.model import CallModel, ConnectionState

from .helpers import (
    SCENARIOS,
    RestState,
    load_trace,
    model_view,
    new_model,
    replay,
    rest_at,
)

TRACES = [(s, v) for s in SCENARIOS for v in ("rec", "all")]
Frame = Dict[str, Any]


@cache
def _frames(scenario: str, variant: str) -> Tuple[Frame, ...]:
    return tuple(load_trace(scenario, variant))


@cache
def _stable_cuts(scenario: str, variant: str) -> Tuple[int, ...]:
    """Cut points where the clean model and the REST state agree on every connection."""
    frames = _frames(scenario, variant)
    model = new_model()
    rest = RestState()
    cuts = []
    for k in range(len(frames) + 1):
        if model_view(model) == rest.view():
            cuts.append(k)
        if k < len(frames):
            model.apply(parse_event(dict(frames[k])))
            rest.feed(frames[k])
    return tuple(cuts)


def _key(frame: Frame) -> str:
    ids = channel_ids_of(parse_event(dict(frame)))
    return ids[0] if ids else "-"


def _reorder(frames: List[Frame], rnd: random.Random, mode: str) -> List[Frame]:
    if mode == "shuffle":
        out = list(frames)
        rnd.shuffle(out)
        return out
    if mode == "merge":  # random interleaving that keeps each channel's own order
        queues: Dict[str, List[Frame]] = {}
        for f in frames:
            queues.setdefault(_key(f), []).append(f)
        lanes = [list(reversed(q)) for q in queues.values()]
        out = []
        while lanes:
            lane = rnd.choice(lanes)
            out.append(lane.pop())
            if not lane:
                lanes.remove(lane)
        return out
    return list(frames)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    trace=st.sampled_from(TRACES),
    mode=st.sampled_from(["drop", "merge", "shuffle"]),
    drop_rate=st.sampled_from([0.0, 0.05, 0.2, 0.5]),
    rnd=st.randoms(use_true_random=False),
    cut_pick=st.floats(min_value=0.0, max_value=1.0),
)
def test_lost_and_reordered_events_then_resync_converge(
    trace: Tuple[str, str], mode: str, drop_rate: float, rnd: random.Random, cut_pick: float
) -> None:
    frames = list(_frames(*trace))  # skips with a reason when the traces are absent
    cuts = _stable_cuts(*trace)
    cut = cuts[min(int(cut_pick * len(cuts)), len(cuts) - 1)]
    prefix = [f for f in frames[:cut] if rnd.random() >= drop_rate]
    prefix = _reorder(prefix, rnd, mode)

    clean = new_model()
    replay(clean, frames[:cut])
    model = new_model()
    replay(model, prefix)  # must not raise, whatever the order
    for line in model.lines:  # snapshots are consistent with each other
        for c in line.connections:
            assert model.connection(c.connection_id) == c
            call = model.find_call(c.call_id)
            assert call is not None and c in call.connections

    rest = rest_at(frames, cut)
    events, _report = model.resync(**rest.args())
    assert model_view(model) == model_view(clean) == rest.view()
    assert model.needs_repair == set()
    # A second resync with the same data is a no-op.
    again, report = model.resync(**rest.args())
    assert again == [] and report.is_empty
    # Every emitted connection id lives on a monitored line.
    assert all(e.line.startswith("PJSIP/") for e in events)


@settings(max_examples=60, deadline=None)
@given(trace=st.sampled_from(TRACES), rnd=st.randoms(use_true_random=False))
def test_repair_answers_converge(trace: Tuple[str, str], rnd: random.Random) -> None:
    """Drop events, then answer needs_repair from the final REST state: nothing is left over."""
    frames = list(_frames(*trace))
    kept = [f for f in frames if rnd.random() >= 0.3]
    model = new_model()
    replay(model, kept)
    final = rest_at(frames)
    for cid in sorted(model.needs_repair):
        model.repair(cid, final.channels.get(cid))
    model.resync(**final.args())
    assert all(line.is_idle for line in model.lines)
    assert model.tracked_channels == 0


def test_snapshots_are_consistent_while_the_processor_applies() -> None:
    """A reader thread never sees a half-updated line or call while events are applied."""
    frames = [parse_event(dict(f)) for f in _frames("attended_transfer", "all")]
    model = new_model()
    stop = threading.Event()
    problems: List[str] = []

    def reader() -> None:
        seen = 0
        while not stop.is_set():
            for line in model.lines:
                seen += 1
                for c in line.connections:
                    if c.line != line.name:
                        problems.append(f"{c} on {line.name}")
                    if c.held != (c.state is ConnectionState.HOLD):
                        problems.append(f"held flag of {c}")
            model.line("PJSIP/1000")
        if not seen:
            problems.append("reader saw nothing")

    t = threading.Thread(target=reader, name="model-reader")
    t.start()
    try:
        for _ in range(30):
            fresh = CallModel(clock=lambda: 0.0)
            fresh.set_monitored(["PJSIP/1000", "PJSIP/1002", "PJSIP/1006"])
            model = fresh
            for e in frames:
                model.apply(e)
    finally:
        stop.set()
        t.join(10)
    assert not problems, problems[:5]
