"""Call data: the mapping an IVR (or any application) attaches to a call (pure; any thread).

The data travels inside Asterisk, in one inherited channel variable, :data:`VARIABLE`
(``CTI_DATA``), set as ``__CTI_DATA`` so that every channel created from the caller's (Dial,
Queue members, Local channels, transfers) carries it too. It therefore survives an SDK restart
and is visible to every CTI client of the PBX. Asterisk puts it on every channel object it
sends when ari.conf's ``[general]`` section lists it: ``channelvars = CTI_DATA`` (next to
``CHANNEL(linkedid)`` if used).

The value is a URL-encoded form (``account=12345&choice=billing``), keys sorted, so the
dialplan can set it as well: ``Set(__CTI_DATA=account=${ACCOUNT}&choice=billing)``.

Limits (checked on encode, and on decode of what Asterisk sends, since any dialplan or other
application can write the variable): at most :data:`MAX_ITEMS` items, keys of
:data:`KEY_PATTERN` (letters, digits, ``_ . -``, at most 64), values at most
:data:`MAX_VALUE` characters, the encoded form at most :data:`MAX_ENCODED` characters.
"""

from __future__ import annotations

import re
from typing import Dict, Mapping, Optional
from urllib.parse import parse_qsl, urlencode

from .errors import AsteriskCtiError

__all__ = [
    "CallDataError", "INHERITED_VARIABLE", "KEY_PATTERN", "MAX_ENCODED", "MAX_ITEMS",
    "MAX_VALUE", "VARIABLE", "decode_call_data", "encode_call_data", "merge_call_data",
]

#: The channel variable that carries the data (as ARI's ``channelvars`` names it).
VARIABLE = "CTI_DATA"
#: The name to set it under so that every descendant channel inherits it.
INHERITED_VARIABLE = "__" + VARIABLE
#: What a key may be.
KEY_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
#: The most items a call's data holds.
MAX_ITEMS = 32
#: The longest value (characters).
MAX_VALUE = 256
#: The longest encoded form (characters): the variable is on every channel object Asterisk
#: sends, so it is kept small.
MAX_ENCODED = 2048


class CallDataError(AsteriskCtiError, ValueError):
    """Call data that breaks the rules of :mod:`asterisk_cti.calldata` (a bad key, a value
    too long, too many items, an encoded form that does not parse)."""


def _check(data: Mapping[str, str]) -> Dict[str, str]:
    if len(data) > MAX_ITEMS:
        raise CallDataError(f"call data has {len(data)} items (at most {MAX_ITEMS})")
    checked: Dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
            raise CallDataError(
                f"call data key {key!r:.80} is not letters, digits, '_', '.', '-' "
                "(starting with a letter, at most 64)")
        if not isinstance(value, str):
            raise CallDataError(f"call data value of {key!r} must be a string, "
                                f"not {type(value).__name__}")
        if len(value) > MAX_VALUE:
            raise CallDataError(
                f"call data value of {key!r} has {len(value)} characters (at most {MAX_VALUE})")
        checked[key] = value
    return checked


def encode_call_data(data: Mapping[str, str]) -> str:
    """The variable's value for ``data`` (keys sorted).

    :raises CallDataError: ``data`` breaks a limit, or the encoded form is too long.
    """
    checked = _check(data)
    text = urlencode(sorted(checked.items()))
    if len(text) > MAX_ENCODED:
        raise CallDataError(f"encoded call data has {len(text)} characters "
                            f"(at most {MAX_ENCODED})")
    return text


def decode_call_data(text: object) -> Dict[str, str]:
    """The mapping carried by a value of the variable (``""`` is no data).

    :raises CallDataError: not a string, too long, not a URL-encoded form, or breaking a limit.
    """
    if not isinstance(text, str):
        raise CallDataError(f"call data must be a string, not {type(text).__name__}")
    if not text:
        return {}
    if len(text) > MAX_ENCODED:
        raise CallDataError(f"encoded call data has {len(text)} characters "
                            f"(at most {MAX_ENCODED})")
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True,
                          max_num_fields=MAX_ITEMS)
    except ValueError:
        # (the parser's message quotes the hostile field: not repeated into logs)
        raise CallDataError("call data is not a URL-encoded form") from None
    return _check(dict(pairs))


def merge_call_data(current: Mapping[str, str],
                    changes: Mapping[str, Optional[str]]) -> Dict[str, str]:
    """``current`` updated with ``changes``; a ``None`` value removes the key.

    :raises CallDataError: the result breaks a limit.
    """
    merged = dict(current)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    encode_call_data(merged)
    return merged
