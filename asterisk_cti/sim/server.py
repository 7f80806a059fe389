"""The simulator's front: ARI over real HTTP and a real websocket on 127.0.0.1.

:class:`AriSimulator` composes the PBX (:mod:`.pbx`), the phones (:mod:`.phones`), a timer
thread and a threaded HTTP server. Threads, all named ``asterisk-cti-sim-*``:

- ``asterisk-cti-sim-http``: the accept loop;
- ``asterisk-cti-sim-conn-N``: one per HTTP connection (a websocket's reader lives here);
- ``asterisk-cti-sim-ws-N``: one writer per websocket, draining its event queue;
- ``asterisk-cti-sim-timers``: ring timeouts, talk detection, auto-answer, boot phases.

:meth:`AriSimulator.stop` is idempotent and joins every one of them.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import logging
import queue
import re
import secrets
import socket
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable, Dict, List, Sequence, Tuple
from urllib.parse import parse_qs, unquote, urlsplit

from .objects import Bridge, Channel, JsonObj
from .pbx import DEVICE_STATES, AriError, Pbx, PbxConfig, cause_from_reason
from .phones import Phone, PhoneBook
from .scheduler import Scheduler
from .websocket import ServerWebSocket, WebSocketClosed, accept_key

__all__ = ["AriSimulator"]

logger = logging.getLogger(__name__)

_STASIS_ONLY = "Channel not in Stasis application"
_INVALID_STATE = "Channel in invalid state"


class _WsConnection:
    """One websocket: a queue and a writer thread; the reader is the handler thread."""

    _ids = itertools.count(1)

    def __init__(self, ws: ServerWebSocket) -> None:
        self.ws = ws
        self.queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self.thread = threading.Thread(
            target=self._write, name=f"asterisk-cti-sim-ws-{next(self._ids)}", daemon=True
        )

    def send(self, text: str) -> None:
        self.queue.put(text)

    def _write(self) -> None:
        while True:
            text = self.queue.get()
            if text is None:
                return
            try:
                self.ws.send_text(text)
            except WebSocketClosed:
                return

    def close_writer(self) -> None:
        self.queue.put(None)


class _Server(socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, addr: Tuple[str, int], sim: AriSimulator) -> None:
        self.sim = sim
        self._ids = itertools.count(1)
        super().__init__(addr, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        t = threading.Thread(
            target=self._serve_one,
            args=(request, client_address),
            name=f"asterisk-cti-sim-conn-{next(self._ids)}",
            daemon=True,
        )
        self.sim._track(t, request)
        t.start()

    def _serve_one(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            logger.debug("simulator connection failed", exc_info=True)
        finally:
            self.shutdown_request(request)
            self.sim._untrack(threading.current_thread())


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "Asterisk/22.10.1-sim"
    # Headers and body were separate small writes: with Nagle's algorithm and the client's
    # delayed ACK every keep-alive request stalled about 40 ms.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("http %s", format % args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_OPTIONS(self) -> None:
        self._dispatch("OPTIONS")

    def _reply(self, status: int, body: Any = None) -> None:
        data = b"" if body is None else json.dumps(body).encode("utf-8")
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def _dispatch(self, method: str) -> None:
        sim = self.server.sim
        parts = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body: JsonObj = {}
        if length:
            raw = self.rfile.read(length)
            ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if ctype == "application/x-www-form-urlencoded":
                # Asterisk reads a form body as more query parameters
                try:
                    form = parse_qs(raw.decode("utf-8"), keep_blank_values=True)
                except UnicodeDecodeError:
                    self._reply(400, {"message": "Invalid form body"})
                    return
                for k, v in form.items():
                    params.setdefault(k, v[-1])
            else:
                try:
                    loaded = json.loads(raw)
                    if isinstance(loaded, dict):
                        body = loaded
                except ValueError:
                    self._reply(400, {"message": "Invalid JSON body"})
                    return
        phase = sim._boot_phase
        if phase == "refused":
            self.close_connection = True
            return
        if phase == "404":
            self._reply(404, {"message": "Not Found"})
            return
        if phase == "503":
            self._reply(503, {"message": "Asterisk not booted"})
            return
        if not parts.path.startswith("/ari/"):
            self._reply(404, {"message": "Not Found"})
            return
        if not sim._authorised(self.headers.get("Authorization"), params.pop("api_key", None)):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="Asterisk REST Interface"')
            data = json.dumps({"error": "Authentication required"}).encode()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        path = parts.path[len("/ari") :].rstrip("/")
        if method == "OPTIONS":  # Asterisk answers OPTIONS on any resource with no content
            self._reply(204)
            return
        if method == "PATCH":
            self._reply(405, {"message": "Method Not Allowed"})
            return
        if path == "/events" and method == "GET":
            self._events(params)
            return
        try:
            status, result = sim._route(method, path, params, body)
        except AriError as exc:
            self._reply(exc.status, {"message": exc.message})
            return
        self._reply(status, result)

    def _events(self, params: Dict[str, str]) -> None:
        sim = self.server.sim
        if self.headers.get("Upgrade", "").lower() != "websocket":
            self._reply(400, {"message": "Websocket upgrade required"})
            return
        apps = [a for a in params.get("app", "").split(",") if a]
        if not apps:
            self._reply(400, {"message": "Missing parameter app"})
            return
        key = self.headers.get("Sec-WebSocket-Key", "")
        ws = ServerWebSocket(self.connection, self.rfile)
        conn = _WsConnection(ws)
        # the apps exist once the client sees the upgrade (events queue until the writer runs)
        sim._ws_opened(conn, apps, params.get("subscribeAll", "false").lower() == "true")
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept_key(key))
        self.end_headers()
        self.wfile.flush()
        conn.thread.start()
        try:
            while True:
                ws.recv_message()  # clients send nothing ARI needs; pings are answered inside
        except WebSocketClosed:
            pass
        finally:
            sim._ws_closed(conn, apps)
            conn.close_writer()
            conn.thread.join(5)
            self.close_connection = True


class AriSimulator:
    """A stateful fake Asterisk 22 serving ARI on ``http://127.0.0.1:<port>/ari``.

    :param port: TCP port; 0 (the default) picks a free one, see :attr:`port`.
    :param username: the ARI user; a throwaway one is generated when ``None``.
    :param password: the ARI password; generated when ``None``.
    :param endpoints: ``(extension, caller name)`` pairs of the simulated phones.
    :param speed: speed-up factor for every simulated duration (ring timeouts, talk detection,
        scenario pauses); 10 makes a 15 s ring timeout last 1.5 s.
    :param stasis_app: the app the ``7XXX`` extensions send calls into.
    :param channelvars: add ``channelvars: {"CHANNEL(linkedid)": ...}`` to every channel, as
        ``channelvars = CHANNEL(linkedid)`` in ari.conf does.
    :param boot_time: real seconds a :meth:`restart` stays unavailable (split in thirds:
        connection refused, 404, 503 "Asterisk not booted").

    Use as a context manager, or call :meth:`start` and :meth:`stop`. Every public method is
    thread-safe.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        username: str | None = None,
        password: str | None = None,
        endpoints: Sequence[Tuple[str, str]] = (("1000", "Kai"), ("1002", "Ping"), ("1006", "Lee")),
        speed: float = 1.0,
        stasis_app: str = "cti-ctl",
        channelvars: bool = False,
        boot_time: float = 0.6,
        queue_extension: str = "2000",
        queue_members: Sequence[str] = ("1002", "1006"),
    ) -> None:
        self.username = username if username is not None else "sim-" + secrets.token_hex(3)
        self.password = password if password is not None else secrets.token_urlsafe(12)
        self.port = port
        self.boot_time = boot_time
        self.scheduler = Scheduler()
        self.pbx = Pbx(
            PbxConfig(
                endpoints=endpoints,
                speed=speed,
                stasis_app=stasis_app,
                channelvars=channelvars,
                queue_extension=queue_extension,
                queue_members=queue_members,
            ),
            self.scheduler,
        )
        self.phones = PhoneBook(self.pbx)
        self.pbx.hooks = self.phones
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._serve_thread: threading.Thread | None = None
        self._threads: Dict[threading.Thread, Any] = {}
        self._conns: List[_WsConnection] = []
        self._boot_phase = "up"
        self._started = False
        self._stopped = False

    # ------------------------------------------------------------------ life cycle
    def start(self) -> AriSimulator:
        """Bind 127.0.0.1, start serving; returns ``self`` (idempotent)."""
        with self._lock:
            if self._started:
                return self
            self._started = True
        self.scheduler.start()
        self._listen()
        logger.info("ARI simulator listening on %s", self.url)
        return self

    def _listen(self) -> None:
        server = _Server(("127.0.0.1", self.port), self)
        self.port = server.server_address[1]
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="asterisk-cti-sim-http",
            daemon=True,
        )
        with self._lock:
            self._server, self._serve_thread = server, thread
        thread.start()

    def _unlisten(self) -> None:
        with self._lock:
            server, thread = self._server, self._serve_thread
            self._server = self._serve_thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)

    def stop(self, timeout: float = 5.0) -> None:
        """Close every socket and join every thread (idempotent)."""
        with self._lock:
            if not self._started or self._stopped:
                self._stopped = True
                return
            self._stopped = True
        self._unlisten()
        self.drop_websockets()
        self.scheduler.stop(timeout)
        deadline = time.monotonic() + timeout
        with self._lock:
            pending = list(self._threads)
        self._cut_connections()
        for t in pending:
            if t is not threading.current_thread():
                t.join(max(0.0, deadline - time.monotonic()))
        logger.info("ARI simulator stopped")

    def __enter__(self) -> AriSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL (without ``/ari``), e.g. ``http://127.0.0.1:8088``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        """The events websocket URL (without query), e.g. ``ws://127.0.0.1:8088/ari/events``."""
        return f"ws://127.0.0.1:{self.port}/ari/events"

    def _track(self, t: threading.Thread, sock: Any) -> None:
        with self._lock:
            self._threads[t] = sock

    def _untrack(self, t: threading.Thread) -> None:
        with self._lock:
            self._threads.pop(t, None)

    # ------------------------------------------------------------------ admin hooks
    def phone(self, extension: str) -> Phone:
        """The simulated phone of ``PJSIP/<extension>``.

        :raises KeyError: no such endpoint.
        """
        return self.phones.get(extension)

    def drop_websockets(self) -> None:
        """Cut every websocket without a close frame (what a network blip or crash does)."""
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            conn.ws.abort()

    def _cut_connections(self) -> None:
        with self._lock:
            socks = list(self._threads.values())
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def restart(self, boot_time: float | None = None) -> None:
        """Simulate ``core restart now``: drop every websocket and all state, refuse
        connections, then answer 404, then 503 ``Asterisk not booted``, then serve again with a
        new ``startup_time``. Returns at once; the phases run on the timer thread."""
        total = self.boot_time if boot_time is None else boot_time
        self._boot_phase = "refused"
        self.drop_websockets()
        self._unlisten()
        self._cut_connections()
        self.scheduler.clear()
        self.pbx.reset()
        third = total / 3

        def to_404() -> None:
            self._boot_phase = "404"
            try:
                self._listen()
            except OSError:
                logger.exception("simulator could not listen again on port %s", self.port)

        def to_503() -> None:
            self._boot_phase = "503"

        def up() -> None:
            self.pbx.reset()
            self._boot_phase = "up"

        self.scheduler.call_later(third, to_404)
        self.scheduler.call_later(2 * third, to_503)
        self.scheduler.call_later(total, up)

    def set_registered(self, endpoint: str, registered: bool) -> None:
        """Register (``online``) or unregister (``offline``) an endpoint like ``PJSIP/1000``."""
        with self.pbx.lock:
            ep = self.pbx.endpoints[endpoint]
            if ep.registered != registered:
                ep.registered = registered
                self.pbx.endpoint_event(ep)

    def add_endpoints(self, extensions: Sequence[Tuple[str, str]]) -> None:
        """Create more endpoints (load mode)."""
        self.pbx.add_endpoints(extensions)

    def sleep(self, simulated_seconds: float) -> None:
        """Sleep a simulated duration (divided by the speed-up factor)."""
        time.sleep(self.pbx.scaled(simulated_seconds))

    def delivered(self, app: str) -> int:
        """How many event frames the simulator handed to ``app``'s websocket so far (0 when
        the app does not exist); tests wait until their client has read that many."""
        with self.pbx.lock:
            a = self.pbx.apps.get(app)
            return a.delivered if a is not None else 0

    @property
    def booted(self) -> bool:
        """``True`` when the simulator answers ARI normally (not mid-restart)."""
        return self._boot_phase == "up" and self._server is not None

    # ------------------------------------------------------------------ websocket plumbing
    def _authorised(self, header: str | None, api_key: str | None) -> bool:
        creds: str | None = None
        if header and header.lower().startswith("basic "):
            try:
                creds = base64.b64decode(header[6:].strip()).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return False
        elif api_key is not None:
            creds = api_key
        # compare UTF-8 bytes: compare_digest refuses non-ASCII str (Asterisk takes UTF-8)
        return creds is not None and secrets.compare_digest(
            creds.encode(), f"{self.username}:{self.password}".encode()
        )

    def _ws_opened(self, conn: _WsConnection, apps: List[str], subscribe_all: bool) -> None:
        with self._lock:
            self._conns.append(conn)
        with self.pbx.lock:
            for name in apps:
                self.pbx.connect_app(name, subscribe_all, conn.send)

    def _ws_closed(self, conn: _WsConnection, apps: List[str]) -> None:
        with self._lock:
            if conn in self._conns:
                self._conns.remove(conn)
        with self.pbx.lock:
            for name in apps:
                self.pbx.disconnect_app(name, conn.send)

    # ------------------------------------------------------------------ REST routing
    def _route(
        self, method: str, path: str, params: Dict[str, str], body: JsonObj
    ) -> Tuple[int, Any]:
        merged: Dict[str, Any] = dict(params)
        for k, v in body.items():
            if k != "variables":
                merged.setdefault(k, v)
        seg = [unquote(x) for x in path.split("/")[1:]]
        while seg and not seg[-1]:
            seg.pop()
        if "" in seg:  # an empty id: POST /channels//redirect
            raise AriError(400, "Missing or empty resource id")
        with self.pbx.lock:
            return self._route_locked(method, seg, merged, body)

    def _route_locked(
        self, method: str, seg: List[str], p: Dict[str, Any], body: JsonObj
    ) -> Tuple[int, Any]:
        pbx = self.pbx
        if seg == ["asterisk", "info"] and method == "GET":
            return 200, {
                "build": {
                    "os": "Linux",
                    "kernel": "6.0",
                    "machine": "x86_64",
                    "options": "",
                    "date": "2026-11-01 00:00:00 UTC",
                    "user": "sim",
                },
                "system": {"version": "22.10.1-sim", "entity_id": pbx.config.asterisk_id},
                "config": {
                    "name": "",
                    "default_language": "en",
                    "setid": {"user": "", "group": ""},
                },
                "status": {"startup_time": pbx.startup_time, "last_reload_time": pbx.startup_time},
            }
        if seg and seg[0] == "applications":
            return self._applications(method, seg[1:], p, body)
        if seg[:3] == ["asterisk", "config", "dynamic"]:
            return self._dynamic_config(method, seg[3:])
        if seg and seg[0] == "endpoints" and method == "GET":
            eps = list(pbx.endpoints.values())
            if len(seg) == 1:
                return 200, [e.to_json() for e in eps]
            if len(seg) == 2:
                found = [e.to_json() for e in eps if e.technology == seg[1]]
                if not found:
                    raise AriError(404, "No Endpoints found - invalid tech " + seg[1])
                return 200, found
            ep = pbx.endpoints.get(f"{seg[1]}/{seg[2]}")
            if ep is None:
                raise AriError(404, "Endpoint not found")
            return 200, ep.to_json()
        if seg and seg[0] == "channels":
            return self._channels(method, seg[1:], p, body)
        if seg and seg[0] == "bridges":
            return self._bridges(method, seg[1:], p)
        if seg and seg[0] == "deviceStates":
            return self._device_states(method, seg[1:], p)
        raise AriError(404, "Not Found")

    def _dynamic_config(self, method: str, seg: List[str]) -> Tuple[int, Any]:
        """``GET /asterisk/config/dynamic/res_pjsip/endpoint/{id}``: a few of the endpoint's
        attributes as Asterisk 22's ``ConfigTuple`` list (the rest of sorcery is not
        modelled: other classes and types answer 404, writes 403)."""
        if len(seg) != 3:
            raise AriError(404, "Not Found")
        config_class, object_type, object_id = seg
        if config_class != "res_pjsip":
            raise AriError(404, f"configClass '{config_class}' not found")
        if object_type != "endpoint":
            raise AriError(404, f"objectType '{object_type}' not found")
        if method != "GET":
            raise AriError(403, "Dynamic configuration is not modelled by the simulator")
        ep = self.pbx.endpoints.get(f"PJSIP/{object_id}")
        if ep is None:
            raise AriError(404, f"Object with id '{object_id}' not found")
        attributes = {
            "aors": ep.resource,
            "auth": ep.resource,
            "callerid": f'"{ep.name}" <{ep.resource}>',
            "context": "from-internal",
            "transport": "transport-udp",
            "allow": "(ulaw)",
            "dtmf_mode": "rfc4733",
            "direct_media": "false",
            "mailboxes": "",
            "send_connected_line": "yes",
        }
        return 200, [{"attribute": k, "value": v} for k, v in attributes.items()]

    def _device_states(self, method: str, seg: List[str], p: Dict[str, Any]) -> Tuple[int, Any]:
        pbx = self.pbx
        if not seg and method == "GET":
            return 200, [{"name": n, "state": st} for n, st in pbx.device_states.items()]
        if len(seg) != 1:
            raise AriError(405, "Method Not Allowed")
        name = seg[0]
        if method == "GET":
            return 200, {"name": name, "state": pbx.device_states.get(name, "UNKNOWN")}
        if not name.startswith("Stasis:"):
            raise AriError(409, "Uncontrolled device specified")
        if name == "Stasis:":
            raise AriError(404, "Device name is missing")
        if method == "PUT":
            state = str(p.get("deviceState") or "")
            if state not in DEVICE_STATES:
                raise AriError(400, "Invalid device state")
            pbx.set_device_state(name, state)
            return 204, None
        if method == "DELETE":
            if name not in pbx.device_states:
                raise AriError(404, "Device not found")
            pbx.set_device_state(name, None)
            return 204, None
        raise AriError(405, "Method Not Allowed")

    def _applications(
        self, method: str, seg: List[str], p: Dict[str, Any], body: JsonObj
    ) -> Tuple[int, Any]:
        pbx = self.pbx
        if not seg and method == "GET":
            return 200, [pbx.app_json(a) for a in pbx.apps.values()]
        app = pbx.apps.get(seg[0]) if seg else None
        if app is None:
            raise AriError(404, "Application not found")
        if len(seg) == 1 and method == "GET":
            return 200, pbx.app_json(app)
        if len(seg) == 2 and seg[1] == "subscription" and method in ("POST", "DELETE"):
            raw = p.get("eventSource")
            if raw is None or raw == "":
                raise AriError(400, "Missing parameter eventSource")
            sources = [pbx.resolve_source(s) for s in str(raw).split(",")]
            if method == "POST":
                for s in sources:
                    if (
                        s.startswith("bridge:")
                        and s != "bridge:"
                        and app.subscriptions.get("bridge:")
                    ):
                        continue  # subscribed to all bridges already: Asterisk ignores it
                    app.subscriptions[s] += 1
            else:
                for s in sources:
                    if not app.subscriptions.get(s):
                        raise AriError(422, "Application not subscribed to event source")
                for s in sources:
                    app.subscriptions[s] -= 1
                    if app.subscriptions[s] <= 0:
                        del app.subscriptions[s]
            return 200, pbx.app_json(app)
        if len(seg) == 2 and seg[1] == "eventFilter" and method == "PUT":
            allowed = body.get("allowed", [])
            disallowed = body.get("disallowed", [])
            if (
                not isinstance(allowed, list)
                or not isinstance(disallowed, list)
                or not all(
                    isinstance(f, dict) and isinstance(f.get("type"), str)
                    for f in [*allowed, *disallowed]
                )
            ):
                raise AriError(400, "Invalid format definition")
            app.allowed = [dict(f) for f in allowed]
            app.disallowed = [dict(f) for f in disallowed]
            return 200, pbx.app_json(app)
        raise AriError(405, "Method Not Allowed")

    def _channel(self, cid: str) -> Channel:
        ch = self.pbx.channels.get(cid)
        if ch is None:
            raise AriError(404, "Channel not found")
        return ch

    def _stasis(self, ch: Channel) -> None:
        if not ch.in_stasis:
            raise AriError(409, _STASIS_ONLY)

    def _ready(self, ch: Channel) -> None:
        """412 for a channel from ``POST /channels/create`` until it is dialled and up."""
        if ch.created_only and ch.state != "Up":
            raise AriError(412, _INVALID_STATE)

    def _channels(
        self, method: str, seg: List[str], p: Dict[str, Any], body: JsonObj
    ) -> Tuple[int, Any]:
        pbx = self.pbx
        if not seg:
            if method == "GET":
                return 200, [pbx.cj(c) for c in pbx.channels.values()]
            if method == "POST":
                return 200, self._originate(p, body, dial=True)
            raise AriError(405, "Method Not Allowed")
        if seg == ["create"] and method == "POST":
            if not p.get("app"):
                raise AriError(400, "Missing parameter app")
            return 200, self._originate(p, body, dial=False)
        if len(seg) == 1 and method == "POST":
            if _id_in_use(pbx.channels, seg[0]):
                raise AriError(409, "Channel with given unique ID already exists")
            return 200, self._originate(p, body, dial=True, channel_id=seg[0])
        ch = self._channel(seg[0])
        if len(seg) == 1:
            if method == "GET":
                return 200, pbx.cj(ch)
            if method == "DELETE":
                cause = 16
                if p.get("reason_code"):
                    try:
                        cause = int(p["reason_code"])
                    except ValueError as exc:
                        raise AriError(400, "Invalid reason_code") from exc
                elif p.get("reason"):
                    cause = cause_from_reason(str(p["reason"]))
                pbx.hangup(ch, cause, ari=True)
                return 204, None
            raise AriError(405, "Method Not Allowed")
        op = seg[1]
        if op == "variable":
            name = p.get("variable")
            if not name:
                raise AriError(400, "Variable name is required")
            if method == "GET":
                value = _read_variable(ch, str(name))
                if value is None:
                    raise AriError(404, "Provided variable was not found")
                return 200, {"value": value}
            if method == "POST":
                self._stasis(ch)
                pbx.set_variable(
                    ch, str(name), str(p.get("value", "")), _truthy(p.get("report_events"))
                )
                return 204, None
        if op == "variables" and len(seg) == 2:
            return self._variables(method, ch, p, body)
        if op == "snoop" and method == "POST" and len(seg) <= 3:
            if not p.get("app"):
                raise AriError(400, "Missing parameter app")
            snoop_id = seg[2] if len(seg) == 3 else p.get("snoopId")
            if snoop_id and snoop_id in pbx.channels:
                raise AriError(409, "Channel with given unique ID already exists")
            s = pbx.snoop(ch, str(p["app"]), str(p.get("appArgs", "")), snoop_id)
            return 200, pbx.cj(s)
        if op == "move" and method == "POST":
            self._stasis(ch)
            if not p.get("app"):
                raise AriError(400, "Missing parameter app")
            args = [a for a in str(p.get("appArgs") or "").split(",")] if p.get("appArgs") else []
            pbx.move(ch, str(p["app"]), args)
            return 204, None
        if op in (
            "answer",
            "ring",
            "hold",
            "moh",
            "mute",
            "dtmf",
            "redirect",
            "continue",
            "dial",
            "silence",
            "play",
            "record",
        ):
            if op == "dial":
                if ch.stasis_app is None:
                    raise AriError(409, _STASIS_ONLY)
            else:
                self._stasis(ch)
                if not (op == "redirect" and not p.get("endpoint")):
                    self._ready(ch)
            return self._stasis_op(method, op, ch, p)
        raise AriError(404, "Not Found")

    def _variables(
        self, method: str, ch: Channel, p: Dict[str, Any], body: JsonObj
    ) -> Tuple[int, Any]:
        """``/channels/{id}/variables``: several variables at once (names are stripped)."""
        if method == "GET":
            names = [n.strip() for n in str(p.get("variables") or "").split(",") if n.strip()]
            if not names:
                raise AriError(400, "Variable names are required")
            values: Dict[str, str] = {}
            for name in names:
                value = _read_variable(ch, name)
                if value is None:
                    raise AriError(404, "Provided variable was not found")
                values[name] = value
            return 200, {"variables": values}
        if method == "POST":
            self._stasis(ch)
            variables = body.get("variables")
            if not isinstance(variables, dict) or not variables:
                raise AriError(400, "Variables are required")
            for name, v in variables.items():
                if isinstance(v, dict):
                    value, report = str(v.get("value", "")), bool(v.get("report_events"))
                else:
                    value, report = str(v), False
                self.pbx.set_variable(ch, str(name).strip(), value, report)
            return 204, None
        raise AriError(405, "Method Not Allowed")

    def _stasis_op(self, method: str, op: str, ch: Channel, p: Dict[str, Any]) -> Tuple[int, Any]:
        pbx = self.pbx
        if op == "answer" and method == "POST":
            if ch.state != "Up":
                pbx.set_state(ch, "Up")
                ch.answered_at = time.monotonic()
                pbx.start_talk_detect(ch)
            return 204, None
        if op == "hold" and method in ("POST", "DELETE"):
            pbx.ari_hold(ch, method == "POST")  # audio only, unless HOLD_INTERCEPT(set)
            return 204, None
        if op in ("ring", "moh", "mute", "silence") and method in ("POST", "DELETE"):
            return 204, None
        if op == "dtmf" and method == "POST":
            if not p.get("dtmf"):
                raise AriError(400, "DTMF is required")
            return 204, None
        if op == "redirect" and method == "POST":
            if not p.get("endpoint"):
                raise AriError(400, "Required parameter endpoint not present")
            tech, _, resource = str(p["endpoint"]).partition("/")
            if not resource:
                raise AriError(422, "Endpoint parameter does not contain tech/resource")
            own_tech = "Local" if ch.kind == "local" else "PJSIP"
            if tech.lower() != own_tech.lower():
                raise AriError(422, "Endpoint technology does not match channel technology")
            pbx.redirect(ch)
            return 204, None
        if op == "continue" and method == "POST":
            try:
                priority = int(p.get("priority") or 0)
            except ValueError as exc:
                raise AriError(400, "Invalid priority") from exc
            pbx.stasis_continue(
                ch,
                str(p.get("context") or ("" if ch.context == "default" else "from-internal")),
                str(p.get("extension") or ""),
                priority,
            )
            return 204, None
        if op == "dial" and method == "POST":
            if ch.state != "Down" or not ch.originated:
                raise AriError(409, "Channel is not in the Down state")
            if ch.dp_local:
                pbx.local_dial(ch)
            else:
                pbx.originate_dial(ch, float(p.get("timeout") or 30))
            return 204, None
        raise AriError(405, "Method Not Allowed")

    def _originate(
        self, p: Dict[str, Any], body: JsonObj, *, dial: bool, channel_id: str | None = None
    ) -> JsonObj:
        pbx = self.pbx
        endpoint = p.get("endpoint")
        if not endpoint:
            raise AriError(400, "Endpoint must be specified")
        endpoint = str(endpoint)
        local = re.fullmatch(r"Local/([^@/]+)@([^/]+)(/\w*)?", endpoint)
        ep = pbx.endpoints.get(endpoint)
        if ep is None and local is None:
            raise AriError(400, "Invalid endpoint")
        app = str(p.get("app") or "")
        extension = str(p.get("extension") or "")
        if not app and not extension:
            raise AriError(400, "Application or extension must be specified")
        if app and extension:
            raise AriError(400, "Application and extension cannot both be specified")
        cid = channel_id or p.get("channelId") or None
        other = p.get("otherChannelId") or None
        for given in (cid, other):
            if given and _id_in_use(pbx.channels, given):
                raise AriError(409, "Channel with given unique ID already exists")
        linkedid: str | None = None
        if p.get("originator"):
            orig = pbx.channels.get(str(p["originator"]))
            if orig is None:
                raise AriError(400, "Provided originator channel was not found")
            linkedid = orig.linkedid
        variables = body.get("variables") or {}
        if not isinstance(variables, dict):
            raise AriError(400, "Invalid variables")
        values: List[Tuple[str, str, bool]] = []
        for k, v in variables.items():
            if isinstance(v, dict):  # 22.10: {"value": ..., "report_events": ...}
                values.append((str(k), str(v.get("value", "")), bool(v.get("report_events"))))
            else:
                values.append((str(k), str(v), False))
        try:
            timeout = float(p.get("timeout") or 30)
        except ValueError as exc:
            raise AriError(400, "Invalid timeout") from exc
        app_args = str(p.get("appArgs") or "")
        if local is not None:
            ch = self._originate_local(
                local.group(1), local.group(2), app, app_args, extension, p, cid, other,
                linkedid, values, dial,
            )
            return pbx.cj(ch) if not dial else ch.to_json(pbx.config.channelvars)
        assert ep is not None
        ch = pbx.ari_originate(
            ep,
            extension=extension,
            context=str(p.get("context") or "from-internal"),
            app=app,
            app_args=app_args,
            caller_id=str(p.get("callerId") or ""),
            timeout=timeout,
            channel_id=cid,
            variables={},
            dial=False,
            linkedid=linkedid,
        )
        for name, value, report in values:
            if name.startswith(("CALLERID(", "CONNECTEDLINE(", "CHANNEL(", "HOLD_INTERCEPT(")):
                pbx.set_variable(ch, name, value, report)
            else:
                ch.variables[name] = value
                if report and name not in ch.reported:
                    ch.reported.append(name)
        if app:
            pbx.app_subscribe(app, ch)
        snapshot = pbx.cj(ch)  # Asterisk answers before the phone rings: state Down
        if dial:
            pbx.originate_dial(ch, timeout)
        else:
            self._into_app_now(ch, app, app_args)
        return snapshot

    def _into_app_now(self, ch: Channel, app: str, app_args: str) -> None:
        """``POST /channels/create``: the channel is in the app at once (StasisStart, Down);
        operations other than dial and hangup answer 412 until it is dialled and up."""
        pbx = self.pbx
        ch.on_answer = None
        ch.created_only = True
        pbx.stasis_start(ch, app, app_args.split(",") if app_args else [])

    def _originate_local(
        self,
        exten: str,
        context: str,
        app: str,
        app_args: str,
        extension: str,
        p: Dict[str, Any],
        cid: str | None,
        other: str | None,
        linkedid: str | None,
        values: List[Tuple[str, str, bool]],
        dial: bool,
    ) -> Channel:
        pbx = self.pbx
        l1, l2 = pbx.new_local_pair(exten, context, cid, other, linkedid)
        l1.originated = True
        for name, value, report in values:
            if name.startswith(("CALLERID(", "CONNECTEDLINE(", "CHANNEL(", "HOLD_INTERCEPT(")):
                pbx.set_variable(l1, name, value, report)
            else:
                l1.variables[name] = value
                if report and name not in l1.reported:
                    l1.reported.append(name)
        if app:
            l1.stasis_app = app
            pbx.app_subscribe(app, l1)
            if dial:  # originate subscribes the app to the ;2 half too, create does not
                pbx.app_subscribe(app, l2)
            args = app_args.split(",") if app_args else []

            def into_app() -> None:
                if l1.in_stasis:
                    return
                pbx.varset(l1, "STASISSTATUS", "")
                pbx.dialplan(l1, "Stasis", f"{app},{app_args}" if app_args else app)
                target = pbx.apps.get(app)
                if target is None or target.sink is None:  # no such app: Stasis() fails
                    pbx.varset(l1, "STASISSTATUS", "FAILED")
                    pbx.dp_hangup(l1, 16)
                    return
                pbx.stasis_start(l1, app, args)

            l1.on_answer = into_app
        else:
            ctx = str(p.get("context") or "default")
            try:
                priority = int(p.get("priority") or 1)
            except ValueError as exc:
                raise AriError(400, "Invalid priority") from exc

            def into_dialplan() -> None:
                pbx.dp_run(l1, ctx, extension, priority)

            l1.on_answer = into_dialplan
        if dial:
            pbx.local_dial(l1)
        else:
            self._into_app_now(l1, app, app_args)
        return l1

    def _bridge(self, bid: str) -> Bridge:
        b = self.pbx.bridges.get(bid)
        if b is None:
            raise AriError(404, "Bridge not found")
        return b

    def _bridges(self, method: str, seg: List[str], p: Dict[str, Any]) -> Tuple[int, Any]:
        pbx = self.pbx
        if method == "POST" and (
            (len(seg) == 1 and seg[0] in pbx.bridges)
            or (not seg and p.get("bridgeId") and p["bridgeId"] in pbx.bridges)
        ):
            bid = seg[0] if seg else p["bridgeId"]
            raise AriError(409, f"Bridge with id '{bid}' already exists")
        if not seg or (len(seg) == 1 and method == "POST" and seg[0] not in pbx.bridges):
            if method == "GET":
                return 200, [b.to_json() for b in pbx.bridges.values()]
            if method == "POST":
                types = str(p.get("type") or "mixing").split(",")
                btype = "holding" if "holding" in types else "mixing"
                b = pbx.new_bridge(
                    "stasis", btype, str(p.get("name") or ""), seg[0] if seg else p.get("bridgeId")
                )
                return 200, b.to_json()
            raise AriError(405, "Method Not Allowed")
        b = self._bridge(seg[0])
        if len(seg) == 1:
            if method == "GET":
                return 200, b.to_json()
            if method == "DELETE":
                if b.bridge_class != "stasis":
                    raise AriError(409, "Bridge not in Stasis application")
                pbx.delete_bridge(b)
                return 204, None
            raise AriError(405, "Method Not Allowed")
        op = seg[1]
        if op in ("addChannel", "removeChannel") and method == "POST":
            raw = p.get("channel")
            if not raw:
                raise AriError(400, "Missing parameter channel")
            chans = []
            for cid in str(raw).split(","):
                ch = pbx.channels.get(cid)
                if ch is None:
                    raise AriError(400, "Channel not found")
                if not ch.in_stasis:
                    raise AriError(422, _STASIS_ONLY)
                if op == "removeChannel" and ch.bridge is not b:
                    raise AriError(422, "Channel not in this bridge")
                chans.append(ch)
            if b.bridge_class != "stasis":
                raise AriError(409, "Bridge not in Stasis application")
            for ch in chans:
                if op == "addChannel":
                    pbx.add_to_bridge(b, ch)
                else:
                    pbx.remove_from_bridge(b, ch)
            return 204, None
        if op == "moh" and method in ("POST", "DELETE"):
            if b.bridge_class != "stasis":
                raise AriError(409, "Bridge not in Stasis application")
            return 204, None
        raise AriError(404, "Not Found")


