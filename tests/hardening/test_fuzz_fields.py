"""Class 2 of the hardening issue, by fuzzing: every field of every event type of the recorded
traces is mutated (wrong types, missing, huge, deeply nested) and pushed through a whole client
(reactor, ring, processor, call model, line filter, lanes) between well-formed neighbours.

Proved: no exception escapes the processor (it never logs "processor error", and it keeps
going), every neighbour reaches its listener in order, and the counters add up (every frame is
counted; exactly the frames that are not an event object are ``malformed``; nothing is lost).
Seeded and bounded: the same mutations every run, a few seconds at most."""

from __future__ import annotations

import copy
import json
import logging
import random
import threading
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from asterisk_cti import CallListener, ChannelEventListener, ConnectionListener
from asterisk_cti.events.catalogue import Event
from asterisk_cti.testing import FakeAsterisk, load_trace
from tests.conftest import traces_dir

SEED = 20261201
#: mutations applied to each field of each event type
PER_FIELD = 3
LINES = ["PJSIP/1000", "PJSIP/1002", "PJSIP/1006"]
_MISSING = object()


def _samples() -> Dict[str, Dict[str, Any]]:
    """One (the first) recorded frame of each event type, across every trace."""
    out: Dict[str, Dict[str, Any]] = {}
    for path in sorted(traces_dir().glob("*.jsonl")):
        for frame in load_trace(path):
            out.setdefault(str(frame.get("type")), frame)
    return out


def _paths(value: Any, prefix: Tuple[Any, ...] = (), depth: int = 0) -> Iterator[Tuple[Any, ...]]:
    if isinstance(value, dict) and depth < 4:
        for key, sub in value.items():
            yield (*prefix, key)
            yield from _paths(sub, (*prefix, key), depth + 1)
    elif isinstance(value, list) and value and depth < 4:
        yield (*prefix, 0)
        yield from _paths(value[0], (*prefix, 0), depth + 1)


def _nested(depth: int) -> Any:
    value: Any = "x"
    for i in range(depth):
        value = [value] if i % 2 else {"n": value}
    return value


#: What a field becomes: wrong types, missing, huge, nested.
MUTATIONS: List[Tuple[str, Any]] = [
    ("missing", _MISSING), ("null", None), ("zero", 0), ("negative", -1), ("bigint", 2**80),
    ("float", 1.5), ("true", True), ("empty", ""), ("text", "garbage"), ("list", ["Ring"]),
    ("empty_list", []), ("int_list", [1, 2]), ("dict", {}), ("dict_id", {"id": ["x"]}),
    ("huge", "h" * 65536), ("nested", _nested(200)),
]


def _mutate(frame: Dict[str, Any], path: Tuple[Any, ...], value: Any) -> Dict[str, Any]:
    out = copy.deepcopy(frame)
    node: Any = out
    for key in path[:-1]:
        node = node[key]
    if value is _MISSING:
        if isinstance(node, dict):
            node.pop(path[-1], None)
        else:
            node.pop(path[-1])
    else:
        node[path[-1]] = value
    return out


def _cases() -> List[Tuple[str, bytes]]:
    """Every field of every event type, each with :data:`PER_FIELD` mutations; within a type
    the mutations rotate from field to field (from a seeded start), so that a type with
    enough fields gets every kind of mutation."""
    rng = random.Random(SEED)
    cases: Dict[bytes, str] = {}
    for etype, frame in sorted(_samples().items()):
        start = rng.randrange(len(MUTATIONS))
        for j, path in enumerate(_paths(frame)):
            for k in range(PER_FIELD):
                name, value = MUTATIONS[(start + j * PER_FIELD + k) % len(MUTATIONS)]
                data = json.dumps(_mutate(frame, path, value), separators=(",", ":")).encode()
                cases.setdefault(data, f"{etype}|{'.'.join(map(str, path))}|{name}")
    items = sorted((label, data) for data, label in cases.items())
    rng.shuffle(items)
    return items


def _is_event_object(data: bytes) -> bool:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return False
    return isinstance(value, dict) and isinstance(value.get("type"), str) and bool(value["type"])


def neighbour(i: int) -> Dict[str, Any]:
    return {"type": "ChannelUserevent", "eventname": f"n{i}", "userevent": {},
            "timestamp": "2026-11-26T03:53:31.659+0000", "application": "cti-test",
            "channel": {"id": f"77.{i}", "name": "PJSIP/1006-0000ffff", "state": "Up",
                        "caller": {"name": "", "number": "1006"},
                        "connected": {"name": "", "number": ""}}}


