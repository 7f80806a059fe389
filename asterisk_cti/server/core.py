"""CtiServer: one CtiClient, its lines published over MQTT 5, agents' requests executed.

Threads: the client's lane threads publish events and snapshots (paho's ``publish`` is
thread-safe and does not block on the network); paho's network thread
(``loop_start``) receives requests and hands each to a bounded pool
(``asterisk-cti-server_N``) that runs the blocking :class:`~asterisk_cti.CallControl`
and publishes the answer. Nothing blocks paho's thread.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

from asterisk_cti import (
    AsteriskCtiError,
    CallEvent,
    CallListener,
    CallStateError,
    ConnectError,
    ControlledCall,
    CtiClient,
    CtiConfig,
    LineSnapshotEvent,
)
from asterisk_cti.control import Consultation

from . import schema, topics
from .config import ServerConfig
from .errors import AccessDeniedError, BadRequestError, ServerBusyError
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


def _text(request: Mapping[str, object], key: str, default: Optional[str] = None) -> str:
    value = request.get(key, default)
    if not isinstance(value, str) or not value or len(value) > 256:
        raise BadRequestError(f"'{key}' must be a non-empty string")
    return value


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


class CtiServer:
    """The call-centre server: owns one :class:`~asterisk_cti.CtiClient` (named
    ``config.name``), publishes its lines on MQTT and executes agents' control requests.

    Topics and payloads: :mod:`asterisk_cti.server.topics`, :mod:`asterisk_cti.server.schema`.
    Use as a context manager or call :meth:`start` and :meth:`stop` (any thread, blocking).

    :param config: the site, broker and agents.
    :param cti_config: the Asterisk connection of the client.
    :param client_factory: builds the client (tests may pass their own); default
        :class:`~asterisk_cti.CtiClient`.
    """

    def __init__(self, config: ServerConfig, cti_config: CtiConfig, *,
                 client_factory: Callable[[CtiConfig], CtiClient] = CtiClient) -> None:
        self.config = config
        self._cti_config = cti_config
        self._client_factory = client_factory
        self._cti: Optional[CtiClient] = None
        self._pool: Optional[ThreadPoolExecutor] = None
        self._pending = 0
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._answered = threading.Event()  # the broker's CONNACK, success or not
        self._connect_code: Optional[ReasonCode] = None
        self._online: Optional[mqtt.MQTTMessageInfo] = None
        self._mqtt = self._make_mqtt()

    def __repr__(self) -> str:
        c = self.config
        return (f"CtiServer(site={c.site!r}, name={c.name!r}, "
                f"broker={c.broker_host}:{c.broker_port}, agents={len(c.agents)})")

    def __enter__(self) -> CtiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- life cycle ---------------------------------------------------------------------------

    def _make_mqtt(self) -> mqtt.Client:
        c = self.config
        client = mqtt.Client(CallbackAPIVersion.VERSION2,
                             client_id=f"cti-server-{c.site}-{c.name}",
                             protocol=mqtt.MQTTv5)
        client.username_pw_set(c.broker_user, c.broker_password)
        client.will_set(topics.server_status(c.site),
                        json.dumps(schema.status_payload("offline", c.name)), qos=1,
                        retain=True)
        client.reconnect_delay_set(1, 5)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        return client

    @property
    def client(self) -> CtiClient:
        """The server's CTI client (started by :meth:`start`). Any thread."""
        if self._cti is None:
            raise AsteriskCtiError("the server is not started")
        return self._cti

    def start(self) -> CtiServer:
        """Connect to the broker, start the client, watch every configured line and publish
        ``online``. Blocks until done. Any thread.

        :raises ConnectError: the broker refused (bad credentials) or did not answer within
            ``config.connect_timeout``.
        """
        c = self.config
        self._pool = ThreadPoolExecutor(c.workers, thread_name_prefix="asterisk-cti-server")
        try:
            self._mqtt.connect(c.broker_host, c.broker_port, keepalive=30)
            self._mqtt.loop_start()
            self._answered.wait(c.connect_timeout)
            if not self._connected.is_set():
                code = self._connect_code
                raise ConnectError(
                    f"the MQTT broker {c.broker_host}:{c.broker_port} refused the server: "
                    f"{code}" if code is not None else "the MQTT broker did not answer")
            online = self._online
            if online is not None:  # the broker holds the retained "online" (its PUBACK)
                online.wait_for_publish(c.connect_timeout)
            cti = self._client_factory(self._cti_config)
            self._cti = cti
            cti.add_listener(_Publisher(self))
            cti.start()
            cti.monitor(*c.lines)
        except BaseException:
            self.stop()
            raise
        logger.info("server %s: serving %d lines of site %s", c.name, len(c.lines), c.site)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Publish ``offline``, disconnect cleanly, stop the pool and the client. Idempotent;
        any thread but the server's own."""
        c = self.config
        if self._connected.is_set():
            info = self._mqtt.publish(topics.server_status(c.site),
                                      json.dumps(schema.status_payload("offline", c.name)),
                                      qos=1, retain=True)
            info.wait_for_publish(timeout)
        self._connected.clear()
        self._mqtt.disconnect()
        self._mqtt.loop_stop()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._cti is not None:
            self._cti.stop(timeout)
            self._cti = None

    def drop_broker_connection(self) -> None:
        """Close the broker socket without an MQTT DISCONNECT, as a crash would: the broker
        publishes the last will (``offline``); paho then reconnects and the server says
        ``online`` again. For tests and failover drills. Any thread."""
        sock = self._mqtt.socket()
        if isinstance(sock, socket.socket):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # -- MQTT callbacks (paho's network thread) -----------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any,
                    reason_code: ReasonCode, properties: Optional[Properties]) -> None:
        self._connect_code = reason_code
        if reason_code.is_failure:
            logger.error("server %s: the broker refused the connection: %s",
                         self.config.name, reason_code)
            client.disconnect()
            self._answered.set()
            return
        no_delay(client)  # events and answers must not wait ~40 ms behind the previous one
        site = self.config.site
        client.subscribe(topics.request_filter(site), qos=1)
        self._online = client.publish(
            topics.server_status(site),
            json.dumps(schema.status_payload("online", self.config.name)), qos=1, retain=True)
        self._republish_lines()
        self._connected.set()
        self._answered.set()

    def _on_message(self, client: mqtt.Client, userdata: Any,
                    message: mqtt.MQTTMessage) -> None:
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

    def _allowed_lines(self, agent: str) -> Tuple[str, ...]:
        rights = self.config.agents.get(agent)
        if rights is None:
            raise AccessDeniedError(f"unknown agent {agent!r}")
        return self.config.lines if rights.supervisor else rights.lines

    def _own_connection(self, agent: str, connection_id: str) -> None:
        for line in self._allowed_lines(agent):
            snapshot = self.client.line(line)
            if snapshot is not None and any(c.connection_id == connection_id
                                            for c in snapshot.connections):
                return
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
        control = self.client.control
        if op == "originate":
            line = _text(request, "line")
            if line not in self._allowed_lines(agent):
                raise AccessDeniedError(f"line {line!r} is not a line of agent {agent!r}")
            call = control.originate(line, _text(request, "destination"),
                                     wait_for=_wait_for(request, "established"),
                                     timeout=_seconds(request, "timeout", 30.0))
            return _call_result(call)
        target = _text(request, "connection_id")
        self._own_connection(agent, target)
        if op in _CALL_OPS:
            return self._execute_call_op(agent, op, target, request)
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

    def _execute_call_op(self, agent: str, op: str, target: str,
                         request: Mapping[str, object]) -> Dict[str, schema.Json]:
        control = self.client.control
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
        self._mqtt.publish(topics.agent_response(self.config.site, agent), json.dumps(body),
                           qos=1, properties=props)

    # -- publishing (lane threads) ------------------------------------------------------------

    def _publish_event(self, event: CallEvent) -> None:
        site = self.config.site
        cti = self._cti
        line = cti.line(event.line) if cti is not None else None
        actions = cti.control.actions if cti is not None else None
        self._mqtt.publish(topics.line_events(site, event.line),
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
        cti = self._cti
        snapshot = cti.line(line) if cti is not None else None
        if cti is None or snapshot is None:
            return
        self._mqtt.publish(topics.line_state(self.config.site, line),
                           json.dumps(schema.line_payload(snapshot,
                                                          actions=cti.control.actions)),
                           qos=1, retain=True)
