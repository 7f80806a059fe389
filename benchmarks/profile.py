"""Per-thread profile of one client run under py-spy:
``python -m benchmarks.profile [STREAM] [N] [--gil] [--variant sdk]``.

Starts the bench server, runs ``py-spy record --threads --format raw`` on
``python -m benchmarks.client VARIANT STREAM full PORT N`` and prints, per thread, its share
of the samples and the functions that take the most of them (inclusive, and where the
samples land: the innermost frame of ``asterisk_cti`` or the leaf). With ``--gil`` only
samples taken while the thread holds the GIL count (what competes for the interpreter);
without it, every sample of a thread that is not idle. Needs ``pip install py-spy`` and the
right to ptrace a child (root or ``kernel.yama.ptrace_scope=0``).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, List, Tuple

from .server import EventServer

_FRAME = re.compile(r"^(?P<fn>.+?) \((?P<file>[^:()]+)(?::\d+)?\)$")
_SKIP = ("threading.py", "thread.py", "<frozen", "runpy.py")


def parse_raw(path: str) -> List[Tuple[str, List[str], int]]:
    """``(thread name, frames outermost first, samples)`` of a py-spy raw (collapsed) file."""
    out = []
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            parts = stack.split(";")
            # "thread (0x7f..): asterisk-cti-processor" (py-spy 0.4 names the thread); a thread
            # sampled before Python named it is the main thread importing
            head = parts[0]
            thread = head.split(": ", 1)[1] if ": " in head else "MainThread"
            out.append((thread, parts[1:], int(count)))
    return out


def short(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    fn, file = m["fn"], m["file"]
    return f"{fn} ({os.path.basename(file)})"


def report(rows: List[Tuple[str, List[str], int]], top: int = 8) -> str:
    total = sum(c for _, _, c in rows) or 1
    per_thread: Dict[str, int] = collections.Counter()
    incl: Dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    lands: Dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for thread, frames, count in rows:
        per_thread[thread] += count
        useful = [f for f in frames if not any(s in f for s in _SKIP)]
        for fr in dict.fromkeys(short(f) for f in useful):
            incl[thread][fr] += count
        ours = [f for f in useful if "asterisk_cti" in f]
        leaf = short(useful[-1]) if useful else "?"
        where = short(ours[-1]) if ours else leaf
        if ours and useful and useful[-1] != ours[-1]:
            where += " -> " + leaf
        lands[thread][where] += count
    sdk = sum(n for t, n in per_thread.items() if t.startswith("asterisk-cti"))
    lines = [f"{total} samples; the SDK's threads (asterisk-cti-*) {100 * sdk / total:.1f} %"]
    for thread, n in sorted(per_thread.items(), key=lambda kv: -kv[1]):
        lines.append(f"\n{thread}: {100 * n / total:.1f} % of all samples")
        lines.append("  inclusive (% of the thread):")
        for fr, c in incl[thread].most_common(top):
            lines.append(f"    {100 * c / n:5.1f}  {fr}")
        lines.append("  where the samples land (% of the thread):")
        for fr, c in lands[thread].most_common(top):
            lines.append(f"    {100 * c / n:5.1f}  {fr}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stream", nargs="?", default="stasis")
    ap.add_argument("n", nargs="?", type=int, default=100000)
    ap.add_argument("--variant", default="sdk", choices=("sdk", "base", "aioari"))
    ap.add_argument("--mode", default="full", choices=("full", "rate"),
                    help="full speed, or 2,000 ev/s (the p99 measurement)")
    ap.add_argument("--gil", action="store_true", help="only samples holding the GIL")
    ap.add_argument("--rate", type=int, default=250, help="samples per second")
    ap.add_argument("--top", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=1, help="runs, each in a fresh process, "
                    "whose samples are added up")
    ap.add_argument("--keep", help="also write the raw py-spy output here (last run)")
    a = ap.parse_args()
    spy = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
    if not os.path.exists(spy):
        raise SystemExit("py-spy not found: pip install py-spy")
    rows: List[Tuple[str, List[str], int]] = []
    with tempfile.TemporaryDirectory() as tmp, EventServer({a.stream: a.n}) as srv:
        raw = a.keep or os.path.join(tmp, "raw.txt")
        cmd = [spy, "record", "--threads", "-r", str(a.rate), "--format", "raw", "-o", raw,
               *(["--gil"] if a.gil else []), "--", sys.executable, "-m",
               "benchmarks.client", a.variant, a.stream, a.mode, str(srv.port), str(a.n)]
        for _ in range(max(1, a.repeat)):
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                                 cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
            if out.returncode != 0:
                raise SystemExit(f"py-spy failed:\n{out.stderr}")
            rows += parse_raw(raw)
    print(report(rows, a.top))


if __name__ == "__main__":
    main()
