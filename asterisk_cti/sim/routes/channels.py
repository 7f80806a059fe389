"""``/channels``: list, get, hang up, and the per-channel operations (answer, hold, ring,
dial, continue, redirect, move, variables, snoop, ...).

Every function runs on an HTTP handler thread with the PBX lock held.
"""

from __future__ import annotations

import re
import time
from typing import Any, Callable, Dict, List, Tuple

from ..objects import Channel, JsonObj
from ..pbx import AriError, Pbx, cause_from_reason
from .lookup import INVALID_STATE, STASIS_ONLY, channel_of, id_in_use
from .originate import originate


def _stasis(ch: Channel) -> None:
    if not ch.in_stasis:
        raise AriError(409, STASIS_ONLY)


def _ready(ch: Channel) -> None:
    """412 for a channel from ``POST /channels/create`` until it is dialled and up."""
    if ch.created_only and ch.state != "Up":
        raise AriError(412, INVALID_STATE)


def handle(
    pbx: Pbx, method: str, seg: List[str], p: Dict[str, Any], body: JsonObj
) -> Tuple[int, Any]:
    if not seg:
        if method == "GET":
            return 200, [pbx.cj(c) for c in pbx.channels.values()]
        if method == "POST":
            return 200, originate(pbx, p, body, dial=True)
        raise AriError(405, "Method Not Allowed")
    if seg == ["create"] and method == "POST":
        if not p.get("app"):
            raise AriError(400, "Missing parameter app")
        return 200, originate(pbx, p, body, dial=False)
    if len(seg) == 1 and method == "POST":
        if id_in_use(pbx.channels, seg[0]):
            raise AriError(409, "Channel with given unique ID already exists")
        return 200, originate(pbx, p, body, dial=True, channel_id=seg[0])
    ch = channel_of(pbx, seg[0])
    if len(seg) == 1:
        if method == "GET":
            return 200, pbx.cj(ch)
        if method == "DELETE":
            cause = 16
            if p.get("reason_code"):
                try:
                    cause = int(p["reason_code"])
                except ValueError as exc:
                    raise AriError(400, "Invalid reason_code") from exc
            elif p.get("reason"):
                cause = cause_from_reason(str(p["reason"]))
            pbx.hangup(ch, cause, ari=True)
            return 204, None
        raise AriError(405, "Method Not Allowed")
    op = seg[1]
    if op == "variable":
        name = p.get("variable")
        if not name:
            raise AriError(400, "Variable name is required")
        if method == "GET":
            value = _read_variable(ch, str(name))
            if value is None:
                raise AriError(404, "Provided variable was not found")
            return 200, {"value": value}
        if method == "POST":
            _stasis(ch)
            pbx.set_variable(
                ch, str(name), str(p.get("value", "")), _truthy(p.get("report_events"))
            )
            return 204, None
    if op == "variables" and len(seg) == 2:
        return _variables(pbx, method, ch, p, body)
    if op == "snoop" and method == "POST" and len(seg) <= 3:
        if not p.get("app"):
            raise AriError(400, "Missing parameter app")
        snoop_id = seg[2] if len(seg) == 3 else p.get("snoopId")
        if snoop_id and snoop_id in pbx.channels:
            raise AriError(409, "Channel with given unique ID already exists")
        s = pbx.snoop(ch, str(p["app"]), str(p.get("appArgs", "")), snoop_id)
        return 200, pbx.cj(s)
    if op == "move" and method == "POST":
        _stasis(ch)
        if not p.get("app"):
            raise AriError(400, "Missing parameter app")
        args = [a for a in str(p.get("appArgs") or "").split(",")] if p.get("appArgs") else []
        pbx.move(ch, str(p["app"]), args)
        return 204, None
    if op in (
        "answer",
        "ring",
        "hold",
        "moh",
        "mute",
        "dtmf",
        "redirect",
        "continue",
        "dial",
        "silence",
        "play",
        "record",
    ):
        if op == "dial":
            if ch.stasis_app is None:
                raise AriError(409, STASIS_ONLY)
        else:
            _stasis(ch)
            if not (op == "redirect" and not p.get("endpoint")):
                _ready(ch)
        return _stasis_op(pbx, method, op, ch, p, seg)
    raise AriError(404, "Not Found")


