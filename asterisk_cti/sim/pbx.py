"""The simulated PBX: endpoints, channels, bridges, the small dialplan, and the events.

:class:`Pbx` is a stateful fake of Asterisk 22's core as ARI sees it. Every state change
happens under one re-entrant lock and emits the ARI events a real Asterisk 22.10.1 emits for it,
in the same order per channel as the recorded traces (the repository's ``tests/data/traces``),
routed to the apps whose subscriptions, Stasis ownership and event filter ask for them.

Threads: phone actions run on the caller's thread (a test, a scenario), ARI requests on the
HTTP handler threads, timers (ring timeout, talk detection, auto-answer) on the scheduler
thread. All of them take :attr:`Pbx.lock`. Delivery to an app only hands a serialised frame to
its connection's queue, so nothing blocks while the lock is held.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import threading
import time
import uuid
from typing import Any, Callable, Dict, Iterable, List, Sequence, Tuple

from .objects import (
    APP_MARK,
    CAUSE_TXT,
    App,
    Bridge,
    Channel,
    Endpoint,
    JsonObj,
    ari_timestamp,
)
from .scheduler import Scheduler, TimerHandle

__all__ = ["AriError", "Pbx", "PbxConfig"]

logger = logging.getLogger(__name__)

_MARK_JSON = json.dumps(APP_MARK)
_DIAL_VARS = (
    "DIALSTATUS",
    "DIALEDPEERNUMBER",
    "DIALEDPEERNAME",
    "ANSWEREDTIME",
    "ANSWEREDTIME_MS",
    "DIALEDTIME",
    "DIALEDTIME_MS",
    "RINGTIME",
    "RINGTIME_MS",
    "PROGRESSTIME",
    "PROGRESSTIME_MS",
)
_QOS = ("RTPAUDIOQOS", "RTPAUDIOQOSJITTER", "RTPAUDIOQOSLOSS", "RTPAUDIOQOSRTT", "RTPAUDIOQOSMES")
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


#: The test dialplan, context ``default``: the extensions our translation of Asterisk's
#: testsuite uses (tests/sim/testsuite), the same as the lab's (tests/integration/lab).
TEST_CONTEXT = "default"
TEST_DIALPLAN: Dict[str, List[Tuple[str, str]]] = {
    "s": [("NoOp", ""), ("Answer", ""), ("Echo", ""), ("Hangup", "")],
    "echo": [("NoOp", ""), ("Answer", ""), ("Echo", ""), ("Hangup", "")],
    "stasis": [("NoOp", ""), ("Answer", ""), ("Stasis", "testsuite"), ("Hangup", "")],
    "stasis_echo": [("NoOp", ""), ("Answer", ""), ("Stasis", "testsuite"), ("Echo", "")],
    "1000": [("Answer", ""), ("Echo", "")],
    "2000": [("Answer", ""), ("Wait", "2"), ("Hangup", "99")],
    "wait5": [("Answer", ""), ("Wait", "5"), ("Hangup", "")],
    "one": [("NoOp", ""), ("Answer", ""), ("Wait", "1"), ("Hangup", "")],
    "two": [("NoOp", ""), ("Answer", ""), ("Wait", "1"), ("Hangup", "")],
    "three": [("NoOp", ""), ("Answer", ""), ("Wait", "1"), ("Hangup", "")],
    "four": [("NoOp", ""), ("Answer", ""), ("Echo", "")],
    "do_stuff": [("NoOp", ""), ("Answer", ""), ("Playback", "silence/1"), ("Hangup", "")],
    "short": [("NoOp", ""), ("Answer", ""), ("Wait", "3"), ("Hangup", "")],
    "ring": [("NoOp", ""), ("Ringing", ""), ("Wait", "3")],
}
#: States ``PUT /deviceStates/{name}`` accepts (Asterisk's ast_devstate_val names).
DEVICE_STATES = (
    "UNKNOWN", "NOT_INUSE", "INUSE", "BUSY", "INVALID", "UNAVAILABLE", "RINGING", "RINGINUSE",
    "ONHOLD",
)


class AriError(Exception):
    """An ARI request failed: the HTTP status and Asterisk's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class PbxConfig:
    """Tunables of the simulated PBX (see :class:`~asterisk_cti.sim.AriSimulator`)."""

    def __init__(
        self,
        *,
        endpoints: Sequence[Tuple[str, str]] = (("1000", "Kai"), ("1002", "Ping"), ("1006", "Lee")),
        speed: float = 1.0,
        stasis_app: str = "cti-ctl",
        queue_extension: str = "2000",
        queue_name: str = "support",
        queue_members: Sequence[str] = ("1002", "1006"),
        dial_timeout: float = 15.0,
        channelvars: bool = False,
        asterisk_id: str = "02:fc:00:00:00:01",
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.endpoints = list(endpoints)
        self.speed = speed
        self.stasis_app = stasis_app
        self.queue_extension = queue_extension
        self.queue_name = queue_name
        self.queue_members = list(queue_members)
        self.dial_timeout = dial_timeout
        self.channelvars = channelvars
        self.asterisk_id = asterisk_id


class _Transfer:
    """State of an attended transfer started with ``*2`` by a transferer channel."""

    def __init__(self, transferer: Channel, original_bridge: Bridge) -> None:
        self.transferer = transferer
        self.original_bridge = original_bridge
        self.digits = ""
        self.local1: Channel | None = None
        self.local2: Channel | None = None
        self.consult_bridge: Bridge | None = None


class PhoneHooks:
    """What the PBX tells the simulated phones; :class:`~asterisk_cti.sim.phones.Phone` sets it."""

    def is_busy(self, resource: str, new: Channel) -> bool:  # pragma: no cover - overridden
        return False

    def incoming(self, resource: str, channel: Channel) -> None:  # pragma: no cover
        pass


class Pbx:
    """The fake Asterisk core. See the module docstring for the threading contract."""

    def __init__(self, config: PbxConfig, scheduler: Scheduler) -> None:
        self.config = config
        self.lock = threading.RLock()
        self.scheduler = scheduler
        self.hooks: PhoneHooks = PhoneHooks()
        self.endpoints: Dict[str, Endpoint] = {}
        for resource, name in config.endpoints:
            ep = Endpoint("PJSIP", resource, name)
            self.endpoints[ep.id] = ep
        self.apps: Dict[str, App] = {}
        self.channels: Dict[str, Channel] = {}
        self.bridges: Dict[str, Bridge] = {}
        self.startup_time = ari_timestamp()
        self._pjsip_seq = itertools.count()
        self._local_seq = itertools.count()
        self._snoop_seq = itertools.count()
        self._chan_seq = itertools.count()
        self.events_emitted = 0
        self.device_states: Dict[str, str] = {}  # Stasis:<name> custom device states

    # ------------------------------------------------------------------ utilities
    def scaled(self, seconds: float) -> float:
        """A simulated duration in real seconds, after the speed-up factor."""
        return seconds / self.config.speed

    def later(self, ch: Channel | None, seconds: float, fn: Callable[[], None]) -> TimerHandle:
        """Run ``fn`` under the lock after a simulated delay (dropped if ``ch`` is gone)."""

        def run() -> None:
            with self.lock:
                if ch is not None and ch.destroyed:
                    return
                fn()

        handle = self.scheduler.call_later(self.scaled(seconds), run)
        if ch is not None:
            ch.timers.append(handle)
        return handle

    def reset(self) -> None:
        """Forget everything (a restart): apps, channels, bridges; endpoints stay idle."""
        with self.lock:
            self.apps.clear()
            for ch in self.channels.values():
                ch.destroyed = True
            self.channels.clear()
            self.bridges.clear()
            for ep in self.endpoints.values():
                ep.channel_ids.clear()
                ep.device_state = "NOT_INUSE"
            self.startup_time = ari_timestamp()

    def add_endpoints(self, resources: Iterable[Tuple[str, str]]) -> None:
        """Create more PJSIP endpoints (load mode)."""
        with self.lock:
            for resource, name in resources:
                ep = Endpoint("PJSIP", resource, name)
                self.endpoints.setdefault(ep.id, ep)

    # ------------------------------------------------------------------ event routing
    def _deliver(self, event: JsonObj, targets: Dict[str, int]) -> None:
        if not targets:
            return
        etype = event["type"]
        text: str | None = None
        for name, count in targets.items():
            app = self.apps.get(name)
            if app is None or count <= 0 or not app.wants(etype):
                continue
            sink = app.sink
            if sink is None:
                logger.debug("Inactive Stasis app '%s' missed message", name)
                continue
            if text is None:
                text = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
            frame = text.replace(_MARK_JSON, json.dumps(name), 1)
            for _ in range(count):
                sink(frame)
            app.delivered += count
        self.events_emitted += 1

    def _channel_targets(
        self, chans: Sequence[Channel], endpoints_too: bool = True
    ) -> Dict[str, int]:
        targets: Dict[str, int] = {}
        for app in self.apps.values():
            keys = set()
            if app.subscribe_all:
                keys.add("all")
            subs = app.subscriptions
            if subs.get("channel:"):
                keys.add("channel:")
            for ch in chans:
                if ch.stasis_app == app.name or subs.get("channel:" + ch.id):
                    keys.add("channel:" + ch.id)
                if endpoints_too and ch.endpoint is not None:
                    ep = ch.endpoint
                    if subs.get(f"endpoint:{ep.technology}/{ep.resource}"):
                        keys.add(f"endpoint:{ep.technology}/{ep.resource}")
                    if subs.get(f"endpoint:{ep.technology}"):
                        keys.add(f"endpoint:{ep.technology}")
            if keys:
                targets[app.name] = len(keys)
        return targets

    def _bridge_targets(self, bridge: Bridge, chans: Sequence[Channel] = ()) -> Dict[str, int]:
        targets: Dict[str, int] = {}
        for app in self.apps.values():
            subs = app.subscriptions
            if (
                app.subscribe_all
                or subs.get("bridge:")
                or subs.get("bridge:" + bridge.id)
                or bridge.apps.get(app.name)
            ):
                targets[app.name] = 1
            elif any(subs.get("channel:" + c.id) for c in chans):
                # channel: subscriptions see transfers, never Entered/LeftBridge
                targets[app.name] = 1
        return targets

    def _base(self, etype: str, pre: Sequence[Tuple[str, Any]] = ()) -> JsonObj:
        ev: JsonObj = {}
        for k, v in pre:
            ev[k] = v
        ev["type"] = etype
        ev["timestamp"] = ari_timestamp()
        return ev

    def _finish(self, ev: JsonObj) -> JsonObj:
        ev["asterisk_id"] = self.config.asterisk_id
        ev["application"] = APP_MARK
        return ev

    def cj(self, ch: Channel) -> JsonObj:
        """The channel's JSON as ARI renders it now."""
        return ch.to_json(self.config.channelvars)

    def _attended_transfer(self, transferer: Channel, target: Channel,
                           transferee: Sequence[Channel], orig: Bridge, consult: Bridge,
                           destination_type: str) -> JsonObj:
        """A BridgeAttendedTransfer event in Asterisk 22's field order (without the
        destination fields, which depend on ``destination_type``)."""
        ev = self._base("BridgeAttendedTransfer")
        ev["transferer_first_leg"] = self.cj(transferer)
        ev["transferer_second_leg"] = self.cj(transferer)
        ev["result"] = "Success"
        ev["is_external"] = False
        if transferee:
            ev["transferee"] = self.cj(transferee[0])
        ev["transfer_target"] = self.cj(target)
        ev["transferer_first_leg_bridge"] = orig.to_json()
        ev["transferer_second_leg_bridge"] = consult.to_json()
        ev["destination_type"] = destination_type
        return ev

    def chan_event(
        self,
        etype: str,
        ch: Channel,
        extra: Sequence[Tuple[str, Any]] = (),
        pre: Sequence[Tuple[str, Any]] = (),
    ) -> None:
        """Emit a channel-topic event (``extra`` goes between timestamp and channel)."""
        ev = self._base(etype, pre)
        for k, v in extra:
            ev[k] = v
        ev["channel"] = self.cj(ch)
        self._deliver(self._finish(ev), self._channel_targets([ch]))

    def varset(self, ch: Channel, name: str, value: str) -> None:
        if not name.startswith("LOCAL("):
            ch.variables[name.lstrip("_")] = value
        self.chan_event("ChannelVarset", ch, pre=(("variable", name), ("value", value)))

    def dialplan(
        self,
        ch: Channel,
        app_name: str,
        app_data: str,
        *,
        exten: str | None = None,
        priority: int | None = None,
        context: str | None = None,
    ) -> None:
        if exten is not None:
            ch.exten = exten
        if priority is not None:
            ch.priority = priority
        if context is not None:
            ch.context = context
        ch.app_name = app_name
        ch.app_data = app_data
        self.chan_event(
            "ChannelDialplan", ch, (("dialplan_app", app_name), ("dialplan_app_data", app_data))
        )

    def set_state(self, ch: Channel, state: str) -> None:
        if ch.state != state:
            ch.state = state
            self.chan_event("ChannelStateChange", ch)
            self._device_update(ch)

    def connected_line(self, ch: Channel, name: str, number: str) -> None:
        ch.connected_name, ch.connected_number = name, number
        self.chan_event("ChannelConnectedLine", ch)

    def caller_id(self, ch: Channel, name: str, number: str) -> None:
        ch.caller_name, ch.caller_number = name, number
        self.chan_event(
            "ChannelCallerId",
            ch,
            (
                ("caller_presentation", 0),
                ("caller_presentation_txt", "Presentation Allowed, Not Screened"),
            ),
        )

    def hangup_request(self, ch: Channel, cause: int | None, soft: bool = False) -> None:
        """ChannelHangupRequest; ``cause`` None leaves the field out, as Asterisk does for a
        caller hanging up while Queue() bridges it."""
        pre: List[Tuple[str, Any]] = [] if cause is None else [("cause", cause)]
        if soft:
            pre.append(("soft", True))
        self.chan_event("ChannelHangupRequest", ch, pre=pre)

    def dial_event(
        self, caller: Channel | None, peer: Channel, status: str, dialstring: str = ""
    ) -> None:
        ev = self._base("Dial")
        ev["dialstatus"] = status
        ev["forward"] = ""
        ev["dialstring"] = dialstring
        if caller is not None:
            ev["caller"] = self.cj(caller)
        ev["peer"] = self.cj(peer)
        # Dial is published on the caller's topic only (the peer's when there is no caller)
        topic = caller if caller is not None else peer
        self._deliver(self._finish(ev), self._channel_targets([topic]))

    def endpoint_event(self, ep: Endpoint) -> None:
        ev = self._base("EndpointStateChange")
        ev["endpoint"] = ep.to_json()
        targets: Dict[str, int] = {}
        for app in self.apps.values():
            n = (
                int(bool(app.subscriptions.get("endpoint:" + ep.id)))
                + int(bool(app.subscriptions.get("endpoint:" + ep.technology)))
                + int(bool(app.subscriptions.get("endpoint:")))
            )
            if n:
                targets[app.name] = n
        self._deliver(self._finish(ev), targets)

    def device_event(self, name: str, state: str) -> None:
        ev: JsonObj = {
            "type": "DeviceStateChanged",
            "application": APP_MARK,
            "timestamp": ari_timestamp(),
            "device_state": {"name": name, "state": state},
            "asterisk_id": self.config.asterisk_id,
        }
        targets = {
            a.name: 1
            for a in self.apps.values()
            if a.subscribe_all
            or a.subscriptions.get("deviceState:" + name)
            or a.subscriptions.get("deviceState:")
        }
        self._deliver(ev, targets)

    def _device_update(self, ch: Channel) -> None:
        ep = ch.endpoint
        if ep is None:
            return
        chans = [self.channels[i] for i in ep.channel_ids if i in self.channels]
        if not chans:
            state = "NOT_INUSE"
        elif any(c.held for c in chans):
            state = "ONHOLD"
        elif any(c.state == "Up" for c in chans):
            state = "INUSE"
        elif any(c.state == "Ringing" for c in chans):
            state = "RINGING"
        else:
            state = "INUSE"
        if state != ep.device_state:
            ep.device_state = state
            self.device_event(ep.id, state)

    def bridge_event(
        self,
        etype: str,
        bridge: Bridge,
        ch: Channel | None = None,
        extra: Sequence[Tuple[str, Any]] = (),
    ) -> None:
        ev = self._base(etype)
        ev["bridge"] = bridge.to_json()
        for k, v in extra:
            ev[k] = v
        if ch is not None:
            ev["channel"] = self.cj(ch)
        self._deliver(self._finish(ev), self._bridge_targets(bridge))

    def stasis_event(self, etype: str, ch: Channel, args: List[str] | None = None) -> None:
        ev = self._base(etype)
        if args is not None:
            ev["args"] = args
        ev["channel"] = self.cj(ch)
        if ch.stasis_app is not None:
            self._deliver(self._finish(ev), {ch.stasis_app: 1})

    # ------------------------------------------------------------------ channels
    def _new_channel(
        self,
        kind: str,
        name: str,
        state: str,
        caller: Tuple[str, str],
        endpoint: Endpoint | None = None,
        channel_id: str | None = None,
        linkedid: str | None = None,
        exten: str | None = None,
    ) -> Channel:
        cid = channel_id or f"{int(time.time())}.{next(self._chan_seq)}"
        ch = Channel(
            id=cid,
            name=name,
            state=state,
            caller_name=caller[0],
            caller_number=caller[1],
            creationtime=ari_timestamp(),
            kind=kind,
            endpoint=endpoint,
        )
        ch.linkedid = linkedid or cid
        if exten is not None:
            ch.exten = exten  # an INVITE's channel is created with the dialled extension
        self.channels[cid] = ch
        if endpoint is not None:
            endpoint.channel_ids.append(cid)
            self.endpoint_event(endpoint)
        self.chan_event("ChannelCreated", ch)
        return ch

    def new_pjsip(
        self, ep: Endpoint, state: str, channel_id: str | None = None, linkedid: str | None = None,
        exten: str | None = None,
    ) -> Channel:
        name = f"PJSIP/{ep.resource}-{next(self._pjsip_seq):08x}"
        return self._new_channel(
            "pjsip", name, state, (ep.name, ep.resource), ep, channel_id, linkedid, exten
        )

    def _destroy(self, ch: Channel, cause: int) -> None:
        if ch.destroyed:
            return
        ch.destroyed = True
        for t in ch.timers:
            t.cancel()
        ch.timers.clear()
        ch.hangup_cause = cause
        self.chan_event(
            "ChannelDestroyed",
            ch,
            (("cause", cause), ("cause_txt", CAUSE_TXT.get(cause, "Unknown"))),
        )
        self.channels.pop(ch.id, None)
        for app in self.apps.values():
            app.subscriptions.pop("channel:" + ch.id, None)
        ep = ch.endpoint
        if ep is not None:
            if ch.id in ep.channel_ids:
                ep.channel_ids.remove(ch.id)
            self.endpoint_event(ep)
            self._device_update(ch)
        for snoop in [
            c
            for c in self.channels.values()
            if c.kind == "snoop" and c.variables.get("SNOOP_TARGET") == ch.id
        ]:
            self.hangup_request(snoop, 32, soft=True)
            self.stasis_event("StasisEnd", snoop)
            self._destroy(snoop, 16)

    # ------------------------------------------------------------------ bridges
    def new_bridge(
        self,
        bridge_class: str = "basic",
        bridge_type: str = "mixing",
        name: str = "",
        bridge_id: str | None = None,
    ) -> Bridge:
        b = Bridge(
            id=bridge_id or str(uuid.uuid4()),
            bridge_class=bridge_class,
            bridge_type=bridge_type,
            technology="holding_bridge" if bridge_type == "holding" else "simple_bridge",
            creator="Stasis" if bridge_class == "stasis" else "",
            name=name,
            creationtime=ari_timestamp(),
            video_mode="talker" if bridge_class == "stasis" and bridge_type == "mixing" else "none",
        )
        self.bridges[b.id] = b
        self.bridge_event("BridgeCreated", b)
        return b

    def enter_bridge(self, b: Bridge, ch: Channel) -> None:
        if ch.bridge is b:
            return
        if ch.bridge is not None:
            self.leave_bridge(ch)
        b.channels.append(ch)
        ch.bridge = b
        if ch.in_stasis and ch.stasis_app:
            b.apps[ch.stasis_app] += 1
        if b.bridge_type == "mixing" and len(b.channels) > 2:
            b.technology = "softmix"
        self.bridge_event("ChannelEnteredBridge", b, ch)

    def leave_bridge(self, ch: Channel) -> Bridge | None:
        b = ch.bridge
        if b is None:
            return None
        b.channels.remove(ch)
        ch.bridge = None
        self.bridge_event("ChannelLeftBridge", b, ch)
        return b

    def destroy_bridge(self, b: Bridge) -> None:
        if b.destroyed:
            return
        b.destroyed = True
        self.bridge_event("BridgeDestroyed", b)
        self.bridges.pop(b.id, None)

    def bridge_peer_vars(self, b: Bridge, clear: bool = False) -> None:
        chans = list(b.channels)
        if len(chans) != 2 and not clear:
            return
        for ch in chans:
            others = [c for c in chans if c is not ch]
            peer = None if clear or not others else others[0]
            self.varset(ch, "BRIDGEPEER", "" if peer is None else peer.name)
            callid = "" if peer is None else peer.protocol_id
            # a Local peer has no SIP Call-ID: Asterisk only clears a stale one
            if callid or ch.variables.get("BRIDGEPVTCALLID"):
                self.varset(ch, "BRIDGEPVTCALLID", callid)

    # ------------------------------------------------------------------ talk detection
    def start_talk_detect(self, ch: Channel) -> None:
        if ch.talk_detect and not ch.muted and ch.talking_since is None:
            self.later(ch, 0.2, lambda: self._talking_started(ch))

    def _talking_started(self, ch: Channel) -> None:
        if ch.muted or ch.talking_since is not None or ch.state != "Up":
            return
        ch.talking_since = time.monotonic()
        self.chan_event("ChannelTalkingStarted", ch)

    def mute_phone(self, ch: Channel, muted: bool) -> None:
        ch.muted = muted
        if muted and ch.talking_since is not None:
            since = ch.talking_since
            duration = int((time.monotonic() - since) * 1000 * self.config.speed)

            def finished() -> None:
                if ch.muted and ch.talking_since == since:
                    ch.talking_since = None
                    self.chan_event("ChannelTalkingFinished", ch, pre=(("duration", duration),))

            self.later(ch, 2.5, finished)
        elif not muted:
            self.start_talk_detect(ch)

    # ------------------------------------------------------------------ the dialplan
    def phone_dial(self, ep: Endpoint, exten: str) -> Channel:
        """A phone sends INVITE for ``exten`` in ``from-internal``."""
        a = self.new_pjsip(ep, "Ring", exten=exten)
        a.protocol_id = uuid.uuid4().hex[:16]
        self.varset(a, "SIPDOMAIN", "127.0.0.1")
        self.run_dialplan(a, exten)
        return a

    def run_dialplan(
        self, a: Channel, exten: str, first_app: Tuple[str, str] | None = None
    ) -> None:
        a.context = "from-internal"
        if re.fullmatch(r"1\d{3,}", exten):
            self._dp_dial_exten(a, exten, first_app)
        elif exten == self.config.queue_extension:
            self._dp_queue(a, exten)
        elif re.fullmatch(r"7\d{3}", exten):
            self._dp_stasis(a, exten)
        else:
            self.dialplan(a, "Hangup", "1", exten=exten, priority=1)
            self._end_dialplan(a, 1)

    def _dp_dial_exten(self, a: Channel, exten: str, first_app: Tuple[str, str] | None) -> None:
        noop = f'lab: "{a.caller_name}" <{a.caller_number}> -> {exten}'
        app, data = first_app or ("NoOp", noop)
        self.dialplan(a, app, data, exten=exten, priority=1)
        self.dialplan(a, "Set", "TALK_DETECT(set)=", priority=2)
        a.talk_detect = True
        self.dialplan(a, "Set", "__TRANSFER_CONTEXT=from-internal", priority=3)
        self.varset(a, "__TRANSFER_CONTEXT", "from-internal")
        self.dialplan(a, "Dial", f"PJSIP/{exten},15,Ttib(lab-predial^s^1)", priority=4)
        for var in _DIAL_VARS:
            self.varset(a, var, "")
        ep = self.endpoints.get(f"PJSIP/{exten}")
        self.dial(a, [ep] if ep is not None else [], exten, self.config.dial_timeout)

    def _dp_stasis(self, a: Channel, exten: str) -> None:
        app = self.config.stasis_app
        self.dialplan(a, "Goto", f"to-stasis,{exten},1", exten=exten, priority=1)
        self.dialplan(
            a, "NoOp", f"lab: into Stasis {app}, exten {exten}", context="to-stasis", priority=1
        )
        self.dialplan(a, "Set", "TALK_DETECT(set)=", priority=2)
        a.talk_detect = True
        args = ["dial", "1" + exten[1:]]
        self.dialplan(a, "Stasis", f"{app},{','.join(args)}", priority=3)
        self.varset(a, "STASISSTATUS", "")
        if app not in self.apps or self.apps[app].sink is None:
            self.varset(a, "STASISSTATUS", "FAILED")
            self._end_dialplan(a, 16)
            return
        self.stasis_start(a, app, args)

    def _dp_queue(self, a: Channel, exten: str) -> None:
        q = self.config.queue_name
        # As the lab's dialplan (recorded on Asterisk 22.10.1): the caller is not answered;
        # it rings until an agent answers, then learns the agent as its connected line.
        self.dialplan(a, "NoOp", f"lab: {a.caller_number} calls the {q} queue", exten=exten,
                      priority=1)
        self.dialplan(a, "Set", "TALK_DETECT(set)=", priority=2)
        a.talk_detect = True
        self.dialplan(a, "Queue", f"{q},Tt,,,30,,lab-predial", priority=3)
        a.queued = True
        a.queue_call = True
        members = [
            self.endpoints[f"PJSIP/{m}"]
            for m in self.config.queue_members
            if f"PJSIP/{m}" in self.endpoints
        ]
        self.dial(a, members, exten, 30.0, queue=True)

    def _dial_failed_epilogue(self, a: Channel, status: str, cause: int) -> None:
        """Priorities 5 and 6 of the lab dialplan after a failed Dial()."""
        self.dialplan(a, "NoOp", f"lab: DIALSTATUS={status} HANGUPCAUSE={cause}", priority=5)
        self.dialplan(a, "Hangup", "", priority=6)

    def _end_dialplan(self, a: Channel, cause: int, hangup_cause: int | None = None) -> None:
        """The dialplan ran out: Asterisk hangs the channel up."""
        self.hangup_request(a, cause)
        self._destroy(a, hangup_cause if hangup_cause is not None else cause)

    # ------------------------------------------------------------------ Dial()
    def dial(
        self, a: Channel, eps: List[Endpoint], dialstring: str, timeout: float, queue: bool = False
    ) -> None:
        """``Dial()`` (or a ringall queue) from channel ``a`` to PJSIP endpoints."""
        a.dial_started = time.monotonic()
        a.dial_exten = dialstring
        a.dial_forks = []
        a.dial_peer = None
        reachable = [ep for ep in eps if ep.registered]
        if not reachable:
            self.varset(a, "DIALSTATUS", "CHANUNAVAIL")
            self._end_dialplan(a, 16, 20)
            return
        for ep in reachable:
            b = self.new_pjsip(ep, "Down", linkedid=a.linkedid)
            b.dialed_by = a
            b.protocol_id = str(uuid.uuid4())
            self.varset(b, "DIALEDPEERNUMBER", ep.resource)
            self.varset(b, "__TRANSFER_CONTEXT", "from-internal")
            self.dialplan(b, "AppDial", "(Outgoing Line)", exten="", priority=1)
            self.connected_line(b, a.caller_name, a.caller_number)
            self.varset(b, "LOCAL(ARGC)", "0")
            self.dialplan(
                b, "Set", "TALK_DETECT(set)=", context="lab-predial", exten="s", priority=1
            )
            b.talk_detect = True
            self.dialplan(b, "Return", "", priority=2)
            b.context, b.exten, b.priority = "from-internal", "", 1
            self.varset(b, "ARGC", "")
            self.varset(b, "GOSUB_RETVAL", "")
            self.dialplan(b, "AppDial", "(Outgoing Line)")
            self.dial_event(a, b, "", ep.resource if not queue else ep.id)
            a.dial_forks.append(b)
            if len(a.dial_forks) == 1 and not queue:
                self.connected_line(a, ep.name, ep.resource)
            if self.hooks.is_busy(ep.resource, b):
                self.hangup_request(b, 17)
                self.dial_event(a, b, "BUSY")
                a.dial_forks.remove(b)
                self._destroy(b, 17)
                continue
            self.set_state(b, "Ringing")
            self._local_ringing(a, b)
            self.hooks.incoming(ep.resource, b)
        if not a.dial_forks:
            self.varset(a, "DIALSTATUS", "BUSY")
            if not a.originated:
                self._dial_failed_epilogue(a, "BUSY", 17)
            self._end_dialplan(a, 16, 17)
            return
        ring_ms = int((time.monotonic() - a.dial_started) * 1000) + 3
        self.varset(a, "RINGTIME", "0")
        self.varset(a, "RINGTIME_MS", str(ring_ms))
        for b in a.dial_forks:
            self.dial_event(a, b, "RINGING")
        self.later(a, timeout, lambda: self._dial_timeout(a))

    def _local_ringing(self, a: Channel, b: Channel) -> None:
        l1 = a.local_partner
        if a.kind == "local" and l1 is not None and l1.state != "Ringing":
            tr = l1.transfer
            if isinstance(tr, _Transfer):
                self.connected_line(tr.transferer, b.caller_name, b.caller_number)
                self.varset(tr.transferer, "BRIDGEPEER", l1.name)
            self.set_state(l1, "Ringing")
            self.caller_id(l1, b.caller_name, b.caller_number)
            self.dial_event(None, l1, "RINGING")

    def _dial_timeout(self, a: Channel) -> None:
        if a.dial_peer is not None or not a.dial_forks:
            return
        for b in list(a.dial_forks):
            self.dial_event(a, b, "NOANSWER")
        self.varset(a, "DIALSTATUS", "NOANSWER")
        for b in list(a.dial_forks):
            self._destroy(b, 0)
        a.dial_forks = []
        if a.originated:
            return
        self._dial_failed_epilogue(a, "NOANSWER", 0)
        self._end_dialplan(a, 16)

    def callee_answer(self, b: Channel) -> None:
        """The phone of a ringing Dial() callee answers."""
        a = b.dialed_by
        if a is None or b not in a.dial_forks or b.state == "Up":
            return
        self.set_state(b, "Up")
        b.answered_at = time.monotonic()
        self.varset(a, "DIALSTATUS", "ANSWER")
        self.varset(a, "DIALEDPEERNAME", b.name)
        self.varset(a, "DIALEDPEERNUMBER", a.dial_exten)
        self.dial_event(a, b, "ANSWER")
        for other in [c for c in a.dial_forks if c is not b]:
            self.dial_event(a, other, "CANCEL")
            if a.queue_call:
                # app_queue reports the cancel twice and destroys without a hangup request
                self.dial_event(a, other, "CANCEL")
            else:
                self.hangup_request(other, 26)
            self._destroy(other, 26)
        a.dial_forks = []
        a.dial_peer = b
        a.answered_at = time.monotonic()
        if a.queued:
            a.queued = False
            if b.endpoint is not None:
                self.connected_line(a, b.endpoint.name, b.endpoint.resource)
        self.set_state(a, "Up")
        bridge = self.new_bridge()
        self.dialplan(b, "AppDial", "(Outgoing Line)")
        self.enter_bridge(bridge, b)
        l1 = a.local_partner
        if a.kind == "local" and l1 is not None:
            self.set_state(l1, "Up")
            self.dial_event(None, l1, "ANSWER")
            tr = l1.transfer
            if isinstance(tr, _Transfer):
                self.varset(tr.transferer, "BRIDGEPEER", l1.name)
        self.enter_bridge(bridge, a)
        if a.kind == "local":
            self.varset(a, "ATTENDEDTRANSFER", "")
            self.bridge_peer_vars(bridge)  # once per joining channel, as Asterisk does
        if a.variables.get("BLINDTRANSFER"):
            self.varset(a, "BLINDTRANSFER", "")
        self.bridge_peer_vars(bridge)
        self.start_talk_detect(b)
        if a.kind != "local":
            self.start_talk_detect(a)

    def callee_reject(self, b: Channel, cause: int = 17) -> None:
        """The phone of a ringing callee declines (486 Busy Here)."""
        a = b.dialed_by
        if a is None or b not in a.dial_forks:
            return
        self.hangup_request(b, cause)
        self.dial_event(a, b, "BUSY")
        a.dial_forks.remove(b)
        self._destroy(b, cause)
        if not a.dial_forks:
            self.varset(a, "DIALSTATUS", "BUSY")
            if not a.originated:
                self._dial_failed_epilogue(a, "BUSY", cause)
                self._end_dialplan(a, 16, cause)

    def caller_cancel(self, a: Channel, cause: int = 16, soft: bool = False) -> None:
        """The caller hangs up while its Dial() still rings."""
        self.hangup_request(a, cause, soft)
        for b in list(a.dial_forks):
            self.dial_event(a, b, "CANCEL")
            self._destroy(b, 16)
        a.dial_forks = []
        self.varset(a, "DIALSTATUS", "CANCEL")
        self._destroy(a, 16)

    # ------------------------------------------------------------------ hangups
    def _dial_done_vars(self, a: Channel) -> None:
        now = time.monotonic()
        ans = (now - a.answered_at) * self.config.speed if a.answered_at else 0.0
        dialed = (now - a.dial_started) * self.config.speed if a.dial_started else 0.0
        self.varset(a, "ANSWEREDTIME", str(int(ans)))
        self.varset(a, "ANSWEREDTIME_MS", str(int(ans * 1000)))
        self.varset(a, "DIALEDTIME", str(int(dialed)))
        self.varset(a, "DIALEDTIME_MS", str(int(dialed * 1000)))
        self.varset(a, "DIALSTATUS", "ANSWER")

    def hangup(self, ch: Channel, cause: int = 16, *, ari: bool = False) -> None:
        """Hang ``ch`` up, from its phone (``ari=False``) or ``DELETE /channels`` (``ari``)."""
        if ch.destroyed:
            return
        first_cause = 32 if ari else cause
        if ch.dialed_by is not None and ch in ch.dialed_by.dial_forks:
            if ari:
                self.hangup_request(ch, 32, soft=True)
                ch.dialed_by.dial_forks.remove(ch)
                a = ch.dialed_by
                self.dial_event(a, ch, "CANCEL")
                self._destroy(ch, cause)
                if not a.dial_forks:
                    self.varset(a, "DIALSTATUS", "CANCEL")
                    self._end_dialplan(a, 16)
            else:
                self.callee_reject(ch)
            return
        if ch.dial_forks:
            self.caller_cancel(ch, first_cause, soft=ari)
            return
        tr = ch.transfer
        if (
            isinstance(tr, _Transfer)
            and tr.consult_bridge is not None
            and ch.bridge is tr.consult_bridge
        ):
            self._complete_attended(ch, tr)
            return
        self.hangup_request(ch, None if ch.queue_call and not ari else first_cause, soft=ari)
        b = ch.bridge
        if b is not None:
            if len(b.channels) == 2:
                self.bridge_peer_vars(b, clear=True)
            self.leave_bridge(ch)
        if ch.dial_peer is not None:
            self._dial_done_vars(ch)
            self.hangup_request(ch, 16, soft=True)
        if ch.in_stasis:
            self.varset(ch, "STASISSTATUS", "SUCCESS")
            self.stasis_event("StasisEnd", ch)
        self._destroy(ch, cause)
        self._after_leave(b)
        if ch.kind == "local" and ch.local_partner is not None:
            if ch.dp_local:
                self.local_partner_hangup(ch.local_partner, cause)
            else:
                self._local_gone(ch.local_partner)

    def _after_leave(self, b: Bridge | None) -> None:
        """A party left bridge ``b``: a dialplan bridge with one party left dissolves."""
        if b is None or b.bridge_class != "basic" or b.destroyed:
            return
        if len(b.channels) == 1:
            self._peer_gone(b.channels[0])
        if not b.channels:
            self.destroy_bridge(b)

    def _peer_gone(self, y: Channel) -> None:
        """The other party of ``y``'s dialplan bridge left; Asterisk hangs ``y`` up."""
        b = y.bridge
        if y.dial_peer is not None:  # a caller whose Dial() returns
            self._dial_done_vars(y)
            self.hangup_request(y, 16, soft=y.kind == "local")
            self.leave_bridge(y)
            if b is not None and not b.channels:
                self.destroy_bridge(b)
            if y.kind == "local":
                self.hangup_request(y, 16, soft=True)
            self._destroy(y, 16)
            if y.kind == "local" and y.local_partner is not None:
                self._local_gone(y.local_partner)
        elif y.kind == "local":
            self.leave_bridge(y)
            self._destroy(y, 16)
            if b is not None and not b.channels:
                self.destroy_bridge(b)
            if y.local_partner is not None:
                self._local_gone(y.local_partner)
        elif y.in_stasis:
            self.leave_bridge(y)
            if b is not None and not b.channels:
                self.destroy_bridge(b)
        else:  # a Dial() callee
            self.leave_bridge(y)
            if b is not None and not b.channels:
                self.destroy_bridge(b)
            self._destroy(y, 16)

    def _local_gone(self, other: Channel) -> None:
        """One half of a Local channel pair went away; the other half follows."""
        if other.destroyed:
            return
        if other.dial_forks:
            self.caller_cancel(other)
            return
        if other.dial_peer is not None and other.local_partner is not None:
            other.local_partner = None
            self.hangup(other, 16)
            return
        b = other.bridge
        other.local_partner = None
        if b is not None:
            self.leave_bridge(other)
        self._destroy(other, 16)
        self._after_leave(b)

    # ------------------------------------------------------------------ phone features
    def phone_hold(self, ch: Channel, hold: bool, musicclass: str = "default") -> None:
        if hold:
            ch.held = True
            self.chan_event("ChannelHold", ch, (("musicclass", musicclass),))
        else:
            ch.held = False
            self.chan_event("ChannelUnhold", ch)
        if ch.bridge is not None:
            self.bridge_peer_vars(ch.bridge)
        self._device_update(ch)

    def phone_dtmf(self, ch: Channel, digits: str) -> None:
        for d in digits:
            if ch.destroyed:
                return
            self.chan_event("ChannelDtmfReceived", ch, (("digit", d), ("duration_ms", 180)))
            self._feature(ch, d)

    def _feature(self, ch: Channel, d: str) -> None:
        tr = ch.transfer
        if isinstance(tr, _Transfer):
            if tr.consult_bridge is None:
                tr.digits += d
                if re.fullmatch(r"1\d{3}", tr.digits) or tr.digits == self.config.queue_extension:
                    self._attended_dial(ch, tr)
                return
            ch.feature_buffer = (ch.feature_buffer + d)[-2:]
            if ch.feature_buffer == "*3":
                ch.feature_buffer = ""
                self._threeway(ch, tr)
            elif ch.feature_buffer == "*2":
                ch.feature_buffer = ""
                self._complete_attended(ch, tr)
            elif ch.feature_buffer == "*1":
                ch.feature_buffer = ""
                self._abort_attended(ch, tr)
            return
        ch.feature_buffer = (ch.feature_buffer + d)[-2:]
        if (
            ch.feature_buffer == "*2"
            and ch.bridge is not None
            and ch.bridge.bridge_class == "basic"
        ):
            ch.feature_buffer = ""
            ch.transfer = _Transfer(ch, ch.bridge)
            ch.held = True
            self.chan_event("ChannelHold", ch, (("musicclass", "N/A"),))
            for other in ch.bridge.channels:
                if other is not ch and other.endpoint is not None:
                    self.device_event(other.endpoint.id, "ONHOLD")
            ch.held = False

    def _attended_dial(self, a: Channel, tr: _Transfer) -> None:
        exten = tr.digits
        n = next(self._local_seq)
        base = f"Local/{exten}@from-internal-{n:08x}"
        l1 = self._new_channel(
            "local", base + ";1", "Down", (a.caller_name, a.caller_number), linkedid=a.linkedid
        )
        l2 = self._new_channel(
            "local", base + ";2", "Ring", (a.caller_name, a.caller_number), linkedid=a.linkedid
        )
        l1.local_partner, l2.local_partner = l2, l1
        l1.transfer = tr
        tr.local1, tr.local2 = l1, l2
        for ch, order in ((l1, ("TRANSFERERNAME", "ATTENDEDTRANSFER")),):
            for var in order:
                self.varset(ch, var, a.name)
            self.varset(ch, "__TRANSFER_CONTEXT", "from-internal")
        consult = self.new_bridge()
        tr.consult_bridge = consult
        self.varset(l2, "ATTENDEDTRANSFER", a.name)
        self.varset(l2, "TRANSFERERNAME", a.name)
        self.varset(l2, "__TRANSFER_CONTEXT", "from-internal")
        self.caller_id(l2, a.caller_name, a.caller_number)
        self.connected_line(l1, a.caller_name, a.caller_number)
        self.enter_bridge(consult, l1)
        self.varset(l1, "ATTENDEDTRANSFER", "")
        self.enter_bridge(consult, a)
        self.varset(l1, "BRIDGEPEER", a.name)
        self.varset(l1, "BRIDGEPVTCALLID", a.protocol_id)
        self.varset(a, "BRIDGEPEER", l1.name)
        self.varset(a, "BRIDGEPVTCALLID", "")
        self.connected_line(a, "", "")
        self.run_dialplan(l2, exten)

    def _complete_attended(self, a: Channel, tr: _Transfer) -> None:
        """The transferer hangs up (or dials ``*2``) during the consultation: transfer."""
        l1, consult, orig = tr.local1, tr.consult_bridge, tr.original_bridge
        assert l1 is not None and consult is not None
        self.hangup_request(a, 16)
        self.varset(a, "BRIDGEPEER", "")
        self.leave_bridge(a)
        if a.dial_peer is not None:
            self._dial_done_vars(a)
        self.hangup_request(a, 16, soft=True)
        transferee = [c for c in orig.channels if c is not a]
        ev = self._base("BridgeMerged")
        ev["bridge"] = orig.to_json()
        ev["bridge_from"] = consult.to_json()
        self._deliver(self._finish(ev), self._bridge_targets(orig))
        self.leave_bridge(l1)
        self.enter_bridge(orig, l1)
        self.bridge_peer_vars(orig)
        ev = self._attended_transfer(a, l1, transferee, orig, consult, "bridge")
        ev["destination_bridge"] = orig.id
        self._deliver(self._finish(ev), self._bridge_targets(orig, [a, l1, *transferee]))
        self.destroy_bridge(consult)
        a.transfer = None
        self._destroy(a, 16)
        l2 = tr.local2
        target = l2.dial_peer if l2 is not None else None
        if transferee:
            t = transferee[0]
            self.connected_line(l1, t.caller_name, t.caller_number)
            if target is not None:
                self.connected_line(t, target.caller_name, target.caller_number)
                self.connected_line(target, t.caller_name, t.caller_number)
            self.bridge_peer_vars(orig)
            if l2 is not None and l2.bridge is not None:
                self.bridge_peer_vars(l2.bridge)
            if l2 is not None:
                self.caller_id(l2, t.caller_name, t.caller_number)

    def _threeway(self, a: Channel, tr: _Transfer) -> None:
        l1, consult, orig = tr.local1, tr.consult_bridge, tr.original_bridge
        assert l1 is not None and consult is not None
        ev = self._base("BridgeMerged")
        ev["bridge"] = orig.to_json()
        ev["bridge_from"] = consult.to_json()
        self._deliver(self._finish(ev), self._bridge_targets(orig))
        self.leave_bridge(a)
        self.enter_bridge(orig, a)
        self.leave_bridge(l1)
        self.enter_bridge(orig, l1)
        orig.technology = "softmix"
        transferee = [c for c in orig.channels if c is not a and c is not l1]
        ev = self._attended_transfer(a, l1, transferee, orig, consult, "threeway")
        ev["destination_threeway_channel"] = self.cj(a)
        ev["destination_threeway_bridge"] = orig.to_json()
        self._deliver(self._finish(ev), self._bridge_targets(orig, [a, l1, *transferee]))
        self.destroy_bridge(consult)
        a.transfer = None
        self.phone_hold(a, False)

    def _abort_attended(self, a: Channel, tr: _Transfer) -> None:
        l1, l2 = tr.local1, tr.local2
        a.transfer = None
        if l2 is not None and not l2.destroyed:
            self.hangup(l2, 16)
        if l1 is not None and not l1.destroyed:
            b = l1.bridge
            self.leave_bridge(l1)
            self._destroy(l1, 16)
            if b is not None:
                self.leave_bridge(a)
                self.destroy_bridge(b)
        self.enter_bridge(tr.original_bridge, a)
        self.bridge_peer_vars(tr.original_bridge)
        self.phone_hold(a, False)

    def blind_transfer(self, a: Channel, exten: str) -> None:
        """The phone of ``a`` sends a SIP REFER to ``exten`` (an external blind transfer)."""
        b = a.bridge
        if b is None or len(b.channels) != 2:
            raise AriError(422, "Channel not in a two-party bridge")
        t = next(c for c in b.channels if c is not a)
        self.chan_event("ChannelUnhold", a)
        self.varset(t, "BLINDTRANSFER", a.name)
        self.varset(a, "BLINDTRANSFER", t.name)
        self.varset(t, "SIPTRANSFER", "yes")
        self.bridge_peer_vars(b)
        self.varset(t, "SIPREFERRINGCONTEXT", "from-internal")
        self.varset(t, "SIPREFERTOHDR", f"sip:{exten}@127.0.0.1:5060")
        ev = self._base("BridgeBlindTransfer")
        ev["channel"] = self.cj(a)
        ev["exten"] = exten
        ev["context"] = "from-internal"
        ev["result"] = "Success"
        ev["is_external"] = True
        ev["transferee"] = self.cj(t)
        ev["bridge"] = b.to_json()
        self._deliver(self._finish(ev), self._bridge_targets(b, [a, t]))
        self.bridge_peer_vars(b, clear=True)
        self.leave_bridge(a)
        self.leave_bridge(t)
        self.destroy_bridge(b)
        t.dialed_by = None
        t.dial_peer = None
        self.dialplan(t, "AppDial", "(Outgoing Line)")
        if a.dial_peer is not None:
            self._dial_done_vars(a)
        a.dial_peer = None
        self.hangup_request(a, 16)
        self._destroy(a, 16)
        t.answered_at = 0.0
        self._dp_dial_exten_after_transfer(t, exten)

    def _dp_dial_exten_after_transfer(self, t: Channel, exten: str) -> None:
        t.exten, t.priority = exten, 1
        self.dialplan(t, "Set", "TALK_DETECT(set)=", exten=exten, priority=2)
        self.dialplan(t, "Set", "__TRANSFER_CONTEXT=from-internal", priority=3)
        self.varset(t, "__TRANSFER_CONTEXT", "from-internal")
        self.dialplan(t, "Dial", f"PJSIP/{exten},15,Ttib(lab-predial^s^1)", priority=4)
        for var in _DIAL_VARS:
            self.varset(t, var, "")
        ep = self.endpoints.get(f"PJSIP/{exten}")
        self.dial(t, [ep] if ep is not None else [], exten, self.config.dial_timeout)

    # ------------------------------------------------------------------ Stasis
    def stasis_start(self, ch: Channel, app: str, args: List[str]) -> None:
        ch.stasis_app = app
        ch.in_stasis = True
        ch.stasis_args = list(args)
        self.stasis_event("StasisStart", ch, list(args))

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
            a.variables[k] = str(v)
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

    # ------------------------------------------------------------------ Local pairs, test dialplan
    def new_local_pair(
        self,
        exten: str,
        context: str,
        channel_id: str | None = None,
        other_id: str | None = None,
        linkedid: str | None = None,
    ) -> Tuple[Channel, Channel]:
        """A ``Local/exten@context`` pair as ARI originate makes it (``;2`` gets ``id;2``
        when only the ``;1`` id is given, and ``other_id`` counts only with a ``;1`` id, as
        in Asterisk)."""
        n = next(self._local_seq)
        base = f"Local/{exten}@{context}-{n:08x}"
        l1 = self._new_channel(
            "local", base + ";1", "Down", ("", ""), channel_id=channel_id, linkedid=linkedid
        )
        # Asterisk uses the ;2 id only with a ;1 id (else both are generated)
        oid = (other_id or f"{channel_id};2") if channel_id else None
        l2 = self._new_channel(
            "local", base + ";2", "Ring", ("", ""), channel_id=oid, linkedid=l1.linkedid
        )
        l1.local_partner, l2.local_partner = l2, l1
        l1.dp_local = l2.dp_local = True
        l1.context = l2.context = context
        l1.exten = l2.exten = exten
        return l1, l2

    def local_dial(self, l1: Channel) -> None:
        """Dial the ``;1`` half of an originated pair: its ``;2`` half runs the dialplan."""
        l2 = l1.local_partner
        l1.dial_started = time.monotonic()
        self.dial_event(None, l1, "", l1.name.split("/", 1)[1].rsplit("-", 1)[0])
        if l2 is None:
            return
        if l2.context != TEST_CONTEXT or l2.exten not in TEST_DIALPLAN:
            self.dial_event(None, l1, "CHANUNAVAIL")
            self.dp_hangup(l2, 1)
            return
        self.dp_run(l2, l2.context, l2.exten, 1)

    def dp_run(self, ch: Channel, context: str, exten: str, priority: int = 1) -> None:
        """Run the test dialplan (context ``default``) on ``ch`` from ``exten,priority``."""
        ch.context, ch.exten = context, exten
        if context != TEST_CONTEXT or exten not in TEST_DIALPLAN:
            self.dialplan(ch, "", "", priority=priority)
            self.dp_hangup(ch, 16)
            return
        self._dp_step(ch, priority)

    def _dp_step(self, ch: Channel, priority: int) -> None:
        if ch.destroyed:
            return
        steps = TEST_DIALPLAN.get(ch.exten, [])
        if priority > len(steps):  # the dialplan ran out
            self.dp_hangup(ch, 16 if ch.state == "Up" else 0)
            return
        app, data = steps[priority - 1]
        self.dialplan(ch, app, data, priority=priority)

        def step() -> None:
            self._dp_step(ch, priority + 1)

        if app == "Answer":
            self._dp_answer(ch)
            step()
        elif app == "Ringing":
            if ch.state != "Up":
                self.set_state(ch, "Ringing")
                p = ch.local_partner
                if p is not None and p.state not in ("Up", "Ringing"):
                    self.set_state(p, "Ringing")
                    self.dial_event(None, p, "RINGING")
            step()
        elif app in ("Wait", "Playback"):
            seconds = float(data.rsplit("/", 1)[-1]) if app == "Wait" or "/" in data else 1.0
            self.later(ch, seconds, step)
        elif app == "Hangup":
            self.dp_hangup(ch, int(data) if data else 16)
        elif app == "Stasis":
            name, *args = data.split(",")
            self.varset(ch, "STASISSTATUS", "")
            target = self.apps.get(name)
            if target is None or target.sink is None:
                self.varset(ch, "STASISSTATUS", "FAILED")
                step()
                return
            self.stasis_start(ch, name, args)
        elif app == "Echo":
            pass  # echoes until hung up
        else:
            step()

    def _dp_answer(self, ch: Channel) -> None:
        if ch.state != "Up":
            self.set_state(ch, "Up")
            ch.answered_at = time.monotonic()
        p = ch.local_partner
        if p is not None and p.state != "Up" and not p.destroyed:
            self.set_state(p, "Up")
            p.answered_at = time.monotonic()
            p.created_only = False
            if p.originated:
                self.dial_event(None, p, "ANSWER")
            cont, p.on_answer = p.on_answer, None
            if cont is not None:
                cont()

    def dp_hangup(self, ch: Channel, cause: int) -> None:
        """The dialplan hangs ``ch`` up (``Hangup(cause)`` or no priority left)."""
        if ch.destroyed:
            return
        self.hangup_request(ch, cause)
        b = ch.bridge
        if b is not None:
            self.leave_bridge(ch)
        if ch.in_stasis:
            self.stasis_event("StasisEnd", ch)
        self._destroy(ch, cause)
        self._after_leave(b)
        p = ch.local_partner
        if p is not None:
            self.local_partner_hangup(p, cause)

    def local_partner_hangup(self, p: Channel, cause: int) -> None:
        """The other half of a hung-up Local pair follows, with the same cause."""
        if p.destroyed:
            return
        p.local_partner = None
        self.hangup_request(p, cause)
        b = p.bridge
        if b is not None:
            self.leave_bridge(p)
        if p.in_stasis:
            self.varset(p, "STASISSTATUS", "SUCCESS")
            self.stasis_event("StasisEnd", p)
        self._destroy(p, cause)
        self._after_leave(b)

    # ------------------------------------------------------------------ ARI channel functions
    def set_variable(self, ch: Channel, name: str, value: str, report: bool = False) -> None:
        """``POST /channels/{id}/variable`` (and originate variables): plain variables and
        the dialplan functions the simulator models."""
        if name in ("CALLERID(name)", "CALLERID(num)", "CALLERID(all)"):
            cname, cnum = ch.caller_name, ch.caller_number
            if name == "CALLERID(name)":
                cname = value
            elif name == "CALLERID(num)":
                cnum = value
            else:
                cname, cnum = _parse_callerid(value)
            self.caller_id(ch, cname, cnum)
            return
        if name in ("CONNECTEDLINE(name)", "CONNECTEDLINE(num)", "CONNECTEDLINE(all)"):
            cname, cnum = ch.connected_name, ch.connected_number
            if name == "CONNECTEDLINE(name)":
                cname = value
            elif name == "CONNECTEDLINE(num)":
                cnum = value
            else:
                cname, cnum = _parse_callerid(value)
            self.connected_line(ch, cname, cnum)
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

    # ------------------------------------------------------------------ apps
    def app_subscribe(self, name: str, ch: Channel) -> None:
        """An app that originates a channel is subscribed to it (and stays so after
        ``continue``), as ``res/ari/resource_channels.c`` does, for both Local halves."""
        app = self.apps.get(name)
        if app is None:
            return
        if not app.subscriptions.get("channel:" + ch.id):
            app.subscriptions["channel:" + ch.id] += 1

    def app_json(self, app: App) -> JsonObj:
        chans = [c.id for c in self.channels.values() if c.stasis_app == app.name]
        bridges = [b.id for b in self.bridges.values() if b.apps.get(app.name)]
        return app.to_json(chans, bridges)

    def connect_app(
        self, name: str, subscribe_all: bool, sink: Callable[[str], None]
    ) -> Callable[[str], None] | None:
        """Register a websocket for ``name``; returns the replaced connection's sink, if any."""
        app = self.apps.get(name)
        old: Callable[[str], None] | None = None
        if app is None:
            app = App(name, subscribe_all=subscribe_all)
            self.apps[name] = app
        elif app.sink is not None:
            old = app.sink
            if app.wants("ApplicationReplaced"):
                old(
                    json.dumps(
                        {"type": "ApplicationReplaced", "application": name}, separators=(",", ":")
                    )
                )
        app.sink = sink
        return old

    def disconnect_app(self, name: str, sink: Callable[[str], None]) -> None:
        """A websocket went away: keep endpoint subscriptions and filter, drop the rest."""
        app = self.apps.get(name)
        if app is None or app.sink != sink:
            return
        app.sink = None
        app.subscribe_all = False
        for source in [s for s in app.subscriptions if s.startswith("bridge:")]:
            del app.subscriptions[source]
        if not app.subscriptions and not any(c.stasis_app == name for c in self.channels.values()):
            del self.apps[name]

    def resolve_source(self, source: str) -> str:
        """Validate an ``eventSource`` and return its canonical key."""
        scheme, sep, ident = source.partition(":")
        if not sep or scheme not in ("channel", "bridge", "endpoint", "deviceState"):
            raise AriError(400, "Invalid event source URI scheme")
        if scheme == "channel" and ident and ident not in self.channels:
            raise AriError(422, "Event source does not exist")
        if scheme == "bridge" and ident:
            b = self.bridges.get(ident)
            if b is None or b.bridge_class != "stasis":
                raise AriError(422, "Event source does not exist")
        if scheme == "endpoint" and ident:
            if "/" in ident:
                if ident not in self.endpoints:
                    raise AriError(422, "Event source does not exist")
            elif not any(e.technology == ident for e in self.endpoints.values()):
                raise AriError(422, "Event source does not exist")
        return f"{scheme}:{ident}"


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
