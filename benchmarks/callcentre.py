"""``make bench-callcentre``: remote desktops through one mosquitto to one CtiServer.

What runs, each in its own process (all on 127.0.0.1, ``spawn``ed so no thread is forked):

- **the PBX**: the embedded simulator with ``--lines`` extensions (1,000), every phone
  answering by itself after 0.2 s; calls are placed at a fixed rate between two idle
  extensions drawn by a seeded random generator, talk 2 s, then the caller hangs up. In this
  benchmark the simulator stamps each ARI event's ``timestamp`` with microseconds (Asterisk
  sends milliseconds) so that the end-to-end latency is not rounded to a millisecond.
- **the broker**: mosquitto from the Debian package with the configuration
  :func:`~asterisk_cti.server.write_mosquitto_config` generates (dynamic-security plugin,
  one broker user per agent, each allowed its own line's topics only).
- **the server**: :class:`~asterisk_cti.server.CtiServer`, one agent per line (1,000
  lines watched), one ARI application.
- **the desktops**: ``--desktops`` (500) spread over ``--workers`` (5) processes, each
  logged in with its agent's credentials, in two variants (``--desktop remote|paho|both``):
  a :class:`~asterisk_cti.remote.RemoteClient` (``workers=1``) with a ``CallListener`` that
  takes the receipt time in ``on_call_event``, as users run it; or a plain paho-mqtt 2
  client subscribed to ``cti/SITE/line/EXT/#`` that decodes each event (``json.loads``, its
  fields read) on paho's thread, the floor for comparison. The latency is ``time.time()``
  at receipt minus the event's ``timestamp`` (the ARI event's, carried through the server;
  one machine, one clock); *in desktop* is the part from the message at paho's callback.
- **direct clients** (for the PBX-side comparison): ``--direct`` (50) real
  :class:`~asterisk_cti.CtiClient`, each its own ARI application monitoring its own line,
  as a desktop embedding the SDK does; the figures are extrapolated linearly to the number
  of desktops.

Lost events: the server process counts the CTI events of each line (a second listener on its
client, beside the publisher); each desktop counts what it received on its line's
``events`` topic; after each rate every desktop must have received exactly its line's count.

``make bench-callcentre`` (``python -m benchmarks.callcentre``; ``CC_ARGS`` passes options:
``--runs N`` (3 per variant; figures are medians), ``--desktop remote|paho|both`` (both),
``--quick`` (the smoke test's size: 200 lines, 100 desktops, one rate, about 15 s),
``--desktops``, ``--workers``, ``--rates 20,50``, ``--duration``, ``--direct``,
``--json FILE``). A complete run (the default sizes, both variants, at least 3 runs) writes
``docs/benchmarks_callcentre.inc``, which ``docs/benchmarks.rst`` includes; ``--doc yes|no``
forces it either way.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable, Deque, Dict, List, Optional, Protocol, Sequence, Tuple

from .machine import machine

SITE = "bench"
FIRST_EXT = 100000
SERVER_APP = "cti-server"
SERVER_PASSWORD = "bench-server-pw"
ROOT = Path(__file__).resolve().parent.parent
DOC_INC = ROOT / "docs" / "benchmarks_callcentre.inc"
P99_TARGET_MS = 20.0


#: The "Call centre" section of ``docs/benchmarks.rst`` (``make bench`` rewrites that page and
#: appends this; the figures are in the included file, which a complete run here rewrites).
DOC_SECTION = """\
Call centre
-----------

``make bench-callcentre`` (``benchmarks/callcentre.py``, about 6 minutes: 3 runs with each
desktop variant; ``CC_ARGS=--quick`` for a smoke run, ``CC_ARGS='--desktop remote'`` for one
variant) measures the topology of :doc:`callcentre` on one machine, each part in its own
process on ``127.0.0.1``: the simulator with 1,000 extensions (the PBX; calls at 20 and then
50 calls/s between two idle extensions drawn at random, answered after 0.2 s, 2 s of talk),
one :class:`~asterisk_cti.server.CtiServer` watching the 1,000 lines (one agent per line),
one mosquitto (Debian package) with the generated dynamic-security rights, and 500 desktops
in 5 worker processes (every other line has one), each logged in with its agent's
credentials, in two variants:

- **RemoteClient desktops**, what users run: each a
  :class:`~asterisk_cti.remote.RemoteClient` watching its agent's line, with ``workers=1``
  (the smallest setting: one lane thread beside paho's network thread; no connection
  listener, so no notice thread) and a ``CallListener`` whose ``on_call_event`` takes the
  receipt time. The latency includes the client's work: parsing and validating the payload
  (the event, its line snapshot, its connections' actions), keeping the snapshot, handing
  the event to the lane thread and calling the listener there.
- **plain paho desktops**, for comparison (the floor under the RemoteClient): one paho-mqtt
  2 client each, subscribed to ``cti/SITE/line/EXT/#``, decoding the JSON on paho's thread
  (``json.loads``, the fields a desktop reads).

What is measured:

- **Latency, end to end**: from the ARI event's ``timestamp`` (the simulator's clock when it
  built the event; in this benchmark it stamps microseconds, Asterisk stamps milliseconds)
  to ``time.time()`` in the desktop's listener (RemoteClient) or after decoding (paho); the
  same clock, one machine. *In server* is the part up to the server's call listener (the
  simulator's writer, the websocket and the SDK's pipeline), before anything MQTT; *in
  desktop* the part from the event's message at the desktop's paho callback to the receipt
  (for a RemoteClient, its own work).
- **Lost events**: the server process counts each line's CTI events (a second call listener
  beside the publisher); after each rate every desktop must have received exactly its line's
  count (QoS 1 end to end).
- **CPU**: user + system seconds of each process over the window (psutil), as a share of one
  core and per call; *desktops* is the 5 worker processes together, *PBX* the simulator.
- **Desktop process**: one worker process after the last rate (psutil; medians over the
  processes and runs): its threads, resident and unique (USS) memory, and what each desktop
  added to the bare process (threads, USS).
