"""Typed, immutable views of ARI objects and events.

This is the parsing layer. :func:`parse_event` turns one decoded websocket frame (a ``dict``)
into an :class:`Event` subclass chosen by its ``type``; unknown types become a plain
:class:`Event` that still carries the whole raw dict. Objects are thin, immutable wrappers
over the decoded JSON: a field is read from the dict when it is accessed, so parsing costs one
object per event on the hot path, and every field Asterisk sends is kept in :attr:`raw` even
when this module does not know it yet.

The processor thread creates events; any thread may read them. They never change.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import (
    Any,
    Callable,
    Dict,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Tuple,
    Type,
    Union,
    cast,
)

from ..errors import EventParseError

_EMPTY: Mapping[str, Any] = {}


class CallerID(NamedTuple):
    """A party: a number and a display name (ARI ``CallerID``)."""

    name: str
    number: str

    @classmethod
    def from_raw(cls, raw: Optional[Mapping[str, Any]]) -> CallerID:
        """Build from ARI JSON, tolerating a missing or partial object."""
        if not raw:
            return _NO_CALLER
        return cls(str(raw.get("name") or ""), str(raw.get("number") or ""))


_NO_CALLER = CallerID("", "")


class DialplanCEP(NamedTuple):
    """A dialplan location (ARI ``DialplanCEP``): context, extension, priority, application."""

    context: str
    exten: str
    priority: int
    app_name: str
    app_data: str

    @classmethod
    def from_raw(cls, raw: Optional[Mapping[str, Any]]) -> DialplanCEP:
        """Build from ARI JSON, tolerating a missing or partial object."""
        raw = raw or _EMPTY
        try:
            priority = int(raw.get("priority") or 0)
        except (TypeError, ValueError):
            priority = 0
        return cls(
            str(raw.get("context") or ""),
            str(raw.get("exten") or ""),
            priority,
            str(raw.get("app_name") or ""),
            str(raw.get("app_data") or ""),
        )


def parse_timestamp(value: str) -> Optional[datetime]:
    """Parse an ARI timestamp such as ``2026-11-26T03:53:31.659+0000``.

    :returns: an aware :class:`~datetime.datetime`, or ``None`` if the text is not one.
    """
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")
    except (TypeError, ValueError):
        try:
            return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")
        except (TypeError, ValueError):
            return None


def endpoint_of_channel_name(name: str) -> str:
    """Return the endpoint part of a channel name.

    ``PJSIP/1000-0000001c`` gives ``PJSIP/1000``; ``Local/1006@from-internal-00000000;1`` gives
    ``Local/1006@from-internal``. A name without the ``-suffix`` is returned unchanged.
    """
    cut = name.rfind("-")
    if cut <= 0 or "/" not in name[:cut]:
        return name
    return name[:cut]


class AriObject:
    """Base of the immutable wrappers: holds the decoded JSON in :attr:`raw`.

    Two wrappers are equal when their types and raw dicts are equal. :attr:`raw` is shared, not
    copied: treat it as read-only.
    """

    __slots__ = ("raw",)
    raw: Mapping[str, Any]

    def __init__(self, raw: Mapping[str, Any]) -> None:
        object.__setattr__(self, "raw", raw)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.raw == self.raw

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._identity()))

    def _identity(self) -> str:
        return str(self.raw.get("id", ""))

    def __reduce__(self) -> Tuple[Any, ...]:
        return (type(self), (dict(self.raw),))

    def _str(self, key: str) -> str:
        value = self.raw.get(key)
        return value if isinstance(value, str) else ("" if value is None else str(value))


class Channel(AriObject):
    """An ARI ``Channel``: one leg of a call (``PJSIP/1000-0000001c``, ``Local/...;1``)."""

    __slots__ = ()

    @property
    def id(self) -> str:
        """The unique channel id (``1795665211.0``)."""
        return self._str("id")

    @property
    def name(self) -> str:
        """The channel name (``PJSIP/1000-00000000``)."""
        return self._str("name")

    @property
    def endpoint(self) -> str:
        """The endpoint this channel belongs to, derived from :attr:`name` (``PJSIP/1000``)."""
        return endpoint_of_channel_name(self._str("name"))

    @property
    def technology(self) -> str:
        """The channel technology (``PJSIP``, ``Local``)."""
        return self._str("name").split("/", 1)[0]

    @property
    def state(self) -> str:
        """ARI channel state: Down, Rsrvd, OffHook, Dialing, Ring, Ringing, Up, Busy, ..."""
        return self._str("state")

    @property
    def protocol_id(self) -> str:
        """The protocol's call id (the SIP Call-ID for PJSIP), empty when unknown."""
        return self._str("protocol_id")

    @property
    def caller(self) -> CallerID:
        """The caller id of this channel."""
        return CallerID.from_raw(self.raw.get("caller"))

    @property
    def connected(self) -> CallerID:
        """The connected line: the party at the other end as Asterisk knows it."""
        return CallerID.from_raw(self.raw.get("connected"))

    @property
    def accountcode(self) -> str:
        """The account code."""
        return self._str("accountcode")

    @property
    def dialplan(self) -> DialplanCEP:
        """Where the channel is in the dialplan."""
        return DialplanCEP.from_raw(self.raw.get("dialplan"))

    @property
    def creationtime(self) -> str:
        """Creation time as Asterisk sent it (see :func:`parse_timestamp`)."""
        return self._str("creationtime")

    @property
    def language(self) -> str:
        """The channel's language."""
        return self._str("language")

    @property
    def channelvars(self) -> Mapping[str, str]:
        """Variables added by ``channelvars`` in ari.conf (empty when not configured)."""
        value = self.raw.get("channelvars")
        return value if isinstance(value, dict) else _EMPTY

    @property
    def linkedid(self) -> Optional[str]:
        """The linkedid from ``channelvars = CHANNEL(linkedid)``, when the server sends it."""
        value = self.channelvars.get("CHANNEL(linkedid)") or self.channelvars.get("linkedid")
        return str(value) if value else None

    def __repr__(self) -> str:
        return f"Channel(id={self.id!r}, name={self.name!r}, state={self.state!r})"


