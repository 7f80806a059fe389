"""One measured client run, in a fresh process: ``python -m benchmarks.client VARIANT MODE PORT N``.

VARIANT is ``base`` (websocket-client loop) or ``sdk`` (CtiClient); MODE is ``full`` or
``rate``. Prints one JSON object: wall time, CPU time of this process, peak RSS, latencies,
and for the SDK the guarantees checks.
"""

from __future__ import annotations

import json
import resource
import sys
import threading
import time
from typing import Any, Dict, List

RATE = 2000


def _peak_rss_kb() -> int:
    # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across execve, so a child would report
    # its parent's peak.
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_base(mode: str, port: int, n: int) -> Dict[str, Any]:
    import websocket

    app = f"full-{n}" if mode == "full" else f"rate-{RATE}-{n}"
    lat: List[float] = []
    count = [0]
    want_lat = mode == "rate"

    def callback(event: Dict[str, Any]) -> None:
        count[0] += 1
        if want_lat:
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
    ws.close()
    return {"wall": t1 - t0, "cpu": c1 - c0, "events": count[0], "lat": lat,
            "rss_kb": _peak_rss_kb()}


def run_sdk(mode: str, port: int, n: int) -> Dict[str, Any]:
    from asterisk_cti import ChannelEventListener, ConnectionListener, CtiClient, CtiConfig
    from asterisk_cti.events import endpoint_of_channel_name
    from asterisk_cti.model import CallListener
    from asterisk_cti.testing import FakeAri

    app = f"rate-{RATE}-{n}" if mode == "rate" else f"full-{n}"
    base = f"http://127.0.0.1:{port}"
    fake = FakeAri(base, "bench", "bench")
    for i in range(100):
        fake.add_endpoint(f"PJSIP/{1000 + i}")
    want_lat = mode == "rate"
    # "overload": a listener that needs 200 us per event and a small ring, so that the ring
    # must overflow; every loss has to be announced and per-line order must still hold.
    slow = 0.0002 if mode == "overload" else 0.0
    extra: Dict[str, Any] = {"ring_capacity": 512} if mode == "overload" else {}

    class Counter(ChannelEventListener, CallListener, ConnectionListener):
        def __init__(self) -> None:
            self.lock = threading.Lock()
            self.events = 0
            self.calls = 0
            self.lat: List[float] = []
            self.last: Dict[str, int] = {}
            self.order_errors = 0
            self.lost_announced = 0

        def on_event(self, event: Any) -> None:
            raw = event.raw
            now = time.time()
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
            with self.lock:
                self.events += 1
                if want_lat:
                    self.lat.append(now - raw["bench_ts"])
                if key is not None:
                    if self.last.get(key, -1) > seq:
                        self.order_errors += 1
                    self.last[key] = seq

        def on_call_event(self, event: Any) -> None:
            seqs = [r["bench_seq"] for r in event.raw if "bench_seq" in r]
            with self.lock:
                self.calls += 1
                if seqs:
                    key = "call:" + event.line
                    if self.last.get(key, -1) > max(seqs):
                        self.order_errors += 1
                    self.last[key] = max(seqs)

        def on_events_lost(self, event: Any) -> None:
            with self.lock:
                self.lost_announced += event.count

    listener = Counter()
    c0 = time.process_time()
    t0 = time.perf_counter()
    client = CtiClient(CtiConfig(url=base, username="bench", password="bench", app=app,
                                 **extra),
                       session=fake.session())
    client.add_listener(listener)
    client.monitor("PJSIP")
    client.start(timeout=10)
    deadline = time.monotonic() + 300
    while True:
        st = client.stats()
        p = st["processor"]
        if (p["frames"] + p["lost_frames"] + st["reactor"]["dropped_early"] >= n
                or time.monotonic() > deadline):
            break
        time.sleep(0.002)
    client.wait_idle(30)
    t1 = time.perf_counter()
    c1 = time.process_time()
    stats = client.stats()
    client.stop()
    p = stats["processor"]
    return {"wall": t1 - t0, "cpu": c1 - c0, "events": listener.events,
            "call_events": listener.calls, "frames": p["frames"], "lat": listener.lat,
            "rss_kb": _peak_rss_kb(), "order_errors": listener.order_errors,
            "lost_frames": p["lost_frames"], "overwritten": stats["ring"]["overwritten"],
            "lost_announced": listener.lost_announced,
            "dropped_early": stats["reactor"]["dropped_early"]}


def main() -> None:
    variant, mode, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    fn = run_base if variant == "base" else run_sdk
    print(json.dumps(fn(mode, port, n)))


if __name__ == "__main__":
    main()
