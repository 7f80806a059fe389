"""How the SDK controls calls: ``client.control`` (:class:`CallControl`), blocking and
thread-safe, and the Stasis engine underneath that dials, bridges and cleans up the calls the
SDK drives.

Modules: ``calls`` (:class:`CallControl`: originate, answer, hangup, mute, DTMF, redirect),
``transfers`` (hold, retrieve, transfers, conference), ``base`` (what every operation shares:
targets, the register-wait/send/cancel step), ``handles`` (:class:`ControlledCall`,
:class:`Consultation`), ``predicates`` (what operations wait for), ``options``
(:class:`ControlOptions`), ``state`` (the Stasis state behind its methods), ``engine`` (the
tap, the requests the engine makes, hold and unhold), ``switch`` (the engine's reactions to
events), ``phone_transfers`` (consultations ending, the phones' REFERs), ``futures``
(every operation as a :class:`concurrent.futures.Future`: :meth:`CallControl.nonblocking`)
and ``actions`` (what a phone bar may offer for a connection: :meth:`CallControl.actions`).
"""

from ..errors import CallFailedError, CallStateError
from .actions import Action, Actions, actions_for
from .calls import CallControl
from .futures import CallSoon, ControlFuture, ControlFutures, OperationPool
from .handles import Consultation, ControlledCall
from .options import ControlOptions

__all__ = [
    "Action",
    "Actions",
    "CallControl",
    "CallSoon",
    "CallFailedError",
    "CallStateError",
    "Consultation",
    "ControlFuture",
    "ControlFutures",
    "ControlOptions",
    "ControlledCall",
    "OperationPool",
    "actions_for",
]
