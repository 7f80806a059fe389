"""One caller in the IVR: the blocking operations a flow uses (:class:`IvrCall`).

An :class:`IvrCall` belongs to the call's own thread (``asterisk-cti-ivr-N``, started by
:class:`~asterisk_cti.ivr.IvrEngine`): every method runs on it and blocks it. The engine feeds
the call's events (DTMF, playback, hang-up) into a queue on the dispatcher's lane for the
channel; the call's thread takes them from there while it waits, so digits keyed during a
prompt are never lost (they are buffered, at most :data:`MAX_BUFFERED`).
"""

from __future__ import annotations

import logging
import queue
import time
from collections import deque
from dataclasses import dataclass
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Deque,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Set,
    Tuple,
)

from ..errors import AsteriskCtiError, NotFoundError, NotInStasisError
from ..events.catalogue import Event
from .definition import DigitRules, QueueTarget
from .errors import CallerHangupError, CallReleasedError, IvrError

if TYPE_CHECKING:
    from ..control.calls import CallControl

logger = logging.getLogger(__name__)

__all__ = ["MAX_BUFFERED", "DigitInput", "EngineStoppedError", "IvrCall"]

#: The most digits a call buffers (more are dropped, counted in :attr:`IvrCall.dropped_digits`).
MAX_BUFFERED = 64
_DTMF = frozenset("0123456789*#ABCD")
_GONE = ("ChannelHangupRequest", "StasisEnd", "ChannelDestroyed")


class EngineStoppedError(IvrError):
    """The engine is stopping: the flow must end (raised by every blocking operation)."""


#: Put into a call's queue by the engine when it stops.
STOP = object()


@dataclass(frozen=True)
class DigitInput:
    """What :meth:`IvrCall.collect` got: the ``digits`` (without the terminator), what ended
    the input (``"max_digits"``, ``"terminator"``, ``"timeout"``: nothing more came in time),
    and whether it is ``valid`` (between the minimum and maximum length)."""

    digits: str
    ended_by: str
    valid: bool