class Bridge(AriObject):
    """An ARI ``Bridge``: channels that exchange media."""

    __slots__ = ()

    @property
    def id(self) -> str:
        """The bridge id."""
        return self._str("id")

    @property
    def technology(self) -> str:
        """``simple_bridge``, ``softmix`` (a conference), ``native_rtp``, ..."""
        return self._str("technology")

    @property
    def bridge_type(self) -> str:
        """``mixing``, ``holding``, ..."""
        return self._str("bridge_type")

    @property
    def bridge_class(self) -> str:
        """``basic`` for dialplan bridges, ``stasis`` for ARI bridges."""
        return self._str("bridge_class")

    @property
    def creator(self) -> str:
        """Who created the bridge."""
        return self._str("creator")

    @property
    def name(self) -> str:
        """The bridge name."""
        return self._str("name")

    @property
    def channels(self) -> Tuple[str, ...]:
        """Ids of the channels in the bridge."""
        value = self.raw.get("channels")
        return tuple(str(c) for c in value) if isinstance(value, list) else ()

    @property
    def creationtime(self) -> str:
        """Creation time as Asterisk sent it."""
        return self._str("creationtime")

    def __repr__(self) -> str:
        return f"Bridge(id={self.id!r}, technology={self.technology!r}, channels={self.channels!r})"


