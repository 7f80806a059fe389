"""Tools on top of the SDK: the live line monitor, screen-pop, and the CTI event formats.

They use the public API only (:mod:`asterisk_cti`) and back the ``asterisk-cti monitor``,
``screenpop`` and ``demo`` commands; they can also be embedded in an application::

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
