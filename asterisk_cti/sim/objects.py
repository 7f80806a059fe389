"""The simulator's objects (endpoints, channels, bridges, apps) and the JSON Asterisk 22 gives them.

Pure data: :class:`Endpoint`, :class:`Channel`, :class:`Bridge`, :class:`App` and the
functions that render them exactly as ARI does (same keys, same order). Nothing here locks or
starts threads; :class:`~asterisk_cti.sim.pbx.Pbx` owns every object and touches them only
while holding its lock.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Sequence, Tuple

__all__ = [
    "BRIDGE_ALL",
    "App",
    "AttendedTransfer",
    "Bridge",
    "Channel",
    "Endpoint",
    "JsonObj",
    "ari_timestamp",
]

JsonObj = Dict[str, Any]

#: How Asterisk lists an all-bridges (``bridge:`` with an empty id) subscription in
#: ``bridge_ids`` (``res/stasis/app.c``: ``#define BRIDGE_ALL "__AST_BRIDGE_ALL_TOPIC"``).
BRIDGE_ALL = "__AST_BRIDGE_ALL_TOPIC"

#: Marker replaced per app when an event is serialised once and sent to several apps.
APP_MARK = "\x00app\x00"

CAUSE_TXT = {
    0: "Unknown",
    1: "Unallocated (unassigned) number",
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    20: "Subscriber absent",
    21: "Call Rejected",
    26: "Answered elsewhere",
    32: "No circuit/channel available",
    34: "Circuit/channel congestion",
}


#: The ``channelvars`` of the lab's ari.conf (``channelvars = CHANNEL(linkedid),CTI_DATA``):
#: what ``channelvars=True`` stands for.
LAB_CHANNELVARS: Tuple[str, ...] = ("CHANNEL(linkedid)", "CTI_DATA")


def ari_timestamp(t: float | None = None) -> str:
    """Render a time like Asterisk does: ``2026-11-26T03:53:31.659+0000`` (UTC)."""
    if t is None:
        t = time.time()
    ms = int((t - int(t)) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{ms:03d}+0000"


@dataclass
class Endpoint:
    """A PJSIP endpoint (one simulated phone's registration)."""

    technology: str
    resource: str
    name: str
    registered: bool = True
    channel_ids: List[str] = field(default_factory=list)
    device_state: str = "NOT_INUSE"

    @property
    def id(self) -> str:
        return f"{self.technology}/{self.resource}"

    def to_json(self) -> JsonObj:
        return {
            "technology": self.technology,
            "resource": self.resource,
            "state": "online" if self.registered else "offline",
            "channel_ids": list(self.channel_ids),
        }


@dataclass(eq=False)
class Channel:
    """One channel: its ARI snapshot fields and the simulator's call-control state."""

    id: str
    name: str
    state: str
    caller_name: str
    caller_number: str
    creationtime: str
    kind: str = "pjsip"  # pjsip | local | snoop
    endpoint: Endpoint | None = None
    protocol_id: str = ""
    connected_name: str = ""
    connected_number: str = ""
    context: str = "from-internal"
    exten: str = "s"
    priority: int = 1
    app_name: str = ""
    app_data: str = ""
    linkedid: str = ""
    variables: Dict[str, str] = field(default_factory=dict)
    # how each variable (by its name without underscores) is inherited by the channels this
    # one creates: 2 set as __NAME (every generation), 1 as _NAME (one), 0 not at all
    inherit: Dict[str, int] = field(default_factory=dict)
    # call control
    destroyed: bool = False
    bridge: Bridge | None = None
    stasis_app: str | None = None  # the app that owns it (also before StasisStart)
    in_stasis: bool = False  # StasisStart sent
    dialed_by: Channel | None = None  # for a Dial() callee: the caller
    dial_forks: List[Channel] = field(default_factory=list)  # for a caller: callees ringing
    dial_peer: Channel | None = None  # for a caller: the callee that answered
    dial_exten: str = ""
    dial_started: float = 0.0
    answered_at: float = 0.0
    originated: bool = False  # created by POST /channels (its Dial has no caller)
    queued: bool = False  # waiting in Queue(): not answered until an agent answers
    queue_call: bool = False  # entered Queue() (its hangup and cancels look different)
    talk_detect: bool = False
    talking_since: float | None = None
    muted: bool = False
    held: bool = False
    local_partner: Channel | None = None  # Local ;1 <-> ;2
    transfer: AttendedTransfer | None = None  # attended-transfer state of a transferer
    feature_buffer: str = ""
    hangup_cause: int = 16
    timers: List[Any] = field(default_factory=list)
    on_answer: Callable[[], None] | None = None  # ARI originate continuation
    created_only: bool = False  # POST /channels/create: in Stasis, 412 until dialled and up
    dp_local: bool = False  # a Local half of an ARI originate running the test dialplan
    hold_intercept: bool = False  # HOLD_INTERCEPT(set): ARI hold raises ChannelHold
    accountcode: str = ""
    language: str = "en"
    reported: List[str] = field(default_factory=list)  # variables set with report_events

    def to_json(self, channelvars: Sequence[str] | bool = ()) -> JsonObj:
        """The ARI Channel object; ``channelvars`` are the names ari.conf lists (``True``:
        the lab's, :data:`LAB_CHANNELVARS`), each present, empty when unset."""
        obj: JsonObj = {
            "id": self.id,
            "name": self.name,
            "state": self.state,
            "protocol_id": self.protocol_id,
            "caller": {"name": self.caller_name, "number": self.caller_number},
            "connected": {"name": self.connected_name, "number": self.connected_number},
            "accountcode": self.accountcode,
            "dialplan": {
                "context": self.context,
                "exten": self.exten,
                "priority": self.priority,
                "app_name": self.app_name,
                "app_data": self.app_data,
            },
            "creationtime": self.creationtime,
            "language": self.language,
        }
        if channelvars is True:
            channelvars = LAB_CHANNELVARS
        elif channelvars is False:
            channelvars = ()
        if channelvars or self.reported:
            cv: JsonObj = {}
            for name in channelvars:
                cv[name] = (self.linkedid if name == "CHANNEL(linkedid)"
                            else self.variables.get(name, ""))
            for name in self.reported:
                cv[name] = self.variables.get(name, "")
            obj["channelvars"] = cv
        return obj


@dataclass(eq=False)
class Bridge:
    """A bridge: a dialplan (``basic``) bridge or one created over ARI (``stasis``)."""

    id: str
    bridge_class: str = "basic"
    bridge_type: str = "mixing"
    technology: str = "simple_bridge"
    creator: str = ""
    name: str = ""
    creationtime: str = ""
    video_mode: str = "none"
    channels: List[Channel] = field(default_factory=list)
    apps: Counter[str] = field(default_factory=Counter)  # Stasis apps watching it
    destroyed: bool = False

    def to_json(self) -> JsonObj:
        return {
            "id": self.id,
            "technology": self.technology,
            "bridge_type": self.bridge_type,
            "bridge_class": self.bridge_class,
            "creator": self.creator,
            "name": self.name,
            "channels": sorted(c.id for c in self.channels),
            "creationtime": self.creationtime,
            "video_mode": self.video_mode,
        }


@dataclass(eq=False)
class App:
    """A Stasis application: subscriptions (reference-counted), filter, websocket sink."""

    name: str
    subscriptions: Counter[str] = field(default_factory=Counter)  # "endpoint:PJSIP/1000"...
    subscribe_all: bool = False
    allowed: List[JsonObj] = field(default_factory=list)
    disallowed: List[JsonObj] = field(default_factory=list)
    sink: Callable[[str], None] | None = None  # set while a websocket is connected
    delivered: int = 0  # frames handed to the websocket so far

    def wants(self, event_type: str) -> bool:
        """Apply the event filter: disallowed wins; an empty allowed list allows all."""
        if any(f.get("type") == event_type for f in self.disallowed):
            return False
        if self.allowed:
            return any(f.get("type") == event_type for f in self.allowed)
        return True

    def to_json(self, stasis_channel_ids: List[str], stasis_bridge_ids: List[str]) -> JsonObj:
        channel_ids = list(stasis_channel_ids)
        bridge_ids = list(stasis_bridge_ids)
        endpoint_ids: List[str] = []
        device_names: List[str] = []
        for source in sorted(self.subscriptions):
            scheme, _, ident = source.partition(":")
            if scheme == "channel" and ident not in channel_ids:
                channel_ids.append(ident)
            elif scheme == "bridge":
                ident = ident or BRIDGE_ALL
                if ident not in bridge_ids:
                    bridge_ids.append(ident)
            elif scheme == "endpoint":
                endpoint_ids.append(ident)
            elif scheme == "deviceState":
                device_names.append(ident)
        return {
            "name": self.name,
            "channel_ids": channel_ids,
            "bridge_ids": bridge_ids,
            "endpoint_ids": endpoint_ids,
            "device_names": device_names,
            "events_allowed": list(self.allowed),
            "events_disallowed": list(self.disallowed),
        }


class AttendedTransfer:
    """State of an attended transfer started with ``*2`` by a transferer channel."""

    def __init__(self, transferer: Channel, original_bridge: Bridge) -> None:
        self.transferer = transferer
        self.original_bridge = original_bridge
        self.digits = ""
        self.local1: Channel | None = None
        self.local2: Channel | None = None
        self.consult_bridge: Bridge | None = None
