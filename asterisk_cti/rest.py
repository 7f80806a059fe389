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
from typing import Any, Mapping, Optional, Sequence, Union
from urllib.parse import quote

import requests

from .config import CtiConfig
from .errors import InvalidRequestError, TransportError, http_error
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
        """``GET /asterisk/info``."""
        return self.get("asterisk", "info") or {}

    def application(self, app: str) -> Mapping[str, Any]:
        """``GET /applications/{app}``."""
        return self.get("applications", app) or {}

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
