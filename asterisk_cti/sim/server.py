"""The simulator's front: ARI over real HTTP and a real websocket on 127.0.0.1.

:class:`AriSimulator` composes the PBX (:mod:`.pbx`), the phones (:mod:`.phones`), a timer
thread and a threaded HTTP server that serves the websocket itself and hands every REST request
to :func:`.routes.route` (one module per ARI resource). Threads, all named ``asterisk-cti-sim-*``:

- ``asterisk-cti-sim-http``: the accept loop;
- ``asterisk-cti-sim-conn-N``: one per HTTP connection (a websocket's reader lives here);
- ``asterisk-cti-sim-ws-N``: one writer per websocket, draining its event queue;
- ``asterisk-cti-sim-timers``: ring timeouts, talk detection, auto-answer, boot phases.

:meth:`AriSimulator.stop` is idempotent and joins every one of them.
"""

from __future__ import annotations

import base64
import binascii
import errno
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
from typing import Any, Dict, List, Sequence, Tuple
from urllib.parse import parse_qs, unquote, urlsplit

from . import admin
from .client import SimAdmin
from .objects import JsonObj
from .pbx import AriError, Pbx, PbxConfig
from .phones import Phone, PhoneBook
from .routes import route
from .scheduler import Scheduler
from .websocket import ServerWebSocket, WebSocketClosed, accept_key

__all__ = ["DEFAULT_PORT", "AriSimulator", "PortInUseError"]

#: The port ``python -m asterisk_cti.sim`` and ``asterisk-cti sim serve`` listen on by default
#: (Asterisk's own HTTP port; :class:`AriSimulator` itself picks a free one by default).
DEFAULT_PORT = 8088


class PortInUseError(OSError):
    """The simulator's port is taken on 127.0.0.1 (by another simulator, an Asterisk, ...)."""

    def __init__(self, port: int) -> None:
        super().__init__(
            errno.EADDRINUSE,
            f"port {port} on 127.0.0.1 is already in use; choose another with --port "
            "(0: any free port)",
        )
        self.port = port

logger = logging.getLogger(__name__)



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
        admin = parts.path.startswith("/sim/")
        if not admin and not parts.path.startswith("/ari/"):
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
        if admin:
            self._admin(method, parts.path, params, body)
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
            status, result = route(sim.pbx, method, path, params, body)
        except AriError as exc:
            self._reply(exc.status, {"message": exc.message})
            return
        self._reply(status, result)

    def _admin(self, method: str, path: str, params: Dict[str, str], body: JsonObj) -> None:
        sim = self.server.sim
        merged: Dict[str, Any] = dict(params)
        for k, v in body.items():
            if isinstance(v, str):
                merged.setdefault(k, v)
        seg = [unquote(x) for x in path[len("/sim/") :].rstrip("/").split("/")]
        if seg in (["restart"], ["drop_websockets"]):
            self._admin_server(method, seg[0], merged)
            return
        try:
            status, result = admin.handle(sim.pbx, sim.phones, method, seg, merged,
                                          lambda: sim._stopped)
        except AriError as exc:
            self._reply(exc.status, {"message": exc.message})
            return
        self._reply(status, result)

    def _admin_server(self, method: str, action: str, p: Dict[str, Any]) -> None:
        """``/sim/restart`` and ``/sim/drop_websockets``: answer 204 first, then act (both
        cut this very connection)."""
        if method != "POST":
            self._reply(405, {"message": "Method Not Allowed"})
            return
        boot_time: float | None = None
        if "boot_time" in p:
            try:
                boot_time = float(p["boot_time"])
            except (TypeError, ValueError):
                boot_time = -1.0
            if not 0 <= boot_time <= 60:
                self._reply(400, {"message": "Invalid parameter boot_time (0 to 60 s)"})
                return
        self.close_connection = True
        if action == "restart":
            self.server.sim._boot_phase = "refused"  # down for whoever reads the 204
        self._reply(204)
        self.wfile.flush()
        if action == "restart":
            self.server.sim.restart(boot_time)
        else:
            self.server.sim.drop_websockets()

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
    :param ivr_extension: the IVR number: it answers, then enters
        ``Stasis(<stasis_app>,ivr,<ivr_flow>)`` (from a phone or :meth:`trunk_call`).
    :param ivr_flow: the flow name the IVR number passes.
    :param channelvars: the ``channelvars`` of ari.conf: every channel object carries
        ``channelvars`` with these names (``CHANNEL(linkedid)``, variables; an unset one is
        empty). ``True`` stands for the lab's ari.conf, ``CHANNEL(linkedid)`` and
        ``CTI_DATA``; ``False`` (the default) for none.
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
        channelvars: bool | Sequence[str] = False,
        boot_time: float = 0.6,
        queue_extension: str = "2000",
        queue_members: Sequence[str] = ("1002", "1006"),
        ivr_extension: str = "5000",
        ivr_flow: str = "main",
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
                ivr_extension=ivr_extension,
                ivr_flow=ivr_flow,
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
        try:
            self._listen()
        except BaseException:
            self.scheduler.stop()
            with self._lock:
                self._started = False
            raise
        logger.info("ARI simulator listening on %s", self.url)
        return self

    def _listen(self) -> None:
        try:
            server = _Server(("127.0.0.1", self.port), self)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(self.port) from None
            raise
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

    def admin_client(self, timeout: float = 10.0) -> SimAdmin:
        """A :class:`~asterisk_cti.sim.client.SimAdmin` for this simulator's admin REST
        (``/sim/...``); from another process build one with the URL and credentials."""
        return SimAdmin(self.url, self.username, self.password, timeout)

    def set_variable(self, channel_id: str, name: str, value: str) -> None:
        """What the dialplan's ``Set(name=value)`` does on a live channel (any channel, not
        only Stasis ones, unlike ``POST /channels/{id}/variable``): the variable, inherited
        by the channels it creates afterwards when named ``__NAME``, and a ChannelVarset.
        Runs on the caller's thread.

        :raises KeyError: no such channel.
        """
        with self.pbx.lock:
            ch = self.pbx.channels.get(channel_id)
            if ch is None:
                raise KeyError(channel_id)
            self.pbx.varset(ch, name, value)

    def trunk_call(self, number: str, to: str, name: str = "") -> str:
        """An outside caller ``number`` calls ``to`` through ``PJSIP/trunk`` (inbound context
        ``from-trunk``); returns the trunk channel's id. Runs on the caller's thread."""
        with self.pbx.lock:
            return self.pbx.trunk_call(number, to, name).id

    def trunk_dtmf(self, channel_id: str, digits: str) -> None:
        """The outside caller of trunk channel ``channel_id`` keys ``digits`` (``0-9 A-D * #``):
        one ``ChannelDtmfReceived`` each. Runs on the caller's thread.

        :raises KeyError: no such live channel.
        :raises ValueError: bad digits.
        """
        if not re.fullmatch(r"[0-9A-Da-d*#]{1,64}", digits):
            raise ValueError("digits must be 1 to 64 of 0-9, A-D, * and #")
        with self.pbx.lock:
            ch = self.pbx.channels.get(channel_id)
            if ch is None or ch.destroyed:
                raise KeyError(channel_id)
            self.pbx.caller_dtmf(ch, digits.upper())

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
