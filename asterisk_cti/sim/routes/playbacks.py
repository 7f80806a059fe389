"""``/playbacks``: get, stop and control a playback (see :mod:`asterisk_cti.sim.media`).

Every function runs on an HTTP handler thread with the PBX lock held.
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from ..pbx import AriError, Pbx


def handle(pbx: Pbx, method: str, seg: List[str], p: Dict[str, Any]) -> Tuple[int, Any]:
    if len(seg) == 1:
        if method == "GET":
            return 200, pbx.playback_json(seg[0])
        if method == "DELETE":
            pbx.stop_playback(seg[0])
            return 204, None
        raise AriError(405, "Method Not Allowed")
    if len(seg) == 2 and seg[1] == "control":
        if method != "POST":
            raise AriError(405, "Method Not Allowed")
        pbx.control_playback(seg[0], str(p.get("operation") or ""))
        return 204, None
    raise AriError(404, "Not Found")
