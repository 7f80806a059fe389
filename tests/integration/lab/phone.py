"""Driver for one baresip SIP phone of the lab, over baresip's ``ctrl_tcp`` control interface.

``ctrl_tcp`` speaks netstring-framed JSON on a loopback TCP port: a command is
``{"command": "dial", "params": "sip:1002@127.0.0.1:5070", "token": "7"}``; baresip answers
with ``{"response": true, "ok": true, "data": "...", "token": "7"}`` and reports what happens
as ``{"event": true, "type": "CALL_INCOMING", "id": "<call id>", ...}``.

Threads: :meth:`Phone.connect` starts one reader thread (``lab-phone-<ext>``) that owns the
socket's receiving side; it files responses and events under one condition variable. Commands
are sent from the caller's thread and wait on that condition, always with a deadline.
:meth:`Phone.close` stops the reader and joins it.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Set

from .errors import LabError, LabTimeoutError

logger = logging.getLogger(__name__)

#: Call states a :class:`Phone` reports through :attr:`Phone.state` and accepts in
#: :meth:`Phone.wait_for` (lower case, unlike baresip's event types).
PHONE_STATES = ("idle", "incoming", "outgoing", "ringing", "established", "held")

_EVENT_TO_STATE = {
    "CALL_INCOMING": "incoming",
    "CALL_OUTGOING": "outgoing",
    "CALL_RINGING": "ringing",
    "CALL_PROGRESS": "ringing",
    "CALL_ESTABLISHED": "established",
}


@dataclass(frozen=True)
class PhoneEvent:
    """One event reported by baresip.

    :ivar type: baresip's event type, e.g. ``CALL_INCOMING``, ``CALL_ESTABLISHED``,
        ``CALL_CLOSED``, ``REGISTER_OK``.
    :ivar call_id: the SIP call's id in baresip (``id``), empty for non-call events.
    :ivar data: the whole decoded JSON object.
    :ivar monotonic: :func:`time.monotonic` when the reader thread received it.
    """

    type: str
    call_id: str
    data: Dict[str, Any] = field(repr=False)
    monotonic: float = field(repr=False)

    @property
    def param(self) -> str:
        """The event's free-text parameter (baresip's ``param``), e.g. the reason of a close."""
        return str(self.data.get("param", ""))


def encode_netstring(payload: bytes) -> bytes:
    """Frame ``payload`` as a netstring (``<len>:<payload>,``).

    :param payload: raw bytes.
    :returns: the framed bytes.
    """
    return str(len(payload)).encode("ascii") + b":" + payload + b","


def decode_netstrings(buffer: bytearray) -> List[bytes]:
    """Remove every complete netstring from the front of ``buffer`` and return their payloads.

    An incomplete trailing netstring stays in ``buffer`` for the next read.

    :param buffer: received bytes; modified in place.
    :returns: the payloads, in order.
    :raises LabError: on bytes that are not a netstring.
    """
    payloads: List[bytes] = []
    while True:
        colon = buffer.find(b":")
        if colon < 0:
            if len(buffer) > 20:
                raise LabError(f"ctrl_tcp: no netstring length in {bytes(buffer[:40])!r}")
            return payloads
        length_text = bytes(buffer[:colon])
        if not length_text.isdigit():
            raise LabError(f"ctrl_tcp: bad netstring length {length_text!r}")
        length = int(length_text)
        end = colon + 1 + length
        if len(buffer) < end + 1:
            return payloads
        if buffer[end : end + 1] != b",":
            raise LabError("ctrl_tcp: netstring not terminated by a comma")
        payloads.append(bytes(buffer[colon + 1 : end]))
        del buffer[: end + 1]


class Phone:
    """One lab phone (a baresip process) driven over ``ctrl_tcp``.

    Every method that waits takes a timeout and raises :class:`LabTimeoutError` when it runs
    out. Events are kept in arrival order; :meth:`wait_for` consumes them through a cursor, so
    a test reads a phone's call as a sequence (``CALL_INCOMING`` then ``CALL_ESTABLISHED`` then
    ``CALL_CLOSED``), and :meth:`forget_events` starts the sequence afresh.

    :param ext: the phone's extension, e.g. ``"1000"``.
    :param name: the caller id name, e.g. ``"Kai"``.
    :param ctrl_port: the loopback port of the phone's ``ctrl_tcp``.
    :param sip_domain: ``host:port`` of the lab's Asterisk, used to complete dialled numbers.
    """

    def __init__(self, ext: str, name: str, ctrl_port: int, sip_domain: str) -> None:
        self.ext = ext
        self.name = name
        self.ctrl_port = ctrl_port
        self.sip_domain = sip_domain
        self._sock: Optional[socket.socket] = None
        self._reader: Optional[threading.Thread] = None
        self._send_lock = threading.Lock()
        self._cond = threading.Condition()
        self._events: List[PhoneEvent] = []
        self._cursor = 0
        self._responses: Dict[str, Dict[str, Any]] = {}
        self._next_token = 0
        self._calls: Dict[str, str] = {}
        self._held: Dict[str, bool] = {}
        self._ended: Set[str] = set()
        self._closed = False
        self._reader_error: Optional[BaseException] = None

    def __repr__(self) -> str:
        return f"Phone({self.ext!r}, {self.name!r}, ctrl_port={self.ctrl_port})"

    # -- connection ---------------------------------------------------------------------------

    def connect(self, timeout: float = 10.0) -> None:
        """Connect to the phone's ``ctrl_tcp``, retrying until it listens, and start the reader.

        :param timeout: seconds to keep trying.
        :raises LabTimeoutError: if the phone does not accept a connection in time.
        """
        if self._sock is not None:
            return
        deadline = time.monotonic() + timeout
        last_error: Optional[OSError] = None
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=1.0)
                break
            except OSError as exc:
                last_error = exc
            if time.monotonic() >= deadline:
                raise LabTimeoutError(
                    f"phone {self.ext}: ctrl_tcp on 127.0.0.1:{self.ctrl_port} not reachable "
                    f"within {timeout:.0f} s: {last_error}"
                )
            time.sleep(0.1)
        sock.settimeout(None)
        self._sock = sock
        self._closed = False
        self._reader = threading.Thread(
            target=self._read_loop, name=f"lab-phone-{self.ext}", daemon=True
        )
        self._reader.start()

    def close(self, timeout: float = 5.0) -> None:
        """Close the control connection and join the reader thread. Idempotent.

        :param timeout: seconds to wait for the reader thread.
        """
        with self._cond:
            self._closed = True
            sock, self._sock = self._sock, None
            self._cond.notify_all()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        reader, self._reader = self._reader, None
        if reader is not None and reader is not threading.current_thread():
            reader.join(timeout)
            if reader.is_alive():
                logger.warning("phone %s: reader thread did not stop in %.1f s", self.ext, timeout)

    def _read_loop(self) -> None:
        sock = self._sock
        assert sock is not None
        buffer = bytearray()
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buffer.extend(chunk)
                for payload in decode_netstrings(buffer):
                    self._handle(payload)
        except OSError as exc:
            if not self._closed:
                self._reader_error = exc
        except (LabError, ValueError) as exc:
            logger.error("phone %s: bad ctrl_tcp data: %s", self.ext, exc)
            self._reader_error = exc
        finally:
            with self._cond:
                if not self._closed:
                    logger.warning("phone %s: ctrl_tcp connection closed by baresip", self.ext)
                self._closed = True
                self._cond.notify_all()

    def _handle(self, payload: bytes) -> None:
        message = json.loads(payload.decode("utf-8", "replace"))
        if not isinstance(message, dict):
            raise LabError(f"ctrl_tcp: not a JSON object: {payload[:80]!r}")
        with self._cond:
            if message.get("response"):
                self._responses[str(message.get("token", ""))] = message
            elif message.get("event"):
                event = PhoneEvent(
                    type=str(message.get("type", "")),
                    call_id=str(message.get("id", "")),
                    data=message,
                    monotonic=time.monotonic(),
                )
                self._events.append(event)
                self._track(event)
                logger.debug("phone %s: event %s %s", self.ext, event.type, event.param)
            self._cond.notify_all()

    def _track(self, event: PhoneEvent) -> None:
        if not event.call_id:
            return
        if event.type == "CALL_CLOSED":
            self._calls.pop(event.call_id, None)
            self._held.pop(event.call_id, None)
            self._ended.add(event.call_id)
        elif event.type in _EVENT_TO_STATE:
            self._calls[event.call_id] = _EVENT_TO_STATE[event.type]

    # -- commands -----------------------------------------------------------------------------

    def command(self, command: str, params: str = "", timeout: float = 5.0) -> str:
        """Send one ``ctrl_tcp`` command and wait for its response.

        :param command: a baresip long command, e.g. ``"dial"``, ``"accept"``, ``"hangup"``.
        :param params: its parameter string.
        :param timeout: seconds to wait for the response.
        :returns: the response's ``data`` text.
        :raises LabError: if baresip answers ``ok: false`` or the connection is gone.
        :raises LabTimeoutError: if no response comes in time.
        """
        with self._cond:
            if self._sock is None or self._closed:
                raise LabError(f"phone {self.ext}: not connected")
            self._next_token += 1
            token = f"{self.ext}-{self._next_token}"
            sock = self._sock
        message: Dict[str, str] = {"command": command, "token": token}
        if params:
            message["params"] = params
        logger.debug("phone %s: command %s %s", self.ext, command, params)
        with self._send_lock:
            sock.sendall(encode_netstring(json.dumps(message).encode("utf-8")))
        deadline = time.monotonic() + timeout
        with self._cond:
            while token not in self._responses:
                remaining = deadline - time.monotonic()
                if self._closed:
                    raise LabError(f"phone {self.ext}: connection lost during {command!r}")
                if remaining <= 0:
                    raise LabTimeoutError(
                        f"phone {self.ext}: no response to {command!r} within {timeout:.1f} s"
                    )
                self._cond.wait(remaining)
            response = self._responses.pop(token)
        data = str(response.get("data", ""))
        if not response.get("ok", False):
            raise LabError(f"phone {self.ext}: {command} {params!r} failed: {data.strip()}")
        return data

    def uri(self, number: str) -> str:
        """The SIP URI that dialling ``number`` on this phone calls.

        :param number: an extension such as ``"1002"``, or a complete ``sip:`` URI.
        :returns: e.g. ``"sip:1002@127.0.0.1:5070"``.
        """
        if number.startswith("sip:"):
            return number
        return f"sip:{number}@{self.sip_domain}"

    def dial(self, number: str) -> None:
        """Place a call; progress comes as ``CALL_OUTGOING``/``CALL_RINGING`` events.

        :param number: extension or SIP URI.
        """
        data = self.command("dial", self.uri(number))
        # baresip 1.1.0 sends no CALL_OUTGOING event, but its answer names the new call
        match = re.search(r"call id: (\S+)", data)
        if match is None:
            logger.warning("phone %s: no call id in the dial response %r", self.ext, data)
            return
        with self._cond:
            call_id = match.group(1)
            if call_id not in self._calls and call_id not in self._ended:
                self._calls[call_id] = "outgoing"

    def answer(self) -> None:
        """Answer the ringing incoming call (``accept``)."""
        self.command("accept")

    def hangup(self) -> None:
        """Hang up the newest call: ends a call, cancels an outgoing one, rejects a ringing one.

        The call is named by its id: baresip 1.1.0's plain ``hangup`` fails with ENOENT while
        an outgoing call has had no provisional answer yet (no "current" user agent).
        """
        with self._cond:
            call_id = next(reversed(self._calls), "")
        self.command("hangup", call_id)

    def reject(self) -> None:
        """Reject the ringing incoming call. baresip answers a rejected INVITE with 486 Busy."""
        self.hangup()

    def hold(self) -> None:
        """Put the current call on hold (a re-INVITE with ``a=sendonly``)."""
        self.command("hold")
        with self._cond:
            for call_id in self._calls:
                self._held[call_id] = True

    def resume(self) -> None:
        """Take the current call off hold (a re-INVITE with ``a=sendrecv``)."""
        try:
            self.command("resume")
        except LabError as exc:
            # baresip 1.1.0's uag_hold_resume() also calls call_hold(NULL, true) for "the other
            # active call" when there is none, and ORs that EINVAL into its result after the
            # resume re-INVITE went out; only that exact error is expected here.
            if not str(exc).endswith("failed: Invalid argument"):
                raise
        with self._cond:
            self._held.clear()

    def transfer(self, number: str) -> None:
        """Blind-transfer the current call: baresip sends a REFER (without Replaces).

        :param number: the transfer target, extension or SIP URI.
        """
        self.command("transfer", self.uri(number))

    def send_dtmf(self, digits: str, gap: float = 0.25) -> None:
        """Send DTMF digits (RFC 4733) on the current call, one ``sndcode`` per digit.

        :param digits: any of ``0-9*#A-D``.
        :param gap: seconds between digits, so Asterisk's feature detection sees each one.
        """
        for index, digit in enumerate(digits):
            if index:
                time.sleep(gap)
            self.command("sndcode", digit)

    def set_auto_answer(self, enabled: bool) -> None:
        """Switch the account's answer mode between ``auto`` and ``manual``.

        With ``auto`` the phone answers the next incoming calls by itself (click-to-dial).

        :param enabled: ``True`` for ``auto``, ``False`` for ``manual``.
        """
        self.command("answermode", "auto" if enabled else "manual")

    # -- events and state ---------------------------------------------------------------------

    @property
    def state(self) -> str:
        """The phone's call state, one of :data:`PHONE_STATES`: that of its newest open call."""
        with self._cond:
            return self._state_locked()

    def _state_locked(self) -> str:
        if not self._calls:
            return "idle"
        call_id = next(reversed(self._calls))
        if self._held.get(call_id):
            return "held"
        return self._calls[call_id]

    @property
    def events(self) -> List[PhoneEvent]:
        """A snapshot of every event received since :meth:`connect`, oldest first."""
        with self._cond:
            return list(self._events)

    def forget_events(self) -> None:
        """Move :meth:`wait_for`'s cursor past every event received so far."""
        with self._cond:
            self._cursor = len(self._events)

    def wait_for(
        self,
        what: str,
        timeout: float = 10.0,
        predicate: Optional[Callable[[PhoneEvent], bool]] = None,
    ) -> Optional[PhoneEvent]:
        """Wait for an event type (upper case) or a call state (lower case).

        For an event type, the first matching event after the cursor is returned and the cursor
        moves past it. For a state (see :data:`PHONE_STATES`), returns ``None`` as soon as
        :attr:`state` equals it.

        :param what: e.g. ``"CALL_INCOMING"``, ``"CALL_CLOSED"``, or ``"established"``.
        :param timeout: seconds.
        :param predicate: an extra condition an event must meet.
        :returns: the event, or ``None`` for a state.
        :raises LabTimeoutError: when nothing matched in time; the message lists recent events.
        """
        deadline = time.monotonic() + timeout
        is_state = what in PHONE_STATES
        if not is_state and what != what.upper():
            raise ValueError(f"unknown phone state {what!r}; states are {PHONE_STATES}")
        with self._cond:
            while True:
                if is_state:
                    if self._state_locked() == what:
                        return None
                else:
                    for index in range(self._cursor, len(self._events)):
                        event = self._events[index]
                        if event.type == what and (predicate is None or predicate(event)):
                            self._cursor = index + 1
                            return event
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    recent = ", ".join(
                        f"{e.type}({e.param})" if e.param else e.type for e in self._events[-8:]
                    )
                    why = "ctrl_tcp connection closed" if self._closed else f"{timeout:.1f} s"
                    raise LabTimeoutError(
                        f"phone {self.ext}: no {what} ({why}; state {self._state_locked()}; "
                        f"recent events: {recent or 'none'})"
                    )
                self._cond.wait(remaining)

    def reset(self, timeout: float = 10.0) -> None:
        """Bring the phone back to idle: hang up every call, manual answer mode, fresh cursor.

        :param timeout: seconds to wait for the calls to close.
        """
        self.set_auto_answer(False)
        if self.state != "idle":
            self.command("hangupall")
            self.wait_for("idle", timeout)
        with self._cond:
            self._held.clear()
        self.forget_events()
