"""The call model's whole output on the benchmark streams, against a golden file.

``tests/data/model_golden.json.gz`` was written by the model as it was before its per-event
cost was cut (main at aa48e26, ``python -m tests.model.test_model_golden --write``), so
these tests proved that the optimised model behaves byte for byte as before. It was written
again once since, for one deliberate change that the file had caught: a hang-up request's
cause now reaches the connection's snapshot at once (it used to wait for the connection's
next change); the CTI events were unchanged by it. What it checks: the same CTI
events (every field of :meth:`CallEvent.as_dict` and :meth:`CallEvent.extras_dict`, and
which raw frames each carries), in the same order; the same snapshots (every line, connection
and call, in publication order) at regular points of the stream and at its end; the same
unfit count, channels needing repair and tracked channels.

The streams are those of ``make bench`` (:mod:`benchmarks.stream`), fed as the processor
feeds the model on them: only the types in :data:`MODEL_EVENT_TYPES`, ``monitor("PJSIP")``,
``defer_publish`` with a :meth:`CallModel.flush` every 20 events. The Stasis stream and the
traces are kept whole in the file (a failure shows the first differing event); the
1,000-extension recording is kept whole for its first frames and, for the rest, as a SHA-256
of the same canonical form (the file stays small).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import pytest

from asterisk_cti.events.catalogue import parse_event
from asterisk_cti.model import MODEL_EVENT_TYPES, CallEvent, CallModel
from benchmarks import stream

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "model_golden.json.gz"

#: stream -> frames replayed; the recording is replayed whole (its natural length).
FRAMES = {"stasis": 12000, "traces": 4056, "recording": 0}
#: Frames of the recording kept whole in the golden file (the rest only as a digest).
RECORDING_FULL = 15000
#: The processor's batch at 2,000 events/s: a flush every 20 events.
FLUSH_EVERY = 20
#: A snapshot digest every this many flushes.
SNAPSHOT_EVERY = 50


def canonical_event(ev: CallEvent, index_of: Mapping[int, int]) -> Dict[str, Any]:
    """Every field of a CTI event, JSON-ready; ``raw`` as the input indexes of its frames."""
    out = ev.as_dict()
    out.update(ev.extras_dict())
    out["raw"] = [index_of.get(id(r), -1) for r in ev.raw]
    return out


def canonical_snapshots(model: CallModel) -> Dict[str, Any]:
    """Every published snapshot, in publication order, and the model's accounting."""
    lines = [{"name": ln.name, "registration": ln.registration,
              "connections": [c.as_dict() for c in ln.connections]} for ln in model.lines]
    conns = [[cid, c.as_dict()] for cid, c in model._conn_snaps.items()]
    calls = [[cid, {"call_id": c.call_id, "data": dict(c.data),
                    "connections": [x.as_dict() for x in c.connections]}]
             for cid, c in model._call_snaps.items()]
    return {"lines": lines, "connections": conns, "calls": calls,
            "unfit": model.unfit_count, "repair": sorted(model.needs_repair),
            "tracked": model.tracked_channels}


def _digest(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=False, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


def run(name: str, defer: bool = True) -> Dict[str, Any]:
    """Replay stream ``name`` through a fresh model; the canonical result."""
    n = FRAMES[name] or stream.natural_length(name)
    model = CallModel(clock=lambda: 1000.0)
    model.set_monitored(["PJSIP"])
    model.defer_publish = defer
    events: List[Dict[str, Any]] = []
    snaps: List[str] = []
    index_of: Dict[int, int] = {}
    keep = []  # the raw dicts stay alive: their ids identify them
    applied = 0
    for i, fr in enumerate(stream.build(name, n)):
        data = json.loads(fr)
        if data.get("type") not in MODEL_EVENT_TYPES:
            continue
        ev = parse_event(data)
        index_of[id(ev.raw)] = i
        keep.append(ev.raw)
        for out in model.apply(ev):
            events.append(canonical_event(out, index_of))
        applied += 1
        if applied % FLUSH_EVERY == 0:
            model.flush()
            if applied % (FLUSH_EVERY * SNAPSHOT_EVERY) == 0:
                snaps.append(_digest(canonical_snapshots(model)))
    model.flush()
    return {"frames": n, "applied": applied, "events": events, "snapshots": snaps,
            "final": canonical_snapshots(model)}


def _pack(name: str, result: Dict[str, Any]) -> Dict[str, Any]:
    """What the golden file keeps of a result (the recording: a prefix whole, all digested)."""
    if name != "recording":
        return result
    head = [e for e in result["events"] if all(0 <= r < RECORDING_FULL for r in e["raw"])]
    return {**result, "events": head, "events_total": len(result["events"]),
            "events_sha256": _digest(result["events"]),
            "final_sha256": _digest(result["final"]), "final": None}


_CACHE: Dict[str, Dict[str, Any]] = {}


def golden() -> Dict[str, Any]:
    if "g" not in _CACHE:
        with gzip.open(GOLDEN, "rt", encoding="utf-8") as fh:
            _CACHE["g"] = json.load(fh)
    return _CACHE["g"]


def _first_difference(got: List[Any], want: List[Any]) -> Optional[str]:
    for i, (a, b) in enumerate(zip(got, want)):
        if a != b:
            return f"event {i}: got {a!r}, golden {b!r}"
    if len(got) != len(want):
        return f"{len(got)} events, golden {len(want)}"
    return None


@pytest.mark.parametrize("name", ["stasis", "traces", "recording"])
def test_stream_replay_matches_golden(name: str) -> None:
    want = golden()[name]
    got = _pack(name, run(name))
    assert got["applied"] == want["applied"] and got["applied"] > 1000
    assert got["events"], "the stream must make CTI events"
    assert _first_difference(got["events"], want["events"]) is None, \
        _first_difference(got["events"], want["events"])
    assert got["snapshots"] == want["snapshots"]
    if name == "recording":
        assert got["events_total"] == want["events_total"]
        assert got["events_sha256"] == want["events_sha256"]
        assert got["final_sha256"] == want["final_sha256"]
    else:
        assert got["final"] == want["final"]


def test_publishing_per_event_gives_the_same_events_and_final_snapshots() -> None:
    """Without ``defer_publish`` (a snapshot after every event) the events are the golden
    ones, and so are the snapshots published then; the final state is the deferred run's
    (every change marks what it touches for publication, so when the model publishes does
    not change what it publishes)."""
    got = run("stasis", defer=False)
    assert _first_difference(got["events"], golden()["stasis"]["events"]) is None
    assert got["snapshots"] == golden()["stasis_eager"]["snapshots"]
    assert got["final"] == golden()["stasis_eager"]["final"] == golden()["stasis"]["final"]


def test_golden_file_is_small_and_has_every_stream() -> None:
    assert GOLDEN.stat().st_size < 300_000
    assert set(golden()) == set(FRAMES) | {"stasis_eager"}


def write() -> None:
    """Regenerate the golden file from the current model (only from the reference code)."""
    data = {name: _pack(name, run(name)) for name in FRAMES}
    eager = run("stasis", defer=False)
    data["stasis_eager"] = {"snapshots": eager["snapshots"], "final": eager["final"]}
    with gzip.open(GOLDEN, "wt", encoding="utf-8", compresslevel=9) as fh:
        json.dump(data, fh, separators=(",", ":"))


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write()
        sys.stdout.write(f"{GOLDEN} {GOLDEN.stat().st_size} bytes\n")
    else:
        sys.stderr.write("usage: python -m tests.model.test_model_golden --write\n")
        sys.exit(2)