- **PBX side**: the ARI applications, websockets and frames the simulator sends. The direct
  comparison (run with the RemoteClient variant) runs 50 real :class:`~asterisk_cti.CtiClient`
  (each its own application monitoring its own line, as a desktop that embeds the SDK) beside
  the server at 20 calls/s and extrapolates linearly to 500.

Targets (issue 14): the PBX sees one application whatever the number of desktops; p99 end
to end under 20 ms at 50 calls/s with 500 desktops on this 2-core machine; no event lost.

.. include:: benchmarks_callcentre.inc

Where the time goes with RemoteClient desktops at 50 calls/s (the columns *in server* and *in
desktop* split each event's end-to-end latency; 2026-12-01): at the median about 3 ms from
the ARI event to the server's listener (the simulator's writer, the websocket, the SDK's
pipeline), about 3 ms from there to the desktop's paho callback (the server's publish,
mosquitto, the desktop's socket) and 0.4 ms in the RemoteClient, against 0.06 ms for
decoding alone in a plain paho desktop. Of the RemoteClient's share, parsing and validating
is about 60 µs per event (``json.loads`` of the 2.8 kB payload 20 µs, ``CallEvent.from_dict``
20 µs, the carried snapshot and its actions 20 µs; the retained ``state`` message that
follows each event costs another 24 µs); the rest is the hand-over to the lane thread, a
thread wake-up that waits for a core when the machine is busy: 100 clients and 200 threads
share each desktop process here, and its p99 is 3 to 5 ms. ``py-spy record --threads``
(200 Hz, 20 s, ``--nonblocking``) on the server: the publisher's lane work is 17 % of its
samples (``paho.publish`` 13 %; the retained snapshot republished after each event 6 %,
``json.dumps`` 1.3 %, building the payloads 1 %), paho's network thread 26 % (the broker's
PUBACKs among it), the SDK's processor 22 %, the reactor 8 %. Nothing in the server's publish
path or the client stands out, so neither was changed; the p99 follows the machine's load
(2 cores shared with other jobs). Three complete runs of ``make bench-callcentre`` the same
afternoon gave a median p99 at 50 calls/s with RemoteClient desktops of 16.8 ms (load
average 1.2 to 2.4), 21.1 ms (load 1.7 to 8, other jobs starting: one run at 29.7 ms while
*in server* reached 14.7 ms) and 14.3 ms (load 1.5 to 4, the table above); plain paho
desktops 11.0, 10.9 and 13.6 ms. A possible saving left for later:
publish the retained snapshot from the dict already built for the event, and let the client
skip a snapshot equal to the one the event carried (each desktop parses every snapshot
twice today, about 24 µs per event).
"""


def agent_password(ext: str) -> str:
    return f"pw-{ext}"


@dataclass
class Plan:
    """The sizes of one benchmark run."""

    lines: int = 1000
    desktops: int = 500
    workers: int = 5
    rates: Tuple[float, ...] = (20.0, 50.0)
    duration: float = 20.0          # seconds of calls placed per rate
    talk_time: float = 2.0
    direct: int = 50                # real CtiClients for the PBX-side comparison (0: none)
    direct_rate: float = 20.0
    direct_duration: float = 10.0
    seed: int = 14
    desktop: str = "remote"         # see DESKTOPS

    @classmethod
    def quick(cls) -> Plan:
        return cls(lines=200, desktops=100, workers=2, rates=(20.0,), duration=6.0,
                   talk_time=1.0, direct=10, direct_rate=20.0, direct_duration=4.0)

    def extensions(self) -> List[str]:
        return [str(FIRST_EXT + i) for i in range(self.lines)]

    def desktop_extensions(self) -> List[str]:
        """Every other line has a desktop (``lines / desktops`` apart), so both ends of a
        call have the same chance of having one."""
        exts = self.extensions()
        step = len(exts) / self.desktops
        return [exts[int(i * step)] for i in range(self.desktops)]

    def direct_extensions(self) -> List[str]:
        desks = self.desktop_extensions()
        step = len(desks) / max(1, self.direct)
        return [desks[int(i * step)] for i in range(self.direct)]


# -- the PBX (simulator process) ---------------------------------------------------------------


def _precise_timestamp(t: Optional[float] = None) -> str:
    """Asterisk's timestamp format with microseconds (the SDK parses both)."""
    if t is None:
        t = time.time()
    us = int((t - int(t)) * 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{us:06d}+0000"


def _place_calls(sim: Any, exts: Sequence[str], rate: float, duration: float,
                 talk_time: float, seed: int) -> Dict[str, Any]:
    """Place calls at ``rate`` for ``duration`` s between idle extensions; wait until all
    ended. Returns ``placed`` and the worst lateness of the pacing (s)."""
    pbx = sim.pbx
    rng = random.Random(seed)
    endpoints = [pbx.endpoints[f"PJSIP/{e}"] for e in exts]
    placed = 0
    late = 0.0
    start = time.monotonic()
    interval = 1.0 / rate
    while True:
        due = start + placed * interval
        if due - start >= duration:
            break
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            late = max(late, -delay)
        with pbx.lock:
            for _ in range(50):  # two idle extensions (a quarter at most are busy)
                a, b = rng.sample(range(len(endpoints)), 2)
                if not endpoints[a].channel_ids and not endpoints[b].channel_ids:
                    break
            ch = pbx.phone_dial(endpoints[a], exts[b])

            def hang(ch: Any = ch) -> None:
                pbx.hangup(ch, 16)

            pbx.later(ch, talk_time + 0.2, hang)
        placed += 1
    deadline = time.monotonic() + talk_time + 30
    while any(ep.channel_ids for ep in endpoints):
        if time.monotonic() > deadline:
            raise RuntimeError("the benchmark calls did not end")
        time.sleep(0.05)
    return {"placed": placed, "late": late}


def _sim_main(conn: Connection, exts: List[str]) -> None:
    from asterisk_cti.sim import AriSimulator, emit

    emit.ari_timestamp = _precise_timestamp  # type: ignore[attr-defined]
    sim = AriSimulator(speed=1.0)
    sim.start()
    sim.add_endpoints([(e, f"Agent {e}") for e in exts])
    for e in exts:
        phone = sim.phone(e)
        phone.auto_answer = 0.2
        phone.call_waiting = True
    conn.send((sim.url, sim.username, sim.password))
    try:
        while True:
            msg = conn.recv()
            cmd, arg = msg if isinstance(msg, tuple) else (msg, None)
            if cmd == "load":
                conn.send(_place_calls(sim, exts, **arg))
            elif cmd == "delivered":
                conn.send({a: sim.delivered(a) for a in arg})
            elif cmd == "apps":
                with sim.pbx.lock:
                    apps = dict(sim.pbx.apps)
                    conn.send({"apps": len(apps),
                               "websockets": sum(1 for a in apps.values()
                                                 if a.sink is not None)})
            else:
                conn.send(None)
                return
    finally:
        sim.stop()


# -- the server process ------------------------------------------------------------------------


def _server_main(conn: Connection, ari: Tuple[str, str, str], port: int,
                 exts: List[str]) -> None:
    import logging

    from asterisk_cti import CallEvent, CallListener, CtiClient, CtiConfig
    from asterisk_cti.server import AgentRights, CtiServer, ServerConfig

    logging.basicConfig(level=logging.WARNING)
    counts: Dict[str, int] = {}
    hop: List[float] = []  # ARI event -> the server's listeners (the SDK's lane thread)
    lock = threading.Lock()

    class Counter(CallListener):
        def on_call_event(self, event: CallEvent) -> None:
            now = time.time()
            with lock:
                counts[event.line] = counts.get(event.line, 0) + 1
                hop.append(now - event.timestamp)

    def factory(config: CtiConfig) -> CtiClient:
        client = CtiClient(config)
        client.add_listener(Counter())
        return client

    config = ServerConfig(site=SITE, broker_port=port, broker_password=SERVER_PASSWORD,
                          agents={e: AgentRights((f"PJSIP/{e}",)) for e in exts},
                          connect_timeout=30.0)
    url, user, password = ari
    server = CtiServer(config, CtiConfig(url=url, username=user, password=password,
                                         app=SERVER_APP), client_factory=factory)
    server.start()
    try:
        deadline = time.monotonic() + 60
        while any(server.client.line(f"PJSIP/{e}") is None for e in exts):
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not synchronise its lines")
            time.sleep(0.05)
        conn.send("ready")
        while True:
            cmd = conn.recv()
            if cmd == "counts":
                with lock:
                    conn.send({line.split("/", 1)[1]: n for line, n in counts.items()})
            elif cmd == "take":
                with lock:
                    conn.send(hop[:])
                    hop.clear()
            else:
                break
    finally:
        server.stop()
        conn.send(None)


# -- the desktops ------------------------------------------------------------------------------

#: A desktop hands each event to this: its agent's extension, the event's line and
#: ``timestamp`` (the ARI event's), the time its message reached the desktop (paho's
#: ``on_message``) and the receipt time (``time.time()``, where the desktop's code has it).
OnEvent = Callable[[str, str, float, float, float], None]

#: The desktop variants: ``remote`` (what users run) and ``paho`` (the floor, for comparison).
DESKTOPS = ("remote", "paho")
DESKTOP_NAMES = {"remote": "RemoteClient", "paho": "plain paho"}


class RemoteDesktop:
    """One agent desktop as users run it: a :class:`~asterisk_cti.remote.RemoteClient` logged
    in with its agent's credentials, watching its line, with a
    :class:`~asterisk_cti.CallListener` that takes the receipt time in ``on_call_event`` (on
    the client's lane thread: after paho's thread parsed and validated the payload, updated
    the line snapshot and handed the event over). ``workers=1``, the smallest the config
    allows: one lane thread beside paho's; no connection listener, so no notice thread."""

    def __init__(self, port: int, ext: str, password: str, on_event: OnEvent) -> None:
        from asterisk_cti import CallEvent, CallListener, LineSnapshotEvent
        from asterisk_cti.remote import RemoteClient, RemoteConfig

        self.ext = ext
        self.snapshots = 0
        desktop = self
        arrived: Deque[float] = deque()  # per event message, in order (one lane: FIFO)

        class Recorder(CallListener):
            def on_call_event(self, event: CallEvent) -> None:
                now = time.time()
                on_event(ext, event.line, event.timestamp, arrived.popleft(), now)

            def on_line_snapshot(self, event: LineSnapshotEvent) -> None:
                desktop.snapshots += 1

        self.client = RemoteClient(RemoteConfig(
            site=SITE, agent=ext, password=password, broker_port=port,
            lines=(f"PJSIP/{ext}",), workers=1, connect_timeout=30.0))
        self.client.add_listener(Recorder())
        # the benchmark's probe: when each event's message reached paho's callback (the
        # client's own work, from there to the listener, is measured apart)
        mq = self.client._mqtt
        inner = mq.on_message
        assert inner is not None

        def stamp(client: Any, userdata: Any, message: Any) -> None:
            if message.topic.endswith("/events"):
                arrived.append(time.time())
            inner(client, userdata, message)

        mq.on_message = stamp

    def start(self, timeout: float = 30.0) -> None:
        """Connect and subscribe; block until the broker granted the subscriptions."""
        self.client.start(timeout)

    def close(self) -> None:
        self.client.stop()


class PahoDesktop:
    """One agent desktop as a plain paho-mqtt 2 client (MQTT 5): its agent's credentials,
    subscribed to ``cti/SITE/line/EXT/#``, each event decoded (``json.loads``, the fields a
    desktop reads) on paho's thread: the floor under :class:`RemoteDesktop`."""

    def __init__(self, port: int, ext: str, password: str, on_event: OnEvent) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.ext = ext
        self.port = port
        self._on_event = on_event
        self._subscribed = threading.Event()
        self._codes: List[int] = []
        self.snapshots = 0
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"desk-{ext}",
                                   protocol=mqtt.MQTTv5)
        self._client.username_pw_set(ext, password)
        self._client.on_connect = self._connected
        self._client.on_subscribe = self._suback
        self._client.on_message = self._message

    def start(self, timeout: float = 30.0) -> None:
        """Connect and subscribe; block until the broker granted the subscription."""
        self._client.connect("127.0.0.1", self.port, keepalive=60)
        self._client.loop_start()
        if not self._subscribed.wait(timeout) or self._codes != [1]:
            raise RuntimeError(f"desktop {self.ext}: subscription not granted: {self._codes}")

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _connected(self, client: Any, userdata: Any, flags: Any, reason: Any,
                   props: Any) -> None:
        if reason.is_failure:
            self._codes = [int(reason.value)]
            self._subscribed.set()
            return
        client.subscribe(f"cti/{SITE}/line/{self.ext}/#", qos=1)

    def _suback(self, client: Any, userdata: Any, mid: int, codes: Any, props: Any) -> None:
        self._codes = [int(c.value) for c in codes]
        self._subscribed.set()

    def _message(self, client: Any, userdata: Any, msg: Any) -> None:
        arrived = time.time()
        payload = json.loads(msg.payload)
        if msg.topic.endswith("/events"):
            # what a desktop's listener reads
            _ = (payload["kind"], payload["call_id"], payload["connection_id"],
                 payload["state"], payload["calling"]["number"])
            self._on_event(self.ext, payload["line"], payload["timestamp"], arrived,
                           time.time())
        else:
            self.snapshots += 1


