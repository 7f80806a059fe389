"""Every ARI request in ari/resources.py: one method, one path, its parameters."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Tuple

import pytest

from asterisk_cti.ari.resources import Ari
from asterisk_cti.ari.rest import AriRest
from asterisk_cti.config import CtiConfig
from asterisk_cti.testing import FakeAri

CASES: List[Tuple[str, Callable[[Ari], Any], str, str, Dict[str, str]]] = [
    ("hangup", lambda a: a.channels.hangup("c/1", "busy"), "DELETE", "/channels/c%2F1",
     {"reason": "busy"}),
    ("answer", lambda a: a.channels.answer("c"), "POST", "/channels/c/answer", {}),
    ("ring", lambda a: a.channels.ring("c"), "POST", "/channels/c/ring", {}),
    ("ring_stop", lambda a: a.channels.ring_stop("c"), "DELETE", "/channels/c/ring", {}),
    ("hold", lambda a: a.channels.hold("c"), "POST", "/channels/c/hold", {}),
    ("unhold", lambda a: a.channels.unhold("c"), "DELETE", "/channels/c/hold", {}),
    ("moh", lambda a: a.channels.moh("c", "jazz"), "POST", "/channels/c/moh",
     {"mohClass": "jazz"}),
    ("moh_stop", lambda a: a.channels.moh_stop("c"), "DELETE", "/channels/c/moh", {}),
    ("mute", lambda a: a.channels.mute("c", "in"), "POST", "/channels/c/mute",
     {"direction": "in"}),
    ("unmute", lambda a: a.channels.unmute("c", "out"), "DELETE", "/channels/c/mute",
     {"direction": "out"}),
    ("dtmf", lambda a: a.channels.dtmf("c", "12#", 100, 50), "POST", "/channels/c/dtmf",
     {"dtmf": "12#", "duration": "100", "between": "50"}),
    ("redirect", lambda a: a.channels.redirect("c", "PJSIP/1006"), "POST",
     "/channels/c/redirect", {"endpoint": "PJSIP/1006"}),
    ("set_variable", lambda a: a.channels.set_variable("c", "DIALSTATUS", "BUSY"), "POST",
     "/channels/c/variable", {"variable": "DIALSTATUS", "value": "BUSY"}),
    ("continue", lambda a: a.channels.continue_in_dialplan("c"), "POST", "/channels/c/continue",
     {}),
    ("channel play", lambda a: a.channels.play("c", "p", "tone:ring"), "POST",
     "/channels/c/play/p", {"media": "tone:ring"}),
    ("transfer_progress", lambda a: a.channels.transfer_progress("c", "channel_answered"),
     "POST", "/channels/c/transfer_progress", {"states": "channel_answered"}),
    ("originate", lambda a: a.channels.originate({"endpoint": "PJSIP/1000", "app": "cti"}),
     "POST", "/channels", {"endpoint": "PJSIP/1000", "app": "cti"}),
    ("create bridge", lambda a: a.bridges.create("b", "cti:c"), "POST", "/bridges",
     {"type": "mixing", "bridgeId": "b", "name": "cti:c"}),
    ("destroy bridge", lambda a: a.bridges.destroy("b"), "DELETE", "/bridges/b", {}),
    ("add", lambda a: a.bridges.add("b", ["x", "y"]), "POST", "/bridges/b/addChannel",
     {"channel": "x,y"}),
    ("remove", lambda a: a.bridges.remove("b", "x"), "POST", "/bridges/b/removeChannel",
     {"channel": "x"}),
    ("bridge play", lambda a: a.bridges.play("b", "p", "tone:ring"), "POST",
     "/bridges/b/play/p", {"media": "tone:ring"}),
    ("stop playback", lambda a: a.playbacks.stop("p"), "DELETE", "/playbacks/p", {}),
    ("subscribe", lambda a: a.applications.subscribe("cti", ["endpoint:PJSIP/1000", "bridge:"]),
     "POST", "/applications/cti/subscription", {"eventSource": "endpoint:PJSIP/1000,bridge:"}),
    ("unsubscribe", lambda a: a.applications.unsubscribe("cti", ["bridge:"]), "DELETE",
     "/applications/cti/subscription", {"eventSource": "bridge:"}),
    ("peek", lambda a: a.applications.peek("cti", 1.0), "GET", "/applications/cti", {}),
    ("endpoint config", lambda a: a.asterisk.pjsip_endpoint_config("1000"), "GET",
     "/asterisk/config/dynamic/res_pjsip/endpoint/1000", {}),
]


@pytest.mark.parametrize("call, method, path, params",
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_request_has_its_path_and_parameters(call: Callable[[Ari], Any], method: str,
                                                  path: str, params: Dict[str, str]) -> None:
    fake = FakeAri()
    fake.route(method, r".*")(lambda q, m: (204, None))
    rest = AriRest(CtiConfig(url="http://asterisk.test:8088", username="asterisk",
                             password="secret", app="cti"), fake.session(), retries=0)
    call(Ari(rest))
    (req,) = fake.requests
    assert (req.method, req.url.split("/ari", 1)[1].split("?", 1)[0]) == (method, path)
    assert req.params == params


def test_originate_sends_variables_in_the_body_only_when_given() -> None:
    fake = FakeAri()
    fake.route("POST", r"/channels")(lambda q, m: (200, {"id": "c"}))
    rest = AriRest(CtiConfig(url="http://asterisk.test:8088", username="asterisk",
                             password="secret", app="cti"), fake.session(), retries=0)
    Ari(rest).channels.originate({"endpoint": "PJSIP/1000"}, {"A": "1"})
    Ari(rest).channels.originate({"endpoint": "PJSIP/1000"})
    assert [r.json for r in fake.requests] == [{"variables": {"A": "1"}}, None]


def test_event_filter_body() -> None:
    fake = FakeAri()
    rest = AriRest(CtiConfig(url="http://asterisk.test:8088", username="asterisk",
                             password="secret", app="cti"), fake.session(), retries=0)
    fake.route("PUT", r"/applications/cti/eventFilter")(lambda q, m: (200, {"name": "cti"}))
    Ari(rest).applications.set_event_filter("cti", disallowed=["ChannelVarset"])
    (req,) = fake.requests
    assert (req.method, req.path) == ("PUT", "/applications/cti/eventFilter")
    assert req.json == {"allowed": [], "disallowed": [{"type": "ChannelVarset"}]}