class Endpoint(AriObject):
    """An ARI ``Endpoint``: a phone or trunk (``PJSIP/1000``)."""

    __slots__ = ()

    def _identity(self) -> str:
        return self.resource_id

    @property
    def technology(self) -> str:
        """``PJSIP``."""
        return self._str("technology")

    @property
    def resource(self) -> str:
        """``1000``."""
        return self._str("resource")

    @property
    def resource_id(self) -> str:
        """``PJSIP/1000``."""
        return f"{self.technology}/{self.resource}"

    @property
    def state(self) -> str:
        """``online``, ``offline``, ``unknown``."""
        return self._str("state")

    @property
    def channel_ids(self) -> Tuple[str, ...]:
        """Ids of the endpoint's current channels."""
        value = self.raw.get("channel_ids")
        return tuple(str(c) for c in value) if isinstance(value, list) else ()

    def __repr__(self) -> str:
        return f"Endpoint({self.resource_id!r}, state={self.state!r})"


def _channel(raw: Mapping[str, Any], key: str) -> Optional[Channel]:
    value = raw.get(key)
    return Channel(value) if isinstance(value, dict) else None


def _bridge(raw: Mapping[str, Any], key: str) -> Optional[Bridge]:
    value = raw.get(key)
    return Bridge(value) if isinstance(value, dict) else None


class Event(AriObject):
    """An ARI event. Unknown event types are delivered as this class, raw dict included.

    :attr:`channel` is the channel the event is about, or ``None`` when it has none (for
    ``Dial`` it is the peer, the channel being dialled).
    """

    __slots__ = ()

    def _identity(self) -> str:
        return f"{self.type}@{self.timestamp}"

    @property
    def type(self) -> str:
        """The ARI event type (``ChannelCreated``)."""
        return self._str("type")

    @property
    def application(self) -> str:
        """The ARI application the event was sent to."""
        return self._str("application")

    @property
    def timestamp(self) -> str:
        """The event time as Asterisk sent it (``2026-11-26T03:53:31.659+0000``)."""
        return self._str("timestamp")

    @property
    def time(self) -> Optional[datetime]:
        """:attr:`timestamp` parsed into an aware datetime (``None`` if malformed)."""
        return parse_timestamp(self._str("timestamp"))

    @property
    def asterisk_id(self) -> str:
        """The id of the Asterisk server that sent the event."""
        return self._str("asterisk_id")

    @property
    def channel(self) -> Optional[Channel]:
        """The channel the event is about, if any."""
        return _channel(self.raw, "channel")

    @property
    def bridge(self) -> Optional[Bridge]:
        """The bridge the event is about, if any."""
        return _bridge(self.raw, "bridge")

    def __repr__(self) -> str:
        chan = self.raw.get("channel")
        name = chan.get("name") if isinstance(chan, dict) else None
        extra = f", channel={name!r}" if name else ""
        return f"{type(self).__name__}(type={self.type!r}, timestamp={self.timestamp!r}{extra})"


class ChannelEvent(Event):
    """An event about one channel."""

    __slots__ = ()

    @property
    def channel(self) -> Channel:
        """The channel the event is about."""
        value = self.raw.get("channel")
        return Channel(value if isinstance(value, dict) else _EMPTY)


class ChannelCreated(ChannelEvent):
    """A channel was created (a phone went off-hook, or an incoming call reached it)."""

    __slots__ = ()


class ChannelStateChange(ChannelEvent):
    """The channel's :attr:`Channel.state` changed (Ring, Ringing, Up, ...)."""

    __slots__ = ()


class ChannelConnectedLine(ChannelEvent):
    """The connected line (the other party) of the channel changed."""

    __slots__ = ()


class ChannelCallerId(ChannelEvent):
    """The caller id of the channel changed."""

    __slots__ = ()

    @property
    def caller_presentation(self) -> int:
        """The numeric presentation value."""
        return int(self.raw.get("caller_presentation") or 0)

    @property
    def caller_presentation_txt(self) -> str:
        """The presentation as text."""
        return self._str("caller_presentation_txt")