class Desktop(Protocol):
    """What the worker needs of a desktop."""

    snapshots: int

    def start(self, timeout: float = 30.0) -> None: ...

    def close(self) -> None: ...


def make_desktop(kind: str, port: int, ext: str, password: str, on_event: OnEvent) -> Desktop:
    """The desktop of agent ``ext``: a :class:`RemoteDesktop` (``remote``) or a
    :class:`PahoDesktop` (``paho``)."""
    if kind == "remote":
        return RemoteDesktop(port, ext, password, on_event)
    if kind == "paho":
        return PahoDesktop(port, ext, password, on_event)
    raise ValueError(f"unknown desktop kind {kind!r}: one of {', '.join(DESKTOPS)}")


class DesktopStats:
    """Counts and latencies of one worker's desktops (paho threads write, the worker reads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Dict[str, int] = {}
        self.latencies: List[float] = []
        self.in_desktop: List[float] = []  # the message at paho's callback -> the receipt
        self.bad = 0

    def on_event(self, ext: str, line: str, ts: float, arrived: float, now: float) -> None:
        with self._lock:
            self.counts[ext] = self.counts.get(ext, 0) + 1
            if isinstance(ts, float) and line == f"PJSIP/{ext}":
                self.latencies.append(now - ts)
                self.in_desktop.append(now - arrived)
            else:
                self.bad += 1

    def take(self) -> Dict[str, Any]:
        with self._lock:
            out = {"counts": dict(self.counts), "latencies": self.latencies,
                   "in_desktop": self.in_desktop, "bad": self.bad}
            self.latencies, self.in_desktop = [], []
        return out

    def counts_copy(self) -> Dict[str, int]:
        with self._lock:
            return dict(self.counts)


def _process_usage() -> Dict[str, float]:
    """This process's threads and memory (resident and unique, MiB)."""
    import psutil  # type: ignore[import-untyped]

    proc = psutil.Process()
    try:
        uss = proc.memory_full_info().uss
    except (psutil.AccessDenied, AttributeError):  # pragma: no cover - kernel-dependent
        uss = float("nan")
    return {"threads": proc.num_threads(), "rss_mib": proc.memory_info().rss / 2**20,
            "uss_mib": uss / 2**20}


