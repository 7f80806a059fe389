"""RemoteClient: a desktop's CTI client through the CTI server and its MQTT 5 broker, with
the listener interfaces and the call control of :class:`~asterisk_cti.CtiClient`.

Threads: paho's network thread (``paho-mqtt-client-...``, ``loop_start``) reads the broker:
it parses and validates each payload, updates the line snapshots and hands what listeners
get to the lanes; it never runs user code. Listeners run on lane threads
(``asterisk-cti-remote-lane_N``: one line's events in order, lines in parallel) and notice
threads (``asterisk-cti-remote-notice_N``, one lane per connection listener), or through
the ``call_soon`` given to :meth:`RemoteClient.add_listener`. Control requests block their
caller (any thread) until paho's thread reads the answer.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, FrozenSet, Hashable, List, Optional, Set, Tuple, cast

from asterisk_cti import (
    CallEvent,
    CallListener,
    ClientStoppedError,
    ConfigurationError,
    ConnectError,
    ConnectionEvent,
    CtiTimeoutError,
    EventParseError,
    Line,
    LineSnapshotEvent,
    ListenerHandle,
    TlsVerificationError,
    WouldDeadlockError,
)
from asterisk_cti.control import Action, Actions
from asterisk_cti.control.futures import CallSoon
from asterisk_cti.pipeline.delivery import CALL, SNAPSHOT, ListenerRegistry, Registration
from asterisk_cti.pipeline.dispatcher import Dispatcher, ErrorHook
from asterisk_cti.server import topics
from asterisk_cti.server.errors import AccessDeniedError
from asterisk_cti.server.netopts import no_delay
from asterisk_cti.server.schema import SCHEMA_VERSION

from .config import RemoteConfig, check_line
from .control import RemoteControl
from .errors import BrokerRefusedError, RemoteError, ServerUnavailableError, error_from_payload

try:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties
    from paho.mqtt.reasoncodes import ReasonCode
except ImportError as exc:  # pragma: no cover - the extra is part of the test install
    raise ImportError("asterisk_cti.remote needs paho-mqtt 2: "
                      "pip install 'asterisk-cti[server]'") from exc

__all__ = ["RemoteClient"]

logger = logging.getLogger(__name__)

#: The largest payload read from the broker; larger ones are counted as bad.
MAX_PAYLOAD = 256 * 1024
#: Requests waiting for an answer at once, at most.
MAX_PENDING = 256
#: CONNACK reason codes retrying cannot fix (bad user name or password, not authorized,
#: client id refused, bad authentication method, banned).
_PERMANENT = (0x85, 0x86, 0x87, 0x8A, 0x8C)


@dataclass
class _Pending:
    done: threading.Event = field(default_factory=threading.Event)
    result: Dict[str, Any] = field(default_factory=dict)
    error: Optional[BaseException] = None


def _actions_of(raw: object, connection_id: str) -> Actions:
    """The ``actions`` object of a published connection (strict)."""
    if not isinstance(raw, dict):
        raise EventParseError("'actions' must be an object")
    allowed, reasons, in_stasis = raw.get("allowed"), raw.get("reasons"), raw.get("in_stasis")
    if not isinstance(allowed, list) or not isinstance(reasons, dict) or type(
            in_stasis) is not bool:
        raise EventParseError("'actions' needs 'allowed', 'reasons' and 'in_stasis'")
    try:
        ok = frozenset(Action(a) for a in allowed)
        why = {Action(a): r for a, r in reasons.items()}
    except (ValueError, TypeError):
        raise EventParseError("'actions' names an unknown action") from None
    if not all(isinstance(r, str) and len(r) <= 1024 for r in why.values()):
        raise EventParseError("'actions' reasons must be short strings")
    return Actions(connection_id=connection_id, allowed=ok,
                   reasons=tuple((a, why[a]) for a in Action if a in why),
                   in_stasis=in_stasis)


def _line_of(payload: object) -> Tuple[Line, Dict[str, Actions]]:
    """A published line snapshot and its connections' actions (strict, all or nothing)."""
    line = Line.from_dict(payload)
    actions: Dict[str, Actions] = {}
    for raw in cast(Dict[str, Any], payload).get("connections", []):
        if "actions" in raw:
            cid = raw["connection_id"]
            actions[cid] = _actions_of(raw["actions"], cid)
    return line, actions


