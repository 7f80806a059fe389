"""``/bridges``: create, list, add and remove channels, destroy.

Every function runs on an HTTP handler thread with the PBX lock held.
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from ..objects import Bridge
from ..pbx import AriError, Pbx
from .lookup import STASIS_ONLY


def _bridge(pbx: Pbx, bid: str) -> Bridge:
    b = pbx.bridges.get(bid)
    if b is None:
        raise AriError(404, "Bridge not found")
    return b


def handle(pbx: Pbx, method: str, seg: List[str], p: Dict[str, Any]) -> Tuple[int, Any]:
    if method == "POST" and (
        (len(seg) == 1 and seg[0] in pbx.bridges)
        or (not seg and p.get("bridgeId") and p["bridgeId"] in pbx.bridges)
    ):
        bid = seg[0] if seg else p["bridgeId"]
        raise AriError(409, f"Bridge with id '{bid}' already exists")
    if not seg or (len(seg) == 1 and method == "POST" and seg[0] not in pbx.bridges):
        if method == "GET":
            return 200, [b.to_json() for b in pbx.bridges.values()]
        if method == "POST":
            types = str(p.get("type") or "mixing").split(",")
            btype = "holding" if "holding" in types else "mixing"
            b = pbx.new_bridge(
                "stasis", btype, str(p.get("name") or ""), seg[0] if seg else p.get("bridgeId")
            )
            return 200, b.to_json()
        raise AriError(405, "Method Not Allowed")
    b = _bridge(pbx, seg[0])
    if len(seg) == 1:
        if method == "GET":
            return 200, b.to_json()
        if method == "DELETE":
            if b.bridge_class != "stasis":
                raise AriError(409, "Bridge not in Stasis application")
            pbx.delete_bridge(b)
            return 204, None
        raise AriError(405, "Method Not Allowed")
    op = seg[1]
    if op in ("addChannel", "removeChannel") and method == "POST":
        raw = p.get("channel")
        if not raw:
            raise AriError(400, "Missing parameter channel")
        chans = []
        for cid in str(raw).split(","):
            ch = pbx.channels.get(cid)
            if ch is None:
                raise AriError(400, "Channel not found")
            if not ch.in_stasis:
                raise AriError(422, STASIS_ONLY)
            if op == "removeChannel" and ch.bridge is not b:
                raise AriError(422, "Channel not in this bridge")
            chans.append(ch)
        if b.bridge_class != "stasis":
            raise AriError(409, "Bridge not in Stasis application")
        for ch in chans:
            if op == "addChannel":
                pbx.add_to_bridge(b, ch)
            else:
                pbx.remove_from_bridge(b, ch)
        return 204, None
    if op == "moh" and method in ("POST", "DELETE"):
        if b.bridge_class != "stasis":
            raise AriError(409, "Bridge not in Stasis application")
        return 204, None
    raise AriError(404, "Not Found")