def _desktop_main(conn: Connection, kind: str, port: int, exts: List[str]) -> None:
    stats = DesktopStats()
    before = _process_usage()  # the interpreter, the imports: not the desktops
    desktops = [make_desktop(kind, port, e, agent_password(e), stats.on_event) for e in exts]
    try:
        for d in desktops:
            d.start()
        conn.send("ready")
        while True:
            cmd = conn.recv()
            if cmd == "counts":
                conn.send(stats.counts_copy())
            elif cmd == "take":
                conn.send(stats.take())
            elif cmd == "usage":
                conn.send({"desktops": len(desktops), "before": before,
                           "after": _process_usage()})
            else:
                break
    finally:
        for d in desktops:
            d.close()
        conn.send(sum(d.snapshots for d in desktops))


# -- direct SDK clients (the PBX-side comparison) -----------------------------------------------


def _direct_main(conn: Connection, ari: Tuple[str, str, str], exts: List[str]) -> None:
    from asterisk_cti import CallEvent, CallListener, CtiClient, CtiConfig

    url, user, password = ari
    counts = [0]
    lock = threading.Lock()

    class Counter(CallListener):
        def on_call_event(self, event: CallEvent) -> None:
            with lock:
                counts[0] += 1

    clients = []
    try:
        for e in exts:
            client = CtiClient(CtiConfig(url=url, username=user, password=password,
                                         app=f"desk-{e}"))
            client.add_listener(Counter())
            client.start()
            client.monitor(f"PJSIP/{e}")
            clients.append((e, client))
        deadline = time.monotonic() + 60
        while any(c.line(f"PJSIP/{e}") is None for e, c in clients):
            if time.monotonic() > deadline:
                raise RuntimeError("the direct clients did not synchronise")
            time.sleep(0.05)
        conn.send("ready")
        while conn.recv() == "counts":
            with lock:
                conn.send(counts[0])
    finally:
        for _, c in clients:
            c.stop()
        conn.send(None)


# -- the orchestration -------------------------------------------------------------------------


def mosquitto_path() -> str:
    from asterisk_cti import ConfigurationError
    from asterisk_cti.server.broker import find_mosquitto

    try:
        return find_mosquitto()
    except ConfigurationError as exc:
        raise SystemExit(str(exc)) from None


