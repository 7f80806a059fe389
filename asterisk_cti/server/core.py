"""CtiServer: its Asterisk clients, their lines published over MQTT 5, agents' requests
executed; with a standby that takes over when the active server dies.

Threads: the clients' lane threads publish events and snapshots (paho's ``publish`` is
thread-safe and does not block on the network); paho's network thread (``loop_start``)
receives requests and hands each to a bounded pool (``asterisk-cti-server_N``) that runs the
blocking :class:`~asterisk_cti.CallControl` and publishes the answer. Nothing blocks paho's
thread. One more thread, ``asterisk-cti-server-ha``, runs the active/standby state machine
(it alone starts and stops the Asterisk clients and swaps broker connections), fed by paho's
callbacks through a queue.

High availability: the retained status topic ``cti/SITE/server/status`` is the lock. The
active server's broker connection carries the last will ``offline`` (with its instance id);
a standby's connection carries no will, so a standby's death never touches the status. A
server claims the lock by publishing ``online`` with its instance id when the status names
no live holder; the last claim the broker delivered wins (every subscriber sees the same
order), after ``settle`` seconds; an active server that sees a later claim steps down, and
one that lost the broker for ``fence_timeout`` seconds steps down too.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import secrets
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

from asterisk_cti import (
    AsteriskCtiError,
    CallControl,
    CallEvent,
    CallListener,
    CallStateError,
    ConfigurationError,
    ConnectError,
    ControlledCall,
    CtiClient,
    CtiConfig,
    LineSnapshotEvent,
)
from asterisk_cti.control import Consultation

from . import schema, topics
from .config import ServerConfig
from .errors import AccessDeniedError, BadRequestError, BrokerTlsError, ServerBusyError
from .netopts import no_delay

try:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties
    from paho.mqtt.reasoncodes import ReasonCode
except ImportError as exc:  # pragma: no cover - the extra is part of the test install
    raise ImportError("asterisk_cti.server needs paho-mqtt 2: "
                      "pip install 'asterisk-cti[server]'") from exc

__all__ = ["CtiServer"]

logger = logging.getLogger(__name__)

_MAX_REQUEST = 16 * 1024

#: The roles of a server (:attr:`CtiServer.role`).
STARTING, STANDBY, CLAIMING, ACTIVE, STOPPED = (
    "starting", "standby", "claiming", "active", "stopped")


def _text(request: Mapping[str, object], key: str, default: Optional[str] = None) -> str:
    value = request.get(key, default)
    if not isinstance(value, str) or not value or len(value) > 256:
        raise BadRequestError(f"'{key}' must be a non-empty string")
    return value


def _instance_id(name: str) -> str:
    host = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname())[:32] or "host"
    return f"{name}-{host}-{os.getpid()}-{secrets.token_hex(3)}"


_MAX_CONSULTS = 1024
_MAX_PARTIES = 8
_CALL_OPS = ("transfer", "consult", "complete_transfer", "cancel_transfer", "conference")


def _wait_for(request: Mapping[str, object], default: str) -> str:
    value = request.get("wait_for", default)
    if value not in ("originated", "delivered", "established"):
        raise BadRequestError("'wait_for' must be originated, delivered or established")
    return str(value)


def _maybe_seconds(request: Mapping[str, object], key: str) -> Optional[float]:
    value = request.get(key)
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value <= 300:
        raise BadRequestError(f"'{key}' must be a number of seconds in (0, 300]")
    return float(value)


def _seconds(request: Mapping[str, object], key: str, default: float) -> float:
    value = _maybe_seconds(request, key)
    return default if value is None else value


def _millis(request: Mapping[str, object], key: str) -> int:
    value = request.get(key, 100)
    if type(value) is not int or not 0 < value <= 5000:
        raise BadRequestError(f"'{key}' must be an integer of milliseconds in (0, 5000]")
    return value


def _call_result(call: ControlledCall) -> Dict[str, schema.Json]:
    """A call-control handle as the agent gets it."""
    return {"call_id": call.call_id, "connection_id": call.channel_id,
            "peer_connection_id": call.peer_channel_id, "bridge_id": call.bridge_id,
            "controlled": call.controlled, "channel_ids": list(call.channel_ids)}


def _consult_result(consult: Consultation) -> Dict[str, schema.Json]:
    return {"consult_id": consult.consult_id, "call": _call_result(consult.call),
            "connection_id": consult.channel_id,
            "peer_connection_id": consult.peer_channel_id, "bridge_id": consult.bridge_id}


class _Publisher(CallListener):
    """Publishes a line's events and snapshot (lane threads)."""

    def __init__(self, server: CtiServer) -> None:
        self._server = server

    def on_line_snapshot(self, event: LineSnapshotEvent) -> None:
        self._server._publish_line(event.line.name)

    def on_call_event(self, event: CallEvent) -> None:
        self._server._publish_event(event)


