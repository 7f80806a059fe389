"""Tools on top of the SDK: the live line monitor, screen-pop, and the CTI event formats.

They use the public API only (:mod:`asterisk_cti`, :mod:`asterisk_cti.sim`,
:mod:`asterisk_cti.testing`) and implement the ``asterisk-cti`` commands (a ``run_*``
function each: :mod:`.demo`, :mod:`.monitor`, :mod:`.screenpop`, :mod:`.dial`, and
:mod:`.record` for ``events``, ``record`` and ``replay``; :mod:`.session` holds what they
share); :mod:`asterisk_cti.cli` only parses the arguments. The monitor and screen-pop can
also be embedded in an application::

    from asterisk_cti.tools import Monitor, ScreenPop, UrlAction

See the modules for the threads each part runs on.
"""

from .events import EVENT_KEYS, TEMPLATE_FIELDS, event_fields, event_to_dict, format_event
from .monitor import Monitor, render_table
from .screenpop import (
    Action,
    CommandAction,
    MessageAction,
    PostAction,
    ScreenPop,
    Template,
    UrlAction,
    has_display,
)

__all__ = [
    "EVENT_KEYS",
    "TEMPLATE_FIELDS",
    "Action",
    "CommandAction",
    "MessageAction",
    "Monitor",
    "PostAction",
    "ScreenPop",
    "Template",
    "UrlAction",
    "event_fields",
    "event_to_dict",
    "format_event",
    "has_display",
    "render_table",
]