class Child:
    """A spawned process and its pipe."""

    def __init__(self, ctx: Any, target: Callable[..., None], *args: Any) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=target, args=(child, *args), daemon=True)
        self.proc.start()

    def ask(self, msg: Any, timeout: float = 120.0) -> Any:
        self.conn.send(msg)
        return self.recv(timeout)

    def recv(self, timeout: float = 120.0) -> Any:
        if not self.conn.poll(timeout):
            raise RuntimeError(f"process {self.proc.pid} did not answer in {timeout:.0f} s")
        return self.conn.recv()

    def close(self, msg: Any = "stop") -> Any:
        result = None
        if self.proc.is_alive():
            try:
                self.conn.send(msg)
                if self.conn.poll(30):
                    result = self.conn.recv()
            except (OSError, EOFError):
                pass
        self.proc.join(30)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
        return result


def _cpu(pids: Sequence[int]) -> float:
    import psutil

    total = 0.0
    for pid in pids:
        t = psutil.Process(pid).cpu_times()
        total += t.user + t.system
    return total


def pct(values: Sequence[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * q))] if s else float("nan")


@dataclass
class RateResult:
    rate: float
    calls: int
    seconds: float
    pacing_late_ms: float
    events_published: int       # CTI events of all lines (the server's count)
    events_expected: int        # of the desktops' lines
    events_received: int
    lost: int
    duplicated: int
    desktops_short: int         # desktops that missed at least one event
    p50_ms: float
    p99_ms: float
    max_ms: float
    server_p50_ms: float        # ARI event -> the server's listener (before MQTT)
    server_p99_ms: float
    desktop_p50_ms: float       # the event's message at the desktop's paho callback -> receipt
    desktop_p99_ms: float
    cpu: Dict[str, float]       # role -> CPU seconds over the window
    pbx_frames_server: int      # ARI frames the PBX sent to the server's application
    pbx_apps: int
    pbx_websockets: int
    drain_s: float = 0.0         # after the last call ended, until every desktop had all
    load: str = ""


@dataclass
class DirectResult:
    clients: int
    rate: float
    calls: int
    frames_direct: int          # ARI frames to the direct clients' applications together
    frames_server: int
    events_direct: int
    sim_cpu: float
    sim_cpu_server_only: float  # sim CPU s per call in the server-only phase at this rate
    pbx_apps: int


@dataclass
class RunResult:
    plan: Dict[str, Any]
    rates: List[RateResult] = field(default_factory=list)
    direct: Optional[DirectResult] = None
    setup_s: float = 0.0
    snapshots_received: int = 0
    #: each desktop process's ``usage`` after the desktops started and after the last rate
    desktop_usage: List[Dict[str, Any]] = field(default_factory=list)
    desktop_usage_end: List[Dict[str, Any]] = field(default_factory=list)