class _Cause(ChannelEvent):
    __slots__ = ()

    @property
    def cause(self) -> int:
        """The Q.850 hangup cause (16 normal clearing, 17 busy, 19 no answer, ...)."""
        try:
            return int(self.raw.get("cause") or 0)
        except (TypeError, ValueError):
            return 0

    @property
    def tech_cause(self) -> Optional[int]:
        """The technology's own cause (a SIP status for PJSIP), when Asterisk sends one."""
        value = self.raw.get("tech_cause")
        return int(value) if isinstance(value, int) else None


class ChannelDestroyed(_Cause):
    """The channel was destroyed (hung up)."""

    __slots__ = ()

    @property
    def cause_txt(self) -> str:
        """The cause as text (``Normal Clearing``)."""
        return self._str("cause_txt")


class ChannelHangupRequest(_Cause):
    """A hangup was requested on the channel."""

    __slots__ = ()

    @property
    def soft(self) -> bool:
        """Whether this is a soft hangup request."""
        return bool(self.raw.get("soft"))


class ChannelHold(ChannelEvent):
    """The phone put the call on hold (SIP re-INVITE sendonly). Not sent for ARI holds."""

    __slots__ = ()

    @property
    def musicclass(self) -> str:
        """The music-on-hold class suggested by the holder."""
        return self._str("musicclass")


class ChannelUnhold(ChannelEvent):
    """The phone took the call off hold."""

    __slots__ = ()


class ChannelTalkingStarted(ChannelEvent):
    """Talk detection saw speech start (needs ``TALK_DETECT(set)=`` on the channel)."""

    __slots__ = ()


class ChannelTalkingFinished(ChannelEvent):
    """Talk detection saw speech stop."""

    __slots__ = ()

    @property
    def duration(self) -> int:
        """How long the talking lasted, in milliseconds."""
        return int(self.raw.get("duration") or 0)


class ChannelEnteredBridge(ChannelEvent):
    """The channel entered :attr:`bridge`."""

    __slots__ = ()

    @property
    def bridge(self) -> Bridge:
        """The bridge entered."""
        value = self.raw.get("bridge")
        return Bridge(value if isinstance(value, dict) else _EMPTY)


class ChannelLeftBridge(ChannelEvent):
    """The channel left :attr:`bridge`."""

    __slots__ = ()

    @property
    def bridge(self) -> Bridge:
        """The bridge left."""
        value = self.raw.get("bridge")
        return Bridge(value if isinstance(value, dict) else _EMPTY)


class ChannelVarset(Event):
    """A channel variable was set (or a global one, then :attr:`channel` is ``None``)."""

    __slots__ = ()

    @property
    def variable(self) -> str:
        """The variable name."""
        return self._str("variable")

    @property
    def value(self) -> str:
        """The new value."""
        return self._str("value")


class ChannelDialplan(ChannelEvent):
    """The channel moved in the dialplan."""

    __slots__ = ()

    @property
    def dialplan_app(self) -> str:
        """The application being run."""
        return self._str("dialplan_app")

    @property
    def dialplan_app_data(self) -> str:
        """Its arguments."""
        return self._str("dialplan_app_data")


class ChannelDtmfReceived(ChannelEvent):
    """A DTMF digit was received on the channel."""

    __slots__ = ()

    @property
    def digit(self) -> str:
        """The digit."""
        return self._str("digit")

    @property
    def duration_ms(self) -> int:
        """Its duration in milliseconds."""
        return int(self.raw.get("duration_ms") or 0)


