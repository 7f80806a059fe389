"""Playbacks on channels in Stasis (``POST /channels/{id}/play``, ``/playbacks``) and DTMF
from an outside caller or a phone, as ``res/res_stasis_playback.c`` of Asterisk 22 does them.

What the simulator reproduces:

- ``POST /channels/{id}/play[/{playbackId}]?media=a,b&lang=&offsetms=&skipms=&playbackId=``
  answers 201 with the Playback object in state ``queued`` (``id``, ``media_uri``,
  ``next_media_uri`` while more media follow, ``target_uri`` ``channel:<id>``, ``language``
  (the channel's unless ``lang``), ``state``). Playbacks of one channel run one after the
  other, in order.
- Each medium: ``PlaybackStarted`` (``playing``); at its end ``PlaybackContinuing``
  (``continuing``, with ``next_media_uri``) when more follow, else ``PlaybackFinished``
  (``done``). A ``sound:`` file that does not exist fails at once: ``PlaybackStarted`` then
  ``PlaybackFinished`` with state ``failed``; a ``recording:`` that does not exist is skipped
  without a final event (Asterisk logs an error and goes on), an unsupported scheme too.
- ``DELETE /playbacks/{id}``: a playing one stops (``PlaybackFinished`` ``done``), a queued
  one is cancelled (``PlaybackFinished`` ``done`` without ``PlaybackStarted``). Once finished
  a playback is forgotten: GET, DELETE and control answer 404 "Playback not found".
- ``POST /playbacks/{id}/control?operation=``: ``pause`` (state ``paused``, no event),
  ``unpause`` (``PlaybackStarted`` again), ``restart``, ``reverse``, ``forward``; 409 "Can
  only <op> while media is playing" when not playing, 400 for an unknown operation.
- The caller hangs up during a playback: ``PlaybackFinished`` with state ``failed`` (the
  stream ends with an error on a hung-up channel), before ``StasisEnd``. ``continue`` or
  ``move`` out of the application end it ``done``.

How long a sound lasts (simulated seconds, divided by the speed factor): :data:`SOUNDS`
(measured on the lab's ``asterisk-core-sounds-en-gsm``), ``silence/N`` N seconds, a user file
(``sound:/path/name``) :data:`DEFAULT_SECONDS` when a file ``/path/name.<ext>`` exists on
this machine, ``digits:``/``characters:`` 0.6 s per character, ``number:`` 1.5 s, ``tone:``
until stopped. Anything else under ``sound:`` does not exist.

Runs with the PBX lock held (requests on HTTP handler threads, ends on the timer thread).
"""

from __future__ import annotations

import glob
import os
import re
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Deque, Dict, List, Tuple

from .ari_ops import AriOps
from .objects import Channel, JsonObj
from .scheduler import Scheduler, TimerHandle
from .state import AriError, PbxConfig

#: Durations (simulated seconds) of the core sounds the simulator knows.
SOUNDS: Dict[str, float] = {
    "hello-world": 1.42, "beep": 0.44, "goodbye": 0.94, "invalid": 4.12,
    "pls-hold-while-try": 2.44, "please-try-again": 1.26, "tt-allbusy": 8.98,
    "all-circuits-busy-now": 1.82, "vm-enter-num-to-call": 2.04, "agent-user": 4.92,
    "demo-thanks": 5.52, "you-entered": 0.98, "auth-thankyou": 0.96, "if-correct-press": 1.98,
    "vm-press": 0.74, "for": 0.82, "im-sorry": 1.04, "pm-invalid-option": 3.22,
    "transfer": 2.40, "one-moment-please": 1.60, "number": 0.92, "telephone-number": 1.40,
    "sorry": 1.24, "demo-congrats": 30.28, "demo-echotest": 22.0, "queue-thankyou": 1.60,
    "astcc-followed-by-the-pound-key": 1.52, "vm-goodbye": 1.0, "pbx-invalid": 2.5,
    **{f"digits/{d}": 0.8 for d in range(10)},
}
#: Seconds a user's sound file lasts in the simulator.
DEFAULT_SECONDS = 1.5
_PER_CHARACTER = 0.6
#: Simulated seconds between two digits an outside caller keys.
DTMF_GAP = 0.25
#: Real seconds at least between two keyed digits (distinct millisecond timestamps).
_MIN_REAL_GAP = 0.002
_OPERATIONS = ("pause", "unpause", "restart", "reverse", "forward")