def _load() -> str:
    """The load average (1, 5, 15 min): the machine is shared."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def run_once(plan: Plan, log: Callable[[str], None] = print) -> RunResult:
    """One complete run: every process started, each rate measured, everything stopped."""
    ctx = multiprocessing.get_context("spawn")
    exts = plan.extensions()
    desk_exts = plan.desktop_extensions()
    result = RunResult(plan=asdict(plan))
    t0 = time.monotonic()
    children: List[Child] = []
    broker: Optional[subprocess.Popen[bytes]] = None
    tmp = tempfile.TemporaryDirectory(prefix="cti-bench-")
    try:
        from asterisk_cti.server import AgentRights, ServerConfig, write_mosquitto_config
        from asterisk_cti.server.broker import free_port, start_mosquitto, stop_process

        sim = Child(ctx, _sim_main, exts)
        children.append(sim)
        ari = sim.recv(60)
        port = free_port()
        config = ServerConfig(site=SITE, broker_port=port, broker_password=SERVER_PASSWORD,
                              agents={e: AgentRights((f"PJSIP/{e}",)) for e in exts})
        files = write_mosquitto_config(Path(tmp.name) / "broker", config,
                                       {e: agent_password(e) for e in exts}, port=port,
                                       run_as="root" if os.geteuid() == 0 else None)
        broker = start_mosquitto(files.conf, Path(tmp.name) / "mosquitto.log", port,
                                 timeout=15, exe=mosquitto_path())
        server = Child(ctx, _server_main, ari, port, exts)
        children.append(server)
        if server.recv(120) != "ready":
            raise RuntimeError("the server did not start")
        workers = []
        for i in range(plan.workers):
            part = desk_exts[i::plan.workers]
            workers.append(Child(ctx, _desktop_main, plan.desktop, port, part))
        children.extend(workers)
        for w in workers:
            if w.recv(120) != "ready":
                raise RuntimeError("a desktop worker did not start")
        result.setup_s = time.monotonic() - t0
        result.desktop_usage = [w.ask("usage") for w in workers]
        u = result.desktop_usage[0]
        log(f"set up in {result.setup_s:.1f} s: {plan.lines} lines, {plan.desktops} "
            f"{plan.desktop} desktops in {plan.workers} processes, broker on port {port}; "
            f"a desktop process: {u['after']['threads']:.0f} threads, "
            f"{u['after']['rss_mib']:.0f} MiB RSS for {u['desktops']} desktops")
        pids = {"server": [server.proc.pid], "broker": [broker.pid],
                "desktops": [w.proc.pid for w in workers], "pbx": [sim.proc.pid]}
        sim_cpu_per_call: Dict[float, float] = {}
        for n, rate in enumerate(plan.rates):
            r = _measure_rate(plan, rate, n, sim, server, workers, pids, desk_exts)
            sim_cpu_per_call[rate] = r.cpu["pbx"] / max(1, r.calls)
            result.rates.append(r)
            result.desktop_usage_end = [w.ask("usage") for w in workers]
            log(f"{rate:g} calls/s: {r.calls} calls in {r.seconds:.1f} s "
                f"(drain {r.drain_s:.1f}), {r.events_received} events to desktops, "
                f"lost {r.lost}, p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms, "
                f"max {r.max_ms:.2f} ms; ARI to server listener p50 {r.server_p50_ms:.2f} ms, "
                f"p99 {r.server_p99_ms:.2f} ms; in desktop p50 {r.desktop_p50_ms:.2f} ms, "
                f"p99 {r.desktop_p99_ms:.2f} ms (load {r.load})")
        if plan.direct:
            result.direct = _measure_direct(ctx, plan, ari, sim, sim_cpu_per_call, children)
            d = result.direct
            log(f"direct: {d.clients} CtiClients, {d.calls} calls at {d.rate:g}/s, "
                f"{d.frames_direct} frames to them, {d.frames_server} to the server")
        for w in workers:
            result.snapshots_received += int(w.close() or 0)
    finally:
        for c in reversed(children):
            c.close()
        if broker is not None:
            stop_process(broker, 10)
        tmp.cleanup()
    return result


def _measure_rate(plan: Plan, rate: float, n: int, sim: Child, server: Child,
                  workers: List[Child], pids: Dict[str, List[int]],
                  desk_exts: List[str]) -> RateResult:
    for w in [*workers, server]:
        w.ask("take")  # drop the latencies of any earlier phase
    before_counts = server.ask("counts")
    before_rx: Dict[str, int] = {}
    for w in workers:
        before_rx.update(w.ask("counts"))
    frames0 = sim.ask(("delivered", [SERVER_APP]))[SERVER_APP]
    cpu0 = {role: _cpu(p) for role, p in pids.items()}
    start = time.monotonic()
    load = sim.ask(("load", {"rate": rate, "duration": plan.duration,
                             "talk_time": plan.talk_time, "seed": plan.seed + n}),
                   timeout=plan.duration + plan.talk_time + 60)
    apps = sim.ask(("apps", None))
    loaded = time.monotonic()
    # wait until every desktop has what the server published for its line (bounded)
    deadline = time.monotonic() + 20
    while True:
        counts = server.ask("counts")
        rx: Dict[str, int] = {}
        for w in workers:
            rx.update(w.ask("counts"))
        if all(rx.get(e, 0) - before_rx.get(e, 0) >= counts.get(e, 0) - before_counts.get(e, 0)
               for e in desk_exts) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    drain = time.monotonic() - loaded
    time.sleep(0.3)  # anything beyond the expected count (duplicates) shows up too
    seconds = time.monotonic() - start
    cpu1 = {role: _cpu(p) for role, p in pids.items()}
    frames1 = sim.ask(("delivered", [SERVER_APP]))[SERVER_APP]
    counts = server.ask("counts")
    latencies: List[float] = []
    in_desktop: List[float] = []
    rx = {}
    for w in workers:
        took = w.ask("take")
        latencies += took["latencies"]
        in_desktop += took["in_desktop"]
        rx.update(took["counts"])
    expected = {e: counts.get(e, 0) - before_counts.get(e, 0) for e in desk_exts}
    received = {e: rx.get(e, 0) - before_rx.get(e, 0) for e in desk_exts}
    lost = sum(max(0, expected[e] - received[e]) for e in desk_exts)
    dup = sum(max(0, received[e] - expected[e]) for e in desk_exts)
    ms = [x * 1000 for x in latencies]
    hop = [x * 1000 for x in server.ask("take")]
    desk = [x * 1000 for x in in_desktop]
    return RateResult(
        rate=rate, calls=load["placed"], seconds=seconds,
        pacing_late_ms=load["late"] * 1000,
        events_published=sum(counts.values()) - sum(before_counts.values()),
        events_expected=sum(expected.values()), events_received=sum(received.values()),
        lost=lost, duplicated=dup,
        desktops_short=sum(1 for e in desk_exts if received[e] < expected[e]),
        p50_ms=pct(ms, 0.50), p99_ms=pct(ms, 0.99), max_ms=max(ms) if ms else float("nan"),
        server_p50_ms=pct(hop, 0.50), server_p99_ms=pct(hop, 0.99),
        desktop_p50_ms=pct(desk, 0.50), desktop_p99_ms=pct(desk, 0.99),
        cpu={role: cpu1[role] - cpu0[role] for role in pids},
        pbx_frames_server=frames1 - frames0, pbx_apps=apps["apps"],
        pbx_websockets=apps["websockets"], drain_s=drain, load=_load())


def _measure_direct(ctx: Any, plan: Plan, ari: Tuple[str, str, str], sim: Child,
                    sim_cpu_per_call: Dict[float, float],
                    children: List[Child]) -> DirectResult:
    exts = plan.direct_extensions()
    direct = Child(ctx, _direct_main, ari, exts)
    children.append(direct)
    if direct.recv(120) != "ready":
        raise RuntimeError("the direct clients did not start")
    apps = [f"desk-{e}" for e in exts]
    ev0 = direct.ask("counts")
    f0 = sim.ask(("delivered", [*apps, SERVER_APP]))
    cpu0 = _cpu([sim.proc.pid])
    load = sim.ask(("load", {"rate": plan.direct_rate, "duration": plan.direct_duration,
                             "talk_time": plan.talk_time, "seed": plan.seed + 100}),
                   timeout=plan.direct_duration + plan.talk_time + 60)
    cpu1 = _cpu([sim.proc.pid])
    pbx_apps = sim.ask(("apps", None))["apps"]
    f1 = sim.ask(("delivered", [*apps, SERVER_APP]))
    ev1 = direct.ask("counts")
    direct.close()
    children.remove(direct)
    # the server-only sim CPU per call at this rate (measured in the MQTT phase; else the
    # nearest rate measured)
    nearest = min(sim_cpu_per_call, key=lambda r: abs(r - plan.direct_rate))
    return DirectResult(
        clients=len(exts), rate=plan.direct_rate, calls=load["placed"],
        frames_direct=sum(f1[a] - f0[a] for a in apps),
        frames_server=f1[SERVER_APP] - f0[SERVER_APP], events_direct=ev1 - ev0,
        sim_cpu=(cpu1 - cpu0), sim_cpu_server_only=sim_cpu_per_call[nearest], pbx_apps=pbx_apps)


# -- the report --------------------------------------------------------------------------------


def _med(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def _table(rows: List[List[str]], header: List[str]) -> List[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    rule = "  ".join("=" * w for w in widths)

    def fmt(row: List[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()

    return [rule, fmt(header), rule, *[fmt(r) for r in rows], rule]


def report(runs: List[RunResult], plan: Plan) -> Tuple[List[str], List[str]]:
    """The table (reST) and the notes of ``runs`` (medians over them)."""
    desktops = plan.desktops
    rows: List[List[str]] = []
    cpu_rows: List[List[str]] = []
    checks: List[str] = []
    for i, rate in enumerate(plan.rates):
        rs = [r.rates[i] for r in runs]
        calls = _med([r.calls for r in rs])

        def cpu(role: str, rs: List[RateResult] = rs) -> str:
            per_call = _med([r.cpu[role] / max(1, r.calls) * 1000 for r in rs])
            share = _med([r.cpu[role] / r.seconds * 100 for r in rs])
            return f"{share:.0f} % ({per_call:.2f} ms/call)"

        p99 = _med([r.p99_ms for r in rs])
        lost = sum(r.lost for r in rs)
        rows.append([
            f"{rate:g}", f"{calls:.0f}",
            f"{_med([r.events_received for r in rs]):,.0f}",
            f"{lost}", f"{_med([r.p50_ms for r in rs]):.2f}", f"{p99:.2f}",
            f"{max(r.max_ms for r in rs):.1f}",
            f"{_med([r.server_p50_ms for r in rs]):.2f} / "
            f"{_med([r.server_p99_ms for r in rs]):.2f}",
            f"{_med([r.desktop_p50_ms for r in rs]):.2f} / "
            f"{_med([r.desktop_p99_ms for r in rs]):.2f}",
        ])
        cpu_rows.append([
            f"{rate:g}", cpu("server"), cpu("broker"), cpu("desktops"), cpu("pbx"),
            f"{_med([r.pbx_frames_server / max(1, r.calls) for r in rs]):.1f}",
            f"{max(r.pbx_apps for r in rs)} ({max(r.pbx_websockets for r in rs)})",
        ])
        if rate == max(plan.rates):
            met = "met" if p99 < P99_TARGET_MS else "NOT MET"
            checks.append(f"p99 end to end at {rate:g} calls/s with {desktops} "
                          f"{DESKTOP_NAMES[plan.desktop]} desktops: "
                          f"{p99:.2f} ms (target < {P99_TARGET_MS:g} ms): {met}")
        checks.append(f"lost events at {rate:g} calls/s: {lost} over {len(rs)} run(s), "
                      f"{sum(r.duplicated for r in rs)} duplicated (target 0): "
                      f"{'met' if lost == 0 else 'NOT MET'}")
    apps = max(r.pbx_apps for run in runs for r in run.rates)
    sockets = max(r.pbx_websockets for run in runs for r in run.rates)
    checks.insert(0, f"applications the PBX sees with {desktops} desktops: {apps} "
                  f"({sockets} websocket) (target 1): {'met' if apps == 1 else 'NOT MET'}")
    header = ["calls/s", "calls", "events to desktops", "lost", "p50 ms", "p99 ms",
              "max ms (worst run)", "in server p50 / p99 ms", "in desktop p50 / p99 ms"]
    table = _table(rows, header)
    table += ["", *_table(cpu_rows, ["calls/s", "server CPU", "broker CPU", "desktops CPU",
                                     "PBX CPU", "ARI frames/call", "PBX apps (websockets)"])]
    usage = _usage_row(runs)
    if usage:
        table += ["", *_table([usage], [
            "desktop process", "desktops", "threads", "RSS MiB", "USS MiB",
            "threads / desktop", "MiB / desktop (USS)"])]
    notes: List[str] = []
    ds = [r.direct for r in runs if r.direct is not None]
    if ds:
        d = ds[0]
        scale = desktops / d.clients
        frames_direct = _med([x.frames_direct / max(1, x.calls) for x in ds])
        frames_server = _med([x.frames_server / max(1, x.calls) for x in ds])
        sim_direct = _med([x.sim_cpu / max(1, x.calls) * 1000 for x in ds])
        sim_server = _med([x.sim_cpu_server_only * 1000 for x in ds])
        extra = max(0.0, sim_direct - sim_server)
        prow = [
            ["ARI applications (websockets)", "1", f"{d.clients} (+1)",
             f"{desktops}"],
            ["ARI frames the PBX sends per call", f"{frames_server:.1f}",
             f"{frames_direct:.1f}", f"{frames_direct * scale:.1f}"],
            ["PBX (simulator) CPU per call, ms", f"{sim_server:.2f}",
             f"+{extra:.2f}", f"+{extra * scale:.1f}"],
        ]
        table += ["", *_table(prow, ["PBX side", "1 server (any desktops)",
                                     f"{d.clients} direct CtiClients (measured)",
                                     f"{desktops} direct (x{scale:g}, linear)"])]
        notes.append(
            f"Direct clients: {d.clients} real CtiClients, each its own ARI application "
            f"monitoring its own line (a desktop's ``monitor('PJSIP/EXT')``), beside the "
            f"server, {d.calls} calls at {d.rate:g} calls/s; they received "
            f"{_med([x.events_direct for x in ds]):,.0f} CTI events. Each direct "
            f"application receives its own line's channel events and, because the SDK "
            f"subscribes ``bridge:`` by default (``subscribe_bridges``: Asterisk sends no "
            f"bridge events on endpoint subscriptions), every bridge's events, so the PBX's "
            f"cost grows linearly with the applications: the {desktops}-desktop column "
            f"multiplies the measured one by {scale:g} (every line has the same share of "
            f"calls). The PBX CPU is the simulator's (Python; Asterisk's own cost per "
            f"application is in issue 14: 0.7 to 1 ms per call), the direct phase against "
            f"the server-only phase at {d.rate:g} calls/s, so it is noisy. With "
            f"``monitor('PJSIP')`` (the whole technology) each direct application "
            f"would instead receive every call's frames, as the server does.")
    notes.append("CPU: user + system seconds of each process over the window (calls placed, "
                 "the last call's end, every desktop caught up), as a share of one core and "
                 "per call; desktops: the worker processes together. Each event also "
                 "republishes its line's retained snapshot (``state``), which the desktops "
                 "decode too; latency and loss are taken on ``events``.")
    return table, checks + notes


def _usage_row(runs: List[RunResult]) -> List[str]:
    """One desktop process after the last rate (medians over processes and runs): its
    threads and memory, and what the desktops added to the bare process."""
    us = [u for run in runs for u in (run.desktop_usage_end or run.desktop_usage)]
    if not us:
        return []
    n = _med([u["desktops"] for u in us])
    threads = _med([u["after"]["threads"] for u in us])
    rss = _med([u["after"]["rss_mib"] for u in us])
    uss = _med([u["after"]["uss_mib"] for u in us])
    per_thread = _med([(u["after"]["threads"] - u["before"]["threads"]) / u["desktops"]
                       for u in us])
    per_mib = _med([(u["after"]["uss_mib"] - u["before"]["uss_mib"]) / u["desktops"]
                    for u in us])
    return [DESKTOP_NAMES[runs[0].plan["desktop"]], f"{n:.0f}", f"{threads:.0f}",
            f"{rss:.0f}", f"{uss:.0f}", f"{per_thread:.2f}", f"{per_mib:.2f}"]


@dataclass
class Section:
    """One desktop variant's runs and their report."""

    plan: Plan
    runs: List[RunResult]
    table: List[str]
    notes: List[str]


