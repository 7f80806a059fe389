"""What Asterisk's objects look like: immutable views of ARI ``Channel``, ``Bridge``,
``Endpoint``, ``CallerID`` and ``DialplanCEP``.

Objects are thin wrappers over the decoded JSON: a field is read from the dict when it is
accessed, and every field Asterisk sends is kept in :attr:`AriObject.raw`. The processor thread
creates them; any thread may read them. They never change.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple, Optional, Tuple

from .wire import endpoint_of_channel_name

_EMPTY: Mapping[str, Any] = {}


class CallerID(NamedTuple):
    """A caller id as ARI sends it (ARI ``CallerID``): a display name and a number.

    Read the fields by name (``caller.number``, ``caller.name``) and build one with keywords
    (``CallerID(name="Kai", number="1000")``). The tuple order is ARI's own, *name first*, the
    opposite of the call model's :class:`~asterisk_cti.Party` (*number first*): the two orders
    are public and kept, so code that indexes or unpacks either keeps working, but code that
    moves a value from one to the other by position swaps name and number.
    :meth:`Party.from_caller <asterisk_cti.Party.from_caller>` converts by name.
    """

    name: str
    number: str

    @classmethod
    def from_raw(cls, raw: Optional[Mapping[str, Any]]) -> CallerID:
        """Build from ARI JSON, tolerating a missing or partial object."""
        if not raw:
            return _NO_CALLER
        # positional on purpose: a keyword call costs three times as much (0.6 vs 0.2 us)
        return cls(str(raw.get("name") or ""), str(raw.get("number") or ""))


_NO_CALLER = CallerID(name="", number="")


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
        return cls(  # positional on purpose, as in CallerID.from_raw
            str(raw.get("context") or ""),
            str(raw.get("exten") or ""),
            priority,
            str(raw.get("app_name") or ""),
            str(raw.get("app_data") or ""),
        )


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
