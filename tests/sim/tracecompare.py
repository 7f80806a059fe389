"""Compare ARI event streams per channel: a recorded Asterisk trace against the simulator.

Channels are keyed by their name with the sequence number replaced by the order of
appearance (``PJSIP/1000#1``, ``Local/1006@from-internal;2#1``), so two streams that
interleave their channels differently still compare equal when each channel saw the same
events. Each event becomes a signature: its type plus the fields that matter to a CTI client
(channel state, dialstatus, cause, bridge class/technology, transfer result).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

#: The noise a CTI client filters out; compared separately (see :func:`noise_per_channel`).
NOISE = frozenset({"ChannelVarset", "ChannelDialplan"})

Signature = Tuple[Any, ...]


def load_trace(path: Path, apps: Optional[Set[str]] = None) -> List[Dict[str, Any]]:
    """The events of a ``.jsonl`` trace, optionally only those of ``apps``."""
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if apps is not None:
        events = [e for e in events if e.get("application") in apps]
    return events


class _Names:
    def __init__(self) -> None:
        self.ids: Dict[str, str] = {}
        self.counts: Dict[str, int] = defaultdict(int)

    def channel(self, ch: Dict[str, Any]) -> str:
        cid = ch["id"]
        if cid not in self.ids:
            base = re.sub(r"-[0-9a-f]{8}(?=;|$)", "", ch["name"])
            base = re.sub(r"^Snoop/.*", "Snoop", base)
            self.counts[base] += 1
            self.ids[cid] = f"{base}#{self.counts[base]}"
        return self.ids[cid]

    def bridge(self, bid: str) -> str:
        key = "bridge:" + bid
        if key not in self.ids:
            self.counts["bridge"] += 1
            self.ids[key] = f"bridge#{self.counts['bridge']}"
        return self.ids[key]


def _bridge_sig(b: Dict[str, Any]) -> Tuple[str, str, str]:
    return (b["bridge_class"], b["bridge_type"], b["technology"])


def per_channel(
    events: Iterable[Dict[str, Any]],
    ignore: Iterable[str] = NOISE,
) -> Dict[str, List[Signature]]:
    """Group event signatures by channel (and by endpoint, bridge, transfer)."""
    skip = set(ignore)
    names = _Names()
    out: Dict[str, List[Signature]] = defaultdict(list)
    for e in events:
        t = e["type"]
        # name channels in order of appearance even for skipped events
        for key in ("channel", "peer", "caller"):
            if isinstance(e.get(key), dict):
                names.channel(e[key])
        if t in skip:
            continue
        if t == "Dial":
            peer = names.channel(e["peer"])
            caller = names.channel(e["caller"]) if "caller" in e else None
            out["dial:" + peer].append((t, e["dialstatus"], caller))
        elif t == "EndpointStateChange":
            ep = e["endpoint"]
            out["endpoint:" + ep["resource"]].append((t, ep["state"], len(ep["channel_ids"])))
        elif t == "DeviceStateChanged":
            out["device:" + e["device_state"]["name"]].append((t, e["device_state"]["state"]))
        elif t in ("BridgeCreated", "BridgeDestroyed", "BridgeMerged"):
            b = names.bridge(e["bridge"]["id"])
            sig: Signature = (t, *_bridge_sig(e["bridge"]))
            if t == "BridgeMerged":
                sig = (*sig, names.bridge(e["bridge_from"]["id"]))
            out[b].append(sig)
        elif t in ("BridgeAttendedTransfer", "BridgeBlindTransfer"):
            out["transfers"].append(
                (t, e.get("result"), e.get("is_external"), e.get("destination_type"))
            )
        elif isinstance(e.get("channel"), dict):
            ch = names.channel(e["channel"])
            sig = (t, e["channel"]["state"])
            if "cause" in e:
                sig = (*sig, e["cause"])
            if t in ("ChannelEnteredBridge", "ChannelLeftBridge"):
                sig = (*sig, names.bridge(e["bridge"]["id"]), *_bridge_sig(e["bridge"]))
            if t == "ChannelHold":
                sig = (*sig, e.get("musicclass"))
            if t == "ChannelDtmfReceived":
                sig = (*sig, e.get("digit"))
            if t == "StasisStart":
                sig = (*sig, e["application"])
            out[ch].append(sig)
        else:
            out["other"].append((t,))
    return dict(out)


def noise_per_channel(events: Iterable[Dict[str, Any]]) -> Dict[str, List[Signature]]:
    """Per channel: the ChannelDialplan applications and ChannelVarset variable names."""
    names = _Names()
    out: Dict[str, List[Signature]] = defaultdict(list)
    for e in events:
        for key in ("channel", "peer", "caller"):
            if isinstance(e.get(key), dict):
                names.channel(e[key])
        if e["type"] == "ChannelDialplan":
            out[names.channel(e["channel"])].append(("Dialplan", e["dialplan_app"]))
        elif e["type"] == "ChannelVarset" and not e["variable"].startswith("RTPAUDIOQOS"):
            out[names.channel(e["channel"])].append(("Varset", e["variable"]))
    return dict(out)


def diff(expected: Dict[str, List[Signature]], actual: Dict[str, List[Signature]]) -> str:
    """A readable description of where two :func:`per_channel` results differ ('' if equal)."""
    lines: List[str] = []
    for key in sorted(set(expected) | set(actual)):
        exp, act = expected.get(key, []), actual.get(key, [])
        if exp == act:
            continue
        lines.append(f"== {key}")
        width = max(len(exp), len(act))
        for i in range(width):
            x = exp[i] if i < len(exp) else None
            y = act[i] if i < len(act) else None
            mark = "  " if x == y else "!!"
            lines.append(f"{mark} {i:3d} trace={x}  sim={y}")
    return "\n".join(lines)


def only(events: Sequence[Dict[str, Any]], types: Iterable[str]) -> List[Dict[str, Any]]:
    keep = set(types)
    return [e for e in events if e["type"] in keep]