class Rec(ChannelEventListener, CallListener, ConnectionListener):
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.neighbours: List[str] = []
        self.events = 0
        self.calls = 0

    def on_event(self, event: Event) -> None:
        with self.lock:
            self.events += 1
            if event.type == "ChannelUserevent" and event.raw.get("application") == "cti-test":
                name = event.raw.get("eventname")
                if isinstance(name, str) and name.startswith("n"):
                    self.neighbours.append(name)

    def on_call_event(self, event: Any) -> None:
        with self.lock:
            self.calls += 1


def test_every_field_of_every_event_type_mutated(caplog: pytest.LogCaptureFixture) -> None:
    cases = _cases()
    # coverage: every field of every event type, every kind of mutation on every type that
    # has enough fields for the rotation to reach them all
    samples = _samples()
    fields = {(t, ".".join(map(str, p))) for t, f in samples.items() for p in _paths(f)}
    labels = [label.split("|") for label, _ in cases]
    assert {(t, p) for t, p, _ in labels} == fields
    assert len(samples) >= 20
    for etype, frame in samples.items():
        if len(list(_paths(frame))) * PER_FIELD >= len(MUTATIONS):
            assert {m for t, _, m in labels if t == etype} == {n for n, _ in MUTATIONS}
    # A few frames no event parser can take, besides the mutations:
    extra = [b"[" * 100_000 + b"]" * 100_000, b'{"type":', b"\xff\xfe", b"5", b'"x"', b"null",
             b'{"type": 5}', b"[]"]
    frames: List[bytes] = []
    for i, (_label, data) in enumerate(cases):
        frames.append(json.dumps(neighbour(i), separators=(",", ":")).encode())
        frames.append(data)
    frames.extend(extra)
    frames.append(json.dumps(neighbour(len(cases)), separators=(",", ":")).encode())
    expected_malformed = sum(1 for f in frames if not _is_event_object(f))
    assert expected_malformed >= len(extra)

    fake = FakeAsterisk(endpoints=LINES)
    errors: List[Any] = []
    # bounds out of the way: this test is about isolation (the fake's REST holds a lock while
    # it answers slowly, which holds lanes whose listeners call it)
    client = fake.client(fake.config(event_types=("*",), ring_capacity=1 << 16, ring_bytes=0,
                                     lane_capacity=1 << 16, lane_total_capacity=1 << 17),
                         error_hook=lambda lst, ev, exc: errors.append(exc))
    rec = Rec()
    client.add_listener(rec)
    client.monitor(*LINES)
    caplog.set_level(logging.WARNING, logger="asterisk_cti")
    with client.start():
        before = client.stats()["processor"]
        # Halfway, a monitor change starts a resynchronisation whose answer takes a while:
        # the mutated frames that arrive meanwhile are merged into it.
        answered = threading.Event()

        @fake.ari.route("GET", r"/channels")
        def slow(req: Any, m: Any) -> Any:
            answered.wait(0.3)  # a slow server
            return 200, list(fake.ari.channels.values())

        half = len(frames) // 2
        for start in range(0, half, 200):  # many batches, many frames per batch
            fake.push(*frames[start:min(start + 200, half)])
        change = threading.Thread(target=client.monitor, args=("PJSIP/1099",),
                                  name="test-monitor")
        change.start()
        for start in range(half, len(frames), 200):
            fake.push(*frames[start:start + 200])
        change.join(10)
        assert not change.is_alive()
        assert fake.settle(client, 30)
        st = client.stats()["processor"]
        assert client._processor is not None and client._processor._thread is not None
        assert client._processor._thread.is_alive()
    delta = {k: st[k] - before[k] for k in st}

    assert not [r for r in caplog.records if "processor error" in r.getMessage()]
    assert not [r for r in caplog.records if "failed; continuing" in r.getMessage()]
    assert not [r for r in caplog.records if "resynchronisation failed" in r.getMessage()]
    assert delta["resyncs"] >= 1
    assert errors == []  # no listener saw an exception (nothing odd reached them unwrapped)
    # every neighbour, in order
    assert rec.neighbours == [f"n{i}" for i in range(len(cases) + 1)]
    # the counters add up: every frame counted, exactly the non-events malformed, none lost
    assert delta["frames"] == len(frames)
    assert delta["duplicates"] == 0
    assert delta["malformed"] == expected_malformed
    assert delta["lost_frames"] == 0 and delta["lane_dropped"] == 0
    assert delta["lost_announced"] == 0
    accepted = delta["frames"] - delta["malformed"] - delta["rejected"]
    assert rec.events <= accepted
    assert rec.events >= len(cases) + 1
