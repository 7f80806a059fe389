"""Asterisk facts, in one place: Q.850 hangup causes, Dial statuses (``DIALSTATUS``) and the
ARI hangup reasons, and how each translates into the others.

Pure data and pure functions; imports nothing of the SDK, so every layer may use it (the call
model reads causes of failed legs, call control passes a failed dial on to its caller).
Sources: Asterisk 22 ``include/asterisk/causes.h``, ``apps/app_dial.c`` (DIALSTATUS values) and
``res/ari/resource_channels.c`` (``ast_ari_channels_hangup``'s reasons).
"""

from __future__ import annotations

from typing import FrozenSet, Mapping

__all__ = [
    "DIAL_FAILURE_CAUSES",
    "FAILED_DIALSTATUS",
    "HANGUP_REASONS",
    "REASON_FOR_STATUS",
    "STATUS_FOR_CAUSE",
    "dialstatus_for_cause",
    "hangup_reason_for",
]

#: Dial statuses that end a dial attempt without an answer.
FAILED_DIALSTATUS: FrozenSet[str] = frozenset(
    {"BUSY", "NOANSWER", "CONGESTION", "CHANUNAVAIL", "CANCEL", "DONTCALL", "TORTURE",
     "INVALIDARGS"}
)

#: ARI hangup reasons (``DELETE /channels/{id}?reason=``) Asterisk 22 accepts.
HANGUP_REASONS: FrozenSet[str] = frozenset(
    {"normal", "busy", "congestion", "no_answer", "timeout", "rejected", "unallocated",
     "normal_unspecified", "number_incomplete", "codec_mismatch", "interworking", "failure",
     "answered_elsewhere"}
)

#: The ARI hangup reason that passes a failed Dial status on to the caller.
REASON_FOR_STATUS: Mapping[str, str] = {
    "BUSY": "busy",
    "NOANSWER": "no_answer",
    "CONGESTION": "congestion",
    "CHANUNAVAIL": "failure",
    "CANCEL": "normal",
}

#: The failed Dial status a Q.850 cause of an unanswered leg stands for (for when no Dial
#: event said why): 17/21 user busy / call rejected, 18/19 no user responding / no answer,
#: 34/41/42 congestion / temporary failure / switch congestion, 1/3/20/27/38 unallocated
#: number / no route / subscriber absent / destination out of order / network out of order.
STATUS_FOR_CAUSE: Mapping[int, str] = {
    17: "BUSY", 21: "BUSY", 18: "NOANSWER", 19: "NOANSWER", 34: "CONGESTION",
    41: "CONGESTION", 42: "CONGESTION", 1: "CHANUNAVAIL", 3: "CHANUNAVAIL",
    20: "CHANUNAVAIL", 27: "CHANUNAVAIL", 38: "CHANUNAVAIL",
}

#: The Q.850 cause that stands for a failed Dial status when the failed channel's own cause
#: is unknown.
DIAL_FAILURE_CAUSES: Mapping[str, int] = {
    "BUSY": 17,
    "NOANSWER": 19,
    "CONGESTION": 34,
    "CHANUNAVAIL": 20,
    "DONTCALL": 21,
    "TORTURE": 21,
    "INVALIDARGS": 28,
}


def dialstatus_for_cause(cause: int) -> str:
    """The Dial status that a Q.850 hangup cause stands for (``CHANUNAVAIL`` when unknown,
    ``NOANSWER`` for cause 16/0 of an unanswered leg, as Asterisk's Dial timeout gives)."""
    if cause in (0, 16):
        return "NOANSWER"
    return STATUS_FOR_CAUSE.get(cause, "CHANUNAVAIL")


def hangup_reason_for(dialstatus: str) -> str:
    """The ARI hangup reason that passes a failed dial's status on to the caller."""
    return REASON_FOR_STATUS.get(dialstatus, "normal")

