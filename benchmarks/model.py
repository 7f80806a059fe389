"""Call-model figures measured in-process: ``CallModel.apply`` cost per event at 100 vs
10,000 monitored lines, and memory per monitored line and per active call (tracemalloc).

``python -m benchmarks.model streams [REPS]`` measures ``apply`` per event on the three
``make bench`` streams as the processor feeds it (see :func:`stream_cost`); ``--json``
prints the raw figures."""

from __future__ import annotations

import gc
import json
import os
import statistics
import time
import tracemalloc
from typing import Any, Dict, List, Tuple

from asterisk_cti.events.catalogue import Event, parse_event
from asterisk_cti.model import MODEL_EVENT_TYPES, CallModel

from . import stream


def model_events(n: int) -> List[Event]:
    out = []
    for fr in stream.frames(n):
        data = json.loads(fr)
        if data.get("type") in MODEL_EVENT_TYPES:
            out.append(parse_event(data))
    return out


def endpoints(n: int) -> List[str]:
    return [f"PJSIP/{1000 + i}" for i in range(n)]


def apply_cost(events: List[Event], lines: int) -> float:
    """Seconds per event of ``apply`` over the whole stream with ``lines`` monitored."""
    model = CallModel()
    model.set_monitored(endpoints(lines))
    apply = model.apply
    gc.collect()
    t0 = time.perf_counter()
    for ev in events:
        apply(ev)
    return (time.perf_counter() - t0) / len(events)


def cost_runs(runs: int = 5, n: int = 60000) -> Dict[str, float]:
    events = model_events(n)
    small: List[float] = []
    big: List[float] = []
    for _ in range(runs):
        small.append(apply_cost(events, 100))
        big.append(apply_cost(events, 10000))
    return {"events": len(events), "us_100": statistics.median(small) * 1e6,
            "us_10k": statistics.median(big) * 1e6}


def _chan(cid: str, ext: int, state: str, caller: int, peer: int) -> Dict[str, Any]:
    return {"id": cid, "name": f"PJSIP/{ext}-{cid[-8:]}", "state": state, "protocol_id": "",
            "caller": {"name": f"User {caller}", "number": str(caller)},
            "connected": {"name": "", "number": "" if state != "Up" else str(peer)},
            "accountcode": "", "dialplan": {"context": "from-internal", "exten": str(peer),
                                            "priority": 1, "app_name": "", "app_data": ""},
            "creationtime": "2026-11-26T03:53:31.659+0000", "language": "en"}


def _call_events(i: int) -> List[Dict[str, Any]]:
    a, b = 1000 + 2 * i, 1001 + 2 * i
    ca, cb = f"1795665211.{2 * i}", f"1795665211.{2 * i + 1}"
    ts = "2026-11-26T03:53:31.659+0000"
    base = {"timestamp": ts, "asterisk_id": "02:fc:00:00:00:01", "application": "bench"}
    return [
        {**base, "type": "ChannelCreated", "channel": _chan(ca, a, "Ring", a, b)},
        {**base, "type": "ChannelCreated", "channel": _chan(cb, b, "Down", a, b)},
        {**base, "type": "Dial", "dialstring": str(b), "dialstatus": "",
         "caller": _chan(ca, a, "Ring", a, b), "peer": _chan(cb, b, "Down", a, b)},
        {**base, "type": "ChannelStateChange", "channel": _chan(cb, b, "Ringing", a, b)},
        {**base, "type": "ChannelStateChange", "channel": _chan(cb, b, "Up", a, b)},
        {**base, "type": "Dial", "dialstring": str(b), "dialstatus": "ANSWER",
         "caller": _chan(ca, a, "Ring", a, b), "peer": _chan(cb, b, "Up", a, b)},
        {**base, "type": "ChannelStateChange", "channel": _chan(ca, a, "Up", a, b)},
    ]


#: Frames of each stream :func:`stream_cost` replays (the recording: all of it).
STREAM_FRAMES = {"stasis": 60000, "traces": 60000, "recording": 0}
#: The processor's batch at 2,000 events/s (10 ms): one ``flush`` per 20 events.
FLUSH_EVERY = 20


