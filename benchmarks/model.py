"""Call-model figures measured in-process: ``CallModel.apply`` cost per event at 100 vs
10,000 monitored lines, and memory per monitored line and per active call (tracemalloc)."""

from __future__ import annotations

import gc
import json
import statistics
import time
import tracemalloc
from typing import Any, Dict, List

from asterisk_cti.events.catalogue import Event, parse_event
from asterisk_cti.model import MODEL_EVENT_TYPES, CallModel

from . import stream


def model_events(n: int) -> List[Event]:
    out = []
    for fr in stream.frames(n):
        data = json.loads(fr)
        if data.get("type") in MODEL_EVENT_TYPES:
            out.append(parse_event(data))
    return out


def endpoints(n: int) -> List[str]:
    return [f"PJSIP/{1000 + i}" for i in range(n)]


def apply_cost(events: List[Event], lines: int) -> float:
    """Seconds per event of ``apply`` over the whole stream with ``lines`` monitored."""
    model = CallModel()
    model.set_monitored(endpoints(lines))
    apply = model.apply
    gc.collect()
    t0 = time.perf_counter()
    for ev in events:
        apply(ev)
    return (time.perf_counter() - t0) / len(events)


def cost_runs(runs: int = 5, n: int = 60000) -> Dict[str, float]:
    events = model_events(n)
    small: List[float] = []
    big: List[float] = []
    for _ in range(runs):
        small.append(apply_cost(events, 100))
        big.append(apply_cost(events, 10000))
    return {"events": len(events), "us_100": statistics.median(small) * 1e6,
            "us_10k": statistics.median(big) * 1e6}


def _chan(cid: str, ext: int, state: str, caller: int, peer: int) -> Dict[str, Any]:
    return {"id": cid, "name": f"PJSIP/{ext}-{cid[-8:]}", "state": state, "protocol_id": "",
            "caller": {"name": f"User {caller}", "number": str(caller)},
            "connected": {"name": "", "number": "" if state != "Up" else str(peer)},
            "accountcode": "", "dialplan": {"context": "from-internal", "exten": str(peer),
                                            "priority": 1, "app_name": "", "app_data": ""},
            "creationtime": "2026-11-26T03:53:31.659+0000", "language": "en"}


def _call_events(i: int) -> List[Dict[str, Any]]:
    a, b = 1000 + 2 * i, 1001 + 2 * i
    ca, cb = f"1795665211.{2 * i}", f"1795665211.{2 * i + 1}"
    ts = "2026-11-26T03:53:31.659+0000"
    base = {"timestamp": ts, "asterisk_id": "02:fc:00:00:00:01", "application": "bench"}
    return [
        {**base, "type": "ChannelCreated", "channel": _chan(ca, a, "Ring", a, b)},
        {**base, "type": "ChannelCreated", "channel": _chan(cb, b, "Down", a, b)},
        {**base, "type": "Dial", "dialstring": str(b), "dialstatus": "",
         "caller": _chan(ca, a, "Ring", a, b), "peer": _chan(cb, b, "Down", a, b)},
        {**base, "type": "ChannelStateChange", "channel": _chan(cb, b, "Ringing", a, b)},
        {**base, "type": "ChannelStateChange", "channel": _chan(cb, b, "Up", a, b)},
        {**base, "type": "Dial", "dialstring": str(b), "dialstatus": "ANSWER",
         "caller": _chan(ca, a, "Ring", a, b), "peer": _chan(cb, b, "Up", a, b)},
        {**base, "type": "ChannelStateChange", "channel": _chan(ca, a, "Up", a, b)},
    ]


def memory(lines: int = 10000, calls: int = 5000) -> Dict[str, float]:
    """Bytes per monitored line and per active two-party call (each call has 2 lines)."""
    gc.collect()
    tracemalloc.start()
    m0 = tracemalloc.get_traced_memory()[0]
    model = CallModel()
    model.set_monitored(endpoints(lines))
    gc.collect()
    m1 = tracemalloc.get_traced_memory()[0]
    for i in range(calls):
        for data in _call_events(i):
            model.apply(parse_event(data))
    gc.collect()
    m2 = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    active = sum(1 for line in model.lines for c in line.connections
                 if c.state.value == "connected")
    return {"per_line": (m1 - m0) / lines, "per_call": (m2 - m1) / calls,
            "active_line_calls": active, "unfit": model.unfit_count}


if __name__ == "__main__":
    print(cost_runs(2, 20000))
    print(memory())
