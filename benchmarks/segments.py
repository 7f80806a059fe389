"""Where a 2,000 ev/s batch's latency goes: ``python -m benchmarks.segments [STREAM] [N]``.

Runs the ``make bench`` SDK client (:func:`benchmarks.client.run_sdk`, rate mode) in this
process with timestamps added around the pipeline's stages (by wrapping their methods; the
SDK is not changed): the bench server's send time of the batch (``bench_ts`` of its last
frame), the reactor's read (after the frames were split), its put into the ring, the
processor's start on the batch, the start and end of its hand-off (``_deliver``: publishing
the model's snapshots, offering the waiters, ``submit_many``), and the lane's run. Prints
p50/p90/p99 of each segment over the last three quarters of the batches, and the listener's
wire-to-listener latency.
"""

from __future__ import annotations

import argparse
import re
import time
from typing import Any, Callable, Dict, List, Optional

from asterisk_cti.pipeline import dispatcher, processor, ring, transport

from . import client
from .server import EventServer

_TS = re.compile(rb'"bench_ts":([0-9.]+)')
_SEGMENTS = (
    ("server send -> frames read", "ts", "recv"),
    ("read -> in the ring", "recv", "put"),
    ("ring -> processor starts", "put", "p0"),
    ("processing the batch", "p0", "d0"),
    ("hand-off (snapshots, submit)", "d0", "d1"),
    ("hand-off -> lane starts", "d1", "l0"),
    ("lane delivers", "l0", "l1"),
    ("server send -> lane done", "ts", "l1"),
)


def _pct(values: List[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


def measure(stream: str, n: int) -> Dict[str, Any]:
    batches: List[Dict[str, float]] = []
    current: List[Optional[Dict[str, float]]] = [None]

    def stamp(name: str, first: bool = True) -> None:
        b = current[0]
        if b is not None and (not first or name not in b):
            b[name] = time.time()

    def wrap(cls: Any, meth: str, before: Optional[str], after: Optional[str],
             after_first: bool = True) -> Callable[[], None]:
        orig = getattr(cls, meth)

        def wrapper(self: Any, *args: Any) -> Any:
            if before:
                stamp(before)
            out = orig(self, *args)
            if after:
                stamp(after, after_first)
            return out

        setattr(cls, meth, wrapper)
        return lambda: setattr(cls, meth, orig)

    orig_recv = transport._SocketStream.recv_batch

    def recv_batch(self: Any) -> Any:
        out = orig_recv(self)
        if out:
            m = _TS.search(out[-1])
            if m:
                b = {"ts": float(m.group(1)), "recv": time.time()}
                batches.append(b)
                current[0] = b
        return out

    transport._SocketStream.recv_batch = recv_batch  # type: ignore[method-assign]
    undo = [
        lambda: setattr(transport._SocketStream, "recv_batch", orig_recv),
        wrap(ring.Ring, "put_many", None, "put"),
        wrap(processor.Processor, "_process", "p0", None),
        wrap(processor.Processor, "_deliver", "d0", "d1"),
        wrap(dispatcher.Dispatcher, "_run_lane", "l0", "l1", after_first=False),
    ]
    try:
        with EventServer({stream: n}) as srv:
            result = client.run_sdk(stream, "rate", srv.port, n)
    finally:
        for fn in undo:
            fn()
    keys = {k for _, a, b in _SEGMENTS for k in (a, b)}
    rows = [b for b in batches[len(batches) // 4:] if keys <= b.keys()]
    seg = {name: [(b[z] - b[a]) * 1e3 for b in rows] for name, a, z in _SEGMENTS}
    return {"batches": len(rows), "segments": seg, "lat": [x * 1e3 for x in result["lat"]]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stream", nargs="?", default="stasis")
    ap.add_argument("n", nargs="?", type=int, default=8000)
    a = ap.parse_args()
    m = measure(a.stream, a.n)
    print(f"{a.stream}: {m['batches']} batches of 10 ms at 2,000 frames/s (ms)")
    print(f"{'segment':32s} {'p50':>7s} {'p90':>7s} {'p99':>7s}")
    for name, values in m["segments"].items():
        if values:
            print(f"{name:32s} {_pct(values, .5):7.3f} {_pct(values, .9):7.3f} "
                  f"{_pct(values, .99):7.3f}")
    lat = m["lat"]
    if lat:
        print(f"{'wire to listener (events)':32s} {_pct(lat, .5):7.3f} {_pct(lat, .9):7.3f} "
              f"{_pct(lat, .99):7.3f}")


if __name__ == "__main__":
    main()