def stream_events(name: str, n: int = 0) -> List[Event]:
    """The parsed events of stream ``name`` the model reads (types in MODEL_EVENT_TYPES)."""
    return [parse_event(json.loads(fr)) for fr in model_frames(name, n)]


def model_frames(name: str, n: int = 0) -> List[bytes]:
    """The frames of stream ``name`` whose type is in MODEL_EVENT_TYPES (what the processor
    hands the model), of its first ``n`` frames (default :data:`STREAM_FRAMES`)."""
    n = n or STREAM_FRAMES[name] or stream.natural_length(name)
    return [fr for fr in stream.build(name, n)
            if json.loads(fr).get("type") in MODEL_EVENT_TYPES]


def stream_pass(frames: List[bytes], cls: type = CallModel) -> float:
    """CPU seconds per event of one pass: a fresh model configured as the SDK does on the
    bench streams (``monitor("PJSIP")``, ``defer_publish``), ``apply`` every event and a
    ``flush`` every :data:`FLUSH_EVERY` events, as the processor does at 2,000 events/s.

    Each batch of :data:`FLUSH_EVERY` frames is decoded just before it is applied, outside
    the timed part, so the model reads events that are warm in the CPU caches as in the
    processor (a pre-decoded stream of 50,000 events would be cold, and its cache misses
    would dominate); the timed part is ``apply`` of the batch and its ``flush``."""
    model = cls()
    model.set_monitored(["PJSIP"])
    model.defer_publish = True
    apply, flush = model.apply, model.flush
    clock = time.process_time  # CPU time: other jobs on the machine do not count
    loads = json.loads
    gc.collect()
    total = 0.0
    for start in range(0, len(frames), FLUSH_EVERY):
        batch = [parse_event(loads(fr)) for fr in frames[start:start + FLUSH_EVERY]]
        t0 = clock()
        for ev in batch:
            apply(ev)
        flush()
        total += clock() - t0
    return total / len(frames)


def stream_cost(reps: int = 7, names: Tuple[str, ...] = stream.STREAMS) -> Dict[str, Any]:
    """Median (and min, max) microseconds per event of :func:`stream_pass` over ``reps``
    passes per stream; the passes of the streams are interleaved."""
    frames = {name: model_frames(name) for name in names}
    gc.collect()
    gc.freeze()  # the streams are not the model's garbage: keep them out of gc passes
    runs: Dict[str, List[float]] = {name: [] for name in names}
    for _ in range(reps):
        for name in names:
            runs[name].append(stream_pass(frames[name]) * 1e6)
    return {name: {"events": len(frames[name]), "median_us": statistics.median(r),
                   "min_us": min(r), "max_us": max(r)} for name, r in runs.items()}


