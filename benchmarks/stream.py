"""The three event streams ``make bench`` replays, as lists of compact JSON frames (bytes).

- ``traces``: built from the Asterisk 22 traces in ``tests/data/traces``. Every ``*.jsonl``
  (application ``cti-rec``) and ``*.all.jsonl`` frame is used in file order, cycle after cycle,
  keeping the mix and sizes; each cycle rewrites channel ids (a ``.k<cycle>`` suffix) and moves
  the three phones 1000/1002/1006 onto other lines of PJSIP/1000..1099, so the stream has many
  distinct channels over 100 lines. Three quarters of its frames are types the SDK drops.
- ``stasis``: :mod:`benchmarks.streams.stasis_app_stream` (seed 1), the stream a Stasis
  application that controls calls sees; every frame but the varsets matters to the call model.
  Its send-time placeholders (``@`` x 19) are left as they are: the server appends its own
  ``bench_ts`` to every frame, as for the other streams.
- ``recording``: ``streams/load-1000ext-50cps.jsonl.gz``, recorded from a real Asterisk 22 with
  1,000 PJSIP endpoints under SIPp load (1,000 calls); each line is ``{"rx": t, "e": event}``
  and the frame is ``event``, compact. Replayed once (cycles, with ids rewritten as for the
  traces, only when more frames are asked for than it holds).
"""

from __future__ import annotations

import glob
import gzip
import json
import os
import re
from functools import lru_cache
from typing import List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
TRACE_DIRS = (os.path.join(HERE, "..", "tests", "data", "traces"),)
RECORDING = os.path.join(HERE, "streams", "load-1000ext-50cps.jsonl.gz")
LINES = 100

#: The stream names, in the order the table shows them.
STREAMS: Tuple[str, ...] = ("traces", "stasis", "recording")

_ID = re.compile(rb'"(\d{9,11}\.\d+)"')
_EXT = re.compile(rb"(PJSIP/|\"resource\":\"|\"number\":\"|\"exten\":\")(10\d\d)")
_LINKEDID = re.compile(rb'"CHANNEL\(linkedid\)":"([^"]+)"')


def trace_dir() -> str:
    for d in TRACE_DIRS:
        if glob.glob(os.path.join(d, "*.jsonl")):
            return os.path.abspath(d)
    raise SystemExit("no traces found (looked in {})".format(", ".join(TRACE_DIRS)))


def base_frames() -> List[bytes]:
    """Every trace frame (cti-rec and .all files), in a fixed order."""
    out: List[bytes] = []
    for path in sorted(glob.glob(os.path.join(trace_dir(), "*.jsonl"))):
        with open(path, "rb") as f:
            out.extend(line.rstrip(b"\r\n") for line in f if line.strip())
    return out


def _suffix_ids(fr: bytes, suffix: bytes) -> bytes:
    return _ID.sub(lambda m: b'"' + m.group(1) + suffix + b'"', fr)


def cycle_frames(base: List[bytes], cycle: int) -> List[bytes]:
    """One pass over the traces with ids and lines rewritten for ``cycle``."""
    suffix = b".k%d" % cycle
    shift = (cycle * 7) % LINES

    def ext(m: re.Match[bytes]) -> bytes:
        n = 1000 + (int(m.group(2)) - 1000 + shift) % LINES
        return m.group(1) + b"%d" % n

    return [_EXT.sub(ext, _suffix_ids(fr, suffix)) for fr in base]


def frames(n: int) -> List[bytes]:
    """``n`` frames of the cycling traces stream (JSON objects without the bench fields)."""
    base = base_frames()
    out: List[bytes] = []
    cycle = 0
    while len(out) < n:
        out.extend(cycle_frames(base, cycle))
        cycle += 1
    return out[:n]


def stasis_frames(n: int) -> List[bytes]:
    """``n`` frames of the Stasis-application stream (deterministic, seed 1)."""
    from .streams import stasis_app_stream

    return [line.encode() for line in stasis_app_stream.generate(n, seed=1)]


@lru_cache(maxsize=1)
def recording_base() -> Tuple[bytes, ...]:
    """The recorded events, compact, in receive order (parsed once per process)."""
    out: List[bytes] = []
    with gzip.open(RECORDING, "rb") as f:
        for line in f:
            if line.strip():
                event = json.loads(line)["e"]
                out.append(json.dumps(event, separators=(",", ":"),
                                      ensure_ascii=False).encode())
    return tuple(out)


def recording_frames(n: int) -> List[bytes]:
    """``n`` frames of the recording; beyond its length it repeats with ids suffixed."""
    base = recording_base()
    out = list(base[:n])
    cycle = 1
    while len(out) < n:
        suffix = b".k%d" % cycle
        out.extend(_suffix_ids(fr, suffix) for fr in base[: n - len(out)])
        cycle += 1
    return out


def build(name: str, n: int) -> List[bytes]:
    """``n`` frames of the stream ``name`` (one of :data:`STREAMS`)."""
    if name == "traces":
        return frames(n)
    if name == "stasis":
        return stasis_frames(n)
    if name == "recording":
        return recording_frames(n)
    raise ValueError(f"unknown stream {name!r} (one of {', '.join(STREAMS)})")


def natural_length(name: str) -> int:
    """Frames of one pass over the stream (0: unbounded, it is generated or cycled)."""
    return len(recording_base()) if name == "recording" else 0


def calls_in(frames_: List[bytes]) -> int:
    """Distinct calls (``CHANNEL(linkedid)`` values) among the frames of the recording."""
    ids = set()
    for fr in frames_:
        ids.update(_LINKEDID.findall(fr))
    return len(ids)


def endpoints(name: str) -> List[str]:
    """The PJSIP endpoints of a stream, for the fake ARI the SDK resynchronises against."""
    if name == "traces":
        return [f"PJSIP/{1000 + i}" for i in range(LINES)]
    if name == "stasis":
        from .streams import stasis_app_stream

        return ["PJSIP/trunk-sbc"] + [f"PJSIP/{num}" for _, num in stasis_app_stream.USERS]
    if name == "recording":
        return [f"PJSIP/{3000 + i}" for i in range(1000)]
    raise ValueError(f"unknown stream {name!r}")

