"""The ARI REST client: one pooled :class:`requests.Session` shared by every thread.

All requests go through :meth:`AriRest.request`: the path is built from segments that are each
URL-encoded (no user string reaches a URL unescaped), credentials travel in an
``Authorization`` header set on the session (never in the URL), redirects are never followed
(ARI does not redirect; a 30x is an error naming its ``Location``, so the credentials go to no
other host), only idempotent methods (GET, PUT, DELETE) are retried, and only on connection
errors and 503 "not booted" answers, and error statuses become the typed exceptions of
:mod:`asterisk_cti.errors`.

Every request has a **deadline**, not only a timeout: connecting, sending and reading the
whole answer (status line, headers, body) must all finish within ``timeout`` seconds in total,
retries included, or :class:`~asterisk_cti.errors.RequestTimeoutError` is raised within it.
``requests`` alone only bounds each socket read, so a server trickling one byte a second could
hold a call for ever; here each socket operation of the session's connections is given the
time left until the deadline (a thread-local set around the request).

Threads: any. ``requests.Session`` is safe for concurrent simple requests with its default
pooled adapter; the session is configured once, before it is shared.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import threading
import time
from typing import Any, Dict, List, Mapping, Optional, Union
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from ..backoff import REST_RETRY
from ..config import CtiConfig, basic_auth_header
from ..errors import (
    AriHttpError,
    InvalidRequestError,
    InvalidResponseError,
    NotFoundError,
    RequestTimeoutError,
    TransportError,
    http_error,
)

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


# -- deadlines --------------------------------------------------------------------------------

_local = threading.local()


def _time_left() -> Optional[float]:
    """Seconds until the current thread's request deadline (None: no deadline set)."""
    at: Optional[float] = getattr(_local, "deadline", None)
    return None if at is None else at - time.monotonic()


class _DeadlineSocket:
    """Wraps a connection's socket so that every send and receive ends by the deadline of the
    request the calling thread is making (each call gets the time left as its timeout)."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._timeout: Optional[float] = sock.gettimeout()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def settimeout(self, value: Optional[float]) -> None:
        self._timeout = value
        self._sock.settimeout(value)

    def gettimeout(self) -> Optional[float]:
        return self._timeout

    def _arm(self) -> None:
        left = _time_left()
        if left is None:
            self._sock.settimeout(self._timeout)
            return
        if left <= 0:
            raise socket.timeout("request deadline passed")
        self._sock.settimeout(left if self._timeout is None else min(left, self._timeout))

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        self._arm()
        return int(self._sock.recv_into(buffer, nbytes, flags))

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        self._arm()
        return bytes(self._sock.recv(bufsize, flags))

    def send(self, data: Any, flags: int = 0) -> int:
        self._arm()
        return int(self._sock.send(data, flags))

    def sendall(self, data: Any, flags: int = 0) -> None:
        view = memoryview(data).cast("B")
        while view:  # one send per step, so the deadline is checked between them
            sent = self.send(view, flags)
            view = view[sent:]

    def makefile(self, mode: str = "r", buffering: Optional[int] = None, **_: Any) -> Any:
        if mode not in ("rb", "br"):
            raise ValueError(f"unsupported makefile mode {mode!r}")
        return io.BufferedReader(_DeadlineReader(self), buffering or io.DEFAULT_BUFFER_SIZE)


class _DeadlineReader(io.RawIOBase):
    def __init__(self, sock: _DeadlineSocket) -> None:
        super().__init__()
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._sock.recv_into(buffer)


class _DeadlineHTTPConnection(HTTPConnection):
    def connect(self) -> None:
        super().connect()
        self.sock = _DeadlineSocket(self.sock)


class _DeadlineHTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        self.sock = _DeadlineSocket(self.sock)


class _DeadlineHTTPPool(HTTPConnectionPool):
    ConnectionCls = _DeadlineHTTPConnection


class _DeadlineHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection


class DeadlineAdapter(HTTPAdapter):
    """The transport adapter :class:`AriRest` mounts: requests' own, with connections whose
    every socket operation ends by the calling thread's request deadline."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _DeadlineHTTPPool, "https": _DeadlineHTTPSPool}


