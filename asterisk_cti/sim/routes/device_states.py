"""``/deviceStates``: custom ``Stasis:`` device states.

Every function runs on an HTTP handler thread with the PBX lock held.
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from ..pbx import DEVICE_STATES, AriError, Pbx


def handle(pbx: Pbx, method: str, seg: List[str], p: Dict[str, Any]) -> Tuple[int, Any]:
    if not seg and method == "GET":
        return 200, [{"name": n, "state": st} for n, st in pbx.device_states.items()]
    if len(seg) != 1:
        raise AriError(405, "Method Not Allowed")
    name = seg[0]
    if method == "GET":
        return 200, {"name": name, "state": pbx.device_states.get(name, "UNKNOWN")}
    if not name.startswith("Stasis:"):
        raise AriError(409, "Uncontrolled device specified")
    if name == "Stasis:":
        raise AriError(404, "Device name is missing")
    if method == "PUT":
        state = str(p.get("deviceState") or "")
        if state not in DEVICE_STATES:
            raise AriError(400, "Invalid device state")
        pbx.set_device_state(name, state)
        return 204, None
    if method == "DELETE":
        if name not in pbx.device_states:
            raise AriError(404, "Device not found")
        pbx.set_device_state(name, None)
        return 204, None
    raise AriError(405, "Method Not Allowed")