def reference_model(commit: str) -> type:
    """The ``CallModel`` class of ``asterisk_cti/model`` at git ``commit``, imported beside
    the current one as ``asterisk_cti.model_ref`` (the rest of the package is shared), so
    that before and after can be timed interleaved in one process on the same events."""
    import importlib
    import subprocess
    import tarfile
    import tempfile

    import asterisk_cti

    root = tempfile.mkdtemp(prefix="model-ref-")
    archive = os.path.join(root, "model.tar")
    subprocess.run(["git", "archive", "-o", archive, commit, "asterisk_cti/model"],
                   check=True, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with tarfile.open(archive) as tar:
        tar.extractall(root, filter="data")
    os.rename(os.path.join(root, "asterisk_cti", "model"), os.path.join(root, "model_ref"))
    asterisk_cti.__path__.append(root)  # type: ignore[attr-defined]
    return importlib.import_module("asterisk_cti.model_ref").CallModel  # type: ignore[no-any-return]


def paired_pass(frames: List[bytes], ref_cls: type, new_cls: type) -> Tuple[float, float]:
    """CPU seconds per event of ``ref_cls`` and ``new_cls`` on one pass, as
    :func:`stream_pass`, with the two models fed the same decoded batch one after the other
    (which goes first alternates per batch): both see the same load on the machine and the
    same cache state, so most of the noise of a shared machine cancels out."""
    models = []
    for cls in (ref_cls, new_cls):
        model = cls()
        model.set_monitored(["PJSIP"])
        model.defer_publish = True
        models.append(model)
    clock = time.process_time
    loads = json.loads
    totals = [0.0, 0.0]
    order = (0, 1)
    gc.collect()
    for start in range(0, len(frames), FLUSH_EVERY):
        batch = [parse_event(loads(fr)) for fr in frames[start:start + FLUSH_EVERY]]
        for which in order:
            model = models[which]
            apply = model.apply
            t0 = clock()
            for ev in batch:
                apply(ev)
            model.flush()
            totals[which] += clock() - t0
        order = (order[1], order[0])
    return totals[0] / len(frames), totals[1] / len(frames)


def compare(commit: str, reps: int = 9, names: Tuple[str, ...] = stream.STREAMS) -> Dict[str, Any]:
    """Median (and min) us/event of the model at ``commit`` (``ref``) and of the working
    tree's (``new``) over ``reps`` :func:`paired_pass` passes per stream."""
    ref_cls = reference_model(commit)
    frames = {name: model_frames(name) for name in names}
    gc.collect()
    gc.freeze()
    runs: Dict[str, Dict[str, List[float]]] = {n: {"ref": [], "new": []} for n in names}
    for _ in range(reps):
        for name in names:
            ref, new = paired_pass(frames[name], ref_cls, CallModel)
            runs[name]["ref"].append(ref * 1e6)
            runs[name]["new"].append(new * 1e6)
    out: Dict[str, Any] = {}
    for name, r in runs.items():
        ref, new = statistics.median(r["ref"]), statistics.median(r["new"])
        out[name] = {"events": len(frames[name]), "ref_us": ref, "new_us": new,
                     "gain_pct": (1 - new / ref) * 100, "ref_min_us": min(r["ref"]),
                     "new_min_us": min(r["new"]),
                     "gain_min_pct": (1 - min(r["new"]) / min(r["ref"])) * 100}
    return out


def memory(lines: int = 10000, calls: int = 5000) -> Dict[str, float]:
    """Bytes per monitored line and per active two-party call (each call has 2 lines)."""
    gc.collect()
    tracemalloc.start()
    m0 = tracemalloc.get_traced_memory()[0]
    model = CallModel()
    model.set_monitored(endpoints(lines))
    gc.collect()
    m1 = tracemalloc.get_traced_memory()[0]
    for i in range(calls):
        for data in _call_events(i):
            model.apply(parse_event(data))
    gc.collect()
    m2 = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    active = sum(1 for line in model.lines for c in line.connections
                 if c.state.value == "connected")
    return {"per_line": (m1 - m0) / lines, "per_call": (m2 - m1) / calls,
            "active_line_calls": active, "unfit": model.unfit_count}


def main(argv: List[str]) -> None:
    if argv[:1] == ["compare"]:
        rest = [a for a in argv[2:] if a != "--json"]
        result = compare(argv[1] if len(argv) > 1 else "main", int(rest[0]) if rest else 9)
        if "--json" in argv:
            print(json.dumps(result))
        else:
            for name, r in result.items():
                print(f"{name:10} {r['events']:6d} events  median: ref {r['ref_us']:5.2f} new "
                      f"{r['new_us']:5.2f} us/event, gain {r['gain_pct']:5.1f} %;  min: ref "
                      f"{r['ref_min_us']:5.2f} new {r['new_min_us']:5.2f}, gain "
                      f"{r['gain_min_pct']:5.1f} %")
        return
    if argv[:1] == ["streams"]:
        rest = [a for a in argv[1:] if a != "--json"]
        result = stream_cost(int(rest[0]) if rest else 7)
        if "--json" in argv:
            print(json.dumps(result))
        else:
            for name, r in result.items():
                print(f"{name:10} {r['events']:6d} events  median {r['median_us']:6.2f} us/event"
                      f"  (min {r['min_us']:.2f}, max {r['max_us']:.2f})")
        return
    print(cost_runs(2, 20000))
    print(memory())


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
