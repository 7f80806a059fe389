"""The pure parsers of records.py: ARI timestamps, linkedid, Local channel siblings."""

from __future__ import annotations

import calendar
from typing import Dict

import pytest

from asterisk_cti.model.records import epoch_of, linkedid_of, local_sibling


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-26T03:53:31.659+0000", calendar.timegm((2026, 11, 26, 3, 53, 31)) + 0.659),
        ("2026-11-26T05:53:31.500+0200", calendar.timegm((2026, 11, 26, 3, 53, 31)) + 0.5),
        ("2026-11-26T01:23:31.000-02:30", calendar.timegm((2026, 11, 26, 3, 53, 31))),
        ("2026-11-26T03:53:31Z", calendar.timegm((2026, 11, 26, 3, 53, 31))),
    ],
)
def test_epoch_of_reads_ari_timestamps(text: str, expected: float) -> None:
    cache: Dict[str, float] = {}
    assert epoch_of(text, cache) == pytest.approx(expected)
    assert epoch_of(text, cache) == pytest.approx(expected), "the cached minute gives the same"


@pytest.mark.parametrize("text", ["", "yesterday", "2026-11-26T03:5", "2026-xx-26T03:53:31+0000"])
def test_epoch_of_malformed_is_none(text: str) -> None:
    assert epoch_of(text, {}) is None


def test_epoch_cache_is_bounded() -> None:
    cache: Dict[str, float] = {}
    for minute in range(60):
        for hour in range(6):
            epoch_of(f"2026-11-26T{hour:02d}:{minute:02d}:00.000+0000", cache)
    assert len(cache) <= 257


def test_linkedid_of() -> None:
    assert linkedid_of({"channelvars": {"CHANNEL(linkedid)": "17.1"}}) == "17.1"
    assert linkedid_of({"channelvars": {"linkedid": "17.2"}}) == "17.2"
    assert linkedid_of({"channelvars": {"CHANNEL(linkedid)": ""}}) is None
    assert linkedid_of({"channelvars": "17.1"}) is None
    assert linkedid_of({}) is None


def test_local_sibling() -> None:
    assert local_sibling("Local/1006@from-internal-00000001;1") == (
        "Local/1006@from-internal-00000001;2"
    )
    assert local_sibling("Local/1006@from-internal-00000001;2") == (
        "Local/1006@from-internal-00000001;1"
    )
    assert local_sibling("PJSIP/1000-00000001") is None
