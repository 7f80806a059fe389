"""What a phone bar may offer for one connection: :class:`Actions`, from
``client.control.actions(connection)``.

The answer depends on two things: the connection's state in the call model, and whether its
channel is in the SDK's Stasis application (Asterisk 22 refuses every operation but hangup on
a channel outside it, see ``docs/call-control.rst``). :func:`actions_for` is the rule, pure;
:meth:`CallControl.actions <asterisk_cti.control.CallControl.actions>` feeds it what the SDK
knows of the channel.

Threads: immutable values and pure functions; any thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Dict, FrozenSet, Iterator, Optional, Tuple

from ..model.types import Connection, ConnectionState, PhoneState

__all__ = ["Action", "Actions", "actions_for"]


class Action(str, Enum):
    """An operation a phone bar offers; the value names the
    :class:`~asterisk_cti.control.CallControl` method (``dtmf`` is ``send_dtmf``; ``consult``
    starts an attended transfer)."""

    ANSWER = "answer"
    HANGUP = "hangup"
    HOLD = "hold"
    RETRIEVE = "retrieve"
    TRANSFER = "transfer"
    CONSULT = "consult"
    CONFERENCE = "conference"
    DTMF = "dtmf"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Actions:
    """What can be done on one connection right now, and why not the rest. Immutable; any
    thread. A snapshot: it is as old as the :class:`~asterisk_cti.Connection` it was made
    from, so the operation may still fail (the other party hung up meanwhile).

    ``Action.HOLD in actions`` (or ``actions.can(Action.HOLD)``) tells whether to enable a
    button; ``actions.why_not(Action.HOLD)`` the sentence to show on a disabled one.

    :ivar connection_id: the connection (its channel id).
    :ivar allowed: the operations that can be done.
    :ivar reasons: for each other operation, why not (``(action, reason)`` pairs, in
        :class:`Action` order).
    :ivar in_stasis: whether the channel is in the SDK's application now (a controlled call;
        a channel the SDK is still calling enters it when the phone answers).
    """

    connection_id: str
    allowed: FrozenSet[Action]
    reasons: Tuple[Tuple[Action, str], ...]
    in_stasis: bool

    def __contains__(self, action: object) -> bool:
        return action in self.allowed

    def __iter__(self) -> Iterator[Action]:
        """The allowed operations, in :class:`Action` order."""
        return (a for a in Action if a in self.allowed)

    def can(self, action: Action) -> bool:
        """Whether ``action`` can be done."""
        return action in self.allowed

    def why_not(self, action: Action) -> str:
        """Why ``action`` cannot be done (empty when it can)."""
        for a, reason in self.reasons:
            if a == action:
                return reason
        return ""


_STILL_CALLING = ("Asterisk is still calling this phone (ARI cannot answer a channel it "
                  "dials: 412, or 409 before it enters the application): pick up on the phone")
_OVER = (PhoneState.DISCONNECTED, PhoneState.IDLE)
_TALKING = (PhoneState.CONNECTED, PhoneState.HELD)


def _observed_reason(channel_id: str, app: str, known_outside: bool,
                     other_app: Optional[str]) -> str:
    if other_app:
        where = f"it is in another Stasis application, '{other_app}'"
    elif known_outside:
        where = "it runs in the plain dialplan (an observed call)"
    else:
        where = "the SDK has not seen it enter the application"
    return (f"channel {channel_id} is not in the SDK's application '{app}' ({where}); only "
            f"hangup works on it. To control such calls, send them through the SDK's switch "
            f"in the dialplan: 'same => n,Stasis({app},dial)' in place of "
            f"'Dial(PJSIP/${{EXTEN}})', or place them with control.originate()")


def actions_for(connection: Connection, *, app: str, in_stasis: bool,
                channel_state: str = "", bridged: bool = False, known_outside: bool = False,
                other_app: Optional[str] = None, dialling: bool = False) -> Actions:
    """The rule behind :meth:`CallControl.actions
    <asterisk_cti.control.CallControl.actions>` (pure; any thread).

    * Over (disconnected, idle, null): nothing.
    * Hangup: always, while the connection exists (Asterisk hangs up any channel).
    * A channel the SDK is still calling into its application (``dialling``: a leg, a
      click-to-dial agent; it enters the application when the phone answers): only hangup;
      the user picks up on the phone.
    * Not in the application (an observed call): only hangup; the reason says what to change
      in the dialplan.
    * Answer: only a channel ringing *into* the application (ARI state ``Ring``, a caller
      the dialplan sent to ``Stasis()``). A phone's ringing channel (``Ringing``, ``Down``) is
      one Asterisk is still calling: ARI answers 412 "Channel in invalid state", so the user
      picks up on the phone.
    * Hold, DTMF: a connected call that is not held (ARI state ``Up``).
    * Retrieve: a held call.
    * Transfer, consult, conference: a connected or held call that the SDK bridges with
      somebody (``bridged``).
    * Failed: only hangup.

    :param connection: the call model's snapshot.
    :param app: the SDK's application name (for the reason text).
    :param in_stasis: whether the channel is in the SDK's application.
    :param channel_state: its last ARI state (``Ring``, ``Ringing``, ``Up``, ...; empty
        when unknown: the model's state decides).
    :param bridged: whether it is in a bridge of the SDK with at least one other party.
    :param known_outside: whether the SDK saw the channel outside the application.
    :param other_app: the other Stasis application it was seen in, if any.
    :param dialling: whether the SDK is calling the channel into its application.
    """
    cid = connection.connection_id
    phone = connection.phone_state
    held = connection.held or connection.state == ConnectionState.HOLD
    why: Dict[Action, str] = {}
    if phone in _OVER or connection.state == ConnectionState.NULL:
        for action in Action:
            why[action] = "the connection is over"
        return _build(cid, why, in_stasis)
    if not in_stasis and dialling and phone not in (PhoneState.FAILED,):
        why[Action.ANSWER] = _STILL_CALLING
        for action in Action:
            if action not in (Action.HANGUP, Action.ANSWER):
                why[action] = "the call is not connected yet"
        return _build(cid, why, in_stasis)
    if not in_stasis:
        reason = _observed_reason(cid, app, known_outside, other_app)
        for action in Action:
            if action != Action.HANGUP:
                why[action] = reason
        return _build(cid, why, in_stasis)
    if phone == PhoneState.FAILED:
        for action in Action:
            if action != Action.HANGUP:
                why[action] = "the call failed; only hangup is left"
        return _build(cid, why, in_stasis)
    up = channel_state == "Up" if channel_state else phone in _TALKING
    if channel_state == "Ring":
        pass
    elif up:
        why[Action.ANSWER] = "the channel is already answered"
    elif channel_state in ("Ringing", "Down", ""):
        why[Action.ANSWER] = _STILL_CALLING
    else:
        why[Action.ANSWER] = f"the channel is not ringing (state {channel_state})"
    talking = phone in _TALKING and up
    not_yet = "the call is not connected yet"
    if held:
        why[Action.HOLD] = "the call is already held"
        why[Action.DTMF] = "the call is held; retrieve it first"
    elif not talking:
        why[Action.HOLD] = not_yet
        why[Action.DTMF] = not_yet
    if not held:
        why[Action.RETRIEVE] = "the call is not held"
    for action in (Action.TRANSFER, Action.CONSULT, Action.CONFERENCE):
        if not talking:
            why[action] = not_yet
        elif not bridged:
            why[action] = (f"channel {cid} is not talking to anybody in a bridge of the SDK "
                           "(transfer, consult and conference need a call the SDK bridged: "
                           "one it originated or one the dialplan sent to its switch)")
    return _build(cid, why, in_stasis)


def _build(cid: str, why: Dict[Action, str], in_stasis: bool) -> Actions:
    return Actions(
        connection_id=cid,
        allowed=frozenset(a for a in Action if a not in why),
        reasons=tuple((a, why[a]) for a in Action if a in why),
        in_stasis=in_stasis,
    )
