"""``/applications``: list, subscribe, unsubscribe, event filter.

Every function runs on an HTTP handler thread with the PBX lock held.
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from ..objects import JsonObj
from ..pbx import AriError, Pbx


def handle(
    pbx: Pbx, method: str, seg: List[str], p: Dict[str, Any], body: JsonObj
) -> Tuple[int, Any]:
    if not seg and method == "GET":
        return 200, [pbx.app_json(a) for a in pbx.apps.values()]
    app = pbx.apps.get(seg[0]) if seg else None
    if app is None:
        raise AriError(404, "Application not found")
    if len(seg) == 1 and method == "GET":
        return 200, pbx.app_json(app)
    if len(seg) == 2 and seg[1] == "subscription" and method in ("POST", "DELETE"):
        raw = p.get("eventSource")
        if raw is None or raw == "":
            raise AriError(400, "Missing parameter eventSource")
        sources = [pbx.resolve_source(s) for s in str(raw).split(",")]
        if method == "POST":
            for s in sources:
                if s.startswith("bridge:") and s != "bridge:" and app.subscriptions.get("bridge:"):
                    continue  # subscribed to all bridges already: Asterisk ignores it
                app.subscriptions[s] += 1
        else:
            for s in sources:
                if not app.subscriptions.get(s):
                    raise AriError(422, "Application not subscribed to event source")
            for s in sources:
                app.subscriptions[s] -= 1
                if app.subscriptions[s] <= 0:
                    del app.subscriptions[s]
        return 200, pbx.app_json(app)
    if len(seg) == 2 and seg[1] == "eventFilter" and method == "PUT":
        allowed = body.get("allowed", [])
        disallowed = body.get("disallowed", [])
        if (
            not isinstance(allowed, list)
            or not isinstance(disallowed, list)
            or not all(
                isinstance(f, dict) and isinstance(f.get("type"), str)
                for f in [*allowed, *disallowed]
            )
        ):
            raise AriError(400, "Invalid format definition")
        app.allowed = [dict(f) for f in allowed]
        app.disallowed = [dict(f) for f in disallowed]
        return 200, pbx.app_json(app)
    raise AriError(405, "Method Not Allowed")
