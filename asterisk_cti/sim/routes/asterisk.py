"""``/asterisk/info``, ``/asterisk/config/dynamic/...`` and ``/endpoints``: what the PBX is.

Every function runs on an HTTP handler thread with the PBX lock held.
"""

from __future__ import annotations

from typing import Any, List, Tuple

from ..pbx import AriError, Pbx


def info(pbx: Pbx) -> Tuple[int, Any]:
    """``GET /asterisk/info``."""
    return 200, {
        "build": {
            "os": "Linux",
            "kernel": "6.0",
            "machine": "x86_64",
            "options": "",
            "date": "2026-11-01 00:00:00 UTC",
            "user": "sim",
        },
        "system": {"version": "22.10.1-sim", "entity_id": pbx.config.asterisk_id},
        "config": {
            "name": "",
            "default_language": "en",
            "setid": {"user": "", "group": ""},
        },
        "status": {"startup_time": pbx.startup_time, "last_reload_time": pbx.startup_time},
    }


def endpoints(pbx: Pbx, seg: List[str]) -> Tuple[int, Any]:
    """``GET /endpoints``, ``/endpoints/{tech}``, ``/endpoints/{tech}/{resource}``."""
    eps = list(pbx.endpoints.values())
    if len(seg) == 1:
        return 200, [e.to_json() for e in eps]
    if len(seg) == 2:
        found = [e.to_json() for e in eps if e.technology == seg[1]]
        if not found:
            raise AriError(404, "No Endpoints found - invalid tech " + seg[1])
        return 200, found
    ep = pbx.endpoints.get(f"{seg[1]}/{seg[2]}")
    if ep is None:
        raise AriError(404, "Endpoint not found")
    return 200, ep.to_json()


def dynamic_config(pbx: Pbx, method: str, seg: List[str]) -> Tuple[int, Any]:
    """``GET /asterisk/config/dynamic/res_pjsip/endpoint/{id}``: a few of the endpoint's
    attributes as Asterisk 22's ``ConfigTuple`` list (the rest of sorcery is not
    modelled: other classes and types answer 404, writes 403)."""
    if len(seg) != 3:
        raise AriError(404, "Not Found")
    config_class, object_type, object_id = seg
    if config_class != "res_pjsip":
        raise AriError(404, f"configClass '{config_class}' not found")
    if object_type != "endpoint":
        raise AriError(404, f"objectType '{object_type}' not found")
    if method != "GET":
        raise AriError(403, "Dynamic configuration is not modelled by the simulator")
    ep = pbx.endpoints.get(f"PJSIP/{object_id}")
    if ep is None:
        raise AriError(404, f"Object with id '{object_id}' not found")
    attributes = {
        "aors": ep.resource,
        "auth": ep.resource,
        "callerid": f'"{ep.name}" <{ep.resource}>',
        "context": "from-internal",
        "transport": "transport-udp",
        "allow": "(ulaw)",
        "dtmf_mode": "rfc4733",
        "direct_media": "false",
        "mailboxes": "",
        "send_connected_line": "yes",
    }
    return 200, [{"attribute": k, "value": v} for k, v in attributes.items()]
