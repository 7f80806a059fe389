"""``/endpoints`` and ``/asterisk`` routes."""

from __future__ import annotations

from ..conftest import Ari


def test_endpoints_are_listed(ari: Ari) -> None:
    eps = ari("GET", "/endpoints").json()
    assert [e["resource"] for e in eps] == ["1000", "1002", "1006"]
    assert ari("GET", "/endpoints/PJSIP/1002").json()["state"] == "online"
    assert ari("GET", "/endpoints/PJSIP/9999").status_code == 404
    assert ari("GET", "/endpoints/SIP").status_code == 404
