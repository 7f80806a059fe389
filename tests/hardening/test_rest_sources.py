"""Monitor sources are data, never extra subscriptions (issue 10, class 9): ARI's
``eventSource`` is a comma-separated list, so a comma in a source would subscribe more."""

from __future__ import annotations

import pytest

from asterisk_cti.ari.subscriptions import Subscriptions, normalize_source
from asterisk_cti.errors import ConfigurationError


@pytest.mark.parametrize("source", [
    "PJSIP/1000,bridge:", "PJSIP/10,00", "PJSIP/1000,endpoint:PJSIP", "PJSIP/10 00",
    "PJSIP/10\t00", "PJSIP/1000\x1b[2J", "PJSIP/a/b", "PJ SIP/1000",
    "PJSIP,SIP", "", "   ", "PJSIP/", "/1000", "bridge:", "channel:x",
])
def test_hostile_sources_are_refused(source: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        normalize_source(source)
    assert info.value.field == "monitor"


@pytest.mark.parametrize(("source", "expected"), [
    ("PJSIP/1000", "PJSIP/1000"), ("endpoint:PJSIP/1000", "PJSIP/1000"), ("PJSIP", "PJSIP"),
    ("PJSIP/kai.mueller@example", "PJSIP/kai.mueller@example"),
    ("PJSIP/+4930123", "PJSIP/+4930123"), (" PJSIP/1000\n", "PJSIP/1000"),  # trimmed
    ("1000", "1000"),  # a technology as far as the syntax goes: Asterisk answers 422
])
def test_plain_sources_are_kept(source: str, expected: str) -> None:
    assert normalize_source(source) == expected


def test_a_refused_source_is_not_added() -> None:
    subs = Subscriptions("cti")
    with pytest.raises(ConfigurationError):
        subs.add(["PJSIP/1000", "PJSIP/1002,bridge:"])
    assert subs.wanted == ()
