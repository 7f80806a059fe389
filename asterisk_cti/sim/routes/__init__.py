"""The simulator's ARI routes: one module per ARI resource, each a function of the PBX.

:func:`route` parses the path, takes the PBX lock and hands the request to the resource's
module: :mod:`.asterisk` (``/asterisk``, ``/endpoints``), :mod:`.applications`,
:mod:`.channels` (with :mod:`.originate`), :mod:`.bridges`, :mod:`.playbacks`,
:mod:`.device_states`. A route
validates its request like Asterisk 22 does, changes the PBX through
:mod:`asterisk_cti.sim.ari_ops`, and answers ``(status, JSON body)`` or raises
:class:`~asterisk_cti.sim.pbx.AriError`. Runs on the HTTP handler thread of the request.
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple
from urllib.parse import unquote

from ..objects import JsonObj
from ..pbx import AriError, Pbx
from . import applications, asterisk, bridges, channels, device_states, playbacks

__all__ = ["route"]


def route(
    pbx: Pbx, method: str, path: str, params: Dict[str, str], body: JsonObj
) -> Tuple[int, Any]:
    """Answer one ARI request (``path`` without the ``/ari`` prefix) with the PBX lock held.

    :raises AriError: the request fails as it would on Asterisk.
    """
    merged: Dict[str, Any] = dict(params)
    for k, v in body.items():
        if k != "variables":
            merged.setdefault(k, v)
    seg = [unquote(x) for x in path.split("/")[1:]]
    while seg and not seg[-1]:
        seg.pop()
    if "" in seg:  # an empty id: POST /channels//redirect
        raise AriError(400, "Missing or empty resource id")
    with pbx.lock:
        return _route_locked(pbx, method, seg, merged, body)


def _route_locked(
    pbx: Pbx, method: str, seg: List[str], p: Dict[str, Any], body: JsonObj
) -> Tuple[int, Any]:
    if seg == ["asterisk", "info"] and method == "GET":
        return asterisk.info(pbx)
    if seg and seg[0] == "applications":
        return applications.handle(pbx, method, seg[1:], p, body)
    if seg[:3] == ["asterisk", "config", "dynamic"]:
        return asterisk.dynamic_config(pbx, method, seg[3:])
    if seg and seg[0] == "endpoints" and method == "GET":
        return asterisk.endpoints(pbx, seg)
    if seg and seg[0] == "channels":
        return channels.handle(pbx, method, seg[1:], p, body)
    if seg and seg[0] == "bridges":
        return bridges.handle(pbx, method, seg[1:], p)
    if seg and seg[0] == "playbacks":
        return playbacks.handle(pbx, method, seg[1:], p)
    if seg and seg[0] == "deviceStates":
        return device_states.handle(pbx, method, seg[1:], p)
    raise AriError(404, "Not Found")