class Dial(Event):
    """A dial attempt changed state. :attr:`channel` is the peer (the channel dialled)."""

    __slots__ = ()

    @property
    def caller(self) -> Optional[Channel]:
        """The calling channel (absent for an originate without a caller)."""
        return _channel(self.raw, "caller")

    @property
    def peer(self) -> Channel:
        """The channel being dialled."""
        value = self.raw.get("peer")
        return Channel(value if isinstance(value, dict) else _EMPTY)

    @property
    def forwarded(self) -> Optional[Channel]:
        """The channel the call was forwarded to, if any."""
        return _channel(self.raw, "forwarded")

    @property
    def channel(self) -> Channel:
        """Same as :attr:`peer`."""
        return self.peer

    @property
    def dialstring(self) -> str:
        """The dial string."""
        return self._str("dialstring")

    @property
    def dialstatus(self) -> str:
        """Empty while dialling, then RINGING, ANSWER, BUSY, NOANSWER, CONGESTION,
        CHANUNAVAIL, CANCEL, ..."""
        return self._str("dialstatus")

    @property
    def forward(self) -> str:
        """The forwarding target, if the call was forwarded."""
        return self._str("forward")


class StasisStart(ChannelEvent):
    """The channel entered a Stasis application."""

    __slots__ = ()

    @property
    def args(self) -> Tuple[str, ...]:
        """The arguments given to ``Stasis()`` or to the originate."""
        value = self.raw.get("args")
        return tuple(str(a) for a in value) if isinstance(value, list) else ()

    @property
    def replace_channel(self) -> Optional[Channel]:
        """The channel this one replaced (after a masquerade), if any."""
        return _channel(self.raw, "replace_channel")


class StasisEnd(ChannelEvent):
    """The channel left the Stasis application."""

    __slots__ = ()


class EndpointStateChange(Event):
    """An endpoint's state changed (registration, channel count)."""

    __slots__ = ()

    @property
    def endpoint(self) -> Endpoint:
        """The endpoint."""
        value = self.raw.get("endpoint")
        return Endpoint(value if isinstance(value, dict) else _EMPTY)


class DeviceStateChanged(Event):
    """A device state changed (``device_state`` has ``name`` and ``state``)."""

    __slots__ = ()

    @property
    def device_name(self) -> str:
        """The device name (``PJSIP/1000``)."""
        ds = self.raw.get("device_state")
        return str(ds.get("name", "")) if isinstance(ds, dict) else ""

    @property
    def device_state(self) -> str:
        """``NOT_INUSE``, ``INUSE``, ``RINGING``, ``UNAVAILABLE``, ..."""
        ds = self.raw.get("device_state")
        return str(ds.get("state", "")) if isinstance(ds, dict) else ""


class BridgeCreated(Event):
    """A bridge was created."""

    __slots__ = ()


class BridgeDestroyed(Event):
    """A bridge was destroyed."""

    __slots__ = ()


class BridgeMerged(Event):
    """Bridge :attr:`bridge_from` was merged into :attr:`bridge`."""

    __slots__ = ()

    @property
    def bridge_from(self) -> Optional[Bridge]:
        """The bridge that was merged away."""
        return _bridge(self.raw, "bridge_from")


class BridgeVideoSourceChanged(Event):
    """The video source of a bridge changed."""

    __slots__ = ()


class _Transfer(Event):
    __slots__ = ()

    @property
    def result(self) -> str:
        """``Success``, ``Fail``, ``Invalid``, ``Not Permitted``."""
        return self._str("result")

    @property
    def is_external(self) -> bool:
        """True when the transfer was done by the phone (SIP REFER) rather than a feature."""
        return bool(self.raw.get("is_external"))

    @property
    def transferee(self) -> Optional[Channel]:
        """The channel being transferred."""
        return _channel(self.raw, "transferee")


class BridgeBlindTransfer(_Transfer):
    """A blind transfer: :attr:`channel` transferred its call to :attr:`exten`."""

    __slots__ = ()

    @property
    def exten(self) -> str:
        """The transfer destination extension."""
        return self._str("exten")

    @property
    def context(self) -> str:
        """The transfer destination context."""
        return self._str("context")

    @property
    def replace_channel(self) -> Optional[Channel]:
        """The channel replacing the transferer, if any."""
        return _channel(self.raw, "replace_channel")


