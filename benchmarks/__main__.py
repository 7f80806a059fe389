"""``make bench``: the SDK against a plain websocket-client loop, on 127.0.0.1.

Runs the event server in its own process, every client run in a fresh subprocess
(baseline and SDK alternating), the call-model figures and the call-control round trip,
then prints the table and writes it to ``docs/benchmarks.rst``.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List, Tuple

from . import model as model_bench
from .server import EventServer, capacity

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
N_FULL = int(os.environ.get("BENCH_EVENTS", "100000"))
N_RATE = 8000  # 4 s at 2,000 events/s
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_client(variant: str, mode: str, port: int, n: int) -> Dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "benchmarks.client", variant, mode, str(port),
                          str(n)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"{variant} {mode} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def pct(values: List[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * q))] if s else float("nan")


def med(xs: List[float]) -> float:
    return statistics.median(xs)


def call_control(n: int = 100) -> Tuple[float, float]:
    """Median seconds per originate + hangup: client.rest vs a bare requests.Session."""
    import requests

    from asterisk_cti import CtiClient, CtiConfig
    from asterisk_cti.sim import AriSimulator

    params = {"endpoint": "PJSIP/1000", "extension": "1002", "context": "from-internal"}
    sdk: List[float] = []
    bare: List[float] = []
    with AriSimulator() as sim:
        client = CtiClient(CtiConfig(url=sim.url, username=sim.username,
                                     password=sim.password, app="bench"))
        session = requests.Session()
        session.auth = (sim.username, sim.password)
        base = sim.url + "/ari"

        def one_sdk() -> None:
            ch = client.rest.post("channels", params=params)
            client.rest.delete("channels", ch["id"])

        def one_bare() -> None:
            r = session.post(base + "/channels", params=params, timeout=10)
            r.raise_for_status()
            session.delete(base + "/channels/" + r.json()["id"], timeout=10).raise_for_status()

        for _ in range(10):
            one_sdk()
            one_bare()
        # Blocks of 20, alternating: interleaving single requests of the two sessions hides
        # the simulator's ~40 ms delayed-ACK stall for one of them and not the other.
        for _ in range(n // 20):
            for fn, acc in ((one_sdk, sdk), (one_bare, bare)):
                for _ in range(20):
                    t0 = time.perf_counter()
                    fn()
                    acc.append(time.perf_counter() - t0)
        client.close()
        session.close()
    return med(sdk), med(bare)


def machine() -> str:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {cpu}, "
            f"Python {platform.python_version()}, {datetime.date.today().isoformat()}")


def main() -> None:
    started = time.monotonic()
    print(f"machine: {machine()}", flush=True)
    results: Dict[str, Dict[str, List[Dict[str, Any]]]] = {
        "base": {"full": [], "rate": []}, "sdk": {"full": [], "rate": []}}
    with EventServer(n_frames=20000) as srv:
        cap = med([capacity(srv.port, 200000) for _ in range(3)])
        print(f"server capacity: {cap:,.0f} frames/s", flush=True)
        for i in range(RUNS):
            for variant in ("base", "sdk"):
                for mode, n in (("full", N_FULL), ("rate", N_RATE)):
                    r = run_client(variant, mode, srv.port, n)
                    r["n"] = n
                    results[variant][mode].append(r)
            b, s = results["base"]["full"][-1], results["sdk"]["full"][-1]
            print(f"run {i + 1}/{RUNS}: full speed base {N_FULL / b['wall']:,.0f} ev/s, "
                  f"sdk {N_FULL / s['wall']:,.0f} ev/s", flush=True)
        print("overload (slow listener, small ring) ...", flush=True)
        over = run_client("sdk", "overload", srv.port, N_FULL)
    print("model cost ...", flush=True)
    cost = model_bench.cost_runs(RUNS)
    mem = model_bench.memory()
    print("call control ...", flush=True)
    cc_sdk, cc_bare = call_control()

    def agg(variant: str) -> Dict[str, float]:
        full, rate = results[variant]["full"], results[variant]["rate"]
        return {
            "eps": med([N_FULL / r["wall"] for r in full]),
            "p50": med([pct(r["lat"], 0.50) for r in rate]) * 1e3,
            "p99": med([pct(r["lat"], 0.99) for r in rate]) * 1e3,
            "cpu": med([r["cpu"] / N_FULL * 1e5 for r in full]),
            # peak RSS of each client process; the median over the runs, and the worst run
            "rss": med([max(f["rss_kb"], r["rss_kb"]) for f, r in zip(full, rate)]) / 1024,
            "rss_max": max(r["rss_kb"] for r in full + rate) / 1024,
        }

    b, s = agg("base"), agg("sdk")
    sdk_full = results["sdk"]["full"]
    order_errors = sum(r["order_errors"] for r in sdk_full)
    lost = sum(r["lost_frames"] for r in sdk_full)
    announced = sum(r["lost_announced"] for r in sdk_full)
    delivered = med([r["events"] for r in sdk_full])
    calls = med([r["call_events"] for r in sdk_full])
    ratio_cost = cost["us_10k"] / cost["us_100"]

    rows = [
        ("events/s at full speed (frames consumed)", f"{b['eps']:,.0f}", f"{s['eps']:,.0f}",
         f"{s['eps'] / b['eps']:.2f}", ">= 1.0", s["eps"] >= b["eps"]),
        ("latency p50 at 2,000 ev/s (ms)", f"{b['p50']:.2f}", f"{s['p50']:.2f}",
         f"{s['p50'] / b['p50']:.2f}", "", None),
        ("latency p99 at 2,000 ev/s (ms)", f"{b['p99']:.2f}", f"{s['p99']:.2f}",
         f"{s['p99'] / b['p99']:.2f}", "<= 1.5", s["p99"] <= 1.5 * b["p99"]),
        ("CPU s per 100k events (client process)", f"{b['cpu']:.2f}", f"{s['cpu']:.2f}",
         f"{s['cpu'] / b['cpu']:.2f}", "", None),
        ("peak RSS (MiB), median of the runs", f"{b['rss']:.1f}", f"{s['rss']:.1f}",
         f"{s['rss'] / b['rss']:.2f}", "<= 1.5", s["rss"] <= 1.5 * b["rss"]),
        ("peak RSS (MiB), worst run", f"{b['rss_max']:.1f}", f"{s['rss_max']:.1f}",
         f"{s['rss_max'] / b['rss_max']:.2f}", "", None),
        ("model apply per event, 100 / 10,000 lines (us)", f"{cost['us_100']:.2f}",
         f"{cost['us_10k']:.2f}", f"{ratio_cost:.2f}", "<= 1.2", ratio_cost <= 1.2),
        ("memory per active call (bytes)", "", f"{mem['per_call']:,.0f}", "", "<= 4096",
         mem["per_call"] <= 4096),
        ("memory per monitored line (bytes)", "", f"{mem['per_line']:,.0f}", "", "", None),
        ("originate + hangup round trip (ms)", f"{cc_bare * 1e3:.2f}", f"{cc_sdk * 1e3:.2f}",
         f"{cc_sdk / cc_bare:.2f}", "<= 1.1", cc_sdk <= 1.1 * cc_bare),
    ]
    head = ("figure", "baseline", "SDK", "ratio", "target", "met")
    table = [head] + [(r[0], r[1], r[2], r[3], r[4],
                       "" if r[5] is None else ("yes" if r[5] else "NO")) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    sep = "  ".join("=" * w for w in widths)
    lines = [sep, "  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip(), sep]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in table[1:]]
    lines.append(sep)
    over_ok = (over["lost_frames"] > 0 and over["lost_announced"] == over["lost_frames"]
               and over["order_errors"] == 0)
    checks = [
        f"{'PASS' if over_ok else 'FAIL'}: overload (200 us listener, "
        f"ring of 512): {over['lost_frames']:,} frames overwritten, "
        f"{over['lost_announced']:,} announced by on_events_lost, "
        f"{over['order_errors']} out-of-order deliveries",
        f"{'PASS' if order_errors == 0 else 'FAIL'}: per-line order at full speed "
        f"({order_errors} out-of-order deliveries over {RUNS} runs)",
        f"{'PASS' if announced == lost else 'FAIL'}: ring overflow announced "
        f"({lost} frames overwritten, {announced} announced by on_events_lost)",
    ]
    notes = [
        f"Server capacity (frames/s to a socket a trivial reader drains): {cap:,.0f}.",
        f"Full speed: {N_FULL:,} frames per run; 2,000 ev/s: {N_RATE:,} frames; medians of "
        f"{RUNS} interleaved runs, each client in a fresh process.",
        f"Baseline parses and counts every frame; the SDK consumes every frame but drops "
        f"types nobody consumes before parsing, delivering {delivered:,.0f} channel events "
        f"and {calls:,.0f} call events per {N_FULL:,} frames (latency is measured on "
        "delivered channel events only).",
        f"Model: {cost['events']:,} model events of the same stream; memory from tracemalloc "
        f"for 10,000 lines and 5,000 two-party calls up ({mem['active_line_calls']:,} "
        "connected connections).",
    ]
    text = "\n".join([*lines, "", *checks, "", *notes])
    print()
    print(text)
    write_doc(text)
    print(f"\n(total {time.monotonic() - started:.0f} s; written to docs/benchmarks.rst)")


def write_doc(text: str) -> None:
    body = [
        "Benchmarks",
        "==========",
        "",
        "``make bench`` measures the SDK against a plain websocket-client loop on 127.0.0.1",
        "(``create_connection(url, skip_utf8_validation=True)``, ``json.loads(ws.recv())``,",
        "an inline callback), with a websocket server in its own process that replays the",
        "Asterisk 22 traces as a realistic stream (many lines, many channels). Ratios are",
        "against the baseline of the same run; absolute numbers drift between runs.",
        "",
        f"Machine: {machine()}.",
        "",
        "Last run",
        "--------",
        "",
    ]
    table, _, rest = text.partition("\n\n")
    body += [table, ""]
    for para in rest.split("\n\n"):
        for line in para.splitlines():
            body.append("- " + line)
        body.append("")
    body += PROFILE_NOTES.splitlines()
    with open(os.path.join(ROOT, "docs", "benchmarks.rst"), "w") as f:
        f.write("\n".join(body).rstrip() + "\n")


#: Analysis written once (py-spy, 2026-11-26); the figures above are rewritten by every run.
PROFILE_NOTES = """
Where the time goes
-------------------

