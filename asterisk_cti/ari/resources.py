"""Every ARI request the SDK makes, one short method each, grouped by ARI resource.

``Ari(rest).channels.hold(channel_id)`` is ``POST /channels/{channelId}/hold``. The methods name
the operation, its path and parameters as Asterisk 22's ``rest-api/api-docs/*.json`` describe
them, and nothing else: the low-level request (session, deadlines, retries, error mapping,
answer validation) is :class:`~asterisk_cti.ari.rest.AriRest`'s. A new ARI operation is one
method here (and, for call control, one public method in :mod:`asterisk_cti.control`).

Threads: any; each method blocks its caller for one request.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from .rest import (
    APPLICATION_FIELDS,
    BRIDGE_FIELDS,
    CHANNEL_FIELDS,
    ENDPOINT_FIELDS,
    AriRest,
    ari_path,
    check_fields,
    listing,
    one_object,
)

__all__ = ["Ari", "Applications", "Asterisk", "Bridges", "Channels", "Endpoints", "Playbacks"]


class _Resource:
    __slots__ = ("_rest",)

    def __init__(self, rest: AriRest) -> None:
        self._rest = rest


class Channels(_Resource):
    """``/channels``."""

    __slots__ = ()

    def list(self) -> List[Dict[str, Any]]:
        """``GET /channels``: every channel, each checked to be a Channel object.

        :raises InvalidResponseError: when the answer is not a list of Channel objects (an
            HTML page, ``{"error": ...}``, a number): a resynchronisation must not treat it
            as "no channels" and clear every call.
        """
        return listing(self._rest.get("channels"), "/channels", CHANNEL_FIELDS)

    def get(self, channel_id: str) -> Dict[str, Any]:
        """``GET /channels/{id}``, checked to be a Channel object.

        :raises NotFoundError: when the channel is gone.
        :raises InvalidResponseError: when the answer is not a Channel object.
        """
        path = ari_path("channels", channel_id)
        body = one_object(self._rest.get("channels", channel_id), path)
        check_fields(body, path, CHANNEL_FIELDS)
        return body

    def originate(self, params: Mapping[str, Any],
                  variables: Optional[Mapping[str, str]] = None) -> Any:
        """``POST /channels?endpoint=..`` (into an application with ``app``, or into the
        dialplan with ``extension``/``context``/``priority``), channel variables in the body."""
        return self._rest.post("channels", params=params,
                               json_body={"variables": dict(variables)} if variables else None)

    def hangup(self, channel_id: str, reason: str = "normal") -> Any:
        """``DELETE /channels/{id}?reason=``."""
        return self._rest.delete("channels", channel_id, params={"reason": reason})

    def answer(self, channel_id: str) -> Any:
        """``POST /channels/{id}/answer``."""
        return self._rest.post("channels", channel_id, "answer")

    def ring(self, channel_id: str) -> Any:
        """``POST /channels/{id}/ring``: ringing indication to the channel."""
        return self._rest.post("channels", channel_id, "ring")

    def ring_stop(self, channel_id: str) -> Any:
        """``DELETE /channels/{id}/ring``."""
        return self._rest.delete("channels", channel_id, "ring")

    def hold(self, channel_id: str) -> Any:
        """``POST /channels/{id}/hold`` (Asterisk plays its default music class)."""
        return self._rest.post("channels", channel_id, "hold")

    def unhold(self, channel_id: str) -> Any:
        """``DELETE /channels/{id}/hold``."""
        return self._rest.delete("channels", channel_id, "hold")

    def moh(self, channel_id: str, moh_class: str) -> Any:
        """``POST /channels/{id}/moh?mohClass=``."""
        return self._rest.post("channels", channel_id, "moh", params={"mohClass": moh_class})

    def moh_stop(self, channel_id: str) -> Any:
        """``DELETE /channels/{id}/moh``."""
        return self._rest.delete("channels", channel_id, "moh")

    def mute(self, channel_id: str, direction: str = "both") -> Any:
        """``POST /channels/{id}/mute?direction=``."""
        return self._rest.post("channels", channel_id, "mute", params={"direction": direction})

    def unmute(self, channel_id: str, direction: str = "both") -> Any:
        """``DELETE /channels/{id}/mute?direction=``."""
        return self._rest.delete("channels", channel_id, "mute", params={"direction": direction})

    def dtmf(self, channel_id: str, digits: str, duration_ms: int, between_ms: int) -> Any:
        """``POST /channels/{id}/dtmf?dtmf=&duration=&between=``."""
        return self._rest.post("channels", channel_id, "dtmf", params={
            "dtmf": digits, "duration": duration_ms, "between": between_ms})

    def redirect(self, channel_id: str, endpoint: str) -> Any:
        """``POST /channels/{id}/redirect?endpoint=``."""
        return self._rest.post("channels", channel_id, "redirect", params={"endpoint": endpoint})

    def get_variable(self, channel_id: str, variable: str) -> Any:
        """``GET /channels/{id}/variable?variable=`` (any channel, in Stasis or not)."""
        return self._rest.get("channels", channel_id, "variable", params={"variable": variable})

    def set_variable(self, channel_id: str, variable: str, value: str) -> Any:
        """``POST /channels/{id}/variable?variable=&value=``."""
        return self._rest.post("channels", channel_id, "variable",
                               params={"variable": variable, "value": value})

    def continue_in_dialplan(self, channel_id: str, context: Optional[str] = None,
                             extension: Optional[str] = None,
                             priority: Optional[int] = None) -> Any:
        """``POST /channels/{id}/continue[?context=&extension=&priority=]``: leave the
        application (at the next priority, or where the parameters say)."""
        params: Dict[str, Any] = {}
        if context:
            params["context"] = context
        if extension:
            params["extension"] = extension
        if priority is not None:
            params["priority"] = int(priority)
        if not params:
            return self._rest.post("channels", channel_id, "continue")
        return self._rest.post("channels", channel_id, "continue", params=params)

    def play(self, channel_id: str, playback_id: str, media: str,
             lang: Optional[str] = None) -> Any:
        """``POST /channels/{id}/play/{playbackId}?media=[&lang=]`` (``media`` may be a
        comma-separated list)."""
        params: Dict[str, Any] = {"media": media}
        if lang:
            params["lang"] = lang
        return self._rest.post("channels", channel_id, "play", playback_id, params=params)

    def transfer_progress(self, channel_id: str, states: str) -> Any:
        """``POST /channels/{id}/transfer_progress?states=``: tell a phone how its REFER
        went."""
        return self._rest.post("channels", channel_id, "transfer_progress",
                               params={"states": states})


class Bridges(_Resource):
    """``/bridges``."""

    __slots__ = ()

    def list(self) -> List[Dict[str, Any]]:
        """``GET /bridges``, each item checked to be a Bridge object.

        :raises InvalidResponseError: when the answer is not a list of Bridge objects.
        """
        return listing(self._rest.get("bridges"), "/bridges", BRIDGE_FIELDS)

    def create(self, bridge_id: str, name: str, bridge_type: str = "mixing") -> Any:
        """``POST /bridges?type=&bridgeId=&name=``."""
        return self._rest.post("bridges", params={
            "type": bridge_type, "bridgeId": bridge_id, "name": name})

    def destroy(self, bridge_id: str) -> Any:
        """``DELETE /bridges/{id}``."""
        return self._rest.delete("bridges", bridge_id)

    def add(self, bridge_id: str, channels: Iterable[str]) -> Any:
        """``POST /bridges/{id}/addChannel?channel=a,b``."""
        return self._rest.post("bridges", bridge_id, "addChannel",
                               params={"channel": ",".join(channels)})

    def remove(self, bridge_id: str, channel_id: str) -> Any:
        """``POST /bridges/{id}/removeChannel?channel=``."""
        return self._rest.post("bridges", bridge_id, "removeChannel",
                               params={"channel": channel_id})

    def play(self, bridge_id: str, playback_id: str, media: str) -> Any:
        """``POST /bridges/{id}/play/{playbackId}?media=``."""
        return self._rest.post("bridges", bridge_id, "play", playback_id,
                               params={"media": media})


class Playbacks(_Resource):
    """``/playbacks``."""

    __slots__ = ()

    def stop(self, playback_id: str) -> Any:
        """``DELETE /playbacks/{id}``."""
        return self._rest.delete("playbacks", playback_id)


class Endpoints(_Resource):
    """``/endpoints``."""

    __slots__ = ()

    def list(self) -> List[Dict[str, Any]]:
        """``GET /endpoints``, each item checked to be an Endpoint object.

        :raises InvalidResponseError: when the answer is not a list of Endpoint objects.
        """
        return listing(self._rest.get("endpoints"), "/endpoints", ENDPOINT_FIELDS)


class Applications(_Resource):
    """``/applications``."""

    __slots__ = ()

    def list(self) -> List[Dict[str, Any]]:
        """``GET /applications``, each item checked to be an Application object.

        :raises InvalidResponseError: when the answer is not a list of Application objects.
        """
        return listing(self._rest.get("applications"), "/applications", APPLICATION_FIELDS)

    def get(self, app: str) -> Mapping[str, Any]:
        """``GET /applications/{app}``.

        :raises InvalidResponseError: when the answer is not an Application object.
        """
        path = ari_path("applications", app)
        body = one_object(self._rest.get("applications", app), path, empty_ok=True)
        check_fields(body, path, {"name": str, "channel_ids": list, "bridge_ids": list,
                                  "endpoint_ids": list, "device_names": list})
        return body

    def peek(self, app: str, timeout: float) -> Any:
        """``GET /applications/{app}`` with its own short deadline, the answer as it came
        (unvalidated: a caller that only looks for one field decides what else means).

        :raises NotFoundError: when the application is not registered.
        """
        return self._rest.request("GET", ari_path("applications", app), timeout=timeout)

    def subscribe(self, app: str, sources: Sequence[str]) -> Any:
        """``POST /applications/{app}/subscription?eventSource=a,b``."""
        return self._rest.post("applications", app, "subscription",
                               params={"eventSource": ",".join(sources)})

    def unsubscribe(self, app: str, sources: Sequence[str]) -> Any:
        """``DELETE /applications/{app}/subscription?eventSource=a,b``."""
        return self._rest.delete("applications", app, "subscription",
                                 params={"eventSource": ",".join(sources)})

    def set_event_filter(self, app: str, *, allowed: Sequence[str] = (),
                         disallowed: Sequence[str] = ()) -> Any:
        """``PUT /applications/{app}/eventFilter`` (replaces the previous filter)."""
        body = {
            "allowed": [{"type": t} for t in allowed],
            "disallowed": [{"type": t} for t in disallowed],
        }
        return self._rest.put("applications", app, "eventFilter", json_body=body)


class Asterisk(_Resource):
    """``/asterisk``."""

    __slots__ = ()

    def info(self) -> Mapping[str, Any]:
        """``GET /asterisk/info``.

        :raises InvalidResponseError: when the answer is not a JSON object.
        """
        return one_object(self._rest.get("asterisk", "info"), "/asterisk/info", empty_ok=True)

    def pjsip_endpoint_config(self, resource: str) -> Any:
        """``GET /asterisk/config/dynamic/res_pjsip/endpoint/{id}``: the endpoint's
        configuration, a list of ``{"attribute", "value"}`` objects."""
        return self._rest.get("asterisk", "config", "dynamic", "res_pjsip", "endpoint",
                              resource)


class Ari:
    """The ARI resources over one :class:`~asterisk_cti.ari.rest.AriRest` (cheap to create).

    :ivar channels: :class:`Channels`.
    :ivar bridges: :class:`Bridges`.
    :ivar playbacks: :class:`Playbacks`.
    :ivar endpoints: :class:`Endpoints`.
    :ivar applications: :class:`Applications`.
    :ivar asterisk: :class:`Asterisk`.
    """

    __slots__ = ("rest", "channels", "bridges", "playbacks", "endpoints", "applications",
                 "asterisk")

    def __init__(self, rest: AriRest) -> None:
        self.rest = rest
        self.channels = Channels(rest)
        self.bridges = Bridges(rest)
        self.playbacks = Playbacks(rest)
        self.endpoints = Endpoints(rest)
        self.applications = Applications(rest)
        self.asterisk = Asterisk(rest)
