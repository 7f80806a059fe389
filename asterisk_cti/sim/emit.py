"""The events: building ARI event JSON and routing it to the apps that should see it.

An event goes to the apps subscribed to its channel, bridge or endpoint, the app that owns the
channel in Stasis, and every ``subscribeAll`` app, each filtered by its event filter. Delivery
serialises the event once and hands the text to each app's connection queue, so nothing blocks
under the PBX lock. Runs with the PBX lock held.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable, Dict, List, Sequence, Tuple

from .objects import APP_MARK, App, Bridge, Channel, Endpoint, JsonObj, ari_timestamp
from .state import AriError, PbxState

logger = logging.getLogger(__name__)

_MARK_JSON = json.dumps(APP_MARK)


class Emitter(PbxState):
    """Event builders (one method per ARI event kind) and routing to apps."""

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

    def _channel_targets(self, chans: Sequence[Channel]) -> Dict[str, int]:
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
                if ch.endpoint is not None:
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
        """The dialplan's ``Set(name=value)``: the variable and a ChannelVarset (with the
        name as given: ``__CTI_DATA``)."""
        if not name.startswith("LOCAL("):
            self.store_variable(ch, name, value)
        self.chan_event("ChannelVarset", ch, pre=(("variable", name), ("value", value)))

    @staticmethod
    def store_variable(ch: Channel, name: str, value: str) -> None:
        """Set a variable without an event (originate's variables, inheritance): stored
        under its name without underscores, ``__``/``_`` remembered for inheritance."""
        base = name.lstrip("_")
        ch.variables[base] = value
        ch.inherit[base] = min(2, len(name) - len(base))

    def inherit_variables(self, parent: Channel, child: Channel,
                          skip: Tuple[str, ...] = ()) -> None:
        """Asterisk's ``ast_channel_inherit_variables``, run when ``parent`` creates
        ``child`` (a Dial fork, a queue member, an originate with ``originator``): ``__NAME``
        passes on as ``__NAME`` (every generation), ``_NAME`` as ``NAME`` (this one only).
        Asterisk 22 publishes a ChannelVarset on the child for each (recorded on the lab:
        ``__CTI_DATA`` on a queue member, after its ChannelCreated); names in ``skip`` are
        inherited without one (the caller publishes them itself where the recordings do)."""
        for base, level in list(parent.inherit.items()):
            if not level or base not in parent.variables:
                continue
            full = "__" + base if level == 2 else base
            if full in skip:
                self.store_variable(child, full, parent.variables[base])
            else:
                self.varset(child, full, parent.variables[base])

    @staticmethod
    def copy_variables(l1: Channel, l2: Channel) -> None:
        """A Local channel's ``;2`` half gets every variable of its ``;1`` half when it is
        called (core_local's local_call), with the names as they are."""
        for base, value in l1.variables.items():
            l2.variables.setdefault(base, value)
            l2.inherit.setdefault(base, l1.inherit.get(base, 0))

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
