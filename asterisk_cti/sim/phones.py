"""Simulated SIP phones: the user's side of every call.

A :class:`Phone` stands for one registered PJSIP endpoint. Its methods are what a person does
with a desk phone (dial, answer, reject, hang up, hold, transfer, DTMF, mute); each one changes
the simulated PBX and emits the ARI events Asterisk would emit. They run on the caller's thread,
take the PBX lock, and return once the events are queued for delivery.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Dict, List

from .objects import Channel
from .state import AriError, PhoneHooks

if TYPE_CHECKING:
    from .pbx import Pbx

__all__ = ["Phone", "PhoneError"]


class PhoneError(RuntimeError):
    """The phone cannot do that now (no call ringing, no call to hang up, ...)."""


class Phone:
    """One simulated phone. Get it with :meth:`AriSimulator.phone`; do not construct it.

    :ivar busy: answer every new call with 486 Busy Here (DIALSTATUS BUSY, cause 17).
    :ivar call_waiting: accept a second call while in a call (default ``False``: like the
        baresip phones of the traces, a phone in a call answers a new one with 486).
    :ivar auto_answer: if not ``None``, answer incoming calls after this many simulated
        seconds (click-to-dial phones, load mode).
    """

    def __init__(self, pbx: Pbx, resource: str) -> None:
        self._pbx = pbx
        self.resource = resource
        self.busy = False
        self.call_waiting = False
        self.auto_answer: float | None = None
        self._ringing = threading.Condition(pbx.lock)

    # -- state -------------------------------------------------------------------------------
    @property
    def endpoint_id(self) -> str:
        return f"PJSIP/{self.resource}"

    def channels(self) -> List[Channel]:
        """This phone's live channels, oldest first."""
        with self._pbx.lock:
            ep = self._pbx.endpoints[self.endpoint_id]
            return [self._pbx.channels[i] for i in ep.channel_ids if i in self._pbx.channels]

    def _ringing_channel(self) -> Channel | None:
        for ch in self.channels():
            if ch.state == "Ringing":
                return ch
        return None

    def _active_channel(self) -> Channel:
        chans = self.channels()
        for ch in reversed(chans):
            if ch.state == "Up" and not ch.held:
                return ch
        if chans:
            return chans[-1]
        raise PhoneError(f"phone {self.resource} has no call")

    @property
    def channel_id(self) -> str | None:
        """The id of the phone's current channel, or ``None`` when idle."""
        with self._pbx.lock:
            try:
                return self._active_channel().id
            except PhoneError:
                return None

    def wait_ringing(self, timeout: float = 5.0) -> str:
        """Block until a call rings at this phone; returns the ringing channel's id.

        :raises PhoneError: nothing rang within ``timeout`` real seconds.
        """
        with self._ringing:
            if not self._ringing.wait_for(lambda: self._ringing_channel() is not None, timeout):
                raise PhoneError(f"phone {self.resource}: no call rang within {timeout}s")
            ch = self._ringing_channel()
            assert ch is not None
            return ch.id

    # -- actions -----------------------------------------------------------------------------
    def dial(self, exten: str) -> str:
        """Call ``exten`` through the ``from-internal`` dialplan; returns the new channel id."""
        with self._pbx.lock:
            ep = self._pbx.endpoints[self.endpoint_id]
            if not ep.registered:
                raise PhoneError(f"phone {self.resource} is not registered")
            return self._pbx.phone_dial(ep, exten).id

    def answer(self) -> None:
        """Answer the ringing call (200 OK)."""
        with self._pbx.lock:
            ch = self._ringing_channel()
            if ch is None:
                raise PhoneError(f"phone {self.resource} has no ringing call")
            if ch.originated:
                self._pbx.originated_answer(ch)
            else:
                self._pbx.callee_answer(ch)

    def reject(self) -> None:
        """Decline the ringing call (486 Busy Here: DIALSTATUS BUSY, cause 17)."""
        with self._pbx.lock:
            ch = self._ringing_channel()
            if ch is None:
                raise PhoneError(f"phone {self.resource} has no ringing call")
            if ch.originated:
                self._pbx.originated_reject(ch)
            else:
                self._pbx.callee_reject(ch)

    def hangup(self) -> None:
        """Hang up the current call (BYE, or CANCEL while it still rings out)."""
        with self._pbx.lock:
            self._pbx.hangup(self._active_channel(), 16)

    def hold(self) -> None:
        """Put the call on hold from the phone (re-INVITE sendonly): ChannelHold."""
        with self._pbx.lock:
            self._pbx.phone_hold(self._active_channel(), True)

    def resume(self) -> None:
        """Take the call off hold: ChannelUnhold."""
        with self._pbx.lock:
            held = [c for c in self.channels() if c.held]
            if not held:
                raise PhoneError(f"phone {self.resource} has no held call")
            self._pbx.phone_hold(held[-1], False)

    def mute(self) -> None:
        """Stop talking (ChannelTalkingFinished after 2.5 s of silence)."""
        with self._pbx.lock:
            self._pbx.mute_phone(self._active_channel(), True)

    def unmute(self) -> None:
        """Talk again (ChannelTalkingStarted)."""
        with self._pbx.lock:
            self._pbx.mute_phone(self._active_channel(), False)

    def dtmf(self, digits: str) -> None:
        """Send DTMF; ``*2`` + extension starts an attended transfer, then hanging up completes
        it, ``*3`` makes it a three-way call, ``*1`` aborts it. Like a keypad, the first digit
        goes at once and each next one 0.25 simulated seconds later (on the timer thread;
        digits of a second call follow those still being sent), so repeated digits are
        distinct frames."""
        with self._pbx.lock:
            self._pbx.phone_dtmf(self._active_channel(), digits)

    def blind_transfer(self, exten: str) -> None:
        """Transfer the current call to ``exten`` with a SIP REFER."""
        with self._pbx.lock:
            try:
                self._pbx.blind_transfer(self._active_channel(), exten)
            except AriError as exc:
                raise PhoneError(exc.message) from exc


class PhoneBook(PhoneHooks):
    """The phones of one simulator; the PBX asks it whether a phone is busy and tells it
    about incoming calls (for auto-answer and :meth:`Phone.wait_ringing`)."""

    def __init__(self, pbx: Pbx) -> None:
        self._pbx = pbx
        self.phones: Dict[str, Phone] = {}

    def get(self, resource: str) -> Phone:
        with self._pbx.lock:
            if f"PJSIP/{resource}" not in self._pbx.endpoints:
                raise KeyError(f"no endpoint PJSIP/{resource}")
            phone = self.phones.get(resource)
            if phone is None:
                phone = self.phones[resource] = Phone(self._pbx, resource)
            return phone

    def is_busy(self, resource: str, new: Channel) -> bool:
        phone = self.phones.get(resource)
        if phone is not None and phone.busy:
            return True
        if phone is not None and phone.call_waiting:
            return False
        ep = self._pbx.endpoints[f"PJSIP/{resource}"]
        return any(i != new.id for i in ep.channel_ids)

    def incoming(self, resource: str, channel: Channel) -> None:
        phone = self.phones.get(resource)
        if phone is None:
            return
        phone._ringing.notify_all()
        if phone.auto_answer is not None:

            def answer() -> None:
                if channel.state == "Ringing":
                    if channel.originated:
                        self._pbx.originated_answer(channel)
                    else:
                        self._pbx.callee_answer(channel)

            self._pbx.later(channel, phone.auto_answer, answer)