class RemoteClient:
    """A desktop's CTI client through the CTI server (``asterisk-cti serve``): the same
    listeners (:class:`~asterisk_cti.CallListener` with ``on_call_event``, the ``on_<kind>``
    methods and ``on_line_snapshot``; :class:`~asterisk_cti.ConnectionListener`), line
    snapshots and blocking ``control`` (:class:`~asterisk_cti.remote.RemoteControl`) as
    :class:`~asterisk_cti.CtiClient`, over MQTT 5 (paho-mqtt 2)::

        with RemoteClient(RemoteConfig(site="paris", agent="1000", password=secret,
                                       broker_host="cti.example", lines=("PJSIP/1000",))) as cti:
            cti.add_listener(PhoneBar())
            cti.control.hold(cti.line("PJSIP/1000").active_connection)

    Liveness: listeners get ``on_connected`` when both the broker connection is up and the
    server says ``online`` (its retained status), ``on_disconnected`` when either goes
    (``event.reason`` says which; ``event.error`` is set when the broker refused the login
    and the client stopped trying). After every (re)connection and whenever the server comes
    back online, each call listener gets a fresh ``on_line_snapshot`` of every line (from
    the retained snapshots) before that line's next events.

    A payload that is not valid (not JSON, an unknown kind, a line that is not the topic's,
    oversized...) is counted (``stats()["bad_payloads"]``), logged and never delivered.

    :param config: the site, the agent, the broker.
    :param error_hook: ``hook(listener, event, exception)`` when a listener raises (on the
        lane thread).

    Threads: every public method may be called from any thread, including a listener.
    """

    def __init__(self, config: RemoteConfig, *, error_hook: Optional[ErrorHook] = None) -> None:
        self.config = config
        self._lock = threading.RLock()
        self._registry = ListenerRegistry(error_hook, CallListener)
        self._lanes: Optional[Dispatcher] = None
        self._notices: Optional[Dispatcher] = None
        self._running = False
        self._stopping = False
        self._monitored: Dict[str, str] = {}  # line -> its topic level (resource)
        self._by_resource: Dict[str, str] = {}
        self._lines: Dict[str, Line] = {}
        self._actions: Dict[str, Dict[str, Actions]] = {}  # line -> connection id -> actions
        self._due: Set[str] = set()  # lines whose next snapshot call listeners must get
        self._broker_up = False
        self._ready = False  # subscribed: requests' answers can be received
        self._online: Optional[bool] = None  # what the server's status says
        self._announced: Optional[bool] = None
        self._refused: Optional[BaseException] = None
        self._answered = threading.Event()
        self._subacks: Dict[int, Tuple[List[str], threading.Event, List[int]]] = {}
        self._pending: Dict[bytes, _Pending] = {}
        self._counts = {"events": 0, "snapshots": 0, "bad_payloads": 0, "requests": 0,
                        "broker_connects": 0}
        site = config.site
        self._status_topic = topics.server_status(site)
        self._request_topic = topics.agent_request(site, config.agent)
        self._response_topic = topics.agent_response(site, config.agent)
        self._control = RemoteControl(self._request, self._actions_for,
                                      config.request_timeout)
        for line in config.lines:
            self._add_line(line)
        self._mqtt = self._make_mqtt()

    def __repr__(self) -> str:
        state = "running" if self._running else "stopped"
        return (f"<RemoteClient agent={self.config.agent!r} site={self.config.site!r} "
                f"broker={self.config.url!r} {state}>")

    def __enter__(self) -> RemoteClient:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- set-up -----------------------------------------------------------------------------------

    def _make_mqtt(self) -> mqtt.Client:
        c = self.config
        client = mqtt.Client(CallbackAPIVersion.VERSION2,
                             client_id=c.client_id or f"cti-desk-{c.agent}-{uuid.uuid4().hex[:8]}",
                             protocol=mqtt.MQTTv5)
        client.username_pw_set(c.agent, c.password)
        if c.tls:
            context = ssl.create_default_context(cafile=c.ca_file)  # verified, host name too
            client.tls_set_context(context)
        client.reconnect_delay_set(c.reconnect_min, c.reconnect_max)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    def _add_line(self, line: str) -> None:
        check_line(line)
        resource = topics.line_resource(line)
        other = self._by_resource.get(resource)
        if other is not None and other != line:
            raise ConfigurationError("lines", f"{line} and {other} share the topic level "
                                     f"{resource!r}; line resources must be unique")
        self._monitored[line] = resource
        self._by_resource[resource] = line
        self._due.add(line)

    # -- life cycle -------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`. Any thread."""
        return self._running

    @property
    def connected(self) -> bool:
        """True when the broker connection is up and the server says it is online. Any
        thread."""
        return self._broker_up and self._online is True

    @property
    def server_online(self) -> Optional[bool]:
        """What the server's retained status says (None: not known yet). Any thread."""
        return self._online

    def start(self, timeout: Optional[float] = None, *, wait: bool = True) -> RemoteClient:
        """Connect to the broker and subscribe to the status, the agent's answers and the
        monitored lines. Any thread.

        With ``wait`` (the default) it blocks until the broker accepted the login and the
        subscriptions (``timeout``, default ``config.connect_timeout``), and raises what
        went wrong; the server need not be online (listeners hear when it is). With
        ``wait=False`` it returns at once and keeps trying in the background; listeners
        get ``on_disconnected`` with ``event.error`` when the broker refuses the login.

        :raises TlsVerificationError: the broker's certificate could not be verified.
        :raises BrokerRefusedError: wrong agent name or password.
        :raises AccessDeniedError: the broker refused a line's subscription (not the
            agent's line).
        :raises ConnectError: the broker could not be reached or did not answer in time.
        """
        c = self.config
        with self._lock:
            if self._running:
                return self
            self._running, self._stopping = True, False
            self._refused = None
            self._answered.clear()
            self._lanes = Dispatcher(self._registry.deliver, workers=c.workers,
                                     thread_name_prefix="asterisk-cti-remote-lane")
            self._notices = Dispatcher(self._registry.deliver_notice, workers=8,
                                       thread_name_prefix="asterisk-cti-remote-notice")
            self._lanes.start()
            self._notices.start()
        try:
            if not wait:
                self._mqtt.connect_async(c.broker_host, c.broker_port, keepalive=c.keepalive,
                                         clean_start=True)
                self._mqtt.loop_start()
                return self
            try:
                self._mqtt.connect(c.broker_host, c.broker_port, keepalive=c.keepalive,
                                   clean_start=True)
            except ssl.SSLCertVerificationError as exc:
                raise TlsVerificationError(
                    f"the MQTT broker's certificate at {c.url} could not be verified: "
                    f"{exc.verify_message}; give its CA as ca_file") from None
            except (OSError, ssl.SSLError) as exc:
                raise ConnectError(f"cannot reach the MQTT broker at {c.url}: "
                                   f"{type(exc).__name__}: {exc}") from None
            self._mqtt.loop_start()
            if not self._answered.wait(c.connect_timeout if timeout is None else timeout):
                raise ConnectError(f"the MQTT broker at {c.url} did not answer in time")
            if self._refused is not None:
                raise self._refused
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 5.0) -> bool:
        """Disconnect, fail waiting requests (:class:`~asterisk_cti.ClientStoppedError`),
        end every thread this client started. Idempotent; any thread but the client's own
        lanes (from a lane it does not wait for that lane).

        :returns: True when every thread ended in time.
        """
        with self._lock:
            was = self._running
            self._running, self._stopping = False, True
            pending, self._pending = self._pending, {}
            lanes, notices = self._lanes, self._notices
            self._lanes = self._notices = None
            self._broker_up = self._ready = False
            self._online, self._announced = None, None
            self._due = set(self._monitored)
        for slot in pending.values():
            slot.error = ClientStoppedError("the client stopped before the server answered")
            slot.done.set()
        if was:
            self._mqtt.disconnect()
            self._mqtt.loop_stop()
        ok = self._control.stop_operations(timeout)
        for dispatcher in (lanes, notices):
            if dispatcher is not None:
                ok = dispatcher.stop(timeout) and ok
        return ok

    def close(self) -> None:
        """Same as :meth:`stop`."""
        self.stop()

    # -- lines ------------------------------------------------------------------------------------

    def monitor(self, *lines: str, timeout: Optional[float] = None) -> None:
        """Watch more lines (``PJSIP/1000``; the agent's own, the broker refuses others).
        While connected it subscribes and waits for the broker's answer; the line's current
        snapshot follows (``on_line_snapshot``). Any thread.

        :raises ConfigurationError: a malformed line.
        :raises AccessDeniedError: the broker refused the subscription.
        """
        new: List[str] = []
        with self._lock:
            for line in lines:
                if line not in self._monitored:
                    self._add_line(line)
                    new.append(line)
            ready = self._ready
        if new and ready:
            self._subscribe(new, timeout)

    def unmonitor(self, *lines: str) -> None:
        """Stop watching lines (their snapshots are forgotten). Any thread."""
        gone: List[str] = []
        with self._lock:
            for line in lines:
                resource = self._monitored.pop(line, None)
                if resource is not None:
                    self._by_resource.pop(resource, None)
                    self._lines.pop(line, None)
                    self._actions.pop(line, None)
                    self._due.discard(line)
                    gone.append(line)
            ready = self._ready
        if gone and ready:
            self._mqtt.unsubscribe([self._line_filter(line) for line in gone])

    @property
    def monitored(self) -> Tuple[str, ...]:
        """The watched lines, in the order they were added. Any thread."""
        return tuple(self._monitored)

    @property
    def lines(self) -> Tuple[Line, ...]:
        """The latest snapshot of every watched line the server published. Any thread."""
        with self._lock:
            return tuple(self._lines[n] for n in self._monitored if n in self._lines)

    def line(self, endpoint: str) -> Optional[Line]:
        """The latest snapshot of one line (``"PJSIP/1000"``), or None. Any thread."""
        return self._lines.get(endpoint)

    @property
    def control(self) -> RemoteControl:
        """The blocking call control (:class:`~asterisk_cti.remote.RemoteControl`). Any
        thread."""
        return self._control

    def stats(self) -> Dict[str, int]:
        """Counters: ``events``, ``snapshots``, ``bad_payloads``, ``requests``,
        ``broker_connects``. Any thread."""
        with self._lock:
            return dict(self._counts)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until every listener callback queued so far ran. Any thread but a
        listener's own.

        :returns: False on timeout.
        :raises WouldDeadlockError: called from this client's lane or notice thread.
        """
        if threading.current_thread().name.startswith("asterisk-cti-remote-"):
            raise WouldDeadlockError("wait_idle() from a listener would wait for itself")
        lanes, notices = self._lanes, self._notices
        ok = lanes.wait_idle(timeout) if lanes is not None else True
        return (notices.wait_idle(timeout) if notices is not None else True) and ok

    def _actions_for(self, connection_id: str) -> Optional[Actions]:
        with self._lock:
            for per_line in self._actions.values():
                found = per_line.get(connection_id)
                if found is not None:
                    return found
        return None

    # -- listeners --------------------------------------------------------------------------------

    def add_listener(self, listener: Any, *,
                     call_soon: Optional[CallSoon] = None) -> ListenerHandle:
        """Register a :class:`~asterisk_cti.CallListener` and/or
        :class:`~asterisk_cti.ConnectionListener` (as :meth:`CtiClient.add_listener
        <asterisk_cti.CtiClient.add_listener>`): added while running, it gets the current
        connection state first (``event.current``) and one ``on_line_snapshot`` per line
        known (``reason`` ``listener_added``) before that line's later events; added before
        :meth:`start`, the real notices and the snapshots after connecting. With
        ``call_soon`` its callbacks run where ``call_soon`` runs them (a GUI thread). Any
        thread.

        :raises TypeError: neither a call nor a connection listener.
        """
        with self._lock:
            reg = self._registry.add(listener, call_soon)
            if reg is None or not (reg.call or reg.connection):
                if reg is not None:
                    self._registry.remove(listener)
                raise TypeError(f"{type(listener).__name__} is not a CallListener or "
                                "ConnectionListener")
            if self._running:
                if reg.connection:
                    up = self.connected
                    self._notify([reg], ConnectionEvent(
                        connected=up, url=self.config.url, current=True,
                        reason="" if up else self._down_reason()))
                if reg.call:
                    self._send_snapshots([reg], list(self._lines), "listener_added")
        return ListenerHandle(cast(Any, self), listener)

    def remove_listener(self, listener: Any) -> None:
        """Unregister a listener (idempotent; any thread, also from its own callback)."""
        self._registry.remove(listener)

    def _call_regs(self) -> List[Registration]:
        return [r for r in self._registry.registrations if r.call and not r.removed]

    def _send_snapshots(self, regs: List[Registration], lines: List[str], reason: str) -> None:
        """Lock held: one snapshot per line to each registration, on the line's lane."""
        lanes = self._lanes
        if lanes is None or not regs:
            return
        items: List[Tuple[Hashable, Any]] = []
        for line in lines:
            snapshot = self._lines.get(line)
            if snapshot is None:
                continue
            for reg in regs:
                reg.pending.add(line)
                items.append((line, (SNAPSHOT, (reg, line, LineSnapshotEvent(snapshot,
                                                                              reason)))))
        try:
            lanes.submit_many(items)
        except ClientStoppedError:
            pass

    def _notify(self, regs: List[Registration], event: ConnectionEvent) -> None:
        """Lock held: a connection notice on each registration's own notice lane."""
        notices = self._notices
        if notices is None:
            return
        try:
            notices.submit_many([(id(r), (r, event)) for r in regs if r.connection])
        except ClientStoppedError:
            pass

    def _down_reason(self) -> str:
        if not self._broker_up:
            return "not connected to the MQTT broker"
        return "the CTI server is offline" if self._online is False else \
            "waiting for the CTI server's status"

    def _announce(self, reason: str = "", error: Optional[BaseException] = None) -> None:
        """Lock held: tell connection listeners when the liveness changed."""
        up = self._broker_up and self._online is True
        if self._stopping or (up == self._announced and error is None):
            return
        if not up and self._announced is None and self._online is None and \
                error is None and self._broker_up:
            return  # connected to the broker, the server's status is still on its way
        self._announced = up
        self._notify(list(self._registry.connection_listeners), ConnectionEvent(
            connected=up, url=self.config.url, reason="" if up else (
                reason or self._down_reason()), error=error))

    # -- paho's network thread --------------------------------------------------------------------

    def _line_filter(self, line: str) -> str:
        return f"cti/{self.config.site}/line/{topics.line_resource(line)}/#"

    def _subscribe(self, lines: List[str], timeout: Optional[float],
                   extra: Tuple[str, ...] = (), wait: bool = True) -> None:
        """Subscribe to ``extra`` topics and the lines' filters; wait for the SUBACK unless
        told not to (paho's thread). A refused line is dropped and raises
        AccessDeniedError."""
        wanted = list(extra) + [self._line_filter(line) for line in lines]
        done = threading.Event()
        codes: List[int] = []
        with self._lock:
            rc, mid = self._mqtt.subscribe([(t, 1) for t in wanted])
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
                raise ServerUnavailableError(f"cannot subscribe: {mqtt.error_string(rc)}")
            self._subacks[mid] = (wanted, done, codes)
        if not wait:
            return
        if not done.wait(self.config.connect_timeout if timeout is None else timeout):
            raise ConnectError("the MQTT broker did not answer the subscription in time")
        refused = [line for line in lines if self._line_filter(line) in self._refused_topics(
            wanted, codes)]
        if refused:
            self.unmonitor(*refused)
            raise AccessDeniedError(f"the broker refused agent {self.config.agent!r} the "
                                    f"line(s) {', '.join(refused)}")

    @staticmethod
    def _refused_topics(wanted: List[str], codes: List[int]) -> FrozenSet[str]:
        return frozenset(t for t, code in zip(wanted, codes) if code >= 0x80)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any,
                    reason_code: ReasonCode, properties: Optional[Properties]) -> None:
        code = int(reason_code.value)
        if reason_code.is_failure:
            logger.error("agent %s: the MQTT broker refused the login: %s", self.config.agent,
                         reason_code)
            if code in _PERMANENT:
                error = BrokerRefusedError(
                    f"the MQTT broker at {self.config.url} refused agent "
                    f"{self.config.agent!r}: {reason_code}", code)
                with self._lock:
                    self._refused = error
                    self._announce(str(reason_code), error)
                client.disconnect()  # retrying cannot help
                self._answered.set()
            return
        no_delay(client)  # a request must not wait for the previous packet's ACK
        with self._lock:
            self._broker_up = True
            self._counts["broker_connects"] += 1
            self._due = set(self._monitored)
            self._online = None  # the retained status follows the subscription
            lines = list(self._monitored)
        try:
            self._subscribe(lines, None, (self._status_topic, self._response_topic), wait=False)
        except ServerUnavailableError as exc:
            logger.error("agent %s: %s", self.config.agent, exc)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int,
                      reason_codes: List[ReasonCode], properties: Optional[Properties]) -> None:
        with self._lock:
            entry = self._subacks.pop(mid, None)
            if entry is None:
                return
            wanted, done, codes = entry
            codes.extend(int(rc.value) for rc in reason_codes)
            refused = self._refused_topics(wanted, codes)
            if self._response_topic in wanted:  # the connection's own subscription
                if refused:
                    logger.error("agent %s: the broker refused %s", self.config.agent,
                                 ", ".join(sorted(refused)))
                    if self._refused is None and any(
                            t in refused for t in (self._status_topic, self._response_topic)):
                        self._refused = AccessDeniedError(
                            f"the broker refused agent {self.config.agent!r} its status or "
                            "response topic: check the broker's rights")
                    for t in refused:
                        line = self._by_resource.get(t.split("/")[3]) if t.count("/") == 4 \
                            else None
                        if line is not None and self._refused is None:
                            self._refused = AccessDeniedError(
                                f"the broker refused agent {self.config.agent!r} the line "
                                f"{line}")
                self._ready = True
                self._answered.set()
        done.set()

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        with self._lock:
            self._announce(f"cannot reach the MQTT broker at {self.config.url}")

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any,
                       reason_code: ReasonCode, properties: Optional[Properties]) -> None:
        with self._lock:
            self._broker_up = self._ready = False
            pending, self._pending = self._pending, {}
            if not self._stopping:
                logger.warning("agent %s: lost the MQTT broker: %s", self.config.agent,
                               reason_code)
                self._announce(f"lost the MQTT broker: {reason_code}")
        for slot in pending.values():
            slot.error = ServerUnavailableError(
                "the broker connection dropped before the server answered; the operation "
                "may or may not have been done")
            slot.done.set()

    def _bad(self, topic: str, why: object) -> None:
        with self._lock:
            self._counts["bad_payloads"] += 1
            n = self._counts["bad_payloads"]
        if n <= 10 or n % 1000 == 0:
            logger.warning("agent %s: bad payload #%d on %s dropped: %s", self.config.agent,
                           n, topic[:200], str(why)[:200])

    def _on_message(self, client: mqtt.Client, userdata: Any,
                    message: mqtt.MQTTMessage) -> None:
        topic = message.topic
        try:
            if len(message.payload) > MAX_PAYLOAD:
                raise EventParseError(f"payload larger than {MAX_PAYLOAD} bytes")
            if topic == self._response_topic:
                self._on_response(message)
                return
            payload = json.loads(message.payload)
            if not isinstance(payload, dict) or payload.get("version") != SCHEMA_VERSION:
                raise EventParseError("not a version 1 JSON object")
            if topic == self._status_topic:
                self._on_status(payload)
                return
            parts = topic.split("/")
            if len(parts) != 5 or parts[2] != "line":
                raise EventParseError("unexpected topic")
            with self._lock:
                line = self._by_resource.get(parts[3])
            if line is None:
                return  # unmonitored meanwhile
            if parts[4] == "state":
                self._on_state(line, payload)
            elif parts[4] == "events":
                self._on_event(line, payload)
            else:
                raise EventParseError("unexpected topic")
        except (ValueError, TypeError, KeyError) as exc:  # EventParseError is a ValueError
            self._bad(topic, exc)

    def _on_status(self, payload: Dict[str, Any]) -> None:
        status = payload.get("status")
        if status not in ("online", "offline"):
            raise EventParseError(f"unknown status {str(status)[:20]!r}")
        online = status == "online"
        with self._lock:
            was = self._online
            self._online = online
            if online and was is not True:
                self._due = set(self._monitored)  # the server (re)publishes every line
            self._announce("the CTI server is offline" if not online else "")

    def _on_state(self, line: str, payload: Dict[str, Any]) -> None:
        snapshot, actions = _line_of(payload)
        if snapshot.name != line:
            raise EventParseError(f"a snapshot of {snapshot.name[:40]} on {line}'s topic")
        with self._lock:
            self._store(snapshot, actions)

    def _store(self, snapshot: Line, actions: Dict[str, Actions]) -> None:
        """Lock held: keep the line's snapshot; send it to call listeners when due."""
        line = snapshot.name
        self._lines[line] = snapshot
        self._actions[line] = actions
        self._counts["snapshots"] += 1
        if line in self._due:
            self._due.discard(line)
            self._send_snapshots(self._call_regs(), [line], "connected")

    def _on_event(self, line: str, payload: Dict[str, Any]) -> None:
        event = CallEvent.from_dict(payload)
        if event.line != line:
            raise EventParseError(f"an event of {event.line[:40]} on {line}'s topic")
        parsed: Optional[Tuple[Line, Dict[str, Actions]]] = None
        if payload.get("snapshot") is not None:
            parsed = _line_of(payload["snapshot"])
            if parsed[0].name != line:
                raise EventParseError("the event's snapshot is another line's")
        with self._lock:  # all validated: now it counts
            if parsed is not None:
                self._store(*parsed)
            self._counts["events"] += 1
            lanes = self._lanes
            if lanes is not None:
                try:
                    lanes.submit_many([(line, (CALL, event))])
                except ClientStoppedError:
                    pass

    def _on_response(self, message: mqtt.MQTTMessage) -> None:
        props = message.properties
        correlation = getattr(props, "CorrelationData", None) if props is not None else None
        with self._lock:
            slot = self._pending.pop(correlation, None) if isinstance(
                correlation, bytes) else None
        if slot is None:
            raise EventParseError("an answer to no request of this client")
        try:
            body = json.loads(message.payload)
            if not isinstance(body, dict) or body.get("version") != SCHEMA_VERSION:
                raise ValueError("not a version 1 JSON object")
            if body.get("ok") is True:
                result = body.get("result", {})
                if not isinstance(result, dict):
                    raise ValueError("'result' is not an object")
                slot.result = result
            elif body.get("ok") is False:
                slot.error = error_from_payload(body.get("error"))
            else:
                raise ValueError("'ok' is not true or false")
        except ValueError as exc:
            slot.error = RemoteError("", f"the server answered a malformed response: {exc}")
            self._bad(message.topic, exc)
        slot.done.set()

    # -- requests (the caller's thread) -----------------------------------------------------------

    def _request(self, body: Dict[str, Any], timeout: float) -> Dict[str, Any]:
        """Send one control request and wait for its answer (see :class:`RemoteControl`)."""
        op = body.get("op", "?")
        slot = _Pending()
        correlation = uuid.uuid4().bytes
        with self._lock:
            if not self._running:
                raise ClientStoppedError("the client is not started")
            if not self._ready:
                raise ServerUnavailableError(
                    f"not connected to the MQTT broker at {self.config.url}")
            if self._online is False:
                raise ServerUnavailableError("the CTI server is offline")
            if len(self._pending) >= MAX_PENDING:
                raise ServerUnavailableError(f"{MAX_PENDING} requests are waiting already")
            self._pending[correlation] = slot
            self._counts["requests"] += 1
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.ResponseTopic = self._response_topic
            props.CorrelationData = correlation
            info = self._mqtt.publish(self._request_topic,
                                      json.dumps({"version": SCHEMA_VERSION, **body}), qos=1,
                                      properties=props)
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._pending.pop(correlation, None)
                raise ServerUnavailableError(f"cannot send the request: "
                                             f"{mqtt.error_string(info.rc)}")
        if not slot.done.wait(timeout):
            with self._lock:
                self._pending.pop(correlation, None)
            raise CtiTimeoutError(f"the CTI server did not answer {op} within {timeout:g} s "
                                  "(it may still be done)")
        if slot.error is not None:
            raise slot.error
        return slot.result
