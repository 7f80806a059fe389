"""The ARI REST client: one pooled :class:`requests.Session` shared by every thread.

All requests go through :meth:`AriRest.request`: the path is built from segments that are each
URL-encoded (no user string reaches a URL unescaped), credentials travel in an
``Authorization`` header set on the session (never in the URL), every request has a timeout,
only idempotent methods (GET, PUT, DELETE) are retried, and only on connection errors and 503
"not booted" answers, and error statuses become the typed exceptions of
:mod:`asterisk_cti.errors`.

Threads: any. ``requests.Session`` is safe for concurrent simple requests with its default
pooled adapter; the session is configured once, before it is shared.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union
from urllib.parse import quote

import requests

from .config import CtiConfig
from .errors import InvalidRequestError, InvalidResponseError, TransportError, http_error
from .transport import basic_auth_header

logger = logging.getLogger(__name__)

_IDEMPOTENT = frozenset({"GET", "PUT", "DELETE", "HEAD"})
Segment = Union[str, int]


def ari_path(*segments: Segment) -> str:
    """Join path segments, URL-encoding each one completely.

    ``ari_path("channels", "../x?y#z", "hold")`` gives ``/channels/..%2Fx%3Fy%23z/hold``.

    :raises InvalidRequestError: for an empty segment or one that is exactly ``.`` or ``..``
        (HTTP libraries normalise those away, even encoded, so they could climb the path).
    """
    parts = []
    for seg in segments:
        text = str(seg)
        if text in ("", ".", ".."):
            raise InvalidRequestError("-", "/".join(map(str, segments)), 400,
                                      f"refusing the path segment {text!r}")
        parts.append(quote(text, safe=""))
    return "/" + "/".join(parts)


class AriRest:
    """A thin, typed client for ARI REST.

    :param config: where and as whom to connect.
    :param session: an injected session (tests mount a fake adapter on it); by default a new
        pooled one. The client sets its auth header and TLS verification on it.
    :param retries: extra attempts for idempotent requests after a connection error or 503.
    """

    def __init__(
        self,
        config: CtiConfig,
        session: Optional[requests.Session] = None,
        *,
        retries: int = 2,
    ) -> None:
        self._base = config.ari_url
        self._timeout = config.request_timeout
        self._retries = retries
        self.session = session if session is not None else requests.Session()
        self.session.headers["Authorization"] = basic_auth_header(
            config.username, config.password
        )
        self.session.verify = config.verify_tls
        # requests would otherwise use ~/.netrc credentials and proxies from the environment
        # for a PBX on the local network; ARI lives next to us.
        self.session.trust_env = False

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Optional[Mapping[str, Any]] = None,
        json_body: Any = None,
        timeout: Optional[float] = None,
    ) -> Any:
        """Send one request and decode the answer.

        :param method: HTTP method.
        :param path: a path made with :func:`ari_path` (already encoded).
        :param params: query parameters (encoded by requests).
        :param json_body: a JSON body, if any.
        :param timeout: seconds, default the config's request timeout.
        :returns: the decoded JSON body, or ``None`` for an empty answer (204).
        :raises AriHttpError: a subclass matching the status.
        :raises TransportError: on connection errors and timeouts.
        """
        method = method.upper()
        url = self._base + path
        attempts = 1 + (self._retries if method in _IDEMPOTENT else 0)
        last: Optional[BaseException] = None
        for attempt in range(attempts):
            if attempt:
                time.sleep(min(0.1 * 2**attempt, 1.0))
            try:
                resp = self.session.request(
                    method, url, params=params, json=json_body,
                    timeout=timeout if timeout is not None else self._timeout,
                )
            except requests.Timeout:
                last = TransportError(f"{method} {path}: timed out")
                continue
            except requests.RequestException as exc:
                last = TransportError(f"{method} {path}: {type(exc).__name__}")
                continue
            if resp.status_code == 503 and attempt + 1 < attempts:
                last = http_error(method, path, 503, _message(resp))
                continue
            if resp.status_code >= 400:
                raise http_error(method, path, resp.status_code, _message(resp))
            if not resp.content:
                return None
            try:
                return resp.json()
            except ValueError:
                return resp.text
        assert last is not None
        raise last

    def get(self, *segments: Segment, params: Optional[Mapping[str, Any]] = None) -> Any:
        """``GET`` the path made of ``segments``."""
        return self.request("GET", ari_path(*segments), params=params)

    def post(
        self, *segments: Segment, params: Optional[Mapping[str, Any]] = None,
        json_body: Any = None, timeout: Optional[float] = None,
    ) -> Any:
        """``POST`` to the path made of ``segments``."""
        return self.request(
            "POST", ari_path(*segments), params=params, json_body=json_body, timeout=timeout
        )

    def put(self, *segments: Segment, json_body: Any = None) -> Any:
        """``PUT`` to the path made of ``segments``."""
        return self.request("PUT", ari_path(*segments), json_body=json_body)

    def delete(self, *segments: Segment, params: Optional[Mapping[str, Any]] = None) -> Any:
        """``DELETE`` the path made of ``segments``."""
        return self.request("DELETE", ari_path(*segments), params=params)

    # -- the few calls the pipeline itself makes ----------------------------------------------

    def asterisk_info(self) -> Mapping[str, Any]:
        """``GET /asterisk/info``.

        :raises InvalidResponseError: when the answer is not a JSON object.
        """
        return _object(self.get("asterisk", "info"), "/asterisk/info", empty_ok=True)

    def application(self, app: str) -> Mapping[str, Any]:
        """``GET /applications/{app}``.

        :raises InvalidResponseError: when the answer is not an Application object.
        """
        path = ari_path("applications", app)
        body = _object(self.get("applications", app), path, empty_ok=True)
        _check_fields(body, path, {"name": str, "channel_ids": list, "bridge_ids": list,
                                   "endpoint_ids": list, "device_names": list})
        return body

    # -- the listings a resynchronisation reads: validated, never trusted ----------------------

    def channels(self) -> List[Dict[str, Any]]:
        """``GET /channels``: every channel, each checked to be a Channel object.

        :raises InvalidResponseError: when the answer is not a list of Channel objects (an
            HTML page, ``{"error": ...}``, a number): a resynchronisation must not treat it
            as "no channels" and clear every call.
        """
        return _listing(self.get("channels"), "/channels", _CHANNEL_FIELDS)

    def channel(self, channel_id: str) -> Dict[str, Any]:
        """``GET /channels/{id}``, checked to be a Channel object with that id.

        :raises NotFoundError: when the channel is gone.
        :raises InvalidResponseError: when the answer is not a Channel object.
        """
        path = ari_path("channels", channel_id)
        body = _object(self.get("channels", channel_id), path)
        _check_fields(body, path, _CHANNEL_FIELDS)
        return body

    def bridges(self) -> List[Dict[str, Any]]:
        """``GET /bridges``, each item checked to be a Bridge object.

        :raises InvalidResponseError: when the answer is not a list of Bridge objects.
        """
        return _listing(self.get("bridges"), "/bridges", _BRIDGE_FIELDS)

    def endpoints(self) -> List[Dict[str, Any]]:
        """``GET /endpoints``, each item checked to be an Endpoint object.

        :raises InvalidResponseError: when the answer is not a list of Endpoint objects.
        """
        return _listing(self.get("endpoints"), "/endpoints", _ENDPOINT_FIELDS)

    def applications(self) -> List[Dict[str, Any]]:
        """``GET /applications``, each item checked to be an Application object.

        :raises InvalidResponseError: when the answer is not a list of Application objects.
        """
        return _listing(self.get("applications"), "/applications", _APPLICATION_FIELDS)

    def subscribe(self, app: str, sources: Sequence[str]) -> Any:
        """``POST /applications/{app}/subscription?eventSource=a,b``."""
        return self.post("applications", app, "subscription",
                         params={"eventSource": ",".join(sources)})

    def unsubscribe(self, app: str, sources: Sequence[str]) -> Any:
        """``DELETE /applications/{app}/subscription?eventSource=a,b``."""
        return self.delete("applications", app, "subscription",
                           params={"eventSource": ",".join(sources)})

    def set_event_filter(
        self, app: str, *, allowed: Sequence[str] = (), disallowed: Sequence[str] = ()
    ) -> Any:
        """``PUT /applications/{app}/eventFilter`` (replaces the previous filter)."""
        body = {
            "allowed": [{"type": t} for t in allowed],
            "disallowed": [{"type": t} for t in disallowed],
        }
        return self.put("applications", app, "eventFilter", json_body=body)

    def close(self) -> None:
        """Close the session's pooled connections."""
        self.session.close()