class _Conn:
    """One broker connection (a paho client) of the server; ``will``: it carries the
    status topic's last will (the active role)."""

    def __init__(self, client: mqtt.Client, gen: int, will: bool) -> None:
        self.client = client
        self.gen = gen
        self.will = will
        self.answered = threading.Event()  # the first CONNACK, success or not
        self.code: Optional[ReasonCode] = None


class CtiServer:
    """The call-centre server: owns one :class:`~asterisk_cti.CtiClient` per Asterisk server,
    publishes their lines on MQTT and executes agents' control requests; runs as the active
    server of its site or as a standby that takes over when the active one dies.

    Topics and payloads: :mod:`asterisk_cti.server.topics`, :mod:`asterisk_cti.server.schema`.
    Use as a context manager or call :meth:`start` and :meth:`stop` (any thread, blocking).

    :param config: the site, broker and agents.
    :param cti_config: the Asterisk connection of the client, or the Asterisk servers by name
        (``{"pbx1": CtiConfig(...), "pbx2": ...}``; each line goes to the server
        :meth:`ServerConfig.server_of` names). A single :class:`~asterisk_cti.CtiConfig` is
        named after the only entry of ``config.asterisk``, else ``config.name``.
    :param client_factory: builds each client (tests may pass their own); default
        :class:`~asterisk_cti.CtiClient`.
    :raises ConfigurationError: a line whose Asterisk server has no connection settings.
    """

    def __init__(self, config: ServerConfig,
                 cti_config: Union[CtiConfig, Mapping[str, CtiConfig]], *,
                 client_factory: Callable[[CtiConfig], CtiClient] = CtiClient) -> None:
        self.config = config
        if isinstance(cti_config, CtiConfig):
            single = next(iter(config.asterisk)) if len(config.asterisk) == 1 else config.name
            self._cti_configs: Dict[str, CtiConfig] = {single: cti_config}
        else:
            self._cti_configs = dict(cti_config)
        self._lines_of: Dict[str, List[str]] = {name: [] for name in self._cti_configs}
        for line in config.lines:
            server = config.server_of(line)
            if server not in self._cti_configs:
                raise ConfigurationError(
                    "asterisk", f"line {line!r} is on Asterisk server {server!r}, which has "
                    "no connection settings")
            self._lines_of[server].append(line)
        self._client_factory = client_factory
        self._clients: Dict[str, CtiClient] = {}
        self._pool: Optional[ThreadPoolExecutor] = None
        self._pending = 0
        self._lock = threading.Lock()
        self.instance = _instance_id(config.name)
        self._gen = 0
        self._conn: Optional[_Conn] = None
        self._inbox: queue.Queue[Tuple[Any, ...]] = queue.Queue()
        self._role = STARTING
        #: notified on each role change and on stop: requests that came while claiming wait
        #: on it for the outcome
        self._role_changed = threading.Condition()
        self._resolved = threading.Event()  # start(): the first role is known (or failed)
        self._start_error: Optional[BaseException] = None
        self._active = threading.Event()
        self._standby = threading.Event()
        self._stopping = threading.Event()
        self._ha: Optional[threading.Thread] = None
        #: how many times this server became active (any thread reads)
        self.activations = 0

    def __repr__(self) -> str:
        c = self.config
        scheme = "mqtts" if c.broker_tls else "mqtt"
        return (f"CtiServer(site={c.site!r}, name={c.name!r}, instance={self.instance!r}, "
                f"role={self._role!r}, broker={scheme}://{c.broker_host}:{c.broker_port}, "
                f"agents={len(c.agents)}, asterisk={sorted(self._cti_configs)})")

    def __enter__(self) -> CtiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- state --------------------------------------------------------------------------------

    @property
    def role(self) -> str:
        """``starting``, ``standby``, ``claiming``, ``active`` or ``stopped``. Any thread."""
        return self._role

    def wait_active(self, timeout: Optional[float] = None) -> bool:
        """Wait until this server is the active one; whether it is. Any thread."""
        return self._active.wait(timeout)

    def wait_standby(self, timeout: Optional[float] = None) -> bool:
        """Wait until this server is a standby; whether it is. Any thread."""
        return self._standby.wait(timeout)

    @property
    def client(self) -> CtiClient:
        """The server's CTI client while active (with several Asterisk servers: use
        :attr:`clients`). Any thread.

        :raises AsteriskCtiError: not active, or several Asterisk servers.
        """
        clients = self._clients
        if not clients:
            raise AsteriskCtiError("the server is not active")
        if len(clients) > 1:
            raise AsteriskCtiError("the server has several Asterisk servers: use clients[name]")
        return next(iter(clients.values()))

    @property
    def clients(self) -> Mapping[str, CtiClient]:
        """The CTI clients by Asterisk server name (empty unless active). Any thread."""
        return dict(self._clients)

    def _client_for(self, line: str) -> CtiClient:
        client = self._clients.get(self.config.server_of(line))
        if client is None:
            raise AsteriskCtiError("the server is not active")
        return client

    # -- life cycle ---------------------------------------------------------------------------

    def _make_conn(self, will: bool) -> _Conn:
        c = self.config
        self._gen += 1
        client = mqtt.Client(CallbackAPIVersion.VERSION2,
                             client_id=f"cti-server-{c.site}-{self.instance}",
                             protocol=mqtt.MQTTv5)
        conn = _Conn(client, self._gen, will)
        client.username_pw_set(c.broker_user, c.broker_password)
        if c.broker_tls:
            client.tls_set(ca_certs=c.broker_ca_file, certfile=c.broker_certfile,
                           keyfile=c.broker_keyfile, cert_reqs=ssl.CERT_REQUIRED,
                           tls_version=ssl.PROTOCOL_TLS_CLIENT)
        if will:
            client.will_set(topics.server_status(c.site), self._status("offline"), qos=1,
                            retain=True)
        client.reconnect_delay_set(1, 5)
        client.on_connect = lambda cl, u, f, rc, p: self._on_connect(conn, rc)
        client.on_disconnect = lambda cl, u, f, rc, p: self._inbox.put(("down", conn.gen))
        client.on_message = lambda cl, u, m: self._on_message(conn, m)
        return conn

    def _status(self, status: str) -> str:
        return json.dumps(schema.status_payload(status, self.config.name, self.instance))

    def _connect(self, conn: _Conn, *, sync: bool) -> None:
        """Connect ``conn`` and start its network thread. ``sync``: connect on this thread
        and raise what fails; else let paho connect and retry in its thread."""
        c = self.config
        where = f"{'mqtts' if c.broker_tls else 'mqtt'}://{c.broker_host}:{c.broker_port}"
        if not sync:
            conn.client.connect_async(c.broker_host, c.broker_port, keepalive=c.keepalive)
            conn.client.loop_start()
            return
        try:
            conn.client.connect(c.broker_host, c.broker_port, keepalive=c.keepalive)
        except ssl.SSLError as exc:
            raise BrokerTlsError(f"TLS with the MQTT broker {where} failed: "
                                 f"{exc.__class__.__name__}: {exc.reason or exc}") from None
        except OSError as exc:
            raise ConnectError(f"cannot connect to the MQTT broker {where}: {exc}") from None
        conn.client.loop_start()
        conn.answered.wait(c.connect_timeout)
        if conn.code is None or conn.code.is_failure:
            code = conn.code
            raise ConnectError(f"the MQTT broker {where} refused the server: {code}"
                               if code is not None else f"the MQTT broker {where} did not "
                               "answer")

    def _close(self, conn: Optional[_Conn]) -> None:
        """Disconnect cleanly (no last will) and join paho's thread."""
        if conn is None:
            return
        conn.client.disconnect()
        conn.client.loop_stop()

    def start(self) -> CtiServer:
        """Connect to the broker and take the active role, or become a standby when another
        server of the site is active. Blocks until one of the two (an active server has
        started its clients, watches every configured line and published ``online``). Any
        thread.

        :raises ConnectError: the broker refused (bad credentials) or did not answer within
            ``config.connect_timeout``; :class:`~asterisk_cti.server.errors.BrokerTlsError`
            when TLS with the broker fails (an untrusted certificate); the Asterisk client's
            error when it could not start.
        """
        c = self.config
        self._pool = ThreadPoolExecutor(c.workers, thread_name_prefix="asterisk-cti-server")
        try:
            conn = self._make_conn(will=False)
            self._conn = conn
            self._connect(conn, sync=True)
            self._ha = threading.Thread(target=self._run, name="asterisk-cti-server-ha",
                                        daemon=True)
            self._ha.start()
            deadline = time.monotonic() + c.connect_timeout + c.settle
            while not self._resolved.wait(0.5):  # wakes for Ctrl-C too
                if self._role == STARTING and time.monotonic() > deadline:
                    raise ConnectError("the MQTT broker did not deliver the server's status "
                                       f"within {c.connect_timeout + c.settle:.0f} s")
            if self._start_error is not None:
                raise self._start_error
        except BaseException:
            self.stop()
            raise
        logger.info("server %s (%s): %s for %d lines of site %s", c.name, self.instance,
                    self._role, len(c.lines), c.site)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Release the lock (an active server publishes ``offline``), disconnect cleanly,
        stop the pool and the clients. Idempotent; any thread but the server's own."""
        self._stopping.set()
        self._wake_claim_waiters()
        self._inbox.put(("stop",))
        ha = self._ha
        if ha is not None and ha is not threading.current_thread():
            ha.join(timeout + 10)
            self._ha = None
        if ha is None:  # never started: clean what start() made
            self._shutdown(timeout, release=False)
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._role = STOPPED
        self._resolved.set()

    def _shutdown(self, timeout: float, *, release: bool) -> None:
        conn = self._conn
        if release and conn is not None and conn.will and conn.client.is_connected():
            # a connection with the will claimed the lock: release it
            info = conn.client.publish(topics.server_status(self.config.site),
                                       self._status("offline"), qos=1, retain=True)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError):
                pass
        self._stop_clients(timeout)
        self._close(conn)
        self._conn = None
        self._active.clear()

    def crash(self) -> None:
        """Die as a crash would, for tests and failover drills: stop the clients, close the
        broker socket without an MQTT DISCONNECT (the broker publishes the last will), and
        answer nothing more. The server cannot be restarted. Any thread but its own."""
        self._stopping.set()
        self._wake_claim_waiters()
        self._inbox.put(("crash",))
        ha = self._ha
        if ha is not None:
            ha.join(15)
            self._ha = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._role = STOPPED

    def drop_broker_connection(self) -> None:
        """Close the broker socket without an MQTT DISCONNECT, as a network failure would:
        the broker publishes the last will (``offline``) of an active server; paho then
        reconnects and the server resumes its role (or steps down if another took over).
        For tests and failover drills. Any thread."""
        conn = self._conn
        sock = conn.client.socket() if conn is not None else None
        if isinstance(sock, socket.socket):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # -- the active/standby state machine (asterisk-cti-server-ha) ---------------------------

    def _run(self) -> None:
        c = self.config
        holder: Optional[str] = None  # the instance the status names as active
        ready = False  # the retained status of the current connection was delivered
        lost_at: Optional[float] = None  # when the active server lost the broker
        settle_until: Optional[float] = None  # CLAIMING: decide then
        not_before = 0.0  # no claim before this (takeover delay, failed activation)
        barrier = ""
        self._set_role(STARTING)
        try:
            while True:
                now = time.monotonic()
                deadlines = [t for t in (settle_until,
                                         None if lost_at is None
                                         else lost_at + c.effective_fence_timeout,
                                         not_before if not_before > now else None)
                             if t is not None]
                wait = max(0.0, min(deadlines) - now) if deadlines else 1.0
                try:
                    item = self._inbox.get(timeout=min(wait, 1.0))
                except queue.Empty:
                    item = ("tick",)
                kind = item[0]
                conn = self._conn
                if kind == "stop":
                    self._shutdown(5.0, release=True)
                    return
                if kind == "crash":
                    self._die()
                    return
                if kind in ("up", "down", "status", "barrier") and (
                        conn is None or item[1] != conn.gen):
                    continue  # a replaced connection's news
                if kind == "up":
                    ready = False
                    lost_at = None
                    barrier = self._send_barrier(conn)
                elif kind == "down":
                    ready = False
                    if self._role == ACTIVE and lost_at is None:
                        lost_at = time.monotonic()
                        logger.warning("server %s: lost the broker; stepping down in %.1f s "
                                       "unless it comes back", self.instance,
                                       c.effective_fence_timeout)
                elif kind == "status":
                    payload: Dict[str, Any] = item[2]
                    who = payload.get("instance")
                    online = payload.get("status") == "online" and isinstance(who, str)
                    if online:
                        holder = who
                    elif holder is not None and (who == holder or not isinstance(who, str)):
                        holder = None
                        if self._role in (STANDBY, STARTING):  # give a blip time to recover
                            not_before = max(not_before, time.monotonic() + c.takeover_delay)
                    if ready and self._role in (ACTIVE, CLAIMING) and online and (
                            who != self.instance):
                        # the last claim wins: another server claimed after us
                        logger.warning("server %s: %s claimed the site; standby",
                                       self.instance, who)
                        settle_until = None
                        ready = False
                        if self._role == ACTIVE:
                            self._step_down()
                        else:
                            self._to_standby()
                    elif ready and self._role == ACTIVE and not online:
                        self._claim()  # a will (a stale one, or ours): say online again
                elif kind == "barrier":
                    if item[2] != barrier:
                        continue
                    ready = True
                    if self._role == CLAIMING:
                        settle_until = time.monotonic() + c.settle
                    elif self._role == ACTIVE:  # reconnected: still ours?
                        if holder not in (None, self.instance):
                            logger.warning("server %s: %s took over meanwhile; standby",
                                           self.instance, holder)
                            ready = False
                            self._step_down()
                        else:
                            self._claim()
                    elif holder is not None:
                        self._set_role(STANDBY)
                # timers and decisions
                now = time.monotonic()
                if self._role == ACTIVE and lost_at is not None and (
                        now - lost_at >= c.effective_fence_timeout):
                    logger.warning("server %s: no broker for %.1f s; stepping down (fencing)",
                                   self.instance, now - lost_at)
                    lost_at = None
                    ready = False
                    self._step_down()
                if (self._role == CLAIMING and settle_until is not None
                        and now >= settle_until):
                    settle_until = None
                    if holder == self.instance and ready:  # still connected: ours
                        if not self._activate():
                            not_before = time.monotonic() + 5.0
                            holder = None
                            ready = False
                    else:
                        ready = False
                        self._to_standby()
                if (ready and self._role in (STANDBY, STARTING) and holder is None
                        and now >= not_before and not self._stopping.is_set()):
                    ready = False  # the new connection's barrier sets it again
                    barrier = self._begin_claim()
        except BaseException as exc:  # pragma: no cover - a bug; never leave start() waiting
            logger.exception("server %s: the HA thread failed", self.instance)
            self._start_error = exc
            self._resolved.set()
            self._shutdown(1.0, release=False)

    def _set_role(self, role: str) -> None:
        if role != self._role:
            logger.info("server %s: %s -> %s", self.instance, self._role, role)
        self._role = role
        self._wake_claim_waiters()
        if role == STANDBY:
            self._active.clear()
            self._standby.set()
            self._resolved.set()
        elif role == ACTIVE:
            self._standby.clear()
            self._active.set()
            self._resolved.set()
        else:
            self._active.clear()
            self._standby.clear()

    def _wake_claim_waiters(self) -> None:
        with self._role_changed:
            self._role_changed.notify_all()

    def _send_barrier(self, conn: Optional[_Conn]) -> str:
        """Publish a token on this instance's barrier topic: its echo comes after the
        retained status (subscribed before, on the same connection)."""
        token = secrets.token_hex(8)
        if conn is not None:
            conn.client.publish(topics.server_barrier(self.config.site, self.instance), token,
                                qos=1)
        return token

    def _swap(self, will: bool) -> _Conn:
        """Replace the broker connection by one with (or without) the last will; paho
        connects it in its thread. The old one is closed cleanly (its will is discarded)."""
        old = self._conn
        conn = self._make_conn(will)
        self._conn = conn
        self._close(old)
        self._connect(conn, sync=False)
        return conn

    def _begin_claim(self) -> str:
        """Take a connection with the will, then say ``online`` (on its connect)."""
        self._set_role(CLAIMING)
        logger.info("server %s: the site has no active server; claiming it", self.instance)
        self._swap(will=True)
        return ""  # the new connection's "up" sends the barrier

    def _claim(self) -> None:
        conn = self._conn
        if conn is not None:
            conn.client.publish(topics.server_status(self.config.site), self._status("online"),
                                qos=1, retain=True)

    def _to_standby(self) -> None:
        self._swap(will=False)
        self._set_role(STARTING)  # STANDBY once the new connection's status is known

    def _step_down(self) -> None:
        self._stop_clients(5.0)
        self._to_standby()

    def _activate(self) -> bool:
        """Start the clients and serve requests; False (lock released, standby) when a
        client could not start."""
        c = self.config
        try:
            for server, cfg in self._cti_configs.items():
                cti = self._client_factory(cfg)
                self._clients[server] = cti
                cti.add_listener(_Publisher(self))
                cti.start()
                # the calls the previous active server bridged are ours now; adopted before
                # the lines are watched, so that their first snapshots offer the control
                try:
                    cti.control.adopt_calls()
                except AsteriskCtiError as exc:
                    logger.warning("server %s: could not adopt the calls in progress on "
                                   "%s: %s", self.instance, server, exc)
                if self._lines_of[server]:
                    cti.monitor(*self._lines_of[server])
        except Exception as exc:
            logger.error("server %s: cannot start the Asterisk clients: %s", self.instance, exc)
            self._stop_clients(5.0)
            if not self._resolved.is_set():  # start(): the caller gets the error
                self._start_error = exc
                self._resolved.set()
                return False
            conn = self._conn
            if conn is not None:  # release the lock for another server
                conn.client.publish(topics.server_status(c.site), self._status("offline"),
                                    qos=1, retain=True)
            self._to_standby()
            return False
        self.activations += 1
        self._set_role(ACTIVE)
        return True

    def _stop_clients(self, timeout: float) -> None:
        clients, self._clients = self._clients, {}
        for cti in clients.values():
            try:
                cti.stop(timeout)
            except Exception:  # pragma: no cover - stop must go on
                logger.exception("server %s: stopping a client failed", self.instance)

    def _die(self) -> None:
        conn = self._conn
        self._conn = None
        if conn is not None:
            conn.client.loop_stop()  # no reconnect, no DISCONNECT
            sock = conn.client.socket()
            if isinstance(sock, socket.socket):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
        self._stop_clients(5.0)
        self._active.clear()

    # -- MQTT callbacks (paho's network thread) -----------------------------------------------

    def _on_connect(self, conn: _Conn, reason_code: ReasonCode) -> None:
        conn.code = reason_code
        if reason_code.is_failure:
            logger.error("server %s: the broker refused the connection: %s", self.instance,
                         reason_code)
            if not conn.answered.is_set():
                conn.client.disconnect()
            conn.answered.set()
            return
        no_delay(conn.client)  # events and answers must not wait ~40 ms behind the previous one
        site = self.config.site
        subs = [(topics.server_status(site), 1),
                (topics.server_barrier(site, self.instance), 1)]
        if conn.will:  # the lock's connection: requests are subscribed before the claim,
            # so that they reach it from the moment it is active
            subs.append((topics.request_filter(site), 1))
        conn.client.subscribe(subs)
        if conn.will and self._role == CLAIMING:
            self._claim_on(conn)
        if self._role == ACTIVE:
            # the generated broker does not persist retained messages: after a broker
            # restart, desktops would otherwise find no snapshots
            self._republish_lines()
        conn.answered.set()
        self._inbox.put(("up", conn.gen))

    def _claim_on(self, conn: _Conn) -> None:
        conn.client.publish(topics.server_status(self.config.site), self._status("online"),
                            qos=1, retain=True)

    def _on_message(self, conn: _Conn, message: mqtt.MQTTMessage) -> None:
        site = self.config.site
        if message.topic == topics.server_status(site):
            try:
                payload = json.loads(message.payload) if message.payload else {}
            except ValueError:
                payload = {}
            self._inbox.put(("status", conn.gen,
                             payload if isinstance(payload, dict) else {}))
            return
        if message.topic == topics.server_barrier(site, self.instance):
            self._inbox.put(("barrier", conn.gen, bytes(message.payload).decode("ascii",
                                                                                 "replace")))
            return
        if conn is not self._conn:
            return
        if self._role in (ACTIVE, CLAIMING):
            # while claiming, desktops already hear "online": their requests wait in the
            # pool for the outcome of the claim (see _serve)
            self._on_request(message)

    def _on_request(self, message: mqtt.MQTTMessage) -> None:
        parts = message.topic.split("/")
        if len(parts) != 5 or parts[4] != "request":
            return
        agent = parts[3]
        props = message.properties
        correlation = getattr(props, "CorrelationData", None) if props is not None else None
        with self._lock:
            pool = self._pool
            busy = self._pending >= self.config.max_pending
            if pool is not None and not busy:
                self._pending += 1
        if pool is None:
            return
        if busy:
            self._answer(agent, correlation, error=ServerBusyError(
                f"{self.config.max_pending} requests are pending; try again"))
            return
        payload = bytes(message.payload)
        try:
            pool.submit(self._serve, agent, payload, correlation)
        except RuntimeError:  # shut down meanwhile
            with self._lock:
                self._pending -= 1

    # -- requests (asterisk-cti-server_N) -----------------------------------------------------

    def _serve(self, agent: str, payload: bytes, correlation: Optional[bytes]) -> None:
        try:
            if not self._await_claim():
                self._answer(agent, correlation,
                             error=ServerBusyError("the server is taking over; try again"))
                return
            try:
                result = self._execute(agent, payload)
            except (AsteriskCtiError, ValueError) as exc:
                logger.info("server: request of agent %s refused: %s: %s", agent,
                            type(exc).__name__, exc)
                self._answer(agent, correlation, error=exc)
            except Exception as exc:  # a bug must answer too, not leave the agent waiting
                logger.exception("server: request of agent %s failed", agent)
                self._answer(agent, correlation, error=exc)
            else:
                self._answer(agent, correlation, result=result)
        finally:
            with self._lock:
                self._pending -= 1

    def _await_claim(self) -> bool:
        """A request that came while this server claimed the site (it published ``online``
        and waits ``settle`` seconds, then starts its clients): wait for the outcome, at
        most ``settle + connect_timeout`` seconds. False when the claim was lost (or the
        server stops); True otherwise (the request is executed as it would have been)."""
        c = self.config
        if self._role != CLAIMING:
            return True
        with self._role_changed:
            self._role_changed.wait_for(
                lambda: self._role != CLAIMING or self._stopping.is_set(),
                timeout=c.settle + c.connect_timeout)
        return self._role == ACTIVE and not self._stopping.is_set()

    def _allowed_lines(self, agent: str) -> Tuple[str, ...]:
        rights = self.config.agents.get(agent)
        if rights is None:
            raise AccessDeniedError(f"unknown agent {agent!r}")
        return self.config.lines if rights.supervisor else rights.lines

    def _own_connection(self, agent: str, connection_id: str) -> CtiClient:
        """The client of the Asterisk server where ``connection_id`` is on one of the
        agent's lines."""
        for line in self._allowed_lines(agent):
            client = self._client_for(line)
            snapshot = client.line(line)
            if snapshot is not None and any(c.connection_id == connection_id
                                            for c in snapshot.connections):
                return client
        raise AccessDeniedError(
            f"connection {connection_id!r} is not on a line of agent {agent!r}")

    def _execute(self, agent: str, payload: bytes) -> Dict[str, schema.Json]:
        if len(payload) > _MAX_REQUEST:
            raise BadRequestError(f"request larger than {_MAX_REQUEST} bytes")
        try:
            request = json.loads(payload)
        except ValueError as exc:
            raise BadRequestError(f"request is not JSON: {exc}") from None
        if not isinstance(request, dict):
            raise BadRequestError("request must be a JSON object")
        if request.get("version") != schema.SCHEMA_VERSION:
            raise BadRequestError(f"unsupported version {request.get('version')!r}")
        op = request.get("op")
        if op not in schema.OPERATIONS:
            raise BadRequestError(f"unknown op {op!r}; one of {', '.join(schema.OPERATIONS)}")
        if op == "originate":
            line = _text(request, "line")
            if line not in self._allowed_lines(agent):
                raise AccessDeniedError(f"line {line!r} is not a line of agent {agent!r}")
            call = self._client_for(line).control.originate(
                line, _text(request, "destination"),
                wait_for=_wait_for(request, "established"),
                timeout=_seconds(request, "timeout", 30.0))
            return _call_result(call)
        target = _text(request, "connection_id")
        control = self._own_connection(agent, target).control
        if op in _CALL_OPS:
            return self._execute_call_op(control, agent, op, target, request)
        if op == "answer":
            control.answer(target, timeout=_maybe_seconds(request, "timeout"))
        elif op == "hangup":
            control.hangup(target, _text(request, "reason", "normal"),
                           timeout=_maybe_seconds(request, "timeout"))
        elif op == "hold":
            control.hold(target)
        elif op == "retrieve":
            control.retrieve(target)
        elif op == "mute":
            control.mute(target, _text(request, "direction", "both"))
        elif op == "unmute":
            control.unmute(target, _text(request, "direction", "both"))
        elif op == "send_dtmf":
            control.send_dtmf(target, _text(request, "digits"),
                              duration_ms=_millis(request, "duration_ms"),
                              between_ms=_millis(request, "between_ms"))
        else:  # redirect
            control.redirect(target, _text(request, "destination"))
        return {"connection_id": target}

    # transfers and conferences: their handles go back to the agent; a consultation stays
    # here (the agent names it by its id, and only the agent that started it may use it)
    _consult_book: Optional[Dict[str, Tuple[str, Consultation]]] = None

    def _consults(self) -> Dict[str, Tuple[str, Consultation]]:
        with self._lock:
            if self._consult_book is None:
                self._consult_book = {}
            return self._consult_book

    def _consultation(self, agent: str, request: Mapping[str, object],
                      take: bool) -> Consultation:
        """The agent's own consultation named by ``consult_id`` (removed when ``take``)."""
        consult_id = _text(request, "consult_id")
        book = self._consults()
        with self._lock:
            entry = book.get(consult_id)
            if entry is not None and entry[0] == agent and take:
                del book[consult_id]
        if entry is None:
            raise CallStateError(f"consultation {consult_id} is over")
        if entry[0] != agent:
            raise AccessDeniedError(
                f"consultation {consult_id!r} was not started by agent {agent!r}")
        return entry[1]

    def _execute_call_op(self, control: CallControl, agent: str, op: str, target: str,
                         request: Mapping[str, object]) -> Dict[str, schema.Json]:
        timeout = _seconds(request, "timeout", 30.0)
        if op == "transfer":
            return _call_result(control.transfer(target, _text(request, "destination"),
                                                 timeout=timeout,
                                                 wait_for=_wait_for(request, "delivered")))
        if op == "consult":
            consult = control.consult(target, _text(request, "destination"), timeout=timeout,
                                      wait_for=_wait_for(request, "delivered"))
            book = self._consults()
            with self._lock:
                while len(book) >= _MAX_CONSULTS:  # forget the oldest: it is long over
                    del book[next(iter(book))]
                book[consult.consult_id] = (agent, consult)
            return _consult_result(consult)
        if op in ("complete_transfer", "cancel_transfer"):
            consult = self._consultation(agent, request, take=False)
            done = (control.complete_transfer if op == "complete_transfer"
                    else control.cancel_transfer)(target, consult,
                                                  timeout=_maybe_seconds(request, "timeout"))
            self._consultation(agent, request, take=True)
            return _call_result(done)
        # conference
        raw = request.get("parties")
        if not isinstance(raw, list) or not 0 < len(raw) <= _MAX_PARTIES:
            raise BadRequestError(f"'parties' must be a list of 1 to {_MAX_PARTIES} parties")
        parties: List[Union[Consultation, ControlledCall, str]] = []
        for party in raw:
            if not isinstance(party, dict):
                raise BadRequestError("each party must be a JSON object")
            if "consult_id" in party:
                parties.append(self._consultation(agent, party, take=False))
            elif "connection_id" in party:
                other = _text(party, "connection_id")
                self._own_connection(agent, other)
                parties.append(ControlledCall(call_id="", channel_id=other))
            else:
                parties.append(_text(party, "destination"))
        result = control.conference(target, *parties, timeout=timeout)
        book = self._consults()
        for party in parties:
            if isinstance(party, Consultation):
                with self._lock:
                    book.pop(party.consult_id, None)
        return _call_result(result)

    def _answer(self, agent: str, correlation: Optional[bytes], *,
                result: Optional[Dict[str, schema.Json]] = None,
                error: Optional[BaseException] = None) -> None:
        """Publish the response on the agent's own response topic (never on a topic the
        request names: a hostile agent could otherwise make the server write anywhere)."""
        body: Dict[str, schema.Json] = {"version": schema.SCHEMA_VERSION, "ok": error is None}
        if error is None:
            body["result"] = result or {}
        else:
            body["error"] = schema.error_payload(error)
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        if correlation is not None:
            props.CorrelationData = correlation
        conn = self._conn
        if conn is not None:
            conn.client.publish(topics.agent_response(self.config.site, agent),
                                json.dumps(body), qos=1, properties=props)

    # -- publishing (lane threads) ------------------------------------------------------------

    def _publish_event(self, event: CallEvent) -> None:
        site = self.config.site
        cti = self._clients.get(self.config.server_of(event.line))
        conn = self._conn
        if conn is None:
            return
        line = cti.line(event.line) if cti is not None else None
        actions = cti.control.actions if cti is not None else None
        conn.client.publish(topics.line_events(site, event.line),
                            json.dumps(schema.event_payload(event, line, actions)), qos=1)
        self._publish_line(event.line)

    def _republish_lines(self) -> None:
        """After a (re)connection to the broker (paho's thread): every line's snapshot
        again, so desktops find them retained even if the broker lost them."""
        try:
            for line in self.config.lines:
                self._publish_line(line)
        except Exception:  # never let it end paho's network thread
            logger.exception("server %s: republishing the lines failed", self.config.name)

    def _publish_line(self, line: str) -> None:
        cti = self._clients.get(self.config.server_of(line))
        snapshot = cti.line(line) if cti is not None else None
        conn = self._conn
        if cti is None or snapshot is None or conn is None:
            return
        conn.client.publish(topics.line_state(self.config.site, line),
                            json.dumps(schema.line_payload(snapshot,
                                                           actions=cti.control.actions)),
                            qos=1, retain=True)
