"""A fake ARI REST server living inside a :class:`requests.Session` (a transport adapter).

:class:`FakeAri` keeps a little state (applications with reference-counted subscriptions and
an event filter, channels, bridges, endpoints), answers the requests the SDK makes, records
every request, and lets a test override any route or inject errors. Mount it on a session and
pass the session to :class:`~asterisk_cti.CtiClient`; see :meth:`FakeAri.session`.

Threads: requests may come from any thread; state changes are guarded by one lock.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Pattern, Tuple, Union
from urllib.parse import parse_qs, unquote, urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from ..pipeline.transport import basic_auth_header

Body = Any
Answer = Union[Tuple[int, Body], "requests.Response"]


@dataclass
class RecordedRequest:
    """One request the fake received.

    :ivar path: the path below ``/ari`` exactly as sent (still URL-encoded).
    :ivar segments: the decoded path segments.
    :ivar params: the query parameters (first value of each).
    """

    method: str
    url: str
    path: str
    segments: List[str]
    params: Dict[str, str]
    json: Any
    headers: Mapping[str, str]


Handler = Callable[[RecordedRequest, "re.Match[str]"], Tuple[int, Body]]


@dataclass
class _App:
    name: str
    subscriptions: Dict[str, int] = field(default_factory=dict)
    allowed: List[str] = field(default_factory=list)
    disallowed: List[str] = field(default_factory=list)

    def to_json(self) -> Dict[str, Any]:
        kinds: Dict[str, List[str]] = {
            "channel": [], "bridge": [], "endpoint": [], "deviceState": []}
        for source in self.subscriptions:
            kind, _, ident = source.partition(":")
            if kind == "bridge" and not ident:
                ident = "__AST_BRIDGE_ALL_TOPIC"  # as Asterisk 22 lists "all bridges"
            kinds.setdefault(kind, []).append(ident)
        return {
            "name": self.name,
            "channel_ids": kinds["channel"],
            "bridge_ids": kinds["bridge"],
            "endpoint_ids": kinds["endpoint"],
            "device_names": kinds["deviceState"],
            "events_allowed": [{"type": t} for t in self.allowed],
            "events_disallowed": [{"type": t} for t in self.disallowed],
        }


class FakeAri(BaseAdapter):
    """A stateful fake of Asterisk's ARI REST interface.

    :param base_url: the URL the client is configured with (only its scheme and host matter).
    :param username: the ARI user it accepts.
    :param password: the password it accepts; a wrong one gets 401.
    """

    def __init__(
        self,
        base_url: str = "http://asterisk.test:8088",
        username: str = "asterisk",
        password: str = "secret",
    ) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self._auth = basic_auth_header(username, password)
        self.lock = threading.RLock()
        self.requests: List[RecordedRequest] = []
        self.apps: Dict[str, _App] = {}
        self.channels: Dict[str, Dict[str, Any]] = {}
        self.bridges: Dict[str, Dict[str, Any]] = {}
        self.endpoints: Dict[str, Dict[str, Any]] = {}
        self.startup_time = "2026-11-26T03:50:00.000+0000"
        self.version = "22.10.1"
        self.event_filter_supported = True
        self._routes: List[Tuple[str, Pattern[str], Handler]] = []
        self._overrides: List[Tuple[str, Pattern[str], Handler]] = []
        self._install_defaults()

    # -- wiring -----------------------------------------------------------------------------

    def session(self) -> requests.Session:
        """A new :class:`requests.Session` with this fake mounted on :attr:`base_url`."""
        s = requests.Session()
        s.mount(self.base_url, self)
        return s

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        """Decorator: add a handler for ``method`` and a regex over the decoded path below
        ``/ari`` (e.g. ``r"/channels/(?P<id>[^/]+)/hold"``). Later routes win."""
        def deco(fn: Handler) -> Handler:
            with self.lock:
                self._overrides.insert(0, (method.upper(), re.compile(pattern + r"\Z"), fn))
            return fn
        return deco

    def respond(self, method: str, pattern: str, status: int, body: Body = None,
                times: Optional[int] = None) -> None:
        """Answer matching requests with a fixed status and body (``times`` limits how often)."""
        left = [times]

        def handler(req: RecordedRequest, m: re.Match[str]) -> Tuple[int, Body]:
            if left[0] is not None:
                left[0] -= 1
                if left[0] <= 0:
                    self._drop_override(handler)
            return status, body
        self.route(method, pattern)(handler)

    def _drop_override(self, handler: Handler) -> None:
        with self.lock:
            self._overrides = [r for r in self._overrides if r[2] is not handler]

    def calls(self, method: Optional[str] = None, path_prefix: str = "") -> List[RecordedRequest]:
        """Recorded requests, optionally filtered by method and decoded-path prefix."""
        with self.lock:
            return [
                r for r in self.requests
                if (method is None or r.method == method.upper())
                and ("/" + "/".join(r.segments)).startswith(path_prefix)
            ]

    # -- state helpers ---------------------------------------------------------------------

    def add_endpoint(self, resource_id: str, state: str = "online") -> None:
        """Create an endpoint such as ``PJSIP/1000``."""
        tech, _, res = resource_id.partition("/")
        with self.lock:
            self.endpoints[resource_id] = {
                "technology": tech, "resource": res, "state": state, "channel_ids": []
            }

    def add_channel(self, channel: Mapping[str, Any]) -> None:
        """Add (or replace) a channel as ``GET /channels`` will list it."""
        with self.lock:
            self.channels[str(channel["id"])] = dict(channel)

    def restart(self) -> None:
        """Forget every application, subscription and filter; new startup time."""
        with self.lock:
            self.apps.clear()
            self.startup_time = "2026-11-26T04:00:00.000+0000"

    def drop_connection(self) -> None:
        """What Asterisk 22 does when the app's websocket drops: ``bridge:`` subscriptions and
        apps with nothing left are removed (endpoint subscriptions and filters survive)."""
        with self.lock:
            for name, app in list(self.apps.items()):
                for source in [s for s in app.subscriptions if s.startswith("bridge:")]:
                    del app.subscriptions[source]
                if not app.subscriptions:
                    del self.apps[name]

    def app(self, name: str) -> Dict[str, Any]:
        """The JSON ``GET /applications/{name}`` would return (creating the app)."""
        with self.lock:
            return self._app(name).to_json()

    def subscription_count(self, app: str, source: str) -> int:
        """How many times ``source`` is subscribed (Asterisk reference-counts)."""
        with self.lock:
            return self.apps[app].subscriptions.get(source, 0) if app in self.apps else 0

    def _app(self, name: str) -> _App:
        app = self.apps.get(name)
        if app is None:
            app = self.apps[name] = _App(name)
        return app

    # -- requests adapter ------------------------------------------------------------------

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        """Answer one request (the :class:`requests.adapters.BaseAdapter` interface)."""
        url = request.url or ""
        parts = urlsplit(url)
        raw_path = parts.path
        if raw_path.startswith("/ari"):
            raw_path = raw_path[4:]
        segments = [unquote(s) for s in raw_path.split("/")[1:]] if raw_path else []
        params = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        body: Any = None
        if request.body:
            raw = request.body.decode() if isinstance(request.body, bytes) else request.body
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
        rec = RecordedRequest(
            method=(request.method or "GET").upper(), url=url, path=raw_path,
            segments=segments, params=params, json=body, headers=dict(request.headers),
        )
        with self.lock:
            self.requests.append(rec)
            if request.headers.get("Authorization") != self._auth:
                return self._response(request, 401, {"message": "Authentication required"})
            decoded = "/" + "/".join(segments)
            for method, pattern, handler in [*self._overrides, *self._routes]:
                if method != rec.method:
                    continue
                m = pattern.match(decoded)
                if m:
                    status, payload = handler(rec, m)
                    return self._response(request, status, payload)
        return self._response(request, 404, {"message": "Resource not found"})

    def close(self) -> None:
        pass

    @staticmethod
    def _response(request: requests.PreparedRequest, status: int, body: Body) -> requests.Response:
        resp = requests.Response()
        resp.status_code = status
        resp.request = request
        resp.url = request.url or ""
        resp.headers = CaseInsensitiveDict({"Content-Type": "application/json"})
        resp._content = b"" if body is None else json.dumps(body).encode()
        resp.reason = "fake"
        return resp

    # -- default behaviour, after Asterisk 22 ------------------------------------------------

    def _install_defaults(self) -> None:
        r = self._routes

        def add(method: str, pattern: str, fn: Handler) -> None:
            r.append((method, re.compile(pattern + r"\Z"), fn))

        add("GET", r"/asterisk/info", lambda q, m: (200, {
            "system": {"version": self.version, "entity_id": "02:fc:00:00:00:01"},
            "status": {"startup_time": self.startup_time, "last_reload_time": self.startup_time},
        }))
        add("GET", r"/applications", lambda q, m: (200, [a.to_json() for a in self.apps.values()]))

        def get_app(q: RecordedRequest, m: re.Match[str]) -> Tuple[int, Body]:
            app = self.apps.get(m["app"])
            if app is None:
                return 404, {"message": "Application not found"}
            return 200, app.to_json()
        add("GET", r"/applications/(?P<app>[^/]+)", get_app)

        def subscribe(q: RecordedRequest, m: re.Match[str]) -> Tuple[int, Body]:
            app = self._app(m["app"])
            sources = [s for s in q.params.get("eventSource", "").split(",") if s]
            if not sources:
                return 400, {"message": "Missing parameter eventSource"}
            for s in sources:
                if ":" not in s:
                    return 400, {"message": "Invalid event source URI scheme"}
            for s in sources:
                app.subscriptions[s] = app.subscriptions.get(s, 0) + 1
            return 200, app.to_json()
        add("POST", r"/applications/(?P<app>[^/]+)/subscription", subscribe)

        def unsubscribe(q: RecordedRequest, m: re.Match[str]) -> Tuple[int, Body]:
            app = self.apps.get(m["app"])
            if app is None:
                return 404, {"message": "Application not found"}
            sources = [s for s in q.params.get("eventSource", "").split(",") if s]
            for s in sources:
                if s not in app.subscriptions:
                    return 422, {"message": "Application not subscribed to event source"}
            for s in sources:
                app.subscriptions[s] -= 1
                if app.subscriptions[s] <= 0:
                    del app.subscriptions[s]
            return 200, app.to_json()
        add("DELETE", r"/applications/(?P<app>[^/]+)/subscription", unsubscribe)

        def event_filter(q: RecordedRequest, m: re.Match[str]) -> Tuple[int, Body]:
            if not self.event_filter_supported:
                return 404, {"message": "Resource not found"}
            app = self.apps.get(m["app"])
            if app is None:
                return 404, {"message": "Application not found"}
            body = q.json if isinstance(q.json, dict) else {}
            app.allowed = [d["type"] for d in body.get("allowed") or []]
            app.disallowed = [d["type"] for d in body.get("disallowed") or []]
            return 200, app.to_json()
        add("PUT", r"/applications/(?P<app>[^/]+)/eventFilter", event_filter)

        add("GET", r"/channels", lambda q, m: (200, list(self.channels.values())))

        def get_channel(q: RecordedRequest, m: re.Match[str]) -> Tuple[int, Body]:
            ch = self.channels.get(m["id"])
            return (200, ch) if ch else (404, {"message": "Channel not found"})
        add("GET", r"/channels/(?P<id>[^/]+)", get_channel)

        def hangup(q: RecordedRequest, m: re.Match[str]) -> Tuple[int, Body]:
            if self.channels.pop(m["id"], None) is None:
                return 404, {"message": "Channel not found"}
            return 204, None
        add("DELETE", r"/channels/(?P<id>[^/]+)", hangup)

        add("GET", r"/bridges", lambda q, m: (200, list(self.bridges.values())))
        add("GET", r"/endpoints", lambda q, m: (200, list(self.endpoints.values())))

        def endpoints_of(q: RecordedRequest, m: re.Match[str]) -> Tuple[int, Body]:
            found = [e for e in self.endpoints.values() if e["technology"] == m["tech"]]
            return 200, found
        add("GET", r"/endpoints/(?P<tech>[^/]+)", endpoints_of)

        def endpoint(q: RecordedRequest, m: re.Match[str]) -> Tuple[int, Body]:
            ep = self.endpoints.get(f"{m['tech']}/{m['res']}")
            return (200, ep) if ep else (404, {"message": "Endpoint not found"})
        add("GET", r"/endpoints/(?P<tech>[^/]+)/(?P<res>[^/]+)", endpoint)