def write_doc(sections: List[Section], command: str) -> None:
    first = sections[0].plan
    loads = [r.load for sec in sections for run in sec.runs for r in run.rates]  # run order
    body = [
        f"``{command}``, {first.lines} lines, {first.desktops} desktops in {first.workers} "
        f"processes, {first.duration:g} s of calls per rate (talk {first.talk_time:g} s); "
        f"figures are medians over the runs. Machine: {machine()}; load average (1, 5, "
        f"15 min) after each rate, in the order they ran: {'; '.join(loads)} (the machine "
        f"is shared).",
    ]
    for sec in sections:
        what = ("each desktop a :class:`~asterisk_cti.remote.RemoteClient` (``workers=1``) "
                "with a ``CallListener``: what users run" if sec.plan.desktop == "remote" else
                "each desktop a plain paho-mqtt client decoding the JSON on paho's thread: "
                "the floor under the RemoteClient, for comparison")
        body += ["", f"**{DESKTOP_NAMES[sec.plan.desktop]} desktops** ({len(sec.runs)} "
                 f"run(s); {what})", "", *sec.table, "", *["- " + n for n in sec.notes]]
    DOC_INC.write_text("\n".join(body).rstrip() + "\n", encoding="utf-8")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.callcentre",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the smoke test's size")
    parser.add_argument("--runs", type=int, default=3, help="runs; figures are medians")
    parser.add_argument("--desktops", type=int)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--rates", help="comma-separated calls/s, e.g. 20,50")
    parser.add_argument("--duration", type=float, help="seconds of calls per rate")
    parser.add_argument("--direct", type=int, help="direct CtiClients (0: skip)")
    parser.add_argument("--desktop", choices=(*DESKTOPS, "both"), default="both",
                        help="the desktops: RemoteClients, plain paho, or both in turn "
                             "(the direct comparison runs with the first)")
    parser.add_argument("--doc", choices=("auto", "yes", "no"), default="auto",
                        help="write docs/benchmarks_callcentre.inc (auto: only after a "
                             "complete run: the default sizes, both variants, at least 3 "
                             "runs)")
    parser.add_argument("--json", help="write the raw results to this file")
    args = parser.parse_args(argv)
    plan = Plan.quick() if args.quick else Plan()
    complete = not (args.quick or args.desktops or args.workers or args.rates
                    or args.duration or args.direct is not None) and args.runs >= 3 \
        and args.desktop == "both"
    if args.desktops:
        plan.desktops = args.desktops
    if args.workers:
        plan.workers = args.workers
    if args.rates:
        plan.rates = tuple(float(x) for x in args.rates.split(","))
    if args.duration:
        plan.duration = args.duration
    if args.direct is not None:
        plan.direct = args.direct
    started = time.monotonic()
    sections: List[Section] = []
    for v, kind in enumerate(DESKTOPS if args.desktop == "both" else (args.desktop,)):
        vplan = replace(plan, desktop=kind, direct=plan.direct if v == 0 else 0)
        runs = []
        for i in range(max(1, args.runs)):
            print(f"{DESKTOP_NAMES[kind]} desktops, run {i + 1}/{args.runs} "
                  f"(load {_load()})", flush=True)
            runs.append(run_once(vplan, log=lambda s: print("  " + s, flush=True)))
        table, notes = report(runs, vplan)
        sections.append(Section(vplan, runs, table, notes))
        print(f"\n{DESKTOP_NAMES[kind]} desktops:")
        print("\n".join(table))
        print()
        for n in notes:
            print("- " + n)
        print(flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(
            {sec.plan.desktop: [asdict(r) for r in sec.runs] for sec in sections}, indent=1))
    if args.doc == "yes" or (args.doc == "auto" and complete):
        extra = [a for a in (argv if argv is not None else sys.argv[1:])
                 if not a.startswith("--doc")]
        command = "make bench-callcentre" + (f" CC_ARGS='{' '.join(extra)}'" if extra else "")
        write_doc(sections, command)
        where = f"written to {DOC_INC.relative_to(ROOT)}"
    else:
        where = "docs not written: partial run (--doc yes forces it)"
    print(f"\n(total {time.monotonic() - started:.0f} s; {where})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
