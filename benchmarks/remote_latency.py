"""The desktop client's latency on one machine: ``python -m benchmarks.remote_latency [CALLS]``.

A real mosquitto (``make broker-deps``), a CtiServer on the embedded simulator (speed 50,
phones answer at once) and two desktop clients (agents 1000 and 1002). Desk 1000 runs
``CALLS`` times originate (until established), hold, retrieve, hangup through the server.
Measured: each CTI event from the server's own listener (the moment the server's CtiClient
delivers it) to the desktop listener that receives it (same process, monotonic clock), and
the control requests per second (each blocks until the server answers). Not the scale
benchmark of issue 14 (500 desktops): one desktop, sequential requests.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Tuple

from asterisk_cti import CallEvent, CallListener, CtiConfig
from asterisk_cti.remote import RemoteClient, RemoteConfig
from asterisk_cti.server import AgentRights, CtiServer, ServerConfig, write_mosquitto_config
from asterisk_cti.server.broker import free_port, start_mosquitto, stop_process
from asterisk_cti.sim import AriSimulator

Key = Tuple[str, str, float]


class _Server(CallListener):
    def __init__(self, seen: Dict[Key, float]) -> None:
        self.seen = seen

    def on_call_event(self, event: CallEvent) -> None:
        self.seen[(event.kind.value, event.connection_id, event.timestamp)] = time.monotonic()


class _Desk(CallListener):
    def __init__(self, seen: Dict[Key, float], latencies: List[float]) -> None:
        self.seen, self.latencies = seen, latencies
        self.lock = threading.Lock()

    def on_call_event(self, event: CallEvent) -> None:
        sent = self.seen.get((event.kind.value, event.connection_id, event.timestamp))
        if sent is not None:
            with self.lock:
                self.latencies.append(time.monotonic() - sent)


def main(calls: int) -> None:
    seen: Dict[Key, float] = {}
    latencies: List[float] = []
    passwords = {"1000": "bench-1000-pw", "1002": "bench-1002-pw"}
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        config = ServerConfig(site="bench", broker_port=port, broker_password="bench-srv-pw",
                              agents={a: AgentRights((f"PJSIP/{a}",)) for a in passwords})
        files = write_mosquitto_config(Path(tmp), config, passwords, port=port,
                                       run_as="root" if os.geteuid() == 0 else None)
        broker = start_mosquitto(files.conf, Path(tmp) / "log", port)
        try:
            with AriSimulator(speed=50, stasis_app="bench") as sim:
                for ext in passwords:
                    sim.phone(ext).auto_answer = True
                cti = CtiConfig(url=sim.url, username=sim.username, password=sim.password,
                                app="bench")
                with CtiServer(config, cti) as server:
                    server.client.add_listener(_Server(seen))
                    desks = [RemoteClient(RemoteConfig(
                        site="bench", agent=a, password=p, broker_port=port,
                        lines=(f"PJSIP/{a}",))) for a, p in passwords.items()]
                    for desk in desks:
                        desk.add_listener(_Desk(seen, latencies))
                        desk.start()
                    control = desks[0].control
                    started = time.monotonic()
                    for _ in range(calls):
                        call = control.originate("PJSIP/1000", "1002", wait_for="established")
                        control.hold(call)
                        control.retrieve(call)
                        control.hangup(call)
                    elapsed = time.monotonic() - started
                    for desk in desks:
                        desk.wait_idle()
                        desk.stop()
        finally:
            stop_process(broker, 10)
    latencies.sort()

    def ms(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    print(f"{calls} calls x (originate, hold, retrieve, hangup): {4 * calls / elapsed:.0f} "
          f"requests/s; {len(latencies)} events, server listener -> desktop listener: "
          f"p50 {ms(0.5):.2f} ms, p99 {ms(0.99):.2f} ms, max {latencies[-1] * 1000:.2f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
