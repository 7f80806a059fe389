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
``transfer``, ``consult`` and ``redirect`` take ``destination``, ``send_dtmf`` takes
``digits``, ``complete_transfer`` and ``cancel_transfer`` take ``consult_id``,
``conference`` takes ``parties`` (see ``docs/callcentre.rst`` for every optional field).
Response: ``{"version": 1, "ok": true, "result": {...}}`` or
``{"version": 1, "ok": false, "error": {"type": "AccessDeniedError", "message": "..."}}``
(:func:`error_payload`).

Fields added within version 1 (readers ignore what they do not know): an event carries the
fields of :meth:`CallEvent.extras_dict <asterisk_cti.CallEvent.extras_dict>` and
``snapshot``, the line's snapshot as the server saw it when it published the event (so a
desktop's line state is current when its listener gets the event); a snapshot's connection
carries every field of :meth:`Connection.as_dict <asterisk_cti.Connection.as_dict>` and
``actions`` (what the server's call control allows on it: ``allowed``, ``reasons``,
``in_stasis``).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, Optional, Union

from asterisk_cti import (
    AriHttpError,
    CallEvent,
    CallFailedError,
    Connection,
    Line,
    NotInStasisError,
)
from asterisk_cti.control import Actions

__all__ = ["OPERATIONS", "SCHEMA_VERSION", "error_payload", "event_payload", "line_payload",
           "status_payload"]

#: The version every payload carries.
SCHEMA_VERSION = 1

#: The control operations a request may name.
OPERATIONS = ("originate", "answer", "hangup", "hold", "retrieve", "transfer", "redirect",
              "mute", "unmute", "send_dtmf", "consult", "complete_transfer", "cancel_transfer",
              "conference")

Json = Union[str, int, float, bool, None, Dict[str, Any], list]  # type: ignore[type-arg]


#: ``actions(connection)``: what call control allows on a connection
ActionsOf = Callable[[Connection], Actions]


def event_payload(event: CallEvent, line: Optional[Line] = None,
                  actions: Optional[ActionsOf] = None) -> Dict[str, Json]:
    """The JSON form of a CTI event (keys above), with ``snapshot`` when ``line`` is given
    (its connections' ``actions`` when ``actions`` is)."""
    body: Dict[str, Json] = {"version": SCHEMA_VERSION, **event.as_dict(),
                             **event.extras_dict()}
    if line is not None:
        body["snapshot"] = line_payload(line, event.timestamp, actions)
    return body


def actions_payload(actions: Actions) -> Dict[str, Json]:
    """The JSON form of :class:`~asterisk_cti.control.Actions` (without its connection id)."""
    return {"allowed": [a.value for a in actions],
            "reasons": {a.value: why for a, why in actions.reasons},
            "in_stasis": bool(actions.in_stasis)}


def _connection(c: Connection, actions: Optional[ActionsOf]) -> Dict[str, Json]:
    body: Dict[str, Json] = c.as_dict()
    if actions is not None:
        body["actions"] = actions_payload(actions(c))
    return body


def line_payload(line: Line, timestamp: Optional[float] = None,
                 actions: Optional[ActionsOf] = None) -> Dict[str, Json]:
    """The JSON form of a line snapshot (with each connection's ``actions`` when
    ``actions`` is given)."""
    return {
        "version": SCHEMA_VERSION, "line": line.name, "registration": line.registration,
        "phone_state": line.phone_state.value,
        "connections": [_connection(c, actions) for c in line.connections],
        "timestamp": time.time() if timestamp is None else timestamp,
    }


def error_payload(error: BaseException) -> Dict[str, Json]:
    """The ``error`` object of a refused request: ``type`` (the class name) and
    ``message``; for an ARI error also ``method``, ``path``, ``status`` and
    ``ari_message`` (Asterisk's own words), for a failed call ``dialstatus``, ``cause`` and
    ``channel_id``, so that a desktop rebuilds the same exception."""
    body: Dict[str, Json] = {"type": type(error).__name__, "message": str(error)}
    if isinstance(error, AriHttpError):
        body.update(method=error.method, path=error.path, status=int(error.status),
                    ari_message=error.message)
        if isinstance(error, NotInStasisError) and error.other_app:
            body["other_app"] = error.other_app
    elif isinstance(error, CallFailedError):
        body.update(dialstatus=error.dialstatus, cause=int(error.cause),
                    channel_id=error.channel_id)
    return body


def status_payload(status: str, server: str,
                   instance: Optional[str] = None) -> Dict[str, Json]:
    """The JSON form of the server's liveness (``online`` or ``offline``); ``instance``: the
    process that is (or was) active, unique per run (the lock's holder)."""
    body: Dict[str, Json] = {"version": SCHEMA_VERSION, "status": status, "server": server,
                             "timestamp": time.time()}
    if instance is not None:
        body["instance"] = instance
    return body
