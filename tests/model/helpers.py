"""Helpers for the call model tests: trace loading, replay, REST state derived from a trace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from asterisk_cti.events.catalogue import parse_event
from asterisk_cti.model import CallEvent, CallModel, ConnectionState, EventKind
from tests.conftest import traces_dir

LINES = ("PJSIP/1000", "PJSIP/1002", "PJSIP/1006")
SCENARIOS = (
    "basic",
    "hold",
    "attended_transfer",
    "blind_transfer",
    "no_answer",
    "busy",
    "rejected",
    "ari_originate",
    "stasis_control",
)




def trace_file(scenario: str, variant: str) -> Tuple[Path, str]:
    """The path and replayed application of a trace (``rec``: NAME.jsonl, ``all``: .all)."""
    if variant == "rec":
        return traces_dir() / f"{scenario}.jsonl", "cti-rec"
    return traces_dir() / f"{scenario}.all.jsonl", "cti-all"


def load_trace(scenario: str, variant: str) -> List[Dict[str, Any]]:
    """The raw frames of one application of a trace (a missing file fails the test)."""
    path, app = trace_file(scenario, variant)
    frames = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line:
                d = json.loads(line)
                if d.get("application") == app:
                    frames.append(d)
    return frames


def new_model(clock: float = 1000.0) -> CallModel:
    """A model monitoring the three lab phones."""
    model = CallModel(clock=lambda: clock)
    model.set_monitored(LINES)
    return model


def replay(model: CallModel, frames: Iterable[Mapping[str, Any]]) -> List[CallEvent]:
    """Apply frames in order; return every CTI event."""
    out: List[CallEvent] = []
    for frame in frames:
        out.extend(model.apply(parse_event(dict(frame))))
    return out


def by_line(events: Iterable[CallEvent]) -> Dict[str, List[CallEvent]]:
    """Events grouped per line, order kept."""
    res: Dict[str, List[CallEvent]] = {}
    for ev in events:
        res.setdefault(ev.line, []).append(ev)
    return res


def compact(ev: CallEvent) -> Tuple[Any, ...]:
    """A short, comparable form of an event: kind, state, calling, connected, cause, reason.

    Parties are shown as ``number/name``; line_state_changed shows the new registration.
    """
    if ev.kind is EventKind.LINE_STATE_CHANGED:
        return (ev.kind.value, ev.line_state)
    return (
        ev.kind.value,
        ev.state.value,
        f"{ev.calling.number}/{ev.calling.name}",
        f"{ev.connected.number}/{ev.connected.name}",
        ev.cause,
        ev.reason.value,
    )


_STATE_CLASS = {
    ConnectionState.NULL: "null",
    ConnectionState.INITIATED: "init",
    ConnectionState.FAIL: "init",
    ConnectionState.ALERTING: "ring",
    ConnectionState.CONNECTED: "up",
    ConnectionState.HOLD: "up",
    ConnectionState.QUEUED: "init",
}
_ARI_CLASS = {"Down": "null", "Rsrvd": "null", "Ring": "init", "Dialing": "init",
              "OffHook": "init", "Ringing": "ring", "Up": "up"}


def model_view(model: CallModel) -> Dict[Tuple[str, str], str]:
    """(line, connection id) -> coarse state, for convergence comparisons."""
    view = {}
    for line in model.lines:
        for c in line.connections:
            view[(line.name, c.connection_id)] = _STATE_CLASS[c.state]
    return view


class RestState:
    """What GET /channels, /bridges and /endpoints would answer, derived from trace frames."""

    def __init__(self) -> None:
        self.channels: Dict[str, Dict[str, Any]] = {}
        self.bridges: Dict[str, Dict[str, Any]] = {}
        self.endpoints: Dict[str, Dict[str, Any]] = {}

    def feed(self, frame: Mapping[str, Any]) -> None:
        """Update from one frame (in trace order)."""
        kind = frame.get("type")
        for key in ("channel", "peer", "caller", "transferee", "transfer_target",
                    "transferer_first_leg", "transferer_second_leg"):
            ch = frame.get(key)
            if isinstance(ch, dict) and ch.get("id") and ch["id"] in self.channels:
                self.channels[ch["id"]] = dict(ch)
        ch = frame.get("channel")
        if kind == "ChannelCreated" and isinstance(ch, dict):
            self.channels[ch["id"]] = dict(ch)
        elif kind == "ChannelDestroyed" and isinstance(ch, dict):
            self.channels.pop(ch["id"], None)
        b = frame.get("bridge")
        if isinstance(b, dict) and b.get("id"):
            if kind == "BridgeDestroyed":
                self.bridges.pop(b["id"], None)
            else:
                self.bridges[b["id"]] = dict(b)
        if kind == "EndpointStateChange":
            ep = frame["endpoint"]
            self.endpoints[f"{ep['technology']}/{ep['resource']}"] = dict(ep)

    def args(self) -> Dict[str, List[Dict[str, Any]]]:
        """Keyword arguments for :meth:`CallModel.resync`."""
        return {
            "channels": list(self.channels.values()),
            "bridges": list(self.bridges.values()),
            "endpoints": list(self.endpoints.values()),
        }

    def view(self, lines: Iterable[str] = LINES) -> Dict[Tuple[str, str], str]:
        """(line, channel id) -> coarse state of the channels on ``lines``."""
        wanted = set(lines)
        res = {}
        for cid, ch in self.channels.items():
            name = str(ch.get("name", ""))
            ep = name.rsplit("-", 1)[0]
            if ep in wanted:
                res[(ep, cid)] = _ARI_CLASS.get(str(ch.get("state")), "other")
        return res


def rest_at(frames: List[Mapping[str, Any]], cut: Optional[int] = None) -> RestState:
    """The REST state after the first ``cut`` frames (all when ``None``)."""
    state = RestState()
    for frame in frames[: len(frames) if cut is None else cut]:
        state.feed(frame)
    return state


_TS = [0]


def _creation(cid: str) -> str:
    head, _, tail = cid.partition(".")
    sec = int(head) % 60 if head.isdigit() else 0
    ms = int(tail) % 1000 if tail.isdigit() else 0
    return f"2026-11-26T04:00:{sec:02d}.{ms:03d}+0000"


def chan(
    cid: str,
    ext: str,
    state: str = "Up",
    *,
    caller: Tuple[str, str] = ("", ""),
    connected: Tuple[str, str] = ("", ""),
    name: Optional[str] = None,
    exten: str = "s",
    linkedid: Optional[str] = None,
) -> Dict[str, Any]:
    """A synthetic ARI Channel object. ``ext`` is the PJSIP resource (``1000``)."""
    d: Dict[str, Any] = {
        "id": cid,
        "name": name or f"PJSIP/{ext}-{cid.replace('.', '')[-8:]:0>8}",
        "state": state,
        "caller": {"number": caller[0] or ext, "name": caller[1]},
        "connected": {"number": connected[0], "name": connected[1]},
        "dialplan": {"context": "from-internal", "exten": exten, "priority": 1},
        "creationtime": _creation(cid),
    }
    if linkedid:
        d["channelvars"] = {"CHANNEL(linkedid)": linkedid}
    return d


def ev(kind: str, **fields: Any) -> Dict[str, Any]:
    """A synthetic ARI event frame with an increasing timestamp."""
    _TS[0] += 1
    ms = _TS[0] % 1000
    return {"type": kind, "timestamp": f"2026-11-26T04:00:01.{ms:03d}+0000",
            "application": "test", **fields}
