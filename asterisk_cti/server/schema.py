"""The JSON payloads the server publishes and accepts (pure; any thread).

Every payload carries ``"version": 1`` (:data:`SCHEMA_VERSION`); a field is only ever added
within a version. Event (``.../events``)::

    {"version": 1, "kind": "delivered", "line": "PJSIP/1002", "call_id": "1795665211.0",
     "connection_id": "1795665211.1", "state": "alerting", "previous_state": "null",
     "phone_state": "ringing", "direction": "incoming",
     "calling": {"number": "1000", "name": "Kai"}, "called": {"number": "1002", "name": ""},
     "connected": {"number": "1000", "name": "Kai"}, "cause": 0, "dialstatus": "",
     "reason": "normal", "line_state": "", "timestamp": 1795665211.25, "talking": false,
     "held": false, "data": {"account": "4711"}, "queue": "support"}

(:meth:`CallEvent.as_dict <asterisk_cti.CallEvent.as_dict>` plus ``version``: the same keys as
``asterisk-cti monitor --json``.)

Line snapshot (``.../state``, retained)::

    {"version": 1, "line": "PJSIP/1000", "registration": "online", "phone_state": "idle",
     "connections": [{"connection_id": ..., "call_id": ..., "state": ..., "phone_state": ...,
                      "direction": ..., "calling": {...}, "called": {...},
                      "connected": {...}, "held": false, "talking": false}],
     "timestamp": 1795665211.25}

Server status (``.../server/status``, retained; the last will says ``offline``)::

    {"version": 1, "status": "online", "server": "server",
     "instance": "server-host-4242-9f0c1a", "timestamp": 1795665211.25}

``instance`` names the process holding the site (the active server among an active and its
standbys); an ``offline`` status names the one that stopped or died.

Request (``.../agent/AGENT/request``, MQTT 5 response topic + correlation data)::

    {"version": 1, "op": "hold", "connection_id": "1795665211.1"}

``op`` is one of :data:`OPERATIONS`; ``originate`` takes ``line`` and ``destination``,
``transfer`` and ``redirect`` take ``destination``, ``send_dtmf`` takes ``digits``.
Response: ``{"version": 1, "ok": true, "result": {...}}`` or
``{"version": 1, "ok": false, "error": {"type": "AccessDeniedError", "message": "..."}}``.
"""

from __future__ import annotations

import time
from typing import Any, Dict, Optional, Union

from asterisk_cti import CallEvent, Connection, Line

__all__ = ["OPERATIONS", "SCHEMA_VERSION", "event_payload", "line_payload", "status_payload"]

#: The version every payload carries.
SCHEMA_VERSION = 1

#: The control operations a request may name.
OPERATIONS = ("originate", "answer", "hangup", "hold", "retrieve", "transfer", "redirect",
              "mute", "unmute", "send_dtmf")

Json = Union[str, int, float, bool, None, Dict[str, Any], list]  # type: ignore[type-arg]


def event_payload(event: CallEvent) -> Dict[str, Json]:
    """The JSON form of a CTI event (keys above)."""
    return {"version": SCHEMA_VERSION, **event.as_dict()}


def _connection(c: Connection) -> Dict[str, Json]:
    return {
        "connection_id": c.connection_id, "call_id": c.call_id, "state": c.state.value,
        "phone_state": c.phone_state.value, "direction": c.direction.value,
        "calling": c.calling.as_dict(), "called": c.called.as_dict(),
        "connected": c.connected.as_dict(), "held": bool(c.held), "talking": bool(c.talking),
    }


def line_payload(line: Line, timestamp: Optional[float] = None) -> Dict[str, Json]:
    """The JSON form of a line snapshot."""
    return {
        "version": SCHEMA_VERSION, "line": line.name, "registration": line.registration,
        "phone_state": line.phone_state.value,
        "connections": [_connection(c) for c in line.connections],
        "timestamp": time.time() if timestamp is None else timestamp,
    }


def status_payload(status: str, server: str,
                   instance: Optional[str] = None) -> Dict[str, Json]:
    """The JSON form of the server's liveness (``online`` or ``offline``); ``instance``: the
    process that is (or was) active, unique per run (the lock's holder)."""
    body: Dict[str, Json] = {"version": SCHEMA_VERSION, "status": status, "server": server,
                             "timestamp": time.time()}
    if instance is not None:
        body["instance"] = instance
    return body
