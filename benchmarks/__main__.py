"""``make bench``: the SDK against a plain websocket-client loop and aioari, on 127.0.0.1.

Runs the event server in its own process with the three streams of
:mod:`benchmarks.stream`, every client run in a fresh subprocess (baseline, SDK and aioari
interleaved, the order rotated every run), the call-model figures and the call-control round
trip, then prints the table with the targets of issue 13 and writes it to
``docs/benchmarks.rst``.

Environment (all optional):

- ``BENCH_RUNS`` (5): interleaved runs; figures are medians over them.
- ``BENCH_EVENTS`` (100000): frames per full-speed run (the recording: at most its 71,000).
- ``BENCH_RATE_EVENTS`` (8000, or BENCH_EVENTS/10 when smaller, at least 2000): frames per
  2,000 ev/s run.
- ``BENCH_STREAMS`` (``traces,stasis,recording``) and ``BENCH_VARIANTS`` (``base,sdk,aioari``;
  aioari is left out when it is not installed, ``pip install -e '.[bench]'``).
- ``BENCH_EXTRAS`` (1): 0 skips the overload check, the call-model figures and call control.
- ``BENCH_NOTE``: a sentence the docs page shows above the table (how the run was made).
- ``BENCH_DOC``: 1 always writes ``docs/benchmarks.rst``, 0 never; by default it is written
  only by a complete run (every stream and variant, at least 3 runs, extras on).

A quick check: ``BENCH_RUNS=1 BENCH_EVENTS=20000 make bench`` (under a minute).
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import callcentre
from . import model as model_bench
from . import stream as streams
from .machine import machine
from .server import EventServer, capacity


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, "") or default)
    except ValueError:
        raise SystemExit(f"{name} must be an integer") from None


def _env_list(name: str, default: Sequence[str]) -> Tuple[str, ...]:
    raw = os.environ.get(name, "")
    items = tuple(x.strip() for x in raw.split(",") if x.strip()) if raw else tuple(default)
    unknown = [x for x in items if x not in default]
    if unknown or not items:
        raise SystemExit(f"{name}: unknown {unknown} (choose among {', '.join(default)})")
    return items


RUNS = max(1, _env_int("BENCH_RUNS", 5))
N_FULL = max(1000, _env_int("BENCH_EVENTS", 100000))
N_RATE = max(2000, _env_int("BENCH_RATE_EVENTS", min(8000, N_FULL // 10)))
STREAMS = _env_list("BENCH_STREAMS", streams.STREAMS)
ALL_VARIANTS = ("base", "sdk", "aioari")
VARIANTS = _env_list("BENCH_VARIANTS", ALL_VARIANTS)
EXTRAS = _env_int("BENCH_EXTRAS", 1) != 0
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RSS_TARGET_MB = 64.0
LABEL = {"traces": "traces", "stasis": "Stasis app", "recording": "1,000 ext."}


def have_aioari() -> bool:
    return all(importlib.util.find_spec(m) is not None
               for m in ("aioari", "aioswagger11", "aiohttp"))


def run_client(variant: str, stream: str, mode: str, port: int, n: int) -> Dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "benchmarks.client", variant, stream, mode,
                          str(port), str(n)], capture_output=True, text=True, timeout=300,
                         cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"{variant} {stream} {mode} failed:\n{out.stderr}")
    result: Dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["n"] = n
    return result


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


def n_full(stream: str) -> int:
    natural = streams.natural_length(stream)
    return min(N_FULL, natural) if natural else N_FULL


Results = Dict[str, Dict[str, Dict[str, List[Dict[str, Any]]]]]


def collect(variants: Tuple[str, ...], port: int, sizes: Dict[str, int]) -> Results:
    """Every run: per stream, per variant, per mode, a list of client results."""
    res: Results = {st: {v: {"full": [], "rate": []} for v in variants} for st in STREAMS}
    for i in range(RUNS):
        order = variants[i % len(variants):] + variants[:i % len(variants)]
        for st in STREAMS:
            for variant in order:
                for mode, n in (("full", sizes[st]), ("rate", N_RATE)):
                    res[st][variant][mode].append(run_client(variant, st, mode, port, n))
            line = ", ".join(f"{v} {r['n'] / r['wall']:,.0f}" for v in variants
                             for r in res[st][v]["full"][-1:])
            print(f"run {i + 1}/{RUNS} {st}: full speed ev/s {line}", flush=True)
    return res


class Row:
    """One line of the streams table: figure, values per variant, ratios, target, verdict."""

    def __init__(self, stream: str, figure: str, values: Dict[str, str],
                 ratios: Optional[Dict[str, str]] = None, target: str = "",
                 met: Optional[bool] = None) -> None:
        self.cells = [LABEL.get(stream, stream), figure, values.get("base", ""),
                      values.get("sdk", ""), values.get("aioari", ""),
                      (ratios or {}).get("sdk", ""), (ratios or {}).get("aioari", ""), target,
                      "" if met is None else ("met" if met else "NO")]


def stream_rows(st: str, res: Dict[str, Dict[str, List[Dict[str, Any]]]],
                calls_full: int, calls_rate: int) -> Tuple[List[Row], List[str]]:
    """The rows of one stream and its notes."""
    variants = [v for v in ALL_VARIANTS if v in res]
    base_full = res["base"]["full"]
    eps = {v: med([r["n"] / r["wall"] for r in res[v]["full"]]) for v in variants}
    ratio = {v: med([(r["n"] / r["wall"]) / (b["n"] / b["wall"])
                     for r, b in zip(res[v]["full"], base_full)]) for v in variants}
    p50 = {v: med([pct(r["lat"], 0.50) for r in res[v]["rate"]]) * 1e3 for v in variants}
    p99 = {v: med([pct(r["lat"], 0.99) for r in res[v]["rate"]]) * 1e3 for v in variants}
    rss_med = {v: med([r["rss_kb"] for r in res[v]["full"]]) * 1.024e-3 for v in variants}
    rss_max = {v: max(r["rss_kb"] for r in res[v]["full"]) * 1.024e-3 for v in variants}
    cpu = {v: med([r["cpu"] / r["n"] * 1e5 for r in res[v]["full"]]) for v in variants}

    def fmt(d: Dict[str, float], spec: str) -> Dict[str, str]:
        return {v: format(x, spec) for v, x in d.items()}

    def rel(d: Dict[str, float]) -> Dict[str, str]:
        return {v: f"{d[v] / d['base']:.2f}x" for v in variants if v != "base"}

    rows: List[Row] = []
    if "sdk" in res:
        full_ok = ratio["sdk"] >= 1.0 and ratio["sdk"] >= ratio.get("aioari", 0.0)
        overflowed = sum(1 for r in res["sdk"]["full"]
                         if r["lost_frames"] or r["overwritten"])
    else:
        full_ok, overflowed = None, 0
    rows.append(Row(st, "events/s, full speed", fmt(eps, ",.0f"),
                    {v: f"{ratio[v]:.2f}x" for v in variants if v != "base"},
                    ">= 1.0x, >= aioari", full_ok))
    if "sdk" in res:
        rows.append(Row(st, "ring overflow, full speed (runs)", {"sdk": f"{overflowed}/{RUNS}"},
                        target="none", met=overflowed == 0))
    rows.append(Row(st, "peak RSS, full speed, worst run (MB)", fmt(rss_max, ".1f"),
                    target=f"<= {RSS_TARGET_MB:.0f}",
                    met=rss_max["sdk"] <= RSS_TARGET_MB if "sdk" in res else None))
    rows.append(Row(st, "peak RSS, full speed, median (MB)", fmt(rss_med, ".1f")))
    rows.append(Row(st, "p50 at 2,000 ev/s (ms)", fmt(p50, ".2f"), rel(p50)))
    rows.append(Row(st, "p99 at 2,000 ev/s (ms)", fmt(p99, ".2f"), rel(p99), "<= 1.5x",
                    p99["sdk"] <= 1.5 * p99["base"] if "sdk" in res else None))
    rows.append(Row(st, "CPU s per 100k frames, full speed", fmt(cpu, ".2f"), rel(cpu)))
    notes: List[str] = []
    if st == "recording" and calls_full:
        # the SDK's start-up (subscription, resynchronising 1,000 endpoints against the
        # in-process fake ARI, whose server side runs in this process too) is not per call
        def steady(r: Dict[str, Any]) -> float:
            return float(r["cpu"] - r.get("cpu_start", 0.0))

        per_call = {v: med([steady(r) for r in res[v]["full"]]) / calls_full * 1e3
                    for v in variants}
        rows.append(Row(st, "CPU ms per call, full speed", fmt(per_call, ".2f"),
                        rel(per_call), "state; halve"))
        per_call_rate = {v: med([steady(r) for r in res[v]["rate"]]) / calls_rate * 1e3
                         for v in variants}
        rows.append(Row(st, "CPU ms per call, 2,000 ev/s", fmt(per_call_rate, ".2f"),
                        rel(per_call_rate), "state; halve"))
        note = (f"1,000 ext.: CPU per call is the client process's CPU time over the run "
                f"divided by the calls (distinct linkedids) in its frames: {calls_full:,} "
                f"calls in {res['base']['full'][0]['n']:,} frames at full speed, "
                f"{calls_rate:,} (some partly) in {N_RATE:,} frames at 2,000 ev/s")
        if "sdk" in res:
            start_ms = med([r["cpu_start"] for r in res["sdk"]["full"]]) * 1e3
            note += ("; the SDK's start-up CPU (subscribing and resynchronising 1,000 "
                     "endpoints against the in-process fake ARI) is left out: median "
                     f"{start_ms:.0f} ms")
        notes.append(note + ".")
    if "sdk" in res:
        sdk_full = res["sdk"]["full"]
        delivered = med([r["events"] for r in sdk_full])
        calls = med([r["call_events"] for r in sdk_full])
        dropped = med([r["dropped_early"] for r in sdk_full])
        lost = sum(r["lost_frames"] for r in sdk_full)
        note = (f"{LABEL[st]}: the SDK delivered {delivered:,.0f} channel events and "
                f"{calls:,.0f} call events per {sdk_full[0]['n']:,} frames, dropped "
                f"{dropped:,.0f} frames of unwanted types before parsing")
        if st == "stasis":
            note += (f", and {med([r['stasis_events'] for r in sdk_full]):,.0f} "
                     "StasisStart/StasisEnd to the Stasis application's raw listener")
        if lost:
            note += f"; {lost:,} frames overwritten in the ring over {RUNS} runs"
        notes.append(note + ".")
    return rows, notes


class PlainRow:
    """One line of the model / call-control table."""

    def __init__(self, part: str, figure: str, base: str, sdk: str, ratio: str = "",
                 target: str = "", met: Optional[bool] = None) -> None:
        self.cells = [part, figure, base, sdk, ratio, target,
                      "" if met is None else ("met" if met else "NO")]


def render(rows: Sequence[Any], head: Sequence[str]) -> List[str]:
    """A reST simple table (every first cell filled, so no row reads as a continuation)."""
    table = [list(head)] + [r.cells for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    sep = "  ".join("=" * w for w in widths)
    out = [sep, "  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip(), sep]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in table[1:]]
    out.append(sep)
    return out


def main() -> None:
    started = time.monotonic()
    variants = VARIANTS
    if "aioari" in variants and not have_aioari():
        print("aioari not installed (pip install -e '.[bench]'): left out", flush=True)
        variants = tuple(v for v in variants if v != "aioari")
    if "base" not in variants:
        raise SystemExit("BENCH_VARIANTS must include base: ratios are against it")
    print(f"machine: {machine()}", flush=True)
    print(f"streams {', '.join(STREAMS)}; variants {', '.join(variants)}; {RUNS} runs; "
          f"{N_FULL:,} frames at full speed, {N_RATE:,} at 2,000 ev/s", flush=True)
    sizes = {st: n_full(st) for st in STREAMS}
    build = {st: max(n, N_RATE) for st, n in sizes.items()}
    if EXTRAS and "traces" not in build:
        build["traces"] = 20000
    calls_full = calls_rate = 0
    if "recording" in STREAMS:
        rec = streams.build("recording", sizes["recording"])
        calls_full, calls_rate = streams.calls_in(rec), streams.calls_in(rec[:N_RATE])
    with EventServer(n_frames=build) as srv:
        cap = med([capacity(srv.port, 200000) for _ in range(3)])
        print(f"server capacity: {cap:,.0f} frames/s", flush=True)
        res = collect(variants, srv.port, sizes)
        over: Optional[Dict[str, Any]] = None
        if EXTRAS and "sdk" in variants:
            print("overload (slow listener, small ring) ...", flush=True)
            over = run_client("sdk", "traces", "overload", srv.port, N_FULL)
    rows: List[Row] = []
    notes: List[str] = []
    for st in STREAMS:
        r, nt = stream_rows(st, res[st], calls_full, calls_rate)
        rows += r
        notes += nt
    lines = render(rows, ("stream", "figure", "baseline", "SDK", "aioari", "SDK/base",
                          "aioari/base", "target", "met"))
    checks: List[str] = []
    if "sdk" in variants:
        sdk_runs = [r for st in STREAMS for r in res[st]["sdk"]["full"]]
        order_errors = sum(r["order_errors"] for r in sdk_runs)
        lost = sum(r["lost_frames"] for r in sdk_runs)
        announced = sum(r["lost_announced"] for r in sdk_runs)
        checks += [
            f"{'PASS' if order_errors == 0 else 'FAIL'}: per-line order at full speed "
            f"({order_errors} out-of-order deliveries over {RUNS} run(s) of each stream)",
            f"{'PASS' if announced == lost else 'FAIL'}: ring overflow announced "
            f"({lost:,} frames overwritten, {announced:,} announced by on_events_lost)",
        ]
    if over is not None:
        over_ok = (over["lost_frames"] > 0 and over["lost_announced"] == over["lost_frames"]
                   and over["order_errors"] == 0)
        checks.insert(0, f"{'PASS' if over_ok else 'FAIL'}: overload (traces, 1 ms "
                      f"listener, ring of 512): {over['lost_frames']:,} frames overwritten, "
                      f"{over['lost_announced']:,} announced by on_events_lost, "
                      f"{over['order_errors']} out-of-order deliveries")
    extra_lines: List[str] = []
    if EXTRAS:
        print("model cost ...", flush=True)
        cost = model_bench.cost_runs(RUNS, min(60000, N_FULL))
        mem = model_bench.memory()
        print("call control ...", flush=True)
        cc_sdk, cc_bare = call_control()
        ratio_cost = cost["us_10k"] / cost["us_100"]
        extra_rows = [
            PlainRow("model", "apply per event (us)", f"{cost['us_100']:.2f}",
                     f"{cost['us_10k']:.2f}", f"{ratio_cost:.2f}x", "<= 1.2x",
                     ratio_cost <= 1.2),
            PlainRow("model", "memory per active call (bytes)", "", f"{mem['per_call']:,.0f}",
                     target="<= 4096", met=mem["per_call"] <= 4096),
            PlainRow("model", "memory per monitored line (bytes)", "",
                     f"{mem['per_line']:,.0f}"),
            PlainRow("control", "originate + hangup round trip (ms)", f"{cc_bare * 1e3:.2f}",
                     f"{cc_sdk * 1e3:.2f}", f"{cc_sdk / cc_bare:.2f}x", "<= 1.1x",
                     cc_sdk <= 1.1 * cc_bare),
        ]
        extra_lines = render(extra_rows, ("part", "figure", "reference", "SDK", "ratio",
                                          "target", "met"))
        notes.append(f"Model: {cost['events']:,} model events of the traces stream; the "
                     "reference column is 100 monitored lines, the SDK column 10,000; memory "
                     f"from tracemalloc for 10,000 lines and 5,000 two-party calls up "
                     f"({mem['active_line_calls']:,} connected connections). Call control: "
                     "client.rest against a bare requests.Session on the simulator.")
    notes = [
        f"Server capacity (frames/s to a socket a trivial reader drains): {cap:,.0f}.",
        f"Full speed: {N_FULL:,} frames per run (the 1,000-extension recording: its "
        f"first {sizes.get('recording', 0):,}, each once); 2,000 ev/s: {N_RATE:,} frames, latency "
        "sampled after the first 1,000 (wire to listener: the server's send time in the "
        "frame to the callback's clock, the SDK's on delivered channel events); medians of "
        f"{RUNS} interleaved runs, each client in a fresh process, ratios against the "
        "baseline of the same run.",
        *notes,
    ]
    text = "\n".join([*lines, "", *([*extra_lines, ""] if extra_lines else []),
                      *checks, "", *notes])
    print()
    print(text)
    complete = (set(STREAMS) == set(streams.STREAMS) and set(variants) == set(ALL_VARIANTS)
                and RUNS >= 3 and EXTRAS)
    doc = os.environ.get("BENCH_DOC", "")
    if doc == "1" or (doc != "0" and complete):
        write_doc(lines, extra_lines, checks, notes)
        where = "written to docs/benchmarks.rst"
    else:
        where = "docs/benchmarks.rst not written: partial run (BENCH_DOC=1 forces it)"
    print(f"\n(total {time.monotonic() - started:.0f} s; {where})")


def write_doc(table: List[str], extra: List[str], checks: List[str], notes: List[str]) -> None:
    body = [
        "Benchmarks",
        "==========",
        "",
        "``make bench`` measures the SDK on 127.0.0.1 against two peers on three streams a PBX",
        "sends. The **baseline** is a plain websocket-client loop",
        "(``create_connection(url, skip_utf8_validation=True)``, ``json.loads(ws.recv())``, an",
        "inline callback); **aioari** is aioari 0.10's event path on aiohttp (its",
        "``Client.__run`` and ``process_ws`` dispatching to a callback registered with",
        "``on_event('*', cb)``, on a websocket opened by aioswagger11's ``ws_connect``; its",
        "swagger initialisation is skipped because the bench server serves no ``api-docs``).",
        "A websocket server in its own process writes the frames. The streams:",
        "",
        "- **traces**: the Asterisk 22 traces cycled over 100 lines; three quarters of the",
        "  frames are types the SDK drops before parsing.",
        "- **Stasis app**: ``benchmarks/streams/stasis_app_stream.py`` (seed 1), what a Stasis",
        "  application that controls calls sees; every frame but the varsets (34 %) matters to",
        "  the call model. The SDK runs as such an application: ``monitor('PJSIP')``, a channel",
        "  and call listener, ``client.control`` (switch and Stasis state) and a raw listener",
        "  for StasisStart/StasisEnd of the channels in the application.",
        "- **1,000 ext.**: ``benchmarks/streams/load-1000ext-50cps.jsonl.gz``, recorded from a",
        "  real Asterisk 22 with 1,000 PJSIP endpoints under SIPp load (1,000 calls at 50",
        "  calls/s, 71 events per call, 71 % varsets); the SDK monitors ``PJSIP``.",
        "",
        "Targets (issue 13): at full speed at least 1.0x the baseline and at least aioari's",
        "ratio, no ring overflow, peak RSS at most 64 MB (10^6 bytes, the worst run) with the",
        "default settings; p99 wire-to-listener at 2,000 ev/s at most 1.5x the baseline; CPU",
        "per call on the recording stated, to be halved. Ratios are against the baseline of",
        "the same run; absolute numbers drift between runs.",
        "",
        "Quick run: ``BENCH_RUNS=1 BENCH_EVENTS=20000 make bench`` (does not rewrite this",
        "page); ``BENCH_STREAMS``, ``BENCH_VARIANTS``, ``BENCH_EXTRAS=0`` select what runs",
        "(see ``benchmarks/__main__.py``).",
        "",
        f"Machine: {machine()}.",
        "",
        *([os.environ["BENCH_NOTE"], ""] if os.environ.get("BENCH_NOTE") else []),
        "Last run",
        "--------",
        "",
        *table,
        "",
    ]
    if extra:
        body += [*extra, ""]
    for line in checks:
        body.append("- " + line)
    body.append("")
    for line in notes:
        body.append("- " + line)
    body.append("")
    with open(PROFILE_NOTES) as f:
        body += ["", *f.read().splitlines()]
    body += ["", "", *callcentre.DOC_SECTION.splitlines()]  # make bench-callcentre's section
    with open(os.path.join(ROOT, "docs", "benchmarks.rst"), "w") as f:
        f.write("\n".join(body).rstrip() + "\n")


#: The analysis of a profile, written by hand (``python -m benchmarks.profile``); read when the
#: page is written, the figures above it are rewritten by every complete run.
PROFILE_NOTES = os.path.join(ROOT, "benchmarks", "profile_notes.rst")


if __name__ == "__main__":
    main()