#: Required fields of the ARI models the resynchronisation reads, and their JSON types
#: (rest-api/api-docs/{channels,bridges,endpoints,applications}.json of Asterisk 22).
_CHANNEL_FIELDS: Mapping[str, type] = {"id": str, "name": str, "state": str}
_BRIDGE_FIELDS: Mapping[str, type] = {"id": str, "channels": list}
_ENDPOINT_FIELDS: Mapping[str, type] = {"technology": str, "resource": str}
_APPLICATION_FIELDS: Mapping[str, type] = {"name": str}
#: Optional fields that must have this type when present.
_OPTIONAL_FIELDS: Mapping[str, type] = {"caller": dict, "connected": dict, "dialplan": dict,
                                        "channelvars": dict, "channel_ids": list,
                                        "bridge_ids": list, "endpoint_ids": list,
                                        "device_names": list, "state": str}


def _describe(body: Any) -> str:
    if isinstance(body, str):
        return f"text {body[:60]!r}" if body else "an empty body"
    if isinstance(body, dict):
        keys = sorted(str(k) for k in body)[:5]
        return f"an object with keys {keys}"
    return f"a JSON {type(body).__name__}"


def _object(body: Any, path: str, *, empty_ok: bool = False) -> Dict[str, Any]:
    if body is None and empty_ok:
        return {}
    if not isinstance(body, dict):
        raise InvalidResponseError("GET", path, f"expected an object, got {_describe(body)}")
    if "error" in body and "id" not in body and "name" not in body:
        raise InvalidResponseError("GET", path, f"an error object: {str(body['error'])[:100]!r}")
    return body


