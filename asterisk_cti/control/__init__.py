"""How the SDK controls calls: ``client.control`` (:class:`CallControl`), blocking and
thread-safe, and the Stasis engine underneath that dials, bridges and cleans up the calls the
SDK drives.
"""

from ..errors import CallFailedError, CallStateError
from .calls import CallControl, Consultation, ControlledCall
from .options import ControlOptions

__all__ = [
    "CallControl",
    "CallFailedError",
    "CallStateError",
    "Consultation",
    "ControlOptions",
    "ControlledCall",
]