class BridgeAttendedTransfer(_Transfer):
    """An attended transfer completed (``destination_type``: bridge, threeway, app, ...)."""

    __slots__ = ()

    @property
    def channel(self) -> Optional[Channel]:
        """The transferer's first leg."""
        return _channel(self.raw, "transferer_first_leg")

    @property
    def transferer_first_leg(self) -> Optional[Channel]:
        """The transferer's leg to the transferee."""
        return _channel(self.raw, "transferer_first_leg")

    @property
    def transferer_second_leg(self) -> Optional[Channel]:
        """The transferer's leg to the transfer target."""
        return _channel(self.raw, "transferer_second_leg")

    @property
    def transfer_target(self) -> Optional[Channel]:
        """The party the call was transferred to."""
        return _channel(self.raw, "transfer_target")

    @property
    def transferer_first_leg_bridge(self) -> Optional[Bridge]:
        """The bridge of the first leg."""
        return _bridge(self.raw, "transferer_first_leg_bridge")

    @property
    def transferer_second_leg_bridge(self) -> Optional[Bridge]:
        """The bridge of the second leg."""
        return _bridge(self.raw, "transferer_second_leg_bridge")

    @property
    def destination_type(self) -> str:
        """``bridge``, ``application``, ``link``, ``threeway`` or ``fail``."""
        return self._str("destination_type")

    @property
    def destination_bridge(self) -> str:
        """The id of the bridge the parties ended up in, when ``destination_type`` is bridge."""
        return self._str("destination_bridge")

    @property
    def destination_threeway_bridge(self) -> Optional[Bridge]:
        """The three-way bridge, when ``destination_type`` is threeway."""
        return _bridge(self.raw, "destination_threeway_bridge")


class ChannelTransfer(ChannelEvent):
    """A SIP REFER reached a channel in Stasis (Asterisk 22.3+); the app handles it."""

    __slots__ = ()


class ChannelUserevent(Event):
    """A ``UserEvent()`` from the dialplan."""

    __slots__ = ()

    @property
    def eventname(self) -> str:
        """The user event's name."""
        return self._str("eventname")

    @property
    def userevent(self) -> Mapping[str, Any]:
        """The user event's fields."""
        value = self.raw.get("userevent")
        return value if isinstance(value, dict) else _EMPTY


class PlaybackStarted(Event):
    """A playback started (``playback`` holds its id, media and target)."""

    __slots__ = ()

    @property
    def playback(self) -> Mapping[str, Any]:
        """The ARI Playback object."""
        value = self.raw.get("playback")
        return value if isinstance(value, dict) else _EMPTY


class PlaybackFinished(PlaybackStarted):
    """A playback finished."""

    __slots__ = ()


class ApplicationReplaced(Event):
    """Another websocket took over this application name; this connection gets no more events."""

    __slots__ = ()


#: Every event type with a class of its own. Other types parse as :class:`Event`.
EVENT_CLASSES: Dict[str, Type[Event]] = {
    cls.__name__: cls
    for cls in (
        ChannelCreated,
        ChannelStateChange,
        ChannelConnectedLine,
        ChannelCallerId,
        ChannelDestroyed,
        ChannelHangupRequest,
        ChannelHold,
        ChannelUnhold,
        ChannelTalkingStarted,
        ChannelTalkingFinished,
        ChannelEnteredBridge,
        ChannelLeftBridge,
        ChannelVarset,
        ChannelDialplan,
        ChannelDtmfReceived,
        Dial,
        StasisStart,
        StasisEnd,
        EndpointStateChange,
        DeviceStateChanged,
        BridgeCreated,
        BridgeDestroyed,
        BridgeMerged,
        BridgeVideoSourceChanged,
        BridgeBlindTransfer,
        BridgeAttendedTransfer,
        ChannelTransfer,
        ChannelUserevent,
        PlaybackStarted,
        PlaybackFinished,
        ApplicationReplaced,
    )
}

