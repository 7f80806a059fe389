"""Call data and queue names in the call model: read from the channels, kept per call.

The data of a call (:mod:`asterisk_cti.calldata`) lives in Asterisk, in the inherited channel
variable ``CTI_DATA``. The model reads it from two places:

* ``channelvars["CTI_DATA"]`` of every channel object Asterisk sends when ari.conf lists
  ``channelvars = CTI_DATA`` (:meth:`CallDataTracking._see_channelvars`, one dict look-up
  and a string comparison per channel object: the value is decoded only when it changed);
* ``ChannelVarset`` events of ``CTI_DATA`` (named with or without the ``_``/``__`` prefix),
  which the transport lets through by name while it drops every other ChannelVarset.

Each channel remembers the value it last carried (:attr:`ChannelRecord.data_raw`); the call
takes the data of the channel whose value changed last, so a change on the caller shows on
the call's next events at every line (the agents' legs inherited a copy when they were
created). A channel that starts without data (an empty or absent value) says nothing: it
does not erase the data of the call it joins. A value that cannot be decoded is counted
(:attr:`CallDataTracking.call_data_errors`), logged at most once every
:data:`DATA_LOG_INTERVAL` seconds, and ignored: the call keeps its previous data.

Processor thread only; no I/O.
"""

from __future__ import annotations

import logging
import time
from types import MappingProxyType
from typing import Any, Mapping

from ..calldata import VARIABLE, CallDataError, decode_call_data
from .records import NO_CALL, CallRecord, ChannelRecord
from .snapshots import Snapshots
from .types import NO_DATA

_LOG = logging.getLogger(__name__)

#: At most one warning about undecodable call data per this many seconds (all are counted).
DATA_LOG_INTERVAL = 60.0


class CallDataTracking(Snapshots):
    """Reads the call data of channels and keeps it per call."""

    #: how many values of CTI_DATA could not be decoded (hostile or broken); processor thread
    call_data_errors = 0
    _data_logged_at = -DATA_LOG_INTERVAL

    def _see_channelvars(self, ch: ChannelRecord, raw: Mapping[str, Any]) -> None:
        """Take ``CTI_DATA`` from a channel object's ``channelvars``, if it changed."""
        channelvars = raw.get("channelvars")
        if type(channelvars) is dict:
            value = channelvars.get(VARIABLE)
            if value is not None and value != ch.data_raw:
                self._see_data(ch, value, False)

    def _see_data(self, ch: ChannelRecord, value: object, explicit: bool) -> None:
        """``value`` is the channel's CTI_DATA now; ``explicit``: a ChannelVarset set it (an
        empty value then clears the call's data)."""
        previous = ch.data_raw
        ch.data_raw = value
        if value == "" and previous is None and not explicit:
            return  # a channel that starts without data says nothing about the call
        try:
            decoded = decode_call_data(value)
        except CallDataError as exc:
            self._bad_data(ch, exc)
            return
        ch.data = MappingProxyType(decoded) if decoded else NO_DATA
        if ch.call is not NO_CALL:
            self._set_call_data(ch.call, ch.data)

    def _set_call_data(self, call: CallRecord, data: Mapping[str, str]) -> None:
        if data == call.data:
            return
        call.data = data
        self._dirty_calls.add(call.id)
        for other in call.chans.values():
            self._dirty(other)

    def _bad_data(self, ch: ChannelRecord, exc: CallDataError) -> None:
        self.call_data_errors += 1
        now = time.monotonic()
        if now - self._data_logged_at >= DATA_LOG_INTERVAL:
            self._data_logged_at = now
            _LOG.warning(
                "call model: channel %s carries a %s that breaks the call data rules (%s); "
                "its call keeps its previous data (%d such values so far)",
                ch.id, VARIABLE, exc, self.call_data_errors)
