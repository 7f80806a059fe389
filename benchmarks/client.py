"""One measured client run, in a fresh process:
``python -m benchmarks.client VARIANT STREAM MODE PORT N``.

VARIANT is ``base`` (websocket-client loop), ``sdk`` (CtiClient, configured as a real
application of that stream would be: see :func:`run_sdk`) or ``aioari`` (aioari's event path,
see :func:`run_aioari`); STREAM one of :data:`benchmarks.stream.STREAMS`; MODE ``full``,
``rate`` (2,000 frames/s) or, for the SDK, ``overload``. Prints one JSON object: wall time,
CPU time of this process, peak RSS, latencies, and for the SDK the guarantees checks.
"""

from __future__ import annotations

import itertools
import json
import resource
import sys
import time
from typing import Any, Dict, List, Tuple

RATE = 2000
#: Latency is not sampled over the first half second of a 2,000 ev/s run (connection set-up,
#: subscription and resynchronisation of the SDK, imports warming up): steady state only.
WARMUP = RATE // 2


def _peak_rss_kb() -> int:
    # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across execve, so a child would report
    # its parent's peak.
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def app_for(stream: str, mode: str, n: int, close: bool = False) -> str:
    """The ``app`` query parameter that tells the bench server what to send."""
    what = f"rate-{RATE}-{n}" if mode == "rate" else f"full-{n}"
    return f"{stream}.{what}" + ("-close" if close else "")


def run_base(stream: str, mode: str, port: int, n: int) -> Dict[str, Any]:
    import websocket

    app = app_for(stream, mode, n)
    lat: List[float] = []
    count = [0]
    want_lat = mode == "rate"

    def callback(event: Dict[str, Any]) -> None:
        count[0] += 1
        if want_lat and event["bench_seq"] >= WARMUP:
            lat.append(time.time() - event["bench_ts"])

    loads = json.loads
    c0 = time.process_time()
    t0 = time.perf_counter()
    ws = websocket.create_connection(f"ws://127.0.0.1:{port}/ari/events?app={app}",
                                     skip_utf8_validation=True)
    while count[0] < n:
        callback(loads(ws.recv()))
    t1 = time.perf_counter()
    c1 = time.process_time()
    ws.shutdown()  # no close handshake: the server would not answer it
    return {"wall": t1 - t0, "cpu": c1 - c0, "events": count[0], "lat": lat,
            "rss_kb": _peak_rss_kb()}


def run_aioari(stream: str, mode: str, port: int, n: int) -> Dict[str, Any]:
    """aioari 0.10's event path, on aiohttp's websocket.

    ``aioari.connect()`` first loads Asterisk's swagger ``api-docs`` (resources and every API
    declaration) to build its REST repositories; the bench server does not serve them. What
    is measured is everything aioari does per event once connected: the websocket is opened
    by aioswagger11's ``AsynchronousHttpClient.ws_connect`` (``aiohttp.ClientSession
    .ws_connect`` with its defaults), and drained by aioari's own ``Client.__run`` (``await
    ws.receive()``, ``json.loads(msg.data)``, the type check, ``process_ws``: the listeners of
    the type and of ``"*"``, the ``__await__`` check), on a ``Client`` whose swagger
    initialisation was skipped; the callback is registered with ``client.on_event("*", cb)``.
    The server closes the websocket after the last frame; the clock stops at the n-th event.
    """
    import asyncio

    import aioari
    from aioswagger11.http_client import AsynchronousHttpClient

    app = app_for(stream, mode, n, close=True)
    lat: List[float] = []
    count = [0]
    t_end = [0.0]
    want_lat = mode == "rate"

    def callback(event: Dict[str, Any]) -> None:
        count[0] += 1
        if want_lat and event["bench_seq"] >= WARMUP:
            lat.append(time.time() - event["bench_ts"])
        if count[0] == n:
            t_end[0] = time.perf_counter()

    async def main() -> None:
        http = AsynchronousHttpClient()
        client = aioari.Client.__new__(aioari.Client)  # no swagger: see the docstring
        client.websockets = set()
        client.event_listeners = {}
        client.exception_handler = lambda ex: None
        client.on_event("*", callback)
        ws = await http.ws_connect(f"ws://127.0.0.1:{port}/ari/events", params={"app": app})
        client.websockets.add(ws)
        try:
            await client._Client__run(ws)
        finally:
            await ws.close()
            await http.close()

    c0 = time.process_time()
    t0 = time.perf_counter()
    asyncio.run(main())
    c1 = time.process_time()
    if count[0] < n:
        raise SystemExit(f"aioari got {count[0]} of {n} events")
    return {"wall": t_end[0] - t0, "cpu": c1 - c0, "events": count[0], "lat": lat,
            "rss_kb": _peak_rss_kb()}


def fake_ari(stream: str, port: int) -> Any:
    """The in-process fake of Asterisk's REST API for the SDK's start-up (subscriptions and
    resynchronisation), knowing the stream's endpoints; the websocket is the bench server's."""
    from asterisk_cti.testing import FakeAri

    from .stream import endpoints

    fake = FakeAri(f"http://127.0.0.1:{port}", "bench", "bench")
    for ep in endpoints(stream):
        fake.add_endpoint(ep)
    return fake


