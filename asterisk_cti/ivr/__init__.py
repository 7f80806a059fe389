"""``asterisk_cti.ivr``: an IVR on the SDK's blocking API (the ivrSVR of the original design).

Calls the dialplan sends into the client's own Stasis application with
``Stasis(<app>,ivr,<flow>)`` run a flow, each on a thread of its own: a declarative
definition (JSON file or dict, :func:`load_definition`, :func:`parse_definition`) or a
subclass of :class:`IvrFlow`. Collected digits become call data (``__CTI_DATA`` on the
caller's channel) that follows the call to the queue and the agent's screen-pop. See
``docs/ivr.rst``.

Quick start::

    from asterisk_cti import CtiClient, CtiConfig
    from asterisk_cti.ivr import IvrEngine, load_definition

    client = CtiClient(CtiConfig.from_env())
    engine = IvrEngine(client, {"main": load_definition("billing.json")})
    engine.start()
    client.start()
"""

from .call import MAX_BUFFERED, DigitInput, EngineStoppedError, IvrCall
from .definition import (
    Action,
    DigitRules,
    IvrDefinition,
    Menu,
    QueueTarget,
    load_definition,
    parse_definition,
)
from .engine import EVENT_TYPES, FLOW_ARG, STATUS_VARIABLE, CallRecord, IvrEngine
from .errors import CallerHangupError, CallReleasedError, IvrDefinitionError, IvrError
from .flow import DefinitionFlow, IvrFlow

__all__ = [
    "EVENT_TYPES",
    "FLOW_ARG",
    "MAX_BUFFERED",
    "STATUS_VARIABLE",
    "Action",
    "CallRecord",
    "CallReleasedError",
    "CallerHangupError",
    "DefinitionFlow",
    "DigitInput",
    "DigitRules",
    "EngineStoppedError",
    "IvrCall",
    "IvrDefinition",
    "IvrDefinitionError",
    "IvrEngine",
    "IvrError",
    "IvrFlow",
    "Menu",
    "QueueTarget",
    "load_definition",
    "parse_definition",
]
