"""The IVR's exceptions (any thread)."""

from __future__ import annotations

from typing import Optional

from ..errors import AsteriskCtiError

__all__ = ["CallReleasedError", "CallerHangupError", "IvrDefinitionError", "IvrError"]


class IvrError(AsteriskCtiError):
    """Base of the IVR's errors."""


class CallerHangupError(IvrError):
    """The caller hung up (or the channel left the application) while the flow was using
    the call. Raised by every blocking :class:`~asterisk_cti.ivr.IvrCall` operation; the engine
    catches it after the flow's ``run`` (stopping what still plays), so a flow only catches it
    to do something of its own (log an abandoned call)."""

    def __init__(self, channel_id: str) -> None:
        super().__init__(f"the caller of channel {channel_id} hung up")
        self.channel_id = channel_id


class CallReleasedError(IvrError):
    """The flow used a call it already sent on (to an extension, a queue, the dialplan) or
    hung up."""


class IvrDefinitionError(IvrError, ValueError):
    """A definition (JSON file or dict) that breaks the format of :mod:`asterisk_cti.ivr`.

    :param message: what is wrong.
    :param key: where, as a path of keys (``menus.main.options.1[0].queue``).
    :param line: the line of the file where that key is (files only; best effort).
    :param source: the file's name, if any.
    """

    def __init__(self, message: str, key: str = "", line: Optional[int] = None,
                 source: Optional[str] = None) -> None:
        where = ""
        if source:
            where += source
            if line is not None:
                where += f":{line}"
            where += ": "
        elif line is not None:
            where = f"line {line}: "
        if key:
            where += f"{key}: "
        super().__init__(where + message)
        self.message = message
        self.key = key
        self.line = line
        self.source = source