class IvrCall:
    """A caller in the IVR, used by a flow on the call's own thread.

    Built by the engine; a flow gets it as the argument of ``run``. Every blocking method
    raises :class:`CallerHangupError` when the caller hangs up (or the channel leaves the
    application), :class:`CallReleasedError` once the call was sent on or hung up, and
    :class:`EngineStoppedError` when the engine stops.

    :ivar channel_id: the caller's channel.
    :ivar caller_number: its caller id number; :ivar caller_name: its name.
    :ivar flow: the flow name (the second ``Stasis()`` argument); :ivar args: the ones after.
    :ivar language: the language prompts play in (the definition's, else the channel's).
    :ivar path: what the call did, step by step (menus, choices, where it went; no digits
        collected, which may be personal data), logged when it ends.
    """

    def __init__(self, control: CallControl, channel_id: str, *, caller_number: str = "",
                 caller_name: str = "", flow: str = "", args: Tuple[str, ...] = (),
                 language: str = "", queues: Optional[Mapping[str, QueueTarget]] = None,
                 max_prompt_seconds: float = 300.0) -> None:
        self.channel_id = channel_id
        self.caller_number = caller_number
        self.caller_name = caller_name
        self.flow = flow
        self.args = args
        self.language = language
        self.path: List[str] = []
        self.dropped_digits = 0
        self._control = control
        self._queues: Dict[str, QueueTarget] = dict(queues or {})
        self._max_prompt = max_prompt_seconds
        self._events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._digits: Deque[str] = deque()
        self._playing: Set[str] = set()  # playbacks started and not finished
        self._failed: Set[str] = set()  # of those, the ones Asterisk ended "failed"
        self._data: Dict[str, str] = {}
        self._gone = False
        self._released = False
        self._stopping = False

    def __repr__(self) -> str:
        return (f"IvrCall(channel_id={self.channel_id!r}, flow={self.flow!r}, "
                f"gone={self._gone}, released={self._released})")

    # -- fed by the engine ---------------------------------------------------------------------
    def feed(self, item: object) -> None:
        """Queue an event of this call (the engine, on the channel's lane thread)."""
        self._events.put(item)

    def _take(self, timeout: float) -> bool:
        """Take one queued item (waiting at most ``timeout`` s) and note what it says."""
        try:
            item = self._events.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return False
        if item is STOP:
            self._stopping = True
            return True
        if not isinstance(item, Event):
            return True
        etype = item.type
        raw = item.raw
        if etype == "ChannelDtmfReceived":
            digit = raw.get("digit")
            if isinstance(digit, str) and digit.upper() in _DTMF and len(digit) == 1:
                if len(self._digits) < MAX_BUFFERED:
                    self._digits.append(digit.upper())
                else:
                    self.dropped_digits += 1
        elif etype == "PlaybackFinished":
            playback = raw.get("playback")
            if not isinstance(playback, dict):
                return True
            pid = playback.get("id")
            if isinstance(pid, str) and pid in self._playing:
                self._playing.discard(pid)
                if playback.get("state") == "failed":  # a missing file, a hang-up
                    self._failed.add(pid)
        elif etype in _GONE and not (self._released and etype == "StasisEnd"):
            self._gone = True
        return True

    def _check(self) -> None:
        if self._gone:
            raise CallerHangupError(self.channel_id)
        if self._stopping:
            raise EngineStoppedError("the IVR engine is stopping")
        if self._released:
            raise CallReleasedError(f"call {self.channel_id} was already sent on")

    def _drain(self) -> None:
        while self._take(0.0):
            pass

    def _wait(self, done: Callable[[], bool], deadline: Optional[float]) -> bool:
        """Take events until ``done()`` or the deadline (monotonic; None: no limit).

        :returns: ``done()`` at the end.
        :raises CallerHangupError: the caller hung up meanwhile.
        """
        self._drain()
        while not done():
            self._check()
            left = 1.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                return False
            self._take(min(left, 1.0))
        self._check()
        return True

    def _request(self, fn: Callable[[], Any]) -> Any:
        """Run a call-control request; a channel gone or out of the application means the
        caller left."""
        try:
            return fn()
        except (NotFoundError, NotInStasisError):
            self._drain()
            self._gone = True
            raise CallerHangupError(self.channel_id) from None

    # -- prompts and digits ----------------------------------------------------------------------
    @property
    def buffered_digits(self) -> str:
        """Digits keyed and not yet collected (call's thread)."""
        self._drain()
        return "".join(self._digits)

    def flush_digits(self) -> str:
        """Forget the digits keyed so far (typed ahead); returns them. Call's thread."""
        self._drain()
        digits = "".join(self._digits)
        self._digits.clear()
        return digits

    def play(self, *media: str, barge_in: bool = False, lang: Optional[str] = None) -> bool:
        """Play ``media`` (ARI media URIs, one after the other) and block until they finished.
        With ``barge_in`` a digit (also one keyed before) stops the playback at once and stays
        buffered for the next :meth:`collect`. A prompt that lasts longer than the engine's
        ``max_prompt_seconds`` is stopped. Call's thread.

        :returns: True when it played to the end, False when a digit or the limit stopped it
            or Asterisk could not play it (``PlaybackFinished`` state ``failed``: a sound that
            does not exist; logged).
        :raises CallerHangupError: the caller hung up (Asterisk ended the playback).
        """
        self._check()
        if not media:
            return True
        self._drain()
        if barge_in and self._digits:
            return False
        language = lang or self.language or None
        pid = self._request(lambda: self._control.play(self.channel_id, list(media),
                                                       lang=language))
        self._playing.add(pid)
        deadline = time.monotonic() + self._max_prompt
        finished = self._wait(lambda: pid not in self._playing or (barge_in and bool(
            self._digits)), deadline)
        if pid in self._playing:  # a digit or the limit: stop it (its PlaybackFinished follows)
            self._stop(pid)
            return False
        if pid in self._failed:
            self._failed.discard(pid)
            logger.warning("ivr: call %s: Asterisk could not play %s", self.channel_id,
                           ", ".join(media))
            return False
        return finished

    def _stop(self, pid: str) -> None:
        try:
            if not self._control.stop_playback(pid):
                self._playing.discard(pid)
        except AsteriskCtiError as exc:
            logger.info("ivr: could not stop playback %s: %s", pid, exc)
            self._playing.discard(pid)

    def collect(self, *prompts: str, rules: Optional[DigitRules] = None,
                min_digits: int = 1, max_digits: int = 1, terminator: Optional[str] = "#",
                first_timeout: float = 5.0, inter_digit_timeout: float = 3.0,
                overall_timeout: Optional[float] = None) -> DigitInput:
        """Play ``prompts`` (a digit interrupts them), then collect digits: the input ends at
        ``max_digits``, at the ``terminator`` (not part of the digits), when no digit comes
        ``first_timeout`` seconds after the prompts or ``inter_digit_timeout`` after the
        previous digit, or ``overall_timeout`` after the prompts. Digits typed ahead count.
        ``rules`` (a :class:`~asterisk_cti.ivr.DigitRules`) replaces the keyword limits.
        Call's thread.

        :raises CallerHangupError: the caller hung up.
        """
        r = rules or DigitRules(min_digits, max_digits, terminator, first_timeout,
                                inter_digit_timeout, overall_timeout)
        if r.min_digits < 1 or r.max_digits < r.min_digits:
            raise ValueError("need 1 <= min_digits <= max_digits")
        self.play(*prompts, barge_in=True)
        digits = ""
        start = time.monotonic()
        overall = None if r.overall_timeout is None else start + r.overall_timeout
        while True:
            while self._digits:
                d = self._digits.popleft()
                if r.terminator is not None and d == r.terminator:
                    return self._input(digits, "terminator", r)
                digits += d
                if len(digits) >= r.max_digits:
                    return self._input(digits, "max_digits", r)
            wait = r.inter_digit_timeout if digits else r.first_timeout
            deadline = time.monotonic() + wait
            if overall is not None:
                deadline = min(deadline, overall)
            if not self._wait(lambda: bool(self._digits), deadline):
                return self._input(digits, "timeout", r)

    @staticmethod
    def _input(digits: str, ended_by: str, r: DigitRules) -> DigitInput:
        return DigitInput(digits, ended_by, r.min_digits <= len(digits) <= r.max_digits)

    def ask(self, *prompts: str, rules: DigitRules, retries: int = 2,
            invalid_prompts: Iterable[str] = ("sound:pm-invalid-option",),
            timeout_prompts: Iterable[str] = ()) -> Optional[str]:
        """:meth:`collect` with retries: nothing keyed plays ``timeout_prompts``, an input
        of the wrong length ``invalid_prompts`` (and forgets digits typed ahead), then asks
        again, ``retries`` more times at most. Call's thread.

        :returns: the valid digits, or None when every attempt failed.
        :raises CallerHangupError: the caller hung up.
        """
        return self._attempts(prompts, rules, retries, tuple(invalid_prompts),
                              tuple(timeout_prompts), None)

    def menu(self, *prompts: str, options: Iterable[str], timeout: float = 5.0,
             retries: int = 2, invalid_prompts: Iterable[str] = ("sound:pm-invalid-option",),
             timeout_prompts: Iterable[str] = (),
             overall_timeout: Optional[float] = None) -> Optional[str]:
        """Play ``prompts`` and wait ``timeout`` seconds for one key among ``options``;
        nothing keyed plays ``timeout_prompts``, another key ``invalid_prompts``, then the
        menu starts again, ``retries`` more times at most. Call's thread.

        :returns: the key chosen, or None when every attempt failed.
        :raises CallerHangupError: the caller hung up.
        """
        allowed = frozenset(options)
        rules = DigitRules(1, 1, None, timeout, timeout, overall_timeout)
        return self._attempts(prompts, rules, retries, tuple(invalid_prompts),
                              tuple(timeout_prompts), allowed)

    def _attempts(self, prompts: Tuple[str, ...], rules: DigitRules, retries: int,
                  invalid: Tuple[str, ...], timeout: Tuple[str, ...],
                  allowed: Optional[frozenset[str]]) -> Optional[str]:
        if retries < 0:
            raise ValueError("retries must be 0 or more")
        for attempt in range(retries + 1):
            got = self.collect(*prompts, rules=rules)
            if got.valid and (allowed is None or got.digits in allowed):
                return got.digits
            last = attempt == retries
            if not got.digits and got.ended_by == "timeout":
                self.path.append("timeout")
                if not last:
                    self.play(*timeout)
            else:
                self.path.append("invalid")
                self.flush_digits()
                if not last:
                    self.play(*invalid)
        return None

    # -- call data ------------------------------------------------------------------------------
    @property
    def data(self) -> Dict[str, str]:
        """The call data this flow set so far (a copy; call's thread)."""
        return dict(self._data)

    def set_data(self, data: Optional[Mapping[str, Optional[str]]] = None,
                 **values: Optional[str]) -> Dict[str, str]:
        """Attach data to the call (:meth:`CallControl.set_call_data` on the caller's
        channel: it follows the call to the queue and the agent). A ``None`` value removes a
        key. Returns all the data the channel now carries. Call's thread.

        :raises CallDataError: a key or value breaks the rules of call data.
        :raises CallerHangupError: the caller hung up.
        """
        self._check()
        changes: Dict[str, Optional[str]] = dict(data or {})
        changes.update(values)
        merged = self._request(lambda: self._control.set_call_data(self.channel_id, changes))
        self._data = dict(merged)
        self.path.append("data:" + ",".join(sorted(changes)))
        return dict(merged)

    # -- sending the call on ----------------------------------------------------------------------
    def route_to_extension(self, extension: str, context: Optional[str] = None,
                           priority: int = 1) -> None:
        """Send the call on in the dialplan at ``context`` (default: the one it came from),
        ``extension``, ``priority``; the flow is done with it. Call's thread.

        :raises CallerHangupError: the caller hung up.
        """
        self._leave(f"extension {extension}@{context or '-'}",
                    lambda: self._control.continue_in_dialplan(
                        self.channel_id, context=context, extension=extension,
                        priority=priority))

    def route_to_queue(self, queue_name: str) -> None:
        """Send the call to a queue: continue in the dialplan where ``queue_name`` is reached
        (the definition's or the engine's ``queues``). Call's thread.

        :raises KeyError: no such queue is configured.
        :raises CallerHangupError: the caller hung up.
        """
        target = self._queues.get(queue_name)
        if target is None:
            raise KeyError(f"no queue {queue_name!r} is configured for the IVR")
        self._leave(f"queue {queue_name}", lambda: self._control.continue_in_dialplan(
            self.channel_id, context=target.context, extension=target.extension,
            priority=target.priority))

    def continue_in_dialplan(self) -> None:
        """Give the call back to the dialplan, at the priority after its ``Stasis()``.
        Call's thread.

        :raises CallerHangupError: the caller hung up.
        """
        self._leave("dialplan", lambda: self._control.continue_in_dialplan(self.channel_id))

    def hangup(self, reason: str = "normal") -> None:
        """Hang the caller up. Call's thread.

        :raises CallerHangupError: the caller hung up first.
        """
        self._leave("hangup", lambda: self._control.hangup(self.channel_id, reason))

    def _leave(self, where: str, send: Callable[[], Any]) -> None:
        self._check()
        self.stop_playbacks()
        self._released = True
        self.path.append(where)
        try:
            self._request(send)
        except CallerHangupError:
            self._released = False
            raise

    @property
    def released(self) -> bool:
        """True once the call was sent on or hung up by the flow (call's thread)."""
        return self._released

    @property
    def gone(self) -> bool:
        """True once the caller hung up (call's thread)."""
        return self._gone

    def settle(self) -> None:
        """Take every event queued so far (the engine, before it decides what to do with a
        call whose flow ended; call's thread)."""
        self._drain()

    def stop_playbacks(self) -> None:
        """Stop every playback this call started that has not finished (the engine calls it
        when the flow ends; call's thread)."""
        for pid in list(self._playing):
            self._stop(pid)
            self._playing.discard(pid)
