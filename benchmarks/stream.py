"""A realistic ARI event stream built from the Asterisk 22 traces in ``tests/data/traces``.

Every ``*.jsonl`` (application ``cti-rec``) and ``*.all.jsonl`` frame is used in file order,
cycle after cycle, keeping the mix and sizes; each cycle rewrites channel ids (a ``.k<cycle>``
suffix) and moves the three phones 1000/1002/1006 onto other lines of PJSIP/1000..1099, so the
stream has many distinct channels over 100 lines.
"""

from __future__ import annotations

import glob
import os
import re
from typing import List

HERE = os.path.dirname(os.path.abspath(__file__))
TRACE_DIRS = (os.path.join(HERE, "..", "tests", "data", "traces"),)
LINES = 100

_ID = re.compile(rb'"(\d{9,11}\.\d+)"')
_EXT = re.compile(rb"(PJSIP/|\"resource\":\"|\"number\":\"|\"exten\":\")(10\d\d)")


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


def cycle_frames(base: List[bytes], cycle: int) -> List[bytes]:
    """One pass over the traces with ids and lines rewritten for ``cycle``."""
    suffix = b".k%d" % cycle
    shift = (cycle * 7) % LINES

    def ext(m: re.Match[bytes]) -> bytes:
        n = 1000 + (int(m.group(2)) - 1000 + shift) % LINES
        return m.group(1) + b"%d" % n

    out = []
    for fr in base:
        fr = _ID.sub(lambda m: b'"' + m.group(1) + suffix + b'"', fr)
        out.append(_EXT.sub(ext, fr))
    return out


def frames(n: int) -> List[bytes]:
    """``n`` frames of the cycling stream (JSON objects without the bench fields)."""
    base = base_frames()
    out: List[bytes] = []
    cycle = 0
    while len(out) < n:
        out.extend(cycle_frames(base, cycle))
        cycle += 1
    return out[:n]