def _check_fields(body: Dict[str, Any], path: str, required: Mapping[str, type]) -> None:
    for key, kind in required.items():
        value = body.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise InvalidResponseError(
                "GET", path, f"field {key!r} is {_describe(value)}, not {kind.__name__}")
    for key, kind in _OPTIONAL_FIELDS.items():
        value = body.get(key)
        if value is not None and not isinstance(value, kind):
            raise InvalidResponseError(
                "GET", path, f"field {key!r} is {_describe(value)}, not {kind.__name__}")
    for key in ("channels", "channel_ids"):
        items = body.get(key)
        if isinstance(items, list) and not all(isinstance(x, str) for x in items):
            raise InvalidResponseError("GET", path, f"field {key!r} holds non-string ids")


def is_channel(obj: Any) -> bool:
    """Whether ``obj`` has the shape of an ARI Channel (what :meth:`AriRest.channels` accepts)."""
    try:
        _check_fields(obj, "", _CHANNEL_FIELDS)
    except (InvalidResponseError, AttributeError):
        return False
    return isinstance(obj, dict)


def is_bridge(obj: Any) -> bool:
    """Whether ``obj`` has the shape of an ARI Bridge (what :meth:`AriRest.bridges` accepts)."""
    try:
        _check_fields(obj, "", _BRIDGE_FIELDS)
    except (InvalidResponseError, AttributeError):
        return False
    return isinstance(obj, dict)


def _listing(body: Any, path: str, required: Mapping[str, type]) -> List[Dict[str, Any]]:
    if not isinstance(body, list):
        raise InvalidResponseError("GET", path, f"expected a list, got {_describe(body)}")
    for i, item in enumerate(body):
        if not isinstance(item, dict):
            raise InvalidResponseError("GET", path, f"item {i} is {_describe(item)}")
        _check_fields(item, f"{path}[{i}]", required)
    return body


def _message(resp: requests.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return (resp.text or resp.reason or "").strip()[:500]
    if isinstance(body, dict):
        for key in ("message", "error"):
            if isinstance(body.get(key), str):
                return str(body[key])
    return json.dumps(body)[:500]