def _id_in_use(channels: Dict[str, Channel], cid: str) -> bool:
    """Asterisk 22 refuses a new channel id that starts an existing one, ignoring case
    (measured on the lab: ``abc`` and ``ABC-LONG`` conflict with ``abc-long``)."""
    low = cid.lower()
    return any(existing.lower().startswith(low) for existing in channels)


def _truthy(value: Any) -> bool:
    return str(value).lower() in ("true", "1", "yes")


def _read_variable(ch: Channel, name: str) -> str | None:
    fixed: Dict[str, Callable[[], str]] = {
        "CALLERID(num)": lambda: ch.caller_number,
        "CALLERID(name)": lambda: ch.caller_name,
        "CALLERID(all)": lambda: f'"{ch.caller_name}" <{ch.caller_number}>',
        "CHANNEL(accountcode)": lambda: ch.accountcode,
        "CHANNEL(language)": lambda: ch.language,
        "CHANNEL(linkedid)": lambda: ch.linkedid,
        "CHANNEL(name)": lambda: ch.name,
        "CHANNEL(uniqueid)": lambda: ch.id,
        "CONNECTEDLINE(num)": lambda: ch.connected_number,
        "CONNECTEDLINE(name)": lambda: ch.connected_name,
    }
    if name in fixed:
        return fixed[name]()
    if re.fullmatch(r"[A-Z_]+\(.*\)", name):
        return ""
    return ch.variables.get(name)
