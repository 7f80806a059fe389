"""The wire: ARI websocket frames and the names inside them, before any typed view.

:func:`decode_frame` turns one text frame into JSON; :func:`endpoint_of_channel_name` and
:func:`channel_ids_of` read the channel ids and endpoint names routing needs straight from the
decoded dict; :func:`parse_timestamp` reads Asterisk's time format. Pure functions: any thread
(the processor thread on the hot path). The cheap ``"type":"`` sniffing of undecoded frames
lives with the reader that needs it (:mod:`asterisk_cti.pipeline.transport`).

With the optional ``speed`` extra (``pip install asterisk-cti[speed]``, which brings orjson)
:func:`decode_frame` parses with ``orjson.loads`` when it can be imported; without it the
standard library's C scanner does the work. Both accept and reject the same frames.
"""

from __future__ import annotations

import importlib
import json
from datetime import datetime
from typing import Any, Callable, List, Mapping, Optional, Protocol, Tuple, Union, cast


class _HasRaw(Protocol):
    """Anything carrying a decoded ARI dict (every :class:`~asterisk_cti.events.Event`)."""

    @property
    def raw(self) -> Mapping[str, Any]: ...


# JSONDecoder sets scan_once (the C scanner) in __init__; typeshed does not declare it.
_scan_once: Callable[[str, int], Tuple[Any, int]] = cast(Any, json.JSONDecoder()).scan_once


def _load_accelerator() -> Optional[Callable[[Union[bytes, str]], Any]]:
    """``orjson.loads`` when orjson (the ``speed`` extra) can be imported, else None."""
    try:
        module = importlib.import_module("orjson")
    except ImportError:
        return None
    loads = getattr(module, "loads", None)
    return cast(Callable[[Union[bytes, str]], Any], loads) if callable(loads) else None


#: The accelerated decoder, or None (tests swap it to cover both paths).
_fast_loads = _load_accelerator()


def decode_frame(frame: Union[bytes, str]) -> Any:
    """Decode one websocket text frame as JSON, a quarter faster than ``json.loads`` (several
    times faster with the ``speed`` extra's orjson).

    It skips ``json.loads``' encoding detection and wrapper layers (frames are UTF-8 by
    RFC 6455) and calls the C scanner directly; anything unusual (leading white space, an
    empty frame) goes through ``json.loads`` for its exact error. With orjson, a frame it
    refuses (it is stricter: lone surrogates, NaN, integers past 64 bits) is decoded again
    the standard way, so what is accepted and what is rejected does not depend on the
    extra. One value differs: orjson reads an integer beyond 64 bits as a float (no ARI
    field carries one; typed accessors treat it as a wrong type). Processor thread.

    :raises ValueError: when the frame is not one JSON value in UTF-8.
    """
    fast = _fast_loads
    if fast is not None:
        try:
            return fast(frame)
        except ValueError:  # orjson.JSONDecodeError: the standard path decides
            pass
    return _decode_std(frame)


def _decode_std(frame: Union[bytes, str]) -> Any:
    text = frame.decode("utf-8") if isinstance(frame, bytes) else frame
    try:
        value, end = _scan_once(text, 0)
    except StopIteration:
        return json.loads(text)
    if end != len(text) and text[end:].strip():
        raise ValueError(f"extra data after the JSON value at character {end}")
    return value


def parse_timestamp(value: str) -> Optional[datetime]:
    """Parse an ARI timestamp such as ``2026-11-26T03:53:31.659+0000``.

    :returns: an aware :class:`~datetime.datetime`, or ``None`` if the text is not one.
    """
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")
    except (TypeError, ValueError):
        try:
            return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")
        except (TypeError, ValueError):
            return None


def endpoint_of_channel_name(name: str) -> str:
    """Return the endpoint part of a channel name.

    ``PJSIP/1000-0000001c`` gives ``PJSIP/1000``; ``Local/1006@from-internal-00000000;1`` gives
    ``Local/1006@from-internal``. A name without the ``-suffix`` is returned unchanged.
    """
    cut = name.rfind("-")
    if cut <= 0 or "/" not in name[:cut]:
        return name
    return name[:cut]


def channel_ids_of(event: _HasRaw) -> List[str]:
    """Every channel id an event refers to (its channel, Dial's caller and peer, transfer legs,
    the channel a playback plays to).

    :param event: any event.
    :returns: the ids, without duplicates, in a stable order.
    """
    ids: List[str] = []
    for key in ("channel", "caller", "peer", "transferee", "transfer_target",
                "transferer_first_leg", "transferer_second_leg", "replace_channel"):
        value = event.raw.get(key)
        if isinstance(value, dict):
            cid = value.get("id")
            if isinstance(cid, str) and cid not in ids:
                ids.append(cid)
    playback = event.raw.get("playback")  # Playback*: its target, "channel:<id>"
    if isinstance(playback, dict):
        target = playback.get("target_uri")
        if (isinstance(target, str) and target.startswith("channel:") and len(target) > 8
                and target[8:] not in ids):
            ids.append(target[8:])
    return ids
