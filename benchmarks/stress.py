"""Floods and memory bounds (``make stress``): the hardening issue's classes 3, 4 and 6 at
scale, with figures. Each scenario runs the SDK in a fresh process against the benchmark's
websocket server on 127.0.0.1 (the real transport, reactor, ring, processor and lanes) and
REST on :class:`asterisk_cti.testing.FakeAri`.

Scenarios:

- ``flood-1ms``: the whole stream at full speed to a listener that takes 1 ms per event.
  Figures: peak RSS, frames lost in the ring and events dropped from lanes (counted) against
  the sum of ``on_events_lost`` counts (announced), notices received during the flood, and the
  latency from the first counted loss to its notice.
- ``blocked-line``: the listener of one line blocks until the end of the flood; the others
  are quick. Figures: peak RSS, the largest lane backlog seen, events of the other lines
  delivered, the loss notices naming the blocked line.
- ``stalled-rest``: every ``GET /channels`` takes 5 s (a trickling server) and a resync is
  due; events keep coming at 2,000/s. Figure: events delivered while the request is out, and
  the longest gap between two deliveries.
- ``stuck-listeners``: listeners block every lane thread and one connection listener blocks
  in ``on_disconnected``; the connection drops. Figure: how long another connection listener
  waits for ``on_disconnected`` / ``on_connected``.

Run ``python -m benchmarks.stress`` (``--before PATH`` runs the same scenarios against another
checkout of the package, for comparison; ``--quick`` for smaller floods).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional

from .client import _peak_rss_kb
from .server import EventServer

FLOOD = 1_000_000
QUICK_FLOOD = 200_000


def _client(port: int, app: str, **cfg: Any) -> Any:
    from asterisk_cti import CtiClient, CtiConfig
    from asterisk_cti.testing import FakeAri

    base = f"http://127.0.0.1:{port}"
    fake = FakeAri(base, "stress", "stress")
    for i in range(100):
        fake.add_endpoint(f"PJSIP/{1000 + i}")
    config = CtiConfig(url=base, username="stress", password="stress", app=app,
                       request_timeout=30.0, **cfg)
    return fake, CtiClient(config, session=fake.session())


def _lost_total(st: Dict[str, Any]) -> int:
    p = st["processor"]
    return int(p.get("lost_frames", 0)) + int(p.get("lane_dropped", 0))


def _wait_stream(client: Any, n: int, limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        st = client.stats()
        p = st["processor"]
        if p["frames"] + p["lost_frames"] + st["reactor"]["dropped_early"] >= n:
            return
        time.sleep(0.01)


def flood(port: int, n: int, blocked: bool) -> Dict[str, Any]:
    from asterisk_cti import ChannelEventListener, ConnectionListener
    from asterisk_cti.events.catalogue import endpoint_of_channel_name

    gate = threading.Event()
    block_line = "PJSIP/1000"

    class Listener(ChannelEventListener, ConnectionListener):
        def __init__(self) -> None:
            self.lock = threading.Lock()
            self.events = 0
            self.other = 0
            self.notices = 0
            self.announced = 0
            self.first_notice = 0.0
            self.blocked_named = 0

        def on_event(self, event: Any) -> None:
            chan = event.raw.get("channel")
            name = chan.get("name") if isinstance(chan, dict) else None
            line = endpoint_of_channel_name(name) if isinstance(name, str) else ""
            if blocked:
                if line == block_line:
                    gate.wait(120)
                else:
                    with self.lock:
                        self.other += 1
            else:
                time.sleep(0.001)
            with self.lock:
                self.events += 1

        def on_events_lost(self, event: Any) -> None:
            with self.lock:
                self.notices += 1
                self.announced += event.count
                if not self.first_notice:
                    self.first_notice = time.monotonic()
                if getattr(event, "line", None) == block_line:
                    self.blocked_named += 1

    _fake, client = _client(port, f"full-{n}")
    listener = Listener()
    client.add_listener(listener)
    client.monitor("PJSIP")
    client.start(timeout=10)
    t0 = time.monotonic()
    first_loss = 0.0
    max_backlog = 0
    notices_during = 0
    deadline = t0 + 90
    while time.monotonic() < deadline:
        st = client.stats()
        p = st["processor"]
        max_backlog = max(max_backlog, st["dispatcher"]["backlog"])
        if not first_loss and _lost_total(st):
            first_loss = time.monotonic()
        if p["frames"] + p["lost_frames"] + st["reactor"]["dropped_early"] >= n:
            break
        time.sleep(0.01)
    flood_end = time.monotonic()
    with listener.lock:
        notices_during = listener.notices
    gate.set()
    client.wait_idle(60)
    st = client.stats()
    client.stop()
    latency = (listener.first_notice - first_loss) if first_loss and listener.first_notice \
        else None
    return {"seconds": round(flood_end - t0, 1), "rss_mb": round(_peak_rss_kb() / 1024, 1),
            "lost_ring": st["processor"]["lost_frames"],
            "lane_dropped": st["processor"].get("lane_dropped", 0),
            "announced": listener.announced, "notices": listener.notices,
            "notices_during_flood": notices_during,
            "first_notice_latency_s": None if latency is None else round(latency, 3),
            "max_lane_backlog": max_backlog, "delivered": listener.events,
            "other_lines_delivered": listener.other, "notices_naming_line": listener.blocked_named}


def stalled_rest(port: int, n: int) -> Dict[str, Any]:
    from asterisk_cti import ChannelEventListener

    class Listener(ChannelEventListener):
        def __init__(self) -> None:
            self.times: List[float] = []

        def on_event(self, event: Any) -> None:
            self.times.append(time.monotonic())

    fake, client = _client(port, f"rate-2000-{n}")
    stalls: List[float] = []

    @fake.route("GET", r"/channels")
    def slow(req: Any, m: Any) -> Any:
        if stalls:  # not the first (connect-time) resync
            t = time.monotonic()
            stalls.append(t)
            time.sleep(5.0)  # a server trickling its answer
            stalls.append(time.monotonic())
            return 200, []
        stalls.append(0.0)
        return 200, []

    listener = Listener()
    client.add_listener(listener)
    client.monitor("PJSIP")
    client.start(timeout=10)
    time.sleep(1.0)  # the stream is flowing
    client.monitor("PJSIP/2000")  # a monitor change: subscription, then a resynchronisation
    _wait_stream(client, n, 30)
    client.wait_idle(30)
    client.stop()
    start, end = (stalls[1], stalls[2]) if len(stalls) >= 3 else (0.0, 0.0)
    during = [t for t in listener.times if start <= t <= end]
    gaps = [b - a for a, b in zip(listener.times, listener.times[1:])]
    return {"stall_s": round(end - start, 1), "delivered_during_stall": len(during),
            "longest_gap_s": round(max(gaps), 3) if gaps else None,
            "rss_mb": round(_peak_rss_kb() / 1024, 1)}


def stuck_listeners(port: int, n: int) -> Dict[str, Any]:
    from asterisk_cti import ChannelEventListener, ConnectionListener

    gate = threading.Event()

    class Blocker(ChannelEventListener):
        def on_event(self, event: Any) -> None:
            gate.wait(60)

    class StuckConn(ConnectionListener):
        def on_disconnected(self, event: Any) -> None:
            gate.wait(60)

    class Watch(ConnectionListener):
        def __init__(self) -> None:
            self.cond = threading.Condition()
            self.seen: List[tuple[str, float]] = []

        def on_disconnected(self, event: Any) -> None:
            with self.cond:
                self.seen.append(("disconnected", time.monotonic()))
                self.cond.notify_all()

        def on_connected(self, event: Any) -> None:
            with self.cond:
                self.seen.append(("connected", time.monotonic()))
                self.cond.notify_all()

    _fake, client = _client(port, f"full-{n}", workers=4)
    watch = Watch()
    for lst in (Blocker(), StuckConn(), watch):
        client.add_listener(lst)
    client.monitor("PJSIP")
    client.start(timeout=10)
    _wait_stream(client, n, 30)  # every lane thread is now blocked
    with watch.cond:
        watch.seen.clear()
    t0 = time.monotonic()
    reactor = client._reactor
    reactor.reconnect("stress: dropped")
    with watch.cond:
        watch.cond.wait_for(lambda: len(watch.seen) >= 2, 10)
        seen = list(watch.seen)
    gate.set()
    client.stop()
    got = {kind: round(t - t0, 3) for kind, t in seen}
    return {"on_disconnected_s": got.get("disconnected"), "on_connected_s": got.get("connected"),
            "rss_mb": round(_peak_rss_kb() / 1024, 1)}


SCENARIOS = ("flood-1ms", "blocked-line", "stalled-rest", "stuck-listeners")


def run_one(name: str, port: int, n: int) -> Dict[str, Any]:
    """Run one scenario in this process and return its figures."""
    import asterisk_cti

    print(f"package: {asterisk_cti.__file__}", file=sys.stderr)
    if name == "flood-1ms":
        return flood(port, n, blocked=False)
    if name == "blocked-line":
        return flood(port, n, blocked=True)
    if name == "stalled-rest":
        return stalled_rest(port, 30_000)
    return stuck_listeners(port, 20_000)


def _spawn(name: str, port: int, n: int, path: Optional[str]) -> Dict[str, Any]:
    env = dict(os.environ)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory() as tmp:
        cwd = repo
        if path:
            # the package from ``path``, these benchmarks from here: a directory that holds
            # only a link to them comes first on sys.path
            env["PYTHONPATH"] = path + os.pathsep + env.get("PYTHONPATH", "")
            os.symlink(os.path.join(repo, "benchmarks"), os.path.join(tmp, "benchmarks"))
            cwd = tmp
        cmd = [sys.executable, "-m", "benchmarks.stress", "--one", name, str(port), str(n)]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=150, env=env,
                                 cwd=cwd)
        except subprocess.TimeoutExpired:
            return {"error": "timed out after 150 s (wedged)"}
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode or not lines:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1][:200]}
    result: Dict[str, Any] = json.loads(lines[-1])
    return result


def main(argv: List[str]) -> None:
    if argv[:1] == ["--one"]:
        name, port, n = argv[1], int(argv[2]), int(argv[3])
        print(json.dumps(run_one(name, port, n)), flush=True)
        return
    before = argv[argv.index("--before") + 1] if "--before" in argv else None
    n = QUICK_FLOOD if "--quick" in argv else FLOOD
    only = [a for a in argv if a in SCENARIOS] or list(SCENARIOS)
    started = time.monotonic()
    with EventServer(n_frames={"traces": 20000}) as srv:
        for name in only:
            for label, path in (("before", before), ("now", None)):
                if label == "before" and not before:
                    continue
                r = _spawn(name, srv.port, n, path)
                print(f"{name:16s} {label:6s} " + ", ".join(f"{k}={v}" for k, v in r.items()),
                      flush=True)
    print(f"stress: {time.monotonic() - started:.0f} s (flood of {n:,} frames)")


if __name__ == "__main__":
    main(sys.argv[1:])