@dataclass(eq=False)
class Playback:
    """One ARI playback on a channel."""

    id: str
    channel: Channel
    medias: List[str]
    language: str
    offsetms: int
    state: str = "queued"
    index: int = 0
    timer: TimerHandle | None = None
    left: float = 0.0  # simulated seconds of the current medium still to play
    started: float = 0.0  # when the current stretch began (monotonic, real seconds)
    extra: Dict[str, str] = field(default_factory=dict)

    def to_json(self) -> JsonObj:
        obj: JsonObj = {"id": self.id, "media_uri": self.medias[self.index]}
        if self.index < len(self.medias) - 1:
            obj["next_media_uri"] = self.medias[self.index + 1]
        obj["target_uri"] = "channel:" + self.channel.id
        obj["language"] = self.language
        obj["state"] = self.state
        return obj


def sound_seconds(media: str) -> float | None:
    """How long ``media`` plays (simulated seconds); None: it does not exist (fails);
    ``-1``: it plays until stopped; ``-2``: skipped without a final event."""
    scheme, _, rest = media.partition(":")
    if scheme == "sound":
        if rest in SOUNDS:
            return SOUNDS[rest]
        m = re.fullmatch(r"silence/(\d{1,2})", rest)
        if m:
            return float(m.group(1))
        if rest.startswith("/") and ".." not in rest and glob.glob(glob.escape(rest) + ".*"):
            return DEFAULT_SECONDS
        if rest.startswith("/") and os.path.isfile(rest):
            return DEFAULT_SECONDS
        return None
    if scheme in ("digits", "characters"):
        return max(1, len(rest)) * _PER_CHARACTER
    if scheme == "number":
        return 1.5 if re.fullmatch(r"-?\d{1,30}", rest) else -2
    if scheme == "tone":
        return -1
    return -2  # recording: (none stored in the simulator), an unsupported scheme


