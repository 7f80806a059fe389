"""Who is concerned by an ARI event: the monitored line of its channel, the bridges monitored
channels are in, and so the lane key its listeners' delivery goes on.

Pure code on plain dicts (no I/O, no threads): :class:`LineFilter` answers "is this channel
on a monitored line"; :class:`Router` keeps the bridge membership of monitored channels and
gives each event its lane key (the line), so that a line sees its bridge's events in order.

Threads: the processor thread only. :class:`LineFilter` is replaced (never mutated) when the
monitored set changes (:meth:`Router.set_sources`); only its bridge map is processor-thread
state.
"""

from __future__ import annotations

from typing import Any, Dict, FrozenSet, Hashable, Iterable, List, Mapping, Optional

from ..events.catalogue import endpoint_of_channel_name

#: The lane key of channel-listener events with no channel, endpoint or bridge (such as
#: ``ApplicationReplaced``).
APP_KEY = "app"
#: Channel names whose line :class:`LineFilter` remembers (past this it starts again).
_LINE_CACHE = 4096
#: Longer channel names are not remembered.
_NAME_MAX = 160
_UNSEEN = object()


class LineFilter:
    """Which channels are on monitored lines, and the bridges they are in.

    Immutable sets of endpoints (``PJSIP/1000``) and technologies (``PJSIP``); the bridge map
    is processor-thread state.
    """

    __slots__ = ("endpoints", "techs", "bridges", "_lines")

    def __init__(self, sources: Iterable[str]) -> None:
        srcs = list(sources)
        self.endpoints: FrozenSet[str] = frozenset(s for s in srcs if "/" in s)
        self.techs: FrozenSet[str] = frozenset(s for s in srcs if "/" not in s)
        #: bridge id -> {monitored channel id: its line}
        self.bridges: Dict[str, Dict[str, str]] = {}
        #: channel name -> its monitored line or None: a channel's events repeat its name
        #: (bounded: cleared when full)
        self._lines: Dict[str, Optional[str]] = {}

    def line_of(self, channel: Any) -> Optional[str]:
        """The monitored line of a raw channel dict, or None."""
        if channel.__class__ is not dict:
            return None
        name = channel.get("name")
        if name.__class__ is not str:
            return None
        lines = self._lines
        line = lines.get(name, _UNSEEN)
        if line is not _UNSEEN:
            return line  # type: ignore[return-value]
        ep = endpoint_of_channel_name(name)
        if ep in self.endpoints or (self.techs and ep.split("/", 1)[0] in self.techs):
            line = ep
        else:
            line = None
        if len(name) <= _NAME_MAX:  # a hostile name must not pin memory
            if len(lines) >= _LINE_CACHE:
                lines.clear()
            lines[name] = line
        return line

    def covers(self, endpoint: str) -> bool:
        """Whether an endpoint id (``PJSIP/1000``) is monitored."""
        return endpoint in self.endpoints or endpoint.split("/", 1)[0] in self.techs


class Router:
    """Lane keys of ARI events and the bridge membership they imply (processor thread)."""

    __slots__ = ("filter",)

    def __init__(self, sources: Iterable[str]) -> None:
        self.filter = LineFilter(sources)

    def set_sources(self, sources: Iterable[str]) -> None:
        """The monitored set changed: a new filter, the same bridge map."""
        new = LineFilter(sources)
        new.bridges = self.filter.bridges
        self.filter = new

    def key_for(self, etype: str, data: Dict[str, Any]) -> Optional[Hashable]:
        """The lane key of a channel event for channel listeners (None: not ours); bridge
        events also update the membership."""
        flt = self.filter
        chan = data.get("channel")
        if etype == "ChannelEnteredBridge" or etype == "ChannelLeftBridge":
            return self.track_bridges(etype, data)
        if chan is not None:
            line = flt.line_of(chan)
            if line is not None:
                return line
            if etype == "Dial":
                return flt.line_of(data.get("caller"))
            return None
        if etype == "Dial":
            return flt.line_of(data.get("peer")) or flt.line_of(data.get("caller"))
        if etype == "EndpointStateChange":
            ep = data.get("endpoint")
            if type(ep) is dict:
                rid = f"{ep.get('technology')}/{ep.get('resource')}"
                return rid if flt.covers(rid) else None
            return None
        bridge = data.get("bridge")
        if type(bridge) is dict:
            members = flt.bridges.get(str(bridge.get("id")))
            key = next(iter(members.values())) if members else None
            if etype in ("BridgeDestroyed", "BridgeMerged"):
                self.track_bridges(etype, data)
            return key
        return APP_KEY

    def track_bridges(self, etype: str, data: Dict[str, Any]) -> Optional[Hashable]:
        """Keep the bridges monitored channels are in; return the lane key of a bridge event
        that concerns them: the monitored channel's line, or for another channel (the far
        party, a Local channel of a transfer) the line of a monitored channel in that bridge,
        so that a line sees its bridge's events in order."""
        flt = self.filter
        bridge = data.get("bridge")
        bid = bridge.get("id") if type(bridge) is dict else None
        if bid is None:
            return None
        if etype == "BridgeDestroyed":
            flt.bridges.pop(bid, None)
            return None
        if etype == "BridgeMerged":
            src = data.get("bridge_from")
            if type(src) is dict and src.get("id") in flt.bridges:
                flt.bridges.setdefault(bid, {}).update(flt.bridges.pop(src["id"]))
            return None
        chan = data.get("channel")
        cid = str(chan.get("id")) if type(chan) is dict else ""
        line = flt.line_of(chan)
        members = flt.bridges.get(bid)
        if etype == "ChannelEnteredBridge":
            if line is not None:
                flt.bridges.setdefault(bid, {})[cid] = line
                return line
            return next(iter(members.values())) if members else None
        # ChannelLeftBridge
        if members is None:
            return line
        if line is not None:
            members.pop(cid, None)
            if not members:
                del flt.bridges[bid]
            return line
        return next(iter(members.values()))

    def rebuild(self, channels: Iterable[Mapping[str, Any]],
                bridges: Iterable[Mapping[str, Any]]) -> Dict[str, str]:
        """Rebuild the bridge map from a REST snapshot (a resynchronisation).

        :returns: monitored channel id -> its line.
        """
        flt = self.filter
        mine: Dict[str, str] = {}
        for c in channels:
            line = flt.line_of(c)
            if line is not None:
                mine[str(c.get("id"))] = line
        flt.bridges = {}
        for b in bridges:
            chans = b.get("channels")
            if isinstance(chans, list):
                members = {c: mine[c] for c in chans if type(c) is str and c in mine}
                if members:
                    flt.bridges[str(b.get("id"))] = members
        return mine

    def covered_endpoints(self, endpoints: Iterable[Mapping[str, Any]]
                          ) -> List[Mapping[str, Any]]:
        """The endpoints of a REST snapshot that are monitored."""
        flt = self.filter
        return [e for e in endpoints
                if flt.covers(f"{e.get('technology')}/{e.get('resource')}")]