``py-spy record --gil`` over four full-speed SDK runs (samples taken while a thread holds
the GIL): the processor thread 70 % (decoding JSON 24 %, the call model 21 %, call control's
waiters 7 %, parsing and lane keys the rest), the reactor 13 % (reading and splitting
frames, dropping unwanted types in place), the lanes 7 %. Decoding is the C scanner of the
standard library; the only way below it is a faster JSON library, which the runtime
dependencies rule out.

What the targets that are missed would need:

- **Peak RSS.** Importing the runtime dependencies and the SDK costs 34 MiB before any
  event (``requests`` alone 8 MiB over the baseline's 20 MiB), 1.7x the baseline by itself.
  Beyond that the backlog is bounded: the processor pauses while more than 2,048 parsed
  events wait in moving lanes, so overload stays in the ring as raw frames.
- **p99 latency at 2,000 events/s.** The server sends bursts of 20 frames every 10 ms. The
  baseline decodes them in one thread; the SDK hands each burst to the processor and then
  to a lane (two thread wake-ups, about 60 us each here) and runs the call model on it. On
  this 2-core machine a burst arrives with cold caches, so a 5-event batch costs the
  processor about 230 us of CPU (64 us warm). Closing the gap would mean delivering in the
  processor thread (no lane hop), which would give up the isolation of slow listeners
  that the lanes exist for.
"""


if __name__ == "__main__":
    main()
