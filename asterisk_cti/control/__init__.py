"""How the SDK controls calls: ``client.control`` (:class:`CallControl`), blocking and
thread-safe, and the Stasis engine underneath that dials, bridges and cleans up the calls the
SDK drives.

Modules: ``calls`` (:class:`CallControl`: originate, answer, hangup, mute, DTMF, redirect),
``transfers`` (hold, retrieve, transfers, conference), ``base`` (what every operation shares:
targets, the register-wait/send/cancel step), ``handles`` (:class:`ControlledCall`,
:class:`Consultation`), ``predicates`` (what operations wait for), ``options``
(:class:`ControlOptions`), ``state`` (the Stasis state behind its methods), ``engine`` (the
tap, the requests the engine makes, hold and unhold), ``switch`` (the engine's reactions to
events) and ``phone_transfers`` (consultations ending, the phones' REFERs).
"""

from ..errors import CallFailedError, CallStateError
from .calls import CallControl
from .handles import Consultation, ControlledCall
from .options import ControlOptions

__all__ = [
    "CallControl",
    "CallFailedError",
    "CallStateError",
    "Consultation",
    "ControlOptions",
    "ControlledCall",
]
