"""The catalogue of ARI events: one typed, immutable class per event type, and :func:`parse_event`.

:func:`parse_event` turns one decoded websocket frame (a ``dict``) into an :class:`Event`
subclass chosen by its ``type``; unknown types become a plain :class:`Event` that still carries
the whole raw dict. A field is read from the dict when it is accessed, so parsing costs one
object per event on the hot path. The objects events carry live in :mod:`.objects`, the frame
decoding and id helpers in :mod:`.wire`.

The processor thread creates events; any thread may read them. They never change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, Type

from ..errors import EventParseError

# The "X as X" names are re-exports: this module held them before objects and wire were split
# out of it, and modules written against that layout still import them from here. New code
# imports them from asterisk_cti.events.
from .objects import _EMPTY, AriObject, _bridge, _channel
from .objects import Bridge as Bridge
from .objects import CallerID as CallerID
from .objects import Channel as Channel
from .objects import DialplanCEP as DialplanCEP
from .objects import Endpoint as Endpoint
from .wire import channel_ids_of as channel_ids_of
from .wire import decode_frame as decode_frame
from .wire import endpoint_of_channel_name as endpoint_of_channel_name
from .wire import parse_timestamp


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


#: Sets an :class:`AriObject`'s ``raw`` slot directly (its member descriptor): with
#: ``cls.__new__(cls)`` it builds an event without running a Python ``__init__`` (the
#: processor builds one per frame).
set_raw: Callable[[AriObject, Mapping[str, Any]], None] = AriObject.__dict__["raw"].__set__


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
    cls = EVENT_CLASSES.get(kind, Event)
    event = cls.__new__(cls)
    set_raw(event, data)
    return event
