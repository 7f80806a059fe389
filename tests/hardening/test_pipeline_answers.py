"""Class 5 of the hardening issue: answers are validated, never trusted.

A ``200`` whose body is HTML, ``{"error": ...}`` or ``5`` on the listings a resynchronisation
reads is an :class:`InvalidResponseError`: the call model is kept (no false
``connection_cleared``), the resynchronisation is retried with backoff and counted."""

from __future__ import annotations

from typing import Any, Dict

import pytest

from asterisk_cti import CtiConfig, InvalidResponseError
from asterisk_cti.ari.resources import Ari
from asterisk_cti.ari.rest import AriRest, is_bridge, is_channel
from asterisk_cti.testing import FakeAri, FakeAsterisk
from tests.hardening.recording import Rec, monitoring

BAD_BODIES = [
    "<html><body>502 Bad Gateway</body></html>",
    {"error": "Internal Server Error"},
    5,
    None,
    [1, 2],
    [{"technology": 5, "resource": [], "name": 7, "id": {}, "channels": 5, "state": 1}],
]
#: Channel objects that are not what ARI defines.
BAD_CHANNELS = [
    [{"id": ["x"], "name": "PJSIP/1000-1", "state": "Up"}],
    [{"id": "1", "name": "PJSIP/1000-1", "state": ["Up"]}],
    [{"id": "1", "name": "PJSIP/1000-1", "state": "Up", "caller": "Kai"}],
    [{"id": "1", "name": "PJSIP/1000-1"}],
]


def _rest() -> tuple[FakeAri, AriRest]:
    ari = FakeAri("http://asterisk.test:8088", "u", "p")
    cfg = CtiConfig(url="http://asterisk.test:8088", username="u", password="p")
    return ari, AriRest(cfg, ari.session(), retries=0)


@pytest.mark.parametrize("body", BAD_BODIES, ids=[f"body{i}" for i in range(len(BAD_BODIES))])
@pytest.mark.parametrize("what", ["channels", "bridges", "endpoints", "applications"])
def test_listings_refuse_what_ari_does_not_define(what: str, body: Any) -> None:
    ari, rest = _rest()
    ari.respond("GET", "/" + what, 200, body)
    with pytest.raises(InvalidResponseError) as info:
        getattr(Ari(rest), what).list()
    assert info.value.path.startswith("/" + what)
    assert info.value.reason and "invalid answer" in str(info.value)


@pytest.mark.parametrize("body", BAD_CHANNELS, ids=[f"chan{i}" for i in range(len(BAD_CHANNELS))])
def test_channel_listing_refuses_wrong_typed_channels(body: Any) -> None:
    ari, rest = _rest()
    ari.respond("GET", "/channels", 200, body)
    with pytest.raises(InvalidResponseError):
        Ari(rest).channels.list()


def test_listings_accept_what_ari_defines() -> None:
    ari, rest = _rest()
    ari.add_endpoint("PJSIP/1000")
    ari.add_channel({"id": "1.1", "name": "PJSIP/1000-1", "state": "Up",
                     "caller": {"name": "", "number": "1000"}})
    assert Ari(rest).channels.list()[0]["id"] == "1.1"
    assert Ari(rest).channels.get("1.1")["state"] == "Up"
    assert Ari(rest).endpoints.list()[0]["resource"] == "1000"
    assert Ari(rest).bridges.list() == []
    ari.respond("GET", r"/bridges", 200, [{"id": "b", "channels": [5]}])
    with pytest.raises(InvalidResponseError):
        Ari(rest).bridges.list()


def test_only_objects_shaped_like_a_rest_answer_are_channels_or_bridges() -> None:
    """What the processor lets correct a late resynchronisation answer."""
    good = {"id": "1.1", "name": "PJSIP/1000-1", "state": "Up",
            "caller": {"name": "", "number": "1000"}}
    assert is_channel(good)
    assert not is_bridge(good)
    for body in BAD_CHANNELS:
        assert not is_channel(body[0]), body
    assert not is_channel([good]) and not is_channel("1.1") and not is_channel(None)
    assert is_bridge({"id": "b", "channels": ["1.1"], "technology": "simple_bridge"})
    assert not is_bridge({"id": "b", "channels": [5]})
    assert not is_bridge({"id": ["b"], "channels": []})
    assert not is_bridge({"id": "b", "channels": 5})
    assert not is_bridge({"id": "b"}) and not is_bridge(None)


def test_single_channel_refuses_an_error_object() -> None:
    ari, rest = _rest()
    ari.respond("GET", r"/channels/1\.1", 200, {"error": "nope"})
    with pytest.raises(InvalidResponseError):
        Ari(rest).channels.get("1.1")


def chan(cid: str, state: str) -> Dict[str, Any]:
    return {"id": cid, "name": "PJSIP/1000-00000001", "state": state,
            "caller": {"name": "Kai", "number": "1000"},
            "connected": {"name": "", "number": "1002"},
            "dialplan": {"context": "from-internal", "exten": "1002", "priority": 1},
            "creationtime": "2026-11-26T03:53:31.659+0000", "language": "en"}


@pytest.mark.parametrize("body", ["<html>oops</html>", {"error": "x"}, 5],
                         ids=["html", "error_object", "number"])
def test_a_bad_answer_during_resync_keeps_every_call_and_is_retried(body: Any) -> None:
    fake = FakeAsterisk(endpoints=["PJSIP/1000"])
    rec = Rec()
    client = monitoring(fake, ["PJSIP/1000"], rec)
    up = chan("1.1", "Up")
    fake.ari.add_channel(up)
    with client.start():
        assert client.line("PJSIP/1000").connections  # the call, from the first resync
        first = client.stats()["processor"]["resyncs"]
        fake.ari.respond("GET", r"/channels", 200, body, times=1)
        fake.ws.drop()  # reconnect: a resynchronisation that gets the bad answer
        assert fake.ws.wait_connections(2)
        assert rec.wait(lambda: client.stats()["processor"]["resync_failures"] >= 1)
        # the model was kept: no connection cleared, the call still on the line
        assert not [e for e in rec.calls if e.kind.value == "connection_cleared"]
        assert client.line("PJSIP/1000").connections
        # retried with backoff (1 s after the first failure), and then it succeeds
        assert rec.wait(lambda: client.stats()["processor"]["resyncs"] >= first + 1, 5)
        assert client.line("PJSIP/1000").connections
        assert not [e for e in rec.calls if e.kind.value == "connection_cleared"]