def sdk_client(stream: str, fake: Any, app: str, listener: Any, stasis: Any,
               **config: Any) -> Any:
    """A CtiClient (not started) configured as an application of ``stream`` is:
    ``monitor("PJSIP")`` with ``listener``; on ``stasis`` also call control and ``stasis``
    as the raw listener of StasisStart/StasisEnd of the channels in the application."""
    from asterisk_cti import CtiClient, CtiConfig

    client = CtiClient(CtiConfig(url=fake.base_url, username="bench", password="bench", app=app,
                                 **config), session=fake.session())
    client.add_listener(listener)
    if stream == "stasis":
        control = client.control
        client.add_raw_listener(stasis, ("StasisStart", "StasisEnd"), control.in_stasis)
    client.monitor("PJSIP")
    return client


def run_sdk(stream: str, mode: str, port: int, n: int) -> Dict[str, Any]:
    """The SDK as an application of the stream uses it: ``monitor("PJSIP")`` with a channel
    and call listener on every stream; on ``stasis`` also call control (``client.control``:
    the switch and the Stasis state) and a raw listener for StasisStart/StasisEnd of the
    channels in the application, as a Stasis application that controls calls has."""
    from asterisk_cti import ChannelEventListener, ConnectionListener
    from asterisk_cti.events.catalogue import endpoint_of_channel_name
    from asterisk_cti.model import CallListener

    app = app_for(stream, mode, n)
    fake = fake_ari(stream, port)
    want_lat = mode == "rate"
    # "overload": a listener that needs 1 ms per event and a small ring, so that the ring
    # must overflow (a 200 us listener no longer makes it: the reactor's pacing leaves the
    # burst in the socket buffers); every loss has to be announced, per-line order must hold.
    slow = 0.001 if mode == "overload" else 0.0
    extra: Dict[str, Any] = {"ring_capacity": 512} if mode == "overload" else {}

    class Counter(ChannelEventListener, CallListener, ConnectionListener):
        # No lock: a line's events come from one lane thread at a time (the per-line order
        # this checks), so each key's entry is read and written by one thread at a time;
        # dict and list operations are atomic, and the counts are itertools counters.
        def __init__(self) -> None:
            self.n_events = itertools.count()
            self.n_calls = itertools.count()
            self.lat: List[float] = []
            self.last: Dict[str, int] = {}
            self.order: List[str] = []  # the keys seen out of order
            self.lost: List[int] = []

        def counts(self) -> Tuple[int, int]:
            """Events and call events so far (once no more arrive: it counts one more)."""
            return next(self.n_events), next(self.n_calls)

        @property
        def order_errors(self) -> int:
            return len(self.order)

        @property
        def lost_announced(self) -> int:
            return sum(self.lost)

        def on_event(self, event: Any) -> None:
            raw = event.raw
            now = time.time()
            next(self.n_events)
            key = None
            for field in ("channel", "peer", "caller"):
                chan = raw.get(field)
                if isinstance(chan, dict) and str(chan.get("name")).startswith("PJSIP/"):
                    key = endpoint_of_channel_name(chan["name"])
                    break
            seq = raw["bench_seq"]
            if slow:
                until = time.perf_counter() + slow
                while time.perf_counter() < until:
                    pass
            if want_lat and seq >= WARMUP:
                self.lat.append(now - raw["bench_ts"])
            if key is not None:
                if self.last.get(key, -1) > seq:
                    self.order.append(key)
                self.last[key] = seq

        def on_call_event(self, event: Any) -> None:
            next(self.n_calls)
            seqs = [r["bench_seq"] for r in event.raw if "bench_seq" in r]
            if seqs:
                key = "call:" + event.line
                top = max(seqs)
                if self.last.get(key, -1) > top:
                    self.order.append(key)
                self.last[key] = top

        def on_events_lost(self, event: Any) -> None:
            self.lost.append(event.count)

    class StasisApp:
        def __init__(self) -> None:
            self.events = 0

        def on_event(self, event: Any) -> None:
            self.events += 1  # one lane per channel: no lock needed for a rough count

    listener = Counter()
    stasis = StasisApp()
    c0 = time.process_time()
    t0 = time.perf_counter()
    client = sdk_client(stream, fake, app, listener, stasis, **extra)
    client.start(timeout=10)
    c_started = time.process_time()
    deadline = time.monotonic() + 300
    while True:
        st = client.stats()
        p = st["processor"]
        if (p["frames"] + p["lost_frames"] + st["reactor"]["dropped_early"] >= n
                or time.monotonic() > deadline):
            break
        # stats() takes the GIL and four locks: poll gently, and at 2,000 ev/s (where only
        # latency and CPU are measured, not the wall time) seldom, so that the harness's
        # own polling does not land in the middle of the batches it measures.
        time.sleep(0.1 if want_lat else 0.01)
    client.wait_idle(30)
    t1 = time.perf_counter()
    c1 = time.process_time()
    stats = client.stats()
    client.stop()
    p = stats["processor"]
    n_events, n_calls = listener.counts()
    return {"wall": t1 - t0, "cpu": c1 - c0, "cpu_start": c_started - c0,
            "events": n_events,
            "call_events": n_calls, "frames": p["frames"], "lat": listener.lat,
            "rss_kb": _peak_rss_kb(), "order_errors": listener.order_errors,
            "lost_frames": p["lost_frames"], "overwritten": stats["ring"]["overwritten"],
            "lost_announced": listener.lost_announced, "stasis_events": stasis.events,
            "dropped_early": stats["reactor"]["dropped_early"]}


def main() -> None:
    variant, stream, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    port, n = int(sys.argv[4]), int(sys.argv[5])
    fn = {"base": run_base, "sdk": run_sdk, "aioari": run_aioari}[variant]
    print(json.dumps(fn(stream, mode, port, n)))


if __name__ == "__main__":
    main()
