"""What ARI requests do to the PBX: originate, Stasis continue and redirect, bridge
membership, channel variables, hold, move, device states.

The HTTP routes (:mod:`.routes`) validate a request and call one of these with the PBX lock
held.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Dict, List, Tuple

from .dialplan import TEST_CONTEXT
from .features import Features
from .objects import Bridge, Channel, Endpoint
from .state import AriError

_HANGUP_REASONS = {
    "normal": 16,
    "busy": 17,
    "congestion": 34,
    "no_answer": 19,
    "timeout": 19,
    "rejected": 21,
    "unallocated": 1,
    "normal_unspecified": 31,
    "number_incomplete": 28,
    "codec_mismatch": 58,
    "interworking": 127,
    "failure": 38,
    "answered_elsewhere": 26,
}

#: States ``PUT /deviceStates/{name}`` accepts (Asterisk's ast_devstate_val names).
DEVICE_STATES = (
    "UNKNOWN", "NOT_INUSE", "INUSE", "BUSY", "INVALID", "UNAVAILABLE", "RINGING", "RINGINUSE",
    "ONHOLD",
)


class AriOps(Features):
    """The PBX side of the ARI requests that change state."""

    def ari_originate(
        self,
        ep: Endpoint,
        *,
        extension: str = "",
        context: str = "from-internal",
        app: str = "",
        app_args: str = "",
        caller_id: str = "",
        timeout: float = 30,
        channel_id: str | None = None,
        variables: Dict[str, str] | None = None,
        dial: bool = True,
        linkedid: str | None = None,
    ) -> Channel:
        """``POST /channels`` (``dial=False``: ``POST /channels/create``)."""
        a = self.new_pjsip(ep, "Down", channel_id=channel_id, linkedid=linkedid)
        a.originated = True
        a.protocol_id = str(uuid.uuid4())
        a.dial_exten = ep.resource
        self.dialplan(a, "AppDial2", "(Outgoing Line)")
        name, number = _parse_callerid(caller_id) if caller_id else ("", "")
        if caller_id:
            self.caller_id(a, name, number)
        self.connected_line(a, name, number)
        for k, v in (variables or {}).items():
            self.store_variable(a, k, str(v))
        if app:
            a.stasis_app = app
            args = [x for x in app_args.split(",")] if app_args else []

            def into_app() -> None:
                if a.in_stasis:  # POST /channels/create: in the app already
                    return
                self.varset(a, "STASISSTATUS", "")
                self.dialplan(a, "Stasis", f"{app},{app_args}" if app_args else app)
                self.stasis_start(a, app, args)

            a.on_answer = into_app
        else:

            def into_dialplan() -> None:
                a.context = context
                self.run_dialplan(a, extension)

            a.on_answer = into_dialplan
        if dial:
            self.originate_dial(a, timeout)
        return a

    def originate_dial(self, a: Channel, timeout: float) -> None:
        ep = a.endpoint
        assert ep is not None
        a.dial_started = time.monotonic()
        self.dial_event(None, a, "", ep.resource)
        if not ep.registered:
            self.dial_event(None, a, "CHANUNAVAIL", ep.resource)
            self._destroy(a, 20)
            return
        if self.hooks.is_busy(ep.resource, a):
            self.dial_event(None, a, "BUSY", ep.resource)
            self.hangup_request(a, 17)
            self._destroy(a, 17)
            return
        self.dial_event(None, a, "RINGING", ep.resource)
        self.set_state(a, "Ringing")

        def no_answer() -> None:
            if a.state != "Up":
                self.dial_event(None, a, "NOANSWER", ep.resource)
                self._destroy(a, 19)

        self.later(a, timeout, no_answer)
        self.hooks.incoming(ep.resource, a)

    def originated_answer(self, a: Channel) -> None:
        """The phone of an ARI-originated channel answers."""
        if a.state == "Up" or a.destroyed:
            return
        ep = a.endpoint
        self.set_state(a, "Up")
        a.answered_at = time.monotonic()
        self.dial_event(None, a, "ANSWER", ep.resource if ep else "")
        for t in a.timers:
            t.cancel()
        a.timers.clear()
        cont, a.on_answer = a.on_answer, None
        if cont is not None:
            cont()
        if a.talk_detect or a.in_stasis:
            self.start_talk_detect(a)

    def originated_reject(self, a: Channel) -> None:
        ep = a.endpoint
        self.dial_event(None, a, "BUSY", ep.resource if ep else "")
        self.hangup_request(a, 17)
        self._destroy(a, 17)

    def snoop(self, target: Channel, app: str, args: str, snoop_id: str | None) -> Channel:
        n = next(self._snoop_seq)
        s = self._new_channel(
            "snoop", f"Snoop/{target.id}-{n:08x}", "Up", ("", ""), channel_id=snoop_id
        )
        s.context, s.exten, s.priority, s.app_name, s.app_data = "default", "s", 1, "Stasis", app
        s.variables["SNOOP_TARGET"] = target.id
        self.stasis_start(s, app, [x for x in args.split(",")] if args else [])
        return s

    def stasis_continue(
        self, ch: Channel, context: str, extension: str, priority: int = 0
    ) -> None:
        self.stasis_event("StasisEnd", ch)
        ch.in_stasis = False
        app = ch.stasis_app
        ch.stasis_app = None
        if ch.bridge is not None:
            b = self.leave_bridge(ch)
            if b is not None and app:
                b.apps[app] -= 1
        self.varset(ch, "STASISSTATUS", "SUCCESS")
        if context == TEST_CONTEXT or (not context and ch.context == TEST_CONTEXT):
            if extension:
                self.dp_run(ch, TEST_CONTEXT, extension, priority or 1)
            else:
                self._dp_step(ch, priority or ch.priority + 1)
        elif extension and context in ("from-internal", ""):
            self.run_dialplan(ch, extension)
        else:
            self._end_dialplan(ch, 16)

    def redirect(self, ch: Channel) -> None:
        if ch.bridge is not None:
            b = ch.bridge
            self.bridge_peer_vars(b, clear=True)
            self.leave_bridge(ch)
        self.chan_event("ChannelHold", ch, (("musicclass", "default"),))
        ch.held = True

    def add_to_bridge(self, b: Bridge, ch: Channel) -> None:
        if ch.bridge is not None and ch.bridge is not b:
            old = ch.bridge
            self.leave_bridge(ch)
            if old.bridge_class == "basic" and not old.channels:
                self.destroy_bridge(old)
        self.enter_bridge(b, ch)
        if len(b.channels) == 2:
            x, y = b.channels
            self.bridge_peer_vars(b)
            self.connected_line(y, x.caller_name, x.caller_number)
            self.connected_line(x, y.caller_name, y.caller_number)
        self.start_talk_detect(ch)

    def remove_from_bridge(self, b: Bridge, ch: Channel) -> None:
        if len(b.channels) == 2:
            self.bridge_peer_vars(b, clear=True)
        self.leave_bridge(ch)
        if ch.in_stasis and ch.stasis_app:
            b.apps[ch.stasis_app] -= 1

    def delete_bridge(self, b: Bridge) -> None:
        for ch in list(b.channels):
            self.leave_bridge(ch)
        self.destroy_bridge(b)

    def set_variable(self, ch: Channel, name: str, value: str, report: bool = False) -> None:
        """``POST /channels/{id}/variable`` (and originate variables): plain variables and
        the dialplan functions the simulator models."""
        func, _, part = name.partition("(")
        if func in ("CALLERID", "CONNECTEDLINE") and part in ("name)", "num)", "all)"):
            if func == "CALLERID":
                self.caller_id(ch, *_id_with(part, value, ch.caller_name, ch.caller_number))
            else:
                self.connected_line(
                    ch, *_id_with(part, value, ch.connected_name, ch.connected_number))
            return
        if name == "HOLD_INTERCEPT(set)":
            ch.hold_intercept = True
            return
        if name == "HOLD_INTERCEPT(remove)":
            ch.hold_intercept = False
            return
        if name == "CHANNEL(accountcode)":
            ch.accountcode = value
            return
        if name == "CHANNEL(language)":
            ch.language = value
            return
        if report and name not in ch.reported:
            ch.reported.append(name)
        self.varset(ch, name, value)

    def ari_hold(self, ch: Channel, hold: bool) -> None:
        """ARI hold: audio only, unless HOLD_INTERCEPT(set) turns it into ChannelHold."""
        if not ch.hold_intercept:
            return
        if hold:
            self.chan_event("ChannelHold", ch)
        else:
            self.chan_event("ChannelUnhold", ch)

    def move(self, ch: Channel, app: str, args: List[str]) -> None:
        """``POST /channels/{id}/move``: leave this app, enter ``app`` (a missing app: stay)."""
        target = self.apps.get(app)
        if target is None or target.sink is None:
            return
        self.stasis_event("StasisEnd", ch)
        self.stasis_start(ch, app, args)

    def set_device_state(self, name: str, state: str | None) -> None:
        """Set (``None``: delete, back to ``UNKNOWN``) a ``Stasis:`` custom device state."""
        old = self.device_states.get(name, "UNKNOWN")
        if state is None:
            self.device_states.pop(name, None)
            state = "UNKNOWN"
        else:
            self.device_states[name] = state
        if state != old:
            self.device_event(name, state)


def _id_with(part: str, value: str, name: str, number: str) -> Tuple[str, str]:
    """``(name, number)`` after setting ``FUNC(part)`` to ``value`` (``name)``, ``num)`` or
    ``all)``, as the dialplan functions ``CALLERID``/``CONNECTEDLINE`` do)."""
    if part == "name)":
        return value, number
    if part == "num)":
        return name, value
    return _parse_callerid(value)


def _parse_callerid(value: str) -> Tuple[str, str]:
    m = re.fullmatch(r'\s*"?([^"<]*?)"?\s*<([^>]*)>\s*', value)
    if m:
        return m.group(1), m.group(2)
    return ("", value.strip()) if value.strip().isdigit() else (value.strip(), "")


def cause_from_reason(reason: str) -> int:
    """Map ``DELETE /channels/{id}?reason=`` to a Q.850 cause."""
    if reason not in _HANGUP_REASONS:
        raise AriError(400, "Invalid reason for hangup provided")
    return _HANGUP_REASONS[reason]