def _connect_failed(exc: requests.RequestException) -> bool:
    """True when the request surely never reached the server (so its outcome is known)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        return type(reason).__name__ == "NewConnectionError"
    return False


def _location(resp: requests.Response) -> str:
    """The ``Location`` of a redirect, without user info, cut to a sane length."""
    loc = resp.headers.get("Location", "")
    try:
        parts = urlsplit(loc)
        if parts.username is not None or parts.password is not None:
            loc = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    except ValueError:
        loc = "(unparsable)"
    return loc[:200]


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
        # Deadline-aware connections, unless the caller mounted a transport of its own (tests
        # mount fakes): replace only requests' stock adapter.
        for prefix in ("https://", "http://"):
            if type(self.session.adapters.get(prefix)) is HTTPAdapter:
                self.session.mount(prefix, DeadlineAdapter())
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
        """Send one request and decode the answer, all within one deadline.

        :param method: HTTP method.
        :param path: a path made with :func:`ari_path` (already encoded).
        :param params: query parameters (encoded by requests).
        :param json_body: a JSON body, if any.
        :param timeout: seconds for the whole call (connect, send, read the whole answer,
            retries included); default the config's request timeout.
        :returns: the decoded JSON body, or ``None`` for an empty answer (204), and for a
            ``DELETE`` that answers 404 after an earlier attempt whose answer was lost (the
            first attempt did delete it).
        :raises AriHttpError: a subclass matching the status; a redirect is not followed
            (:class:`AriHttpError` naming the ``Location``).
        :raises RequestTimeoutError: the deadline passed (a :class:`TransportError`).
        :raises TransportError: on connection errors.
        """
        method = method.upper()
        url = self._base + path
        budget = float(timeout if timeout is not None else self._timeout)
        deadline = time.monotonic() + budget
        attempts = 1 + (self._retries if method in _IDEMPOTENT else 0)
        last: Optional[BaseException] = None
        maybe_done = False  # an earlier attempt may have reached Asterisk
        for attempt in range(attempts):
            if attempt:
                pause = REST_RETRY.delay(attempt)
                if deadline - time.monotonic() <= pause:
                    break
                time.sleep(pause)
            left = deadline - time.monotonic()
            if left <= 0:
                break
            previous = getattr(_local, "deadline", None)
            _local.deadline = deadline
            try:
                resp = self.session.request(
                    method, url, params=params, json=json_body, timeout=(left, left),
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                if time.monotonic() >= deadline or isinstance(exc, requests.Timeout):
                    last = RequestTimeoutError(
                        f"{method} {path}: no complete answer within {budget:g} s")
                else:
                    last = TransportError(f"{method} {path}: {type(exc).__name__}")
                maybe_done = maybe_done or not _connect_failed(exc)
                continue
            finally:
                _local.deadline = previous
            status = resp.status_code
            if status == 503 and attempt + 1 < attempts:
                last = http_error(method, path, 503, _message(resp))
                continue
            if 300 <= status < 400:
                raise AriHttpError(method, path, status,
                                   f"redirect to {_location(resp)!r} not followed")
            if status >= 400:
                error = http_error(method, path, status, _message(resp))
                if method == "DELETE" and maybe_done and isinstance(error, NotFoundError):
                    logger.info("%s %s: gone after an attempt whose answer was lost; done",
                                method, path)
                    return None
                raise error
            if not resp.content:
                return None
            try:
                return resp.json()
            except ValueError:
                return resp.text
        if last is None or (time.monotonic() >= deadline
                            and not isinstance(last, RequestTimeoutError)):
            last = RequestTimeoutError(f"{method} {path}: no complete answer within "
                                       f"{budget:g} s" + (f" (last: {last})" if last else ""))
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

    def close(self) -> None:
        """Close the session's pooled connections."""
        self.session.close()


#: Required fields of the ARI models the resynchronisation reads, and their JSON types
#: (rest-api/api-docs/{channels,bridges,endpoints,applications}.json of Asterisk 22).
CHANNEL_FIELDS: Mapping[str, type] = {"id": str, "name": str, "state": str}
BRIDGE_FIELDS: Mapping[str, type] = {"id": str, "channels": list}
ENDPOINT_FIELDS: Mapping[str, type] = {"technology": str, "resource": str}
APPLICATION_FIELDS: Mapping[str, type] = {"name": str}
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


def one_object(body: Any, path: str, *, empty_ok: bool = False) -> Dict[str, Any]:
    """The answer ``body`` of ``GET path`` as a JSON object (``{}`` for an empty answer when
    ``empty_ok``).

    :raises InvalidResponseError: when it is not an object, or an error object.
    """
    if body is None and empty_ok:
        return {}
    if not isinstance(body, dict):
        raise InvalidResponseError("GET", path, f"expected an object, got {_describe(body)}")
    if "error" in body and "id" not in body and "name" not in body:
        raise InvalidResponseError("GET", path, f"an error object: {str(body['error'])[:100]!r}")
    return body


def check_fields(body: Dict[str, Any], path: str, required: Mapping[str, type]) -> None:
    """Check that ``body`` has the ``required`` fields with their JSON types (and the optional
    ones, when present, with theirs).

    :raises InvalidResponseError: naming the first field that is wrong.
    """
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


def _has_fields(obj: Any, required: Mapping[str, type]) -> bool:
    try:
        check_fields(obj, "", required)
    except (InvalidResponseError, AttributeError):
        return False
    return isinstance(obj, dict)


def is_channel(obj: Any) -> bool:
    """Whether ``obj`` has the shape of an ARI Channel (what
    :meth:`~asterisk_cti.ari.resources.Channels.list` accepts)."""
    return _has_fields(obj, CHANNEL_FIELDS)


def is_bridge(obj: Any) -> bool:
    """Whether ``obj`` has the shape of an ARI Bridge (what
    :meth:`~asterisk_cti.ari.resources.Bridges.list` accepts)."""
    return _has_fields(obj, BRIDGE_FIELDS)


def listing(body: Any, path: str, required: Mapping[str, type]) -> List[Dict[str, Any]]:
    """The answer ``body`` of ``GET path`` as a list of objects with the ``required`` fields.

    :raises InvalidResponseError: when it is not such a list.
    """
    if not isinstance(body, list):
        raise InvalidResponseError("GET", path, f"expected a list, got {_describe(body)}")
    for i, item in enumerate(body):
        if not isinstance(item, dict):
            raise InvalidResponseError("GET", path, f"item {i} is {_describe(item)}")
        check_fields(item, f"{path}[{i}]", required)
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
