"""Caller-controlled strings are data: the shared helpers that make them safe to show and log.

A caller's name and number, channel names, dialplan fields and bridge names come from
Asterisk and, through it, from whoever places the call. They may carry terminal escape
sequences, control characters or bidirectional overrides. :func:`printable` makes such text
safe to write to a terminal or a log line; :func:`redact_url` and :func:`redact_text` keep
credentials and tokens of a webhook URL out of logs, reprs and error messages.

All functions here are pure: any thread may call them.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Iterable, List

__all__ = ["SENSITIVE_QUERY_KEYS", "printable", "printable_lines", "redact_text", "redact_url"]

#: Query parameters whose values are treated as secrets (compared case-insensitively; a key
#: containing one of these words, such as ``x-api-key`` or ``client_secret``, is one too).
SENSITIVE_QUERY_KEYS = ("token", "key", "secret", "password", "passwd", "pwd", "sig",
                        "signature", "access_token", "api_key", "apikey", "auth",
                        "authorization", "credential", "session")

# C0 controls (tab and newline included: one field must stay on one line), DEL, C1 controls,
# the bidirectional embeddings/overrides/isolates and the line/paragraph separators.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")

_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r", "\x1b": "\\x1b"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    short = _SHORT.get(char)
    if short is not None:
        return short
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every control character shown escaped, safe to write to a terminal.

    C0 controls (``\\x00``-``\\x1f``, so ESC and thereby every escape sequence, tab, CR and
    newline), DEL, C1 controls (``\\x80``-``\\x9f``, among them the 8-bit CSI ``\\x9b``), the
    bidirectional marks, embeddings, overrides and isolates (U+200E, U+200F, U+202A-U+202E,
    U+2066-U+2069) and U+2028/U+2029 become visible escapes: ``\\x1b``, ``\\n``, ``\\x9b``,
    ``\\u202e``. Everything else, letters of any script and emoji included, is kept. The
    result never contains one of those characters, and ``printable(printable(t)) ==
    printable(t)``. It is a display form, not a reversible encoding: where exact values
    matter, use the JSON output (``json.dumps`` escapes control characters itself).
    Pure; any thread.
    """
    return _UNSAFE.sub(_escape, text)


def printable_lines(text: str) -> str:
    """:func:`printable` for each line of a multi-line text (a traceback), keeping the line
    breaks. Pure; any thread."""
    return "\n".join(printable(line) for line in text.split("\n"))


def _sensitive(key: str) -> bool:
    low = key.lower()
    return any(word in low for word in SENSITIVE_QUERY_KEYS)


def redact_url(url: str) -> str:
    """``url`` with its credentials and tokens replaced by ``***``: the password of
    ``user:pass@`` (the user name too) and the values of query parameters and fragment
    parameters that look like secrets (:data:`SENSITIVE_QUERY_KEYS`). The scheme, host,
    port and path are kept so the log still says where. Pure; any thread."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparsable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***:***@" + (f"[{host}]" if ":" in host else host)
        if port is not None:
            netloc += f":{port}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path,
                                    _redact_query(parts.query), _redact_query(parts.fragment)))


def _redact_query(query: str) -> str:
    if not query:
        return query
    out: List[str] = []
    for item in query.split("&"):
        key, sep, _value = item.partition("=")
        if sep and _sensitive(urllib.parse.unquote_plus(key)):
            out.append(f"{key}=***")
        else:
            out.append(item)
    return "&".join(out)


def _secrets(url: str) -> List[str]:
    found: List[str] = []
    try:
        parts = urllib.parse.urlsplit(url)
        found += [p for p in (parts.password, parts.username) if p]
    except ValueError:
        return [url]
    for query in (parts.query, parts.fragment):
        for item in query.split("&"):
            key, sep, value = item.partition("=")
            if sep and value and _sensitive(urllib.parse.unquote_plus(key)):
                found.append(value)
    variants: List[str] = []
    for secret in found:
        for form in (secret, urllib.parse.unquote(secret), urllib.parse.unquote_plus(secret),
                     urllib.parse.quote(urllib.parse.unquote(secret), safe="")):
            if form and form not in variants:
                variants.append(form)
    return sorted(variants, key=len, reverse=True)


def redact_text(text: str, urls: Iterable[str]) -> str:
    """``text`` (an exception message, a log line) with each URL of ``urls`` replaced by its
    :func:`redact_url` form, and any remaining occurrence of one of their secrets (raw or
    percent-encoded, as ``requests`` quotes them in ``...with url: /path?token=...``)
    replaced by ``***``. Pure; any thread."""
    for url in urls:
        text = text.replace(url, redact_url(url))
        for secret in _secrets(url):
            text = text.replace(secret, "***")
    return text
