"""The example phone bar through the call-centre server (examples/phonebar.py's
``run_remote``): the same PhoneBar class, only its client built differently, shows ringing,
connected and held calls and enables its buttons from what the server allows."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from asterisk_cti import CtiConfig
from asterisk_cti.remote import RemoteConfig
from asterisk_cti.server import CtiServer
from asterisk_cti.sim import AriSimulator

from ..server import conftest as _server
from ..server.conftest import PASSWORDS, SITE, Broker
from . import test_phonebar as _local
from .test_phonebar import enabled, load_phonebar, wait

broker = _server.broker
root = _local.root


@pytest.fixture
def server(broker: Broker) -> Iterator[CtiServer]:
    with AriSimulator(stasis_app="cti-srv") as sim:
        sim.phone("1006").auto_answer = 0.2
        with CtiServer(broker.config, CtiConfig(url=sim.url, username=sim.username,
                                                password=sim.password, app="cti-srv")) as s:
            s.sim = sim  # type: ignore[attr-defined]
            yield s


def test_the_phone_bar_runs_unchanged_on_the_remote_client(
        root: Any, broker: Broker, server: CtiServer) -> None:
    config = RemoteConfig(site=SITE, agent="1000", password=PASSWORDS["1000"],
                          broker_port=broker.port, reconnect_min=1, reconnect_max=1)
    bar = load_phonebar().run_remote(root, config, "PJSIP/1000")
    admin = server.sim.admin_client()  # type: ignore[attr-defined]
    try:
        wait(root, "connected", lambda: bar.status["text"].startswith("connected"))
        wait(root, "idle", lambda: bar.state["text"] == "IDLE")
        assert enabled(bar) == {"Dial"}

        admin.dial("1002", "7000")  # through the server's switch to 1000
        wait(root, "ringing", lambda: bar.state["text"].startswith("RINGING"))
        assert "1002" in bar.party["text"]
        admin.answer("1000")
        wait(root, "connected call", lambda: bar.state["text"].startswith("CONNECTED")
             and "Hold" in enabled(bar))
        assert enabled(bar) == {"Dial", "Hang up", "Hold", "Transfer"}

        bar.buttons["Hold"].invoke()  # a future on the remote control: returns at once
        wait(root, "held", lambda: bar.state["text"].startswith("HELD")
             and "Retrieve" in enabled(bar))
        wait(root, "hold done", lambda: bar.note["text"] == "Hold: done")
        bar.buttons["Retrieve"].invoke()
        wait(root, "retrieved", lambda: bar.state["text"].startswith("CONNECTED")
             and "Hold" in enabled(bar))

        bar.number.insert(0, "1006")
        bar.buttons["Transfer"].invoke()
        wait(root, "transferred", lambda: bar.state["text"].startswith("IDLE")
             and "transferred" in bar.state["text"])
        wait(root, "transfer done", lambda: bar.note["text"] == "Transfer: done")

        server.stop()  # the server goes: the bar says so
        wait(root, "server down", lambda: "offline" in bar.status["text"])
    finally:
        bar.cti.stop()
        root.update()