#: Every event type Asterisk 22's ARI defines (rest-api/api-docs/events.json). Used to build a
#: server-side *disallowed* filter: types not listed here (added by a later Asterisk) still
#: reach the client, and are filtered there.
ARI_EVENT_TYPES: Tuple[str, ...] = (
    "ApplicationMoveFailed",
    "ApplicationRegistered",
    "ApplicationReplaced",
    "ApplicationUnregistered",
    "BridgeAttendedTransfer",
    "BridgeBlindTransfer",
    "BridgeCreated",
    "BridgeDestroyed",
    "BridgeMerged",
    "BridgeVideoSourceChanged",
    "ChannelCallerId",
    "ChannelConnectedLine",
    "ChannelCreated",
    "ChannelDestroyed",
    "ChannelDialplan",
    "ChannelDtmfReceived",
    "ChannelEnteredBridge",
    "ChannelHangupRequest",
    "ChannelHold",
    "ChannelLeftBridge",
    "ChannelStateChange",
    "ChannelTalkingFinished",
    "ChannelTalkingStarted",
    "ChannelToneDetected",
    "ChannelTransfer",
    "ChannelUnhold",
    "ChannelUserevent",
    "ChannelVarset",
    "ContactStatusChange",
    "DeviceStateChanged",
    "Dial",
    "EndpointStateChange",
    "PeerStatusChange",
    "PlaybackContinuing",
    "PlaybackFinished",
    "PlaybackStarted",
    "RecordingFailed",
    "RecordingFinished",
    "RecordingStarted",
    "StasisEnd",
    "StasisStart",
    "TextMessageReceived",
)


# JSONDecoder sets scan_once (the C scanner) in __init__; typeshed does not declare it.
_scan_once: Callable[[str, int], Tuple[Any, int]] = cast(Any, json.JSONDecoder()).scan_once


def decode_frame(frame: Union[bytes, str]) -> Any:
    """Decode one websocket text frame as JSON, a quarter faster than ``json.loads``.

    It skips ``json.loads``' encoding detection and wrapper layers (frames are UTF-8 by
    RFC 6455) and calls the C scanner directly; anything unusual (leading white space, an
    empty frame) goes through ``json.loads`` for its exact error. Processor thread.

    :raises ValueError: when the frame is not one JSON value in UTF-8.
    """
    text = frame.decode("utf-8") if isinstance(frame, bytes) else frame
    try:
        value, end = _scan_once(text, 0)
    except StopIteration:
        return json.loads(text)
    if end != len(text) and text[end:].strip():
        raise ValueError(f"extra data after the JSON value at character {end}")
    return value


def parse_event(data: Any) -> Event:
    """Wrap one decoded ARI websocket message in its typed event class.

    :param data: the result of ``json.loads`` on a frame.
    :returns: an instance of the class registered for ``data["type"]`` in
        :data:`EVENT_CLASSES`, or a plain :class:`Event` for an unknown type.
    :raises EventParseError: if ``data`` is not a JSON object with a string ``type``.
    """
    if type(data) is not dict:
        raise EventParseError(f"ARI message is a {type(data).__name__}, not an object")
    kind = data.get("type")
    if type(kind) is not str or not kind:
        raise EventParseError("ARI message has no string 'type'")
    return EVENT_CLASSES.get(kind, Event)(data)


def channel_ids_of(event: Event) -> List[str]:
    """Every channel id an event refers to (its channel, Dial's caller and peer, transfer legs).

    :param event: any event.
    :returns: the ids, without duplicates, in a stable order.
    """
    ids: List[str] = []
    for key in ("channel", "caller", "peer", "transferee", "transfer_target",
                "transferer_first_leg", "transferer_second_leg", "replace_channel"):
        value = event.raw.get(key)
        if isinstance(value, dict):
            cid = value.get("id")
            if isinstance(cid, str) and cid not in ids:
                ids.append(cid)
    return ids
