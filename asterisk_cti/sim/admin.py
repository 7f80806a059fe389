"""The simulator's admin REST: drive the phones and an outside caller from another process.

Served by the simulator's own HTTP server under ``/sim`` (outside ``/ari``), with the same
credentials as ARI. Every request answers JSON (or 204); parameters come from the query
string, a form body or a JSON object body. Routes (``{ext}`` is a phone's extension):

- ``GET /sim/phones``: the phones (``extension``, ``endpoint``, ``name``, ``state``,
  ``channel_ids``), the trunk included once it carried a call;
- ``GET /sim/calls``: the live channels (``id``, ``name``, ``state``, ``endpoint``,
  ``caller``, ``connected``, ``held``, ``bridge_id``);
- ``POST /sim/phones/{ext}/dial?to=1002``: the phone calls ``to`` (200 ``{"channel_id"}``);
- ``POST /sim/phones/{ext}/answer``, ``reject``, ``hangup``, ``hold``, ``resume``, ``mute``,
  ``unmute`` (204);
- ``POST /sim/phones/{ext}/dtmf?digits=*21006`` (204);
- ``POST /sim/phones/{ext}/transfer?to=1006``: blind transfer (SIP REFER) (204);
- ``POST /sim/phones/{ext}/wait_ringing?timeout=5``: wait until a call rings there
  (200 ``{"channel_id"}``; at most 30 s);
- ``POST /sim/trunk/call?from=+33123456789&to=1002[&name=...]``: an outside caller calls
  ``to`` through ``PJSIP/trunk`` (200 ``{"channel_id", "name"}``);
- ``POST /sim/calls/{id}/hangup``: hang up any channel from its side (an outside caller
  hanging up) (204);
- ``POST /sim/calls/{id}/dtmf?digits=1234#``: the far end of any channel (an outside caller)
  keys digits (204);
- ``POST /sim/phones/{ext}/register?registered=false``: unregister (or register) the phone
  (EndpointStateChange) (204);
- ``POST /sim/restart[?boot_time=S]``: ``core restart now`` (the PBX down, then back; see
  :meth:`AriSimulator.restart`), ``POST /sim/drop_websockets``: cut every websocket (both 204,
  answered before acting; served by :mod:`.server`).

Errors: 400 bad or missing parameter, 404 unknown phone, call or route, 405 wrong method,
409 the phone cannot do that now (no ringing call, no call, ...). Runs on the HTTP handler
thread of the request; each action takes the PBX lock.
"""

from __future__ import annotations

import re
import time
from typing import Any, Callable, Dict, List, Tuple

from .dialplan import TRUNK_RESOURCE
from .objects import JsonObj
from .pbx import AriError, Pbx
from .phones import Phone, PhoneBook, PhoneError

__all__ = ["handle"]

_EXTEN = re.compile(r"[0-9A-Za-z*#+_-]{1,32}")
_DIGITS = re.compile(r"[0-9*#A-Da-d]{1,64}")
_NUMBER = re.compile(r"\+?[0-9]{1,24}")
_MAX_WAIT = 30.0

_SIMPLE: Dict[str, Callable[[Phone], None]] = {
    "answer": Phone.answer,
    "reject": Phone.reject,
    "hangup": Phone.hangup,
    "hold": Phone.hold,
    "resume": Phone.resume,
    "mute": Phone.mute,
    "unmute": Phone.unmute,
}


def _param(p: Dict[str, Any], name: str, pattern: re.Pattern[str]) -> str:
    value = p.get(name)
    if not isinstance(value, str) or not value:
        raise AriError(400, f"Missing parameter {name}")
    if not pattern.fullmatch(value):
        raise AriError(400, f"Invalid parameter {name}")
    return value


def _number(p: Dict[str, Any]) -> str:
    raw = p.get("from")
    if not isinstance(raw, str) or not raw:
        raise AriError(400, "Missing parameter from")
    number = re.sub(r"[\s.()-]", "", raw)  # "+33 1 23 45 67 89" as a provider sends it
    if not _NUMBER.fullmatch(number):
        raise AriError(400, "Invalid parameter from")
    return number


def _name(p: Dict[str, Any]) -> str:
    name = p.get("name", "")
    if not isinstance(name, str) or len(name) > 64 or not name.isprintable():
        raise AriError(400, "Invalid parameter name")
    return name


def _phones(pbx: Pbx) -> List[JsonObj]:
    with pbx.lock:
        return [
            {
                "extension": ep.resource,
                "endpoint": ep.id,
                "name": ep.name,
                "state": "online" if ep.registered else "offline",
                "channel_ids": list(ep.channel_ids),
            }
            for ep in sorted(pbx.endpoints.values(), key=lambda e: e.id)
        ]