class Media(AriOps):
    """Playbacks and an outside caller's DTMF."""

    def __init__(self, config: PbxConfig, scheduler: Scheduler) -> None:
        super().__init__(config, scheduler)
        self._pb_by_id: Dict[str, Playback] = {}
        # channel -> the digits still to send (present until a gap after its last digit)
        self._dtmf_queues: Dict[str, Deque[Tuple[str, Callable[[str], None]]]] = {}

    def _playbacks(self) -> Dict[str, Playback]:
        """Every playback not finished, by id."""
        return self._pb_by_id

    def _queue_of(self, ch: Channel) -> List[Playback]:
        return [p for p in self._playbacks().values() if p.channel is ch]

    def playbacks_on(self, ch: Channel) -> List[Tuple[str, str]]:
        """``(id, state)`` of ``ch``'s playbacks not finished yet, oldest first (what a
        scenario waits on: a prompt playing to the caller). Lock held."""
        return [(p.id, p.state) for p in self._queue_of(ch)]

    # -- requests ------------------------------------------------------------------------------
    def play(self, ch: Channel, media: str, lang: str, offsetms: int, skipms: int,
             playback_id: str) -> JsonObj:
        """``POST /channels/{id}/play``: queue a playback; returns its JSON (``queued``)."""
        if skipms < 0:
            raise AriError(400, "skipms cannot be negative")
        if offsetms < 0:
            raise AriError(400, "offsetms cannot be negative")
        medias = media.split(",") if media else [""]
        if len(medias) >= 128:
            raise AriError(400, "Too many values for media")
        if any(not m for m in medias):
            raise AriError(500, "Failed to queue media for playback")
        pb = Playback(playback_id or str(uuid.uuid4()), ch, medias, lang or ch.language,
                      offsetms)
        busy = bool(self._queue_of(ch))
        self._playbacks()[pb.id] = pb
        answer = pb.to_json()
        if not busy:
            self.later(ch, 0.0, lambda: self._start_medium(pb))
        return answer

    def playback_json(self, playback_id: str) -> JsonObj:
        """``GET /playbacks/{id}``."""
        return self._playback(playback_id).to_json()

    def stop_playback(self, playback_id: str) -> None:
        """``DELETE /playbacks/{id}``."""
        pb = self._playback(playback_id)
        # queued: cancelled (PlaybackFinished without PlaybackStarted); playing, paused,
        # continuing: stopped; both publish the state "done"
        self._end_playback(pb, "done")

    def control_playback(self, playback_id: str, operation: str) -> None:
        """``POST /playbacks/{id}/control?operation=``."""
        if not operation:
            raise AriError(400, "Missing operation")
        if operation not in _OPERATIONS:
            raise AriError(400, f"Invalid operation {operation}")
        pb = self._playback(playback_id)
        allowed = {
            "queued": ("restart",),
            "playing": _OPERATIONS,
            "continuing": _OPERATIONS,
            "paused": ("pause", "unpause"),
        }.get(pb.state, ())
        if operation not in allowed:
            raise AriError(409, f"Can only {operation} while media is playing")
        if operation == "pause" and pb.state != "paused":
            self._suspend(pb)
            pb.state = "paused"
        elif operation == "unpause" and pb.state == "paused":
            pb.state = "playing"
            self._playback_event(pb)
            self._resume(pb)
        elif operation == "restart" and pb.state != "queued":
            self._suspend(pb)
            secs = sound_seconds(pb.medias[pb.index])
            pb.left = secs if secs is not None and secs > 0 else 0.0
            self._resume(pb)

    def _playback(self, playback_id: str) -> Playback:
        pb = self._playbacks().get(playback_id)
        if pb is None:
            raise AriError(404, "Playback not found")
        return pb

    # -- the channel's side ------------------------------------------------------------------
    def _start_medium(self, pb: Playback) -> None:
        if pb.id not in self._playbacks() or pb.channel.destroyed:
            return
        medium = pb.medias[pb.index]
        pb.state = "playing"
        self._playback_event(pb)
        secs = sound_seconds(medium)
        if secs is None:  # the file does not exist
            self._medium_over(pb, failed=True)
            return
        if secs == -2:  # skipped (Asterisk logs an error and goes on, no final update)
            self._medium_over(pb, skipped=True)
            return
        offset = pb.offsetms / 1000.0 if pb.index == 0 else 0.0
        pb.left = max(0.0, secs - offset) if secs >= 0 else -1.0
        self._resume(pb)

    def _resume(self, pb: Playback) -> None:
        if pb.left < 0:  # a tone: until stopped
            return
        pb.started = time.monotonic()
        pb.timer = self.later(pb.channel, pb.left, lambda: self._medium_over(pb))

    def _suspend(self, pb: Playback) -> None:
        if pb.timer is not None:
            pb.timer.cancel()
            pb.timer = None
            if pb.left > 0:
                played = (time.monotonic() - pb.started) * self.config.speed
                pb.left = max(0.0, pb.left - played)

    def _medium_over(self, pb: Playback, failed: bool = False, skipped: bool = False) -> None:
        if pb.id not in self._playbacks() or pb.state not in ("playing",):
            return
        pb.timer = None
        last = pb.index == len(pb.medias) - 1
        if last:
            if skipped:
                self._forget(pb)
            else:
                self._end_playback(pb, "failed" if failed else "done")
            return
        if not skipped:
            pb.state = "continuing"
            self._playback_event(pb)
        pb.index += 1
        self._start_medium(pb)

    def _end_playback(self, pb: Playback, state: str) -> None:
        """The playback ends (``done`` or ``failed``): PlaybackFinished, then the channel's
        next queued playback starts."""
        if pb.timer is not None:
            pb.timer.cancel()
            pb.timer = None
        pb.state = state
        self._playback_event(pb)
        self._forget(pb)

    def _forget(self, pb: Playback) -> None:
        was_first = self._queue_of(pb.channel)[:1] == [pb]
        self._playbacks().pop(pb.id, None)
        nxt = self._queue_of(pb.channel)
        if was_first and nxt and not pb.channel.destroyed:
            first = nxt[0]
            self.later(pb.channel, 0.0, lambda: self._start_medium(first))

    def _playback_event(self, pb: Playback) -> None:
        etype = {"playing": "PlaybackStarted", "continuing": "PlaybackContinuing",
                 "done": "PlaybackFinished", "failed": "PlaybackFinished"}.get(pb.state)
        if etype is None:
            return
        ev = self._base(etype)
        ev["playback"] = pb.to_json()
        self._deliver(self._finish(ev), self._channel_targets([pb.channel]))

    def end_playbacks(self, ch: Channel, state: str) -> None:
        """``ch`` leaves Stasis: its playing playback ends with ``state``; queued ones are
        dropped without an event (their command never runs)."""
        for pb in self._queue_of(ch):
            if pb.state in ("playing", "paused", "continuing"):
                if pb.timer is not None:
                    pb.timer.cancel()
                    pb.timer = None
                pb.state = state
                self._playback_event(pb)
            self._playbacks().pop(pb.id, None)

    # -- hooks into the layers below ----------------------------------------------------------
    def stasis_event(self, etype: str, ch: Channel, args: List[str] | None = None) -> None:
        if etype == "StasisEnd":
            self.end_playbacks(ch, "failed")  # hung up (continue/move ended them already)
        super().stasis_event(etype, ch, args)

    def stasis_continue(self, ch: Channel, context: str, extension: str,
                        priority: int = 0) -> None:
        self.end_playbacks(ch, "done")
        super().stasis_continue(ch, context, extension, priority)

    def move(self, ch: Channel, app: str, args: List[str]) -> None:
        target = self.apps.get(app)
        if target is not None and target.sink is not None:
            self.end_playbacks(ch, "done")
        super().move(ch, app, args)

    def reset(self) -> None:
        with self.lock:
            self._playbacks().clear()
            self._dtmf_queues.clear()
        super().reset()

    # -- keyed digits ---------------------------------------------------------------------------
    def caller_dtmf(self, ch: Channel, digits: str) -> None:
        """The far end of ``ch`` (an outside caller on the trunk) keys ``digits``: one
        ``ChannelDtmfReceived`` per digit to the apps that see the channel (its Stasis
        application), paced like a keypad (:meth:`_key`)."""
        self._key(ch, digits, lambda d: self._dtmf(ch, d))

    def phone_dtmf(self, ch: Channel, digits: str) -> None:
        """A phone keys ``digits`` on its call ``ch``: each digit's event and feature code
        (``Features.phone_dtmf``) paced like a keypad (:meth:`_key`)."""
        keyed = super().phone_dtmf
        self._key(ch, digits, lambda d: keyed(ch, d))

    def _key(self, ch: Channel, digits: str, send: Callable[[str], None]) -> None:
        """Send ``digits`` one at a time on ``ch``: the first at once, each next one
        :data:`DTMF_GAP` simulated seconds (and at least 2 real milliseconds) after the one
        before, so that two frames of the same digit never carry the same timestamp, as on a
        real line. Digits keyed while earlier ones of the channel are still being sent (or
        within a gap after the last) come after them, in order; a channel that ends drops the
        rest."""
        queues = self._dtmf_queues
        for cid in [c for c in queues if c not in self.channels]:
            del queues[cid]
        pending = queues.get(ch.id)
        if pending is not None:
            pending.extend((d, send) for d in digits)
            return
        fresh: Deque[Tuple[str, Callable[[str], None]]] = deque((d, send) for d in digits)
        queues[ch.id] = fresh
        self._next_digit(ch, fresh)

    def _next_digit(self, ch: Channel, pending: Deque[Tuple[str, Callable[[str], None]]]
                    ) -> None:
        if self._dtmf_queues.get(ch.id) is not pending:
            return
        if not pending or ch.destroyed:
            del self._dtmf_queues[ch.id]
            return
        digit, send = pending.popleft()
        send(digit)
        gap = max(DTMF_GAP, _MIN_REAL_GAP * self.config.speed)
        self.later(ch, gap, lambda: self._next_digit(ch, pending))

    def _dtmf(self, ch: Channel, digit: str) -> None:
        if not ch.destroyed:
            self.chan_event("ChannelDtmfReceived", ch, (("digit", digit), ("duration_ms", 120)))
