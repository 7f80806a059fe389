"""``POST /channels`` and ``POST /channels/create``: originate to an endpoint or a Local
channel, into an app or the dialplan.

Every function runs on an HTTP handler thread with the PBX lock held.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Tuple

from ..objects import Channel, JsonObj
from ..pbx import AriError, Pbx
from .lookup import id_in_use


def originate(
    pbx: Pbx, p: Dict[str, Any], body: JsonObj, *, dial: bool, channel_id: str | None = None
) -> JsonObj:
    endpoint = p.get("endpoint")
    if not endpoint:
        raise AriError(400, "Endpoint must be specified")
    endpoint = str(endpoint)
    local = re.fullmatch(r"Local/([^@/]+)@([^/]+)(/\w*)?", endpoint)
    ep = pbx.endpoints.get(endpoint)
    if ep is None and local is None:
        raise AriError(400, "Invalid endpoint")
    app = str(p.get("app") or "")
    extension = str(p.get("extension") or "")
    if not app and not extension:
        raise AriError(400, "Application or extension must be specified")
    if app and extension:
        raise AriError(400, "Application and extension cannot both be specified")
    cid = channel_id or p.get("channelId") or None
    other = p.get("otherChannelId") or None
    for given in (cid, other):
        if given and id_in_use(pbx.channels, given):
            raise AriError(409, "Channel with given unique ID already exists")
    linkedid: str | None = None
    orig: Channel | None = None
    if p.get("originator"):
        orig = pbx.channels.get(str(p["originator"]))
        if orig is None:
            raise AriError(400, "Provided originator channel was not found")
        linkedid = orig.linkedid
    variables = body.get("variables") or {}
    if not isinstance(variables, dict):
        raise AriError(400, "Invalid variables")
    values: List[Tuple[str, str, bool]] = []
    for k, v in variables.items():
        if isinstance(v, dict):  # 22.10: {"value": ..., "report_events": ...}
            values.append((str(k), str(v.get("value", "")), bool(v.get("report_events"))))
        else:
            values.append((str(k), str(v), False))
    try:
        timeout = float(p.get("timeout") or 30)
    except ValueError as exc:
        raise AriError(400, "Invalid timeout") from exc
    app_args = str(p.get("appArgs") or "")
    if local is not None:
        ch = _originate_local(
            pbx,
            local.group(1),
            local.group(2),
            app,
            app_args,
            extension,
            p,
            cid,
            other,
            linkedid,
            values,
            dial,
            orig,
        )
        return pbx.cj(ch) if not dial else ch.to_json(pbx.config.channelvars)
    assert ep is not None
    ch = pbx.ari_originate(
        ep,
        extension=extension,
        context=str(p.get("context") or "from-internal"),
        app=app,
        app_args=app_args,
        caller_id=str(p.get("callerId") or ""),
        timeout=timeout,
        channel_id=cid,
        variables={},
        dial=False,
        linkedid=linkedid,
    )
    if orig is not None:
        # the originator's inheritable variables, as dial.c's prerun does, before the
        # request's own variables
        pbx.inherit_variables(orig, ch)
    for name, value, report in values:
        if name.startswith(("CALLERID(", "CONNECTEDLINE(", "CHANNEL(", "HOLD_INTERCEPT(")):
            pbx.set_variable(ch, name, value, report)
        else:
            pbx.store_variable(ch, name, value)
            if report and name not in ch.reported:
                ch.reported.append(name)
    if app:
        pbx.app_subscribe(app, ch)
    snapshot = pbx.cj(ch)  # Asterisk answers before the phone rings: state Down
    if dial:
        pbx.originate_dial(ch, timeout)
    else:
        _into_app_now(pbx, ch, app, app_args)
    return snapshot


def _into_app_now(pbx: Pbx, ch: Channel, app: str, app_args: str) -> None:
    """``POST /channels/create``: the channel is in the app at once (StasisStart, Down);
    operations other than dial and hangup answer 412 until it is dialled and up."""
    ch.on_answer = None
    ch.created_only = True
    pbx.stasis_start(ch, app, app_args.split(",") if app_args else [])


def _originate_local(
    pbx: Pbx,
    exten: str,
    context: str,
    app: str,
    app_args: str,
    extension: str,
    p: Dict[str, Any],
    cid: str | None,
    other: str | None,
    linkedid: str | None,
    values: List[Tuple[str, str, bool]],
    dial: bool,
    orig: Channel | None = None,
) -> Channel:
    l1, l2 = pbx.new_local_pair(exten, context, cid, other, linkedid)
    l1.originated = True
    if orig is not None:
        pbx.inherit_variables(orig, l1)
    for name, value, report in values:
        if name.startswith(("CALLERID(", "CONNECTEDLINE(", "CHANNEL(", "HOLD_INTERCEPT(")):
            pbx.set_variable(l1, name, value, report)
        else:
            pbx.store_variable(l1, name, value)
            if report and name not in l1.reported:
                l1.reported.append(name)
    if app:
        l1.stasis_app = app
        pbx.app_subscribe(app, l1)
        if dial:  # originate subscribes the app to the ;2 half too, create does not
            pbx.app_subscribe(app, l2)
        args = app_args.split(",") if app_args else []

        def into_app() -> None:
            if l1.in_stasis:
                return
            pbx.varset(l1, "STASISSTATUS", "")
            pbx.dialplan(l1, "Stasis", f"{app},{app_args}" if app_args else app)
            target = pbx.apps.get(app)
            if target is None or target.sink is None:  # no such app: Stasis() fails
                pbx.varset(l1, "STASISSTATUS", "FAILED")
                pbx.dp_hangup(l1, 16)
                return
            pbx.stasis_start(l1, app, args)

        l1.on_answer = into_app
    else:
        ctx = str(p.get("context") or "default")
        try:
            priority = int(p.get("priority") or 1)
        except ValueError as exc:
            raise AriError(400, "Invalid priority") from exc

        def into_dialplan() -> None:
            pbx.dp_run(l1, ctx, extension, priority)

        l1.on_answer = into_dialplan
    if dial:
        pbx.local_dial(l1)
    else:
        _into_app_now(pbx, l1, app, app_args)
    return l1
