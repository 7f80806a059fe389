"""Raw ARI access for lab tests: credentials, REST calls and an event websocket recorder.

This deliberately does not use the SDK: the lab must be able to prove Asterisk's behaviour on
its own, so that SDK tests can rely on it. Only ``requests`` and ``websocket-client`` are used,
the SDK's own runtime dependencies.

Threads: :meth:`AriEventRecorder.connect` starts one reader thread (``lab-ari-<app>``) that owns
the websocket's receiving side; :meth:`AriEventRecorder.close` aborts the socket and joins it.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional
from urllib.parse import quote

import requests
import websocket

from .errors import LabError, LabTimeoutError

logger = logging.getLogger(__name__)

AriEvent = Dict[str, Any]


@dataclass(frozen=True)
class AriConfig:
    """How to reach the lab's ARI.

    :ivar url: base URL without ``/ari``, e.g. ``http://127.0.0.1:8088``.
    :ivar user: ARI user.
    :ivar password: its password (the lab's own, generated per instance).
    :ivar app: the Stasis application name the lab's dialplan sends ``7XXX`` calls to.
    """

    url: str
    user: str
    password: str
    app: str

    @property
    def ws_url(self) -> str:
        """The websocket base URL (``ws://...``)."""
        return "ws" + self.url[len("http") :] if self.url.startswith("http") else self.url

    @property
    def basic_auth_header(self) -> str:
        """An ``Authorization: Basic ...`` header line for the websocket handshake."""
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode("ascii")
        return f"Authorization: Basic {token}"


def ari_request(
    config: AriConfig,
    method: str,
    path: str,
    params: Optional[Mapping[str, str]] = None,
    json_body: Optional[Any] = None,
    timeout: float = 5.0,
) -> requests.Response:
    """Send one ARI REST request.

    :param config: where and who.
    :param method: HTTP method.
    :param path: path below ``/ari``, e.g. ``/asterisk/info``.
    :param params: query parameters.
    :param json_body: a JSON body.
    :param timeout: seconds.
    :returns: the response, whatever its status.
    """
    return requests.request(
        method,
        f"{config.url}/ari{path}",
        params=params,
        json=json_body,
        auth=(config.user, config.password),
        timeout=timeout,
    )


class AriEventRecorder:
    """Records every event of one ARI application websocket, for assertions.

    :param config: the lab's ARI.
    :param app: the application name to connect as (defaults to ``config.app``).
    :param subscribe_all: connect with ``subscribeAll=true``.
    """

    def __init__(
        self, config: AriConfig, app: Optional[str] = None, subscribe_all: bool = False
    ) -> None:
        self.config = config
        self.app = app or config.app
        self.subscribe_all = subscribe_all
        self._ws: Optional[websocket.WebSocket] = None
        self._reader: Optional[threading.Thread] = None
        self._cond = threading.Condition()
        self._events: List[AriEvent] = []
        self._cursor = 0
        self._closing = False
        self._closed = False
        self._subscriptions: List[str] = []

    def __enter__(self) -> AriEventRecorder:
        self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def connect(self, timeout: float = 5.0) -> None:
        """Open the websocket (this creates the application in Asterisk) and start reading.

        :param timeout: seconds for the handshake.
        :raises LabError: if the handshake fails.
        """
        url = (
            f"{self.config.ws_url}/ari/events?app={quote(self.app)}"
            f"&subscribeAll={'true' if self.subscribe_all else 'false'}"
        )
        try:
            ws = websocket.create_connection(
                url,
                header=[self.config.basic_auth_header],
                timeout=timeout,
                suppress_origin=True,
            )
        except (OSError, websocket.WebSocketException) as exc:
            raise LabError(f"ARI websocket {url}: {exc}") from exc
        ws.settimeout(None)
        self._ws = ws
        self._reader = threading.Thread(
            target=self._read_loop, name=f"lab-ari-{self.app}", daemon=True
        )
        self._reader.start()

    def subscribe(self, event_source: str) -> None:
        """Subscribe the application to an event source, e.g. ``endpoint:PJSIP/1000``.

        :param event_source: an ARI event source.
        :raises LabError: if ARI does not answer 200.
        """
        response = ari_request(
            self.config,
            "POST",
            f"/applications/{quote(self.app)}/subscription",
            params={"eventSource": event_source},
        )
        if response.status_code != 200:
            raise LabError(
                f"subscribe {event_source}: HTTP {response.status_code} {response.text[:200]}"
            )
        self._subscriptions.append(event_source)

    def close(self, timeout: float = 5.0) -> None:
        """Drop this recorder's subscriptions, abort the websocket, join the reader. Idempotent.

        Subscriptions outlive a websocket in Asterisk; dropping them lets Asterisk delete the
        application, so the next test starts from nothing.

        :param timeout: seconds to wait for the reader.
        """
        subscriptions, self._subscriptions = self._subscriptions, []
        for event_source in subscriptions:
            try:
                ari_request(
                    self.config,
                    "DELETE",
                    f"/applications/{quote(self.app)}/subscription",
                    params={"eventSource": event_source},
                )
            except requests.RequestException as exc:
                logger.warning("ARI recorder %s: unsubscribe %s: %s", self.app, event_source, exc)
        with self._cond:
            self._closing = True
            ws, self._ws = self._ws, None
        reader, self._reader = self._reader, None
        if ws is None:
            return
        try:
            # a close frame: Asterisk answers it, which ends the reader's recv()
            ws.send_close()
        except (OSError, websocket.WebSocketException) as exc:
            logger.debug("ARI recorder %s: close frame: %s", self.app, exc)
        if reader is not None and reader is not threading.current_thread():
            reader.join(min(timeout, 2.0))
            if reader.is_alive():
                ws.abort()  # type: ignore[no-untyped-call]
                reader.join(timeout)
            if reader.is_alive():
                logger.warning("ARI recorder %s: reader did not stop in %.1f s", self.app, timeout)
        ws.shutdown()  # type: ignore[no-untyped-call]

    def _read_loop(self) -> None:
        ws = self._ws
        assert ws is not None
        try:
            while True:
                frame = ws.recv()
                if not frame:
                    break
                event = json.loads(frame)
                if isinstance(event, dict):
                    with self._cond:
                        self._events.append(event)
                        self._cond.notify_all()
        except (OSError, websocket.WebSocketException, ValueError) as exc:
            if not self._closing:
                logger.warning("ARI recorder %s: websocket ended: %s", self.app, exc)
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()

    @property
    def events(self) -> List[AriEvent]:
        """A snapshot of every event received, oldest first."""
        with self._cond:
            return list(self._events)

    def wait_for(
        self,
        event_type: str,
        predicate: Optional[Callable[[AriEvent], bool]] = None,
        timeout: float = 10.0,
    ) -> AriEvent:
        """Wait for the next event of a type (after the cursor) and move the cursor past it.

        :param event_type: ARI event type, e.g. ``"ChannelCreated"``.
        :param predicate: an extra condition.
        :param timeout: seconds.
        :returns: the event.
        :raises LabTimeoutError: if none arrives in time; the message lists the types seen.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for index in range(self._cursor, len(self._events)):
                    event = self._events[index]
                    if event.get("type") == event_type and (predicate is None or predicate(event)):
                        self._cursor = index + 1
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    seen = [str(e.get("type")) for e in self._events[self._cursor :]][-20:]
                    raise LabTimeoutError(
                        f"ARI app {self.app}: no {event_type} within {timeout:.1f} s; "
                        f"after the cursor: {seen}"
                    )
                self._cond.wait(remaining)


def channel_of(event: AriEvent) -> Dict[str, Any]:
    """The ``channel`` object of a channel event (empty dict if it has none).

    :param event: an ARI event.
    :returns: the channel object.
    """
    channel = event.get("channel")
    return channel if isinstance(channel, dict) else {}
