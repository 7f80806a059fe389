"""The processor's hot path alone, on one thread: ``python -m benchmarks.replay [STREAM] [N]
[--chunk K] [--gap S] [--reps R] [--limit F] [--profile]``.

Builds a :class:`~asterisk_cti.CtiClient` configured as ``make bench`` configures it for
STREAM (``monitor("PJSIP")``, a channel and call listener; on ``stasis`` also call control
and a raw listener for StasisStart/StasisEnd), starts it against the bench server (a stream
of 10 frames), then feeds the stream's frames that the transport would keep straight to
``Processor._process`` in chunks of K frames, on the calling thread, with no lanes (the
hand-off is a no-op). Prints the CPU time per frame (median of R fresh clients).

- ``--chunk 11 --gap 0.01``: the 2,000 ev/s shape (a batch of about 11 kept frames every
  10 ms). On the 2-core VM this bench runs on, the same code costs about three times as
  much per frame as without the gap: the caches are cold after 10 ms idle.
- ``--limit F``: only the first F frames (``valgrind --tool=callgrind
  --toggle-collect='*functools_reduce*' python -m benchmarks.replay --reduce ...`` counts
  the instructions of the processing alone: ``--reduce`` runs it inside
  ``functools.reduce``, whose C symbol callgrind can toggle on).
- ``--profile``: cProfile of one run instead.
"""

from __future__ import annotations

import argparse
import functools
import gc
import io
import json
import statistics
import time
from typing import Any, List

from asterisk_cti import ChannelEventListener, CtiClient
from asterisk_cti.model import CallListener
from asterisk_cti.pipeline.frames import SNIFFED_TYPES, sniffed

from . import stream as streams
from .client import fake_ari, sdk_client
from .server import EventServer


class _Sink(ChannelEventListener, CallListener):
    def on_event(self, event: Any) -> None:
        pass

    def on_call_event(self, event: Any) -> None:
        pass


class _StasisSink:
    def on_event(self, event: Any) -> None:
        pass


def _client(stream: str, port: int) -> CtiClient:
    client: CtiClient = sdk_client(stream, fake_ari(stream, port), f"{stream}.full-10",
                                   _Sink(), _StasisSink())
    client.start(timeout=10)
    client.wait_idle(5)
    return client


def kept_frames(client: CtiClient, frames: List[bytes]) -> List[bytes]:
    """The frames the transport would pass to the ring for this client (its wanted types,
    and of the sniffed types only the frames whose field matches)."""
    proc = client._processor
    assert proc is not None
    wanted = proc._deliver_types | proc._model_types | proc._raw_types
    out = []
    for fr in frames:
        etype = json.loads(fr)["type"]
        keep = etype in proc._deliver_types or (etype in wanted and (
            etype not in SNIFFED_TYPES or sniffed(fr, etype.encode(), 0, len(fr))))
        if keep:
            out.append(fr)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stream", nargs="?", default="stasis", choices=streams.STREAMS)
    ap.add_argument("n", nargs="?", type=int, default=60000)
    ap.add_argument("--chunk", type=int, default=512)
    ap.add_argument("--gap", type=float, default=0.0, help="seconds idle before each chunk")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--limit", type=int, default=0, help="only the first F kept frames")
    ap.add_argument("--reduce", action="store_true", help="run inside functools.reduce")
    ap.add_argument("--profile", action="store_true")
    a = ap.parse_args()
    frames = streams.build(a.stream, a.n)
    results: List[float] = []
    with EventServer({a.stream: 10}) as srv:
        for _ in range(1 if a.profile else max(1, a.reps)):
            client = _client(a.stream, srv.port)
            try:
                proc = client._processor
                assert proc is not None
                kept = kept_frames(client, frames)
                if a.limit:
                    kept = kept[:a.limit]
                elif a.gap:
                    kept = kept[:4000]
                proc._submit = lambda out: None  # type: ignore[method-assign]
                proc._throttle = None
                chunks = [kept[i:i + a.chunk] for i in range(0, len(kept), a.chunk)]
                gc.collect()
                if a.profile:
                    import cProfile
                    import pstats
                    prof = cProfile.Profile()
                    prof.enable()
                    for c in chunks:
                        proc._process(c)
                    prof.disable()
                    out = io.StringIO()
                    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(40)
                    print(out.getvalue())
                    return
                if a.reduce:
                    t0 = time.thread_time()
                    functools.reduce(lambda _, c: proc._process(c), chunks, None)
                    spent = time.thread_time() - t0
                else:
                    spent = 0.0
                    for c in chunks:
                        if a.gap:
                            time.sleep(a.gap)
                        t0 = time.thread_time()
                        proc._process(c)
                        spent += time.thread_time() - t0
                results.append(spent / len(kept) * 1e6)
            finally:
                client.stop()
    print(f"{a.stream}: {len(kept)} of {len(frames)} frames kept, chunks of {a.chunk}"
          f"{f', {a.gap * 1000:g} ms idle before each' if a.gap else ''}: "
          f"{statistics.median(results):.2f} us of CPU per frame (median of {len(results)}; "
          f"{', '.join(f'{x:.2f}' for x in sorted(results))})")


if __name__ == "__main__":
    main()