def _variables(
    pbx: Pbx, method: str, ch: Channel, p: Dict[str, Any], body: JsonObj
) -> Tuple[int, Any]:
    """``/channels/{id}/variables``: several variables at once (names are stripped)."""
    if method == "GET":
        names = [n.strip() for n in str(p.get("variables") or "").split(",") if n.strip()]
        if not names:
            raise AriError(400, "Variable names are required")
        values: Dict[str, str] = {}
        for name in names:
            value = _read_variable(ch, name)
            if value is None:
                raise AriError(404, "Provided variable was not found")
            values[name] = value
        return 200, {"variables": values}
    if method == "POST":
        _stasis(ch)
        variables = body.get("variables")
        if not isinstance(variables, dict) or not variables:
            raise AriError(400, "Variables are required")
        for name, v in variables.items():
            if isinstance(v, dict):
                value, report = str(v.get("value", "")), bool(v.get("report_events"))
            else:
                value, report = str(v), False
            pbx.set_variable(ch, str(name).strip(), value, report)
        return 204, None
    raise AriError(405, "Method Not Allowed")


def _int(p: Dict[str, Any], name: str) -> int:
    """An integer parameter as Asterisk reads it (``atoi``: leading digits, else 0)."""
    m = re.match(r"\s*([-+]?\d+)", str(p.get(name) or ""))
    return int(m.group(1)) if m else 0


def _stasis_op(
    pbx: Pbx, method: str, op: str, ch: Channel, p: Dict[str, Any], seg: List[str]
) -> Tuple[int, Any]:
    if op == "answer" and method == "POST":
        if ch.state != "Up":
            pbx.set_state(ch, "Up")
            ch.answered_at = time.monotonic()
            pbx.start_talk_detect(ch)
        return 204, None
    if op == "hold" and method in ("POST", "DELETE"):
        pbx.ari_hold(ch, method == "POST")  # audio only, unless HOLD_INTERCEPT(set)
        return 204, None
    if op in ("ring", "moh", "mute", "silence") and method in ("POST", "DELETE"):
        return 204, None
    if op == "play" and method == "POST" and len(seg) <= 3:
        return 201, pbx.play(ch, str(p.get("media") or ""), str(p.get("lang") or ""),
                             _int(p, "offsetms"), _int(p, "skipms"),
                             seg[2] if len(seg) == 3 else str(p.get("playbackId") or ""))
    if op == "dtmf" and method == "POST":
        if not p.get("dtmf"):
            raise AriError(400, "DTMF is required")
        return 204, None
    if op == "redirect" and method == "POST":
        if not p.get("endpoint"):
            raise AriError(400, "Required parameter endpoint not present")
        tech, _, resource = str(p["endpoint"]).partition("/")
        if not resource:
            raise AriError(422, "Endpoint parameter does not contain tech/resource")
        own_tech = "Local" if ch.kind == "local" else "PJSIP"
        if tech.lower() != own_tech.lower():
            raise AriError(422, "Endpoint technology does not match channel technology")
        pbx.redirect(ch)
        return 204, None
    if op == "continue" and method == "POST":
        try:
            priority = int(p.get("priority") or 0)
        except ValueError as exc:
            raise AriError(400, "Invalid priority") from exc
        pbx.stasis_continue(
            ch,
            str(p.get("context") or ("" if ch.context == "default" else "from-internal")),
            str(p.get("extension") or ""),
            priority,
        )
        return 204, None
    if op == "dial" and method == "POST":
        if ch.state != "Down" or not ch.originated:
            raise AriError(409, "Channel is not in the Down state")
        if ch.dp_local:
            pbx.local_dial(ch)
        else:
            pbx.originate_dial(ch, float(p.get("timeout") or 30))
        return 204, None
    raise AriError(405, "Method Not Allowed")


def _truthy(value: Any) -> bool:
    return str(value).lower() in ("true", "1", "yes")


def _read_variable(ch: Channel, name: str) -> str | None:
    fixed: Dict[str, Callable[[], str]] = {
        "CALLERID(num)": lambda: ch.caller_number,
        "CALLERID(name)": lambda: ch.caller_name,
        "CALLERID(all)": lambda: f'"{ch.caller_name}" <{ch.caller_number}>',
        "CHANNEL(accountcode)": lambda: ch.accountcode,
        "CHANNEL(language)": lambda: ch.language,
        "CHANNEL(linkedid)": lambda: ch.linkedid,
        "CHANNEL(name)": lambda: ch.name,
        "CHANNEL(uniqueid)": lambda: ch.id,
        "CONNECTEDLINE(num)": lambda: ch.connected_number,
        "CONNECTEDLINE(name)": lambda: ch.connected_name,
    }
    if name in fixed:
        return fixed[name]()
    if re.fullmatch(r"[A-Z_]+\(.*\)", name):
        return ""
    return ch.variables.get(name)
