"""Channels and bridges come and go: creation, destruction, bridge membership, talk detection.

Runs with the PBX lock held (talk detection's timers take it on the scheduler thread).
"""

from __future__ import annotations

import time
import uuid
from typing import List, Tuple

from .emit import Emitter
from .objects import CAUSE_TXT, Bridge, Channel, Endpoint, ari_timestamp


class Lifecycle(Emitter):
    """Creating and destroying channels and bridges, entering and leaving bridges."""

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
        context: str | None = None,
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
        if context is not None:
            ch.context = context  # ... in the context of its endpoint
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

    def _dial_done_vars(self, a: Channel) -> None:
        now = time.monotonic()
        ans = (now - a.answered_at) * self.config.speed if a.answered_at else 0.0
        dialed = (now - a.dial_started) * self.config.speed if a.dial_started else 0.0
        self.varset(a, "ANSWEREDTIME", str(int(ans)))
        self.varset(a, "ANSWEREDTIME_MS", str(int(ans * 1000)))
        self.varset(a, "DIALEDTIME", str(int(dialed)))
        self.varset(a, "DIALEDTIME_MS", str(int(dialed * 1000)))
        self.varset(a, "DIALSTATUS", "ANSWER")

    def stasis_start(self, ch: Channel, app: str, args: List[str]) -> None:
        ch.stasis_app = app
        ch.in_stasis = True
        self.stasis_event("StasisStart", ch, list(args))