def _calls(pbx: Pbx) -> List[JsonObj]:
    with pbx.lock:
        return [
            {
                "id": ch.id,
                "name": ch.name,
                "state": ch.state,
                "endpoint": ch.endpoint.id if ch.endpoint is not None else None,
                "caller": {"name": ch.caller_name, "number": ch.caller_number},
                "connected": {"name": ch.connected_name, "number": ch.connected_number},
                "held": ch.held,
                "bridge_id": ch.bridge.id if ch.bridge is not None else None,
            }
            for ch in pbx.channels.values()
            if not ch.destroyed
        ]


def handle(
    pbx: Pbx,
    phones: PhoneBook,
    method: str,
    seg: List[str],
    p: Dict[str, Any],
    closed: Callable[[], bool] = lambda: False,
) -> Tuple[int, Any]:
    """Answer one admin request (``seg``: the path after ``/sim`` split on ``/``);
    ``closed`` says the simulator is stopping (a ``wait_ringing`` gives up).

    :raises AriError: the request fails (status and message as listed above).
    """
    if seg in (["phones"], ["calls"]):
        if method != "GET":
            raise AriError(405, "Method Not Allowed")
        return 200, _phones(pbx) if seg == ["phones"] else _calls(pbx)
    if seg == ["trunk", "call"]:
        if method != "POST":
            raise AriError(405, "Method Not Allowed")
        number, to, name = _number(p), _param(p, "to", _EXTEN), _name(p)
        with pbx.lock:
            trunk = pbx.trunk_call(number, to, name)
            return 200, {"channel_id": trunk.id, "name": trunk.name}
    if len(seg) == 3 and seg[0] == "calls" and seg[2] == "dtmf":
        if method != "POST":
            raise AriError(405, "Method Not Allowed")
        digits = _param(p, "digits", _DIGITS)
        with pbx.lock:
            ch = pbx.channels.get(seg[1])
            if ch is None or ch.destroyed:
                raise AriError(404, "Call not found")
            pbx.caller_dtmf(ch, digits.upper())
            return 204, None
    if len(seg) == 3 and seg[0] == "calls" and seg[2] == "hangup":
        if method != "POST":
            raise AriError(405, "Method Not Allowed")
        with pbx.lock:
            ch = pbx.channels.get(seg[1])
            if ch is None or ch.destroyed:
                raise AriError(404, "Call not found")
            pbx.hangup(ch, 16)
            return 204, None
    if len(seg) == 3 and seg[0] == "phones":
        if method != "POST":
            raise AriError(405, "Method Not Allowed")
        if seg[1] == TRUNK_RESOURCE:
            raise AriError(404, "The trunk is not a phone: use /sim/trunk/call")
        try:
            phone = phones.get(seg[1])
        except KeyError:
            raise AriError(404, "Phone not found") from None
        try:
            return _phone_action(pbx, phone, seg[2], p, closed)
        except PhoneError as exc:
            raise AriError(409, str(exc)) from None
    raise AriError(404, "Not Found")


def _phone_action(
    pbx: Pbx, phone: Phone, action: str, p: Dict[str, Any], closed: Callable[[], bool]
) -> Tuple[int, Any]:
    simple = _SIMPLE.get(action)
    if simple is not None:
        simple(phone)
        return 204, None
    if action == "dial":
        return 200, {"channel_id": phone.dial(_param(p, "to", _EXTEN))}
    if action == "dtmf":
        phone.dtmf(_param(p, "digits", _DIGITS))
        return 204, None
    if action == "transfer":
        phone.blind_transfer(_param(p, "to", _EXTEN))
        return 204, None
    if action == "register":
        value = p.get("registered", "true")
        if value not in ("true", "false"):
            raise AriError(400, "Invalid parameter registered (true or false)")
        with pbx.lock:
            ep = pbx.endpoints[phone.endpoint_id]
            if ep.registered != (value == "true"):
                ep.registered = value == "true"
                pbx.endpoint_event(ep)
        return 204, None
    if action == "wait_ringing":
        try:
            timeout = float(p.get("timeout", 5))
        except (TypeError, ValueError):
            raise AriError(400, "Invalid parameter timeout") from None
        if not 0 <= timeout <= _MAX_WAIT:
            raise AriError(400, f"Invalid parameter timeout (0 to {_MAX_WAIT:g} s)")
        # in slices, so that stopping the simulator does not wait for a long timeout
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                return 200, {"channel_id": phone.wait_ringing(max(0.0, min(0.1, left)))}
            except PhoneError:
                if left <= 0.1 or closed():
                    raise PhoneError(
                        f"phone {phone.resource}: no call rang within {timeout:g}s") from None
    raise AriError(404, "Not Found")
