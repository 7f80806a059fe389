"""A stable dictionary form of :class:`~asterisk_cti.CallEvent` and a one-line text form.

Both are pure functions of an immutable event: any thread may call them (the tools call them on
dispatcher lane threads and on their own worker threads).

The dictionary (``event_to_dict``) is what ``asterisk-cti monitor --json`` prints, what
``screenpop --post`` sends, and what screen-pop templates read (``event_fields``). Its keys
are fixed; values are JSON types only::

    {"kind": "delivered", "line": "PJSIP/1002", "call_id": "1795665211.0",
     "connection_id": "1795665211.1", "state": "alerting", "previous_state": "null",
     "phone_state": "ringing", "direction": "incoming",
     "calling": {"number": "1000", "name": "Kai"}, "called": {"number": "1002", "name": ""},
     "connected": {"number": "1000", "name": "Kai"}, "cause": 0, "dialstatus": "",
     "reason": "normal", "line_state": "", "timestamp": 1795665211.25,
     "talking": false, "held": false, "data": {"account": "4711"}, "queue": "support"}
"""

from __future__ import annotations

import time
from typing import Any, Dict, Tuple

from asterisk_cti import CallEvent, Party
from asterisk_cti.calldata import KEY_PATTERN
from asterisk_cti.model import CALL_EVENT_KEYS

from .text import printable

__all__ = ["DATA_PREFIX", "EVENT_KEYS", "TEMPLATE_FIELDS", "event_fields", "event_to_dict",
           "format_event", "is_data_field"]

#: The keys of :func:`event_to_dict`, in order.
EVENT_KEYS: Tuple[str, ...] = CALL_EVENT_KEYS

_PARTIES = ("calling", "called", "connected")

#: The fields a screen-pop template may use (``{calling.number}``), see :func:`event_fields`;
#: besides these, ``{data.KEY}`` for any key of the call data (:func:`is_data_field`).
TEMPLATE_FIELDS: Tuple[str, ...] = tuple(
    f"{key}.{part}" if key in _PARTIES else key
    for key in EVENT_KEYS if key != "data"
    for part in (("number", "name") if key in _PARTIES else ("",))
)

#: The prefix of the template fields of the call data (``{data.account}``).
DATA_PREFIX = "data."


def is_data_field(field: str) -> bool:
    """Whether ``field`` names an item of the call data: ``data.`` and a key the call data
    rules allow (:data:`asterisk_cti.calldata.KEY_PATTERN`). A key the call has not renders
    as the empty string. Pure; any thread."""
    return field.startswith(DATA_PREFIX) and bool(
        KEY_PATTERN.fullmatch(field[len(DATA_PREFIX):]))


def event_to_dict(event: CallEvent) -> Dict[str, Any]:
    """The stable JSON-ready form of a CTI event (keys :data:`EVENT_KEYS`).

    Enumerations become their string values; ``direction`` is ``null`` when unknown (line
    state events); parties are ``{"number": ..., "name": ...}`` with empty strings when
    unknown. Pure; any thread.
    """
    return event.as_dict()


def event_fields(event: CallEvent) -> Dict[str, str]:
    """The template fields of an event (:data:`TEMPLATE_FIELDS`) as strings.

    Parties are flattened (``calling.number``), and so is the call data (``data.account``,
    one field per key the call has), booleans are ``true``/``false``, ``direction`` is empty
    when unknown. Pure; any thread.
    """
    fields: Dict[str, str] = {}
    for key, value in event_to_dict(event).items():
        if isinstance(value, dict):
            for part, text in value.items():
                fields[f"{key}.{part}"] = str(text)
        elif isinstance(value, bool):
            fields[key] = "true" if value else "false"
        elif value is None:
            fields[key] = ""
        else:
            fields[key] = str(value)
    return fields


def _clock(timestamp: float) -> str:
    local = time.localtime(timestamp)
    return time.strftime("%H:%M:%S", local) + f".{int(timestamp * 1000) % 1000:03d}"


def _who(party: Party) -> str:
    if not party:
        return ""
    return f"{party.number} '{party.name}'" if party.name else party.number


def format_event(event: CallEvent) -> str:
    """One human-readable line for a CTI event (``monitor`` off a terminal).

    ``12:00:01.250  PJSIP/1002    delivered           ringing     from 1000 'Kai'``. The
    party is the caller while the line rings, otherwise the connected party. Every
    character that could act on a terminal (from a hostile caller name, number or channel
    name) is shown escaped by :func:`~asterisk_cti.tools.text.printable`. Pure; any thread.
    """
    if event.kind.value == "line_state_changed":
        detail = f"{event.previous_line_state or '?'} -> {event.line_state}"
        return printable(
            f"{_clock(event.timestamp)}  {event.line:<13} {event.kind.value:<19} {detail}")
    ringing = event.kind.value == "delivered" or event.phone_state.value == "ringing"
    if ringing:
        party = event.calling
    elif event.direction is not None and event.direction.value == "outgoing":
        party = event.connected or event.called
    else:
        party = event.connected or event.calling
    words = [f"{'from' if ringing else 'with'} {_who(party)}" if party else ""]
    if event.queue:
        words.append(f"queue {event.queue}")
    if event.held:
        words.append("held")
    if event.talking:
        words.append("talking")
    if event.cause:
        words.append(f"cause {event.cause}")
    if event.dialstatus and event.dialstatus != "ANSWER":
        words.append(event.dialstatus)
    if event.reason.value != "normal":
        words.append(f"({event.reason.value})")
    detail = " ".join(w for w in words if w)
    line = (f"{_clock(event.timestamp)}  {event.line:<13} {event.kind.value:<19} "
            f"{event.phone_state.value:<12} {detail}")
    return printable(line.rstrip())
