"""The simulator's variable inheritance and channelvars, as Asterisk 22 does them.

``__NAME`` passes to every generation of channels created from a channel, ``_NAME`` to one,
a plain variable to none (``ast_channel_inherit_variables``); ari.conf's ``channelvars`` put
the listed names on every channel object (empty when unset); the lab's queue-with-data
extension sets ``__CTI_DATA`` and queues.
"""

from __future__ import annotations

from typing import Any, Dict, List

import pytest
import requests

from asterisk_cti.sim import AriSimulator
from asterisk_cti.sim.objects import LAB_CHANNELVARS, Channel

from .conftest import Recorder, wait_for

DATA = "account=4711&choice=billing"


def _events(rec: Recorder, etype: str, name_prefix: str = "") -> List[Dict[str, Any]]:
    return [e for e in rec.events if e["type"] == etype
            and str((e.get("channel") or e.get("peer") or {}).get("name", "")).startswith(
                name_prefix)]


def test_queue_data_extension_sets_inherited_data_then_queues() -> None:
    with AriSimulator(channelvars=True, speed=50) as sim:
        rec = Recorder(sim, "rec", subscribe_all=True)
        try:
            wait_for(lambda: "rec" in sim.pbx.apps)
            sim.phone("1000").dial(sim.pbx.config.queue_data_extension)
            sim.phone("1006").wait_ringing()
            wait_for(lambda: len(_events(rec, "Dial")) >= 4, what="agents ringing")
            types = [(e["type"], e.get("dialplan_app") or e.get("variable") or "")
                     for e in rec.events if (e.get("channel") or {}).get("name", "").startswith(
                         "PJSIP/1000")]
            i = types.index(("ChannelVarset", "__CTI_DATA"))
            assert types[i + 1:].index(("ChannelDialplan", "Queue")) >= 0
            queue = next(e for e in _events(rec, "ChannelDialplan", "PJSIP/1000")
                         if e["dialplan_app"] == "Queue")
            assert queue["channel"]["channelvars"] == {
                "CHANNEL(linkedid)": queue["channel"]["id"], "CTI_DATA": DATA}
            for agent in ("PJSIP/1002", "PJSIP/1006"):
                created = _events(rec, "ChannelCreated", agent)[0]["channel"]
                # created before it inherits, then a ChannelVarset of the inherited name (as
                # Asterisk 22 publishes it: tests/model/data/lab_queue_calldata.jsonl)
                assert created["channelvars"]["CTI_DATA"] == ""
                inherited = [e for e in _events(rec, "ChannelVarset", agent)
                             if e["variable"].lstrip("_") == "CTI_DATA"]
                assert [(e["variable"], e["value"]) for e in inherited] == [
                    ("__CTI_DATA", DATA)]
                ringing = next(e for e in _events(rec, "ChannelStateChange", agent)
                               if e["channel"]["state"] == "Ringing")
                assert ringing["channel"]["channelvars"]["CTI_DATA"] == DATA
            sim.phone("1000").hangup()
            wait_for(lambda: not sim.pbx.channels, what="all channels gone")
        finally:
            rec.close()


def _chan(name: str) -> Channel:
    return Channel(id=name, name=name, state="Up", caller_name="", caller_number="",
                   creationtime="")


@pytest.mark.parametrize(("set_as", "child", "grandchild"), [
    ("__CTI_DATA", "a=1", "a=1"),   # every generation
    ("_CTI_DATA", "a=1", None),     # one generation
    ("CTI_DATA", None, None),       # none
])
def test_inheritance_follows_the_underscores(set_as: str, child: Any, grandchild: Any) -> None:
    with AriSimulator(speed=50) as sim:
        pbx = sim.pbx
        a, b, c = _chan("a"), _chan("b"), _chan("c")
        pbx.store_variable(a, set_as, "a=1")
        pbx.inherit_variables(a, b)
        pbx.inherit_variables(b, c)
        assert a.variables["CTI_DATA"] == "a=1"
        assert b.variables.get("CTI_DATA") == child
        assert c.variables.get("CTI_DATA") == grandchild
        # set again without underscores: no longer inherited
        pbx.store_variable(a, "CTI_DATA", "b=2")
        d = _chan("d")
        pbx.inherit_variables(a, d)
        assert "CTI_DATA" not in d.variables


def test_channelvars_setting_mirrors_ari_conf() -> None:
    assert LAB_CHANNELVARS == ("CHANNEL(linkedid)", "CTI_DATA")
    with AriSimulator(channelvars=("CTI_DATA", "FOO"), speed=50) as sim:
        sim.phone("1000").dial("1002")
        sim.phone("1002").wait_ringing()
        chans = requests.get(f"{sim.url}/ari/channels", auth=(sim.username, sim.password),
                             timeout=5).json()
        assert [c["channelvars"] for c in chans] == [{"CTI_DATA": "", "FOO": ""}] * 2
        sim.phone("1000").hangup()
    with AriSimulator(speed=50) as sim:  # the default: no channelvars at all
        sim.phone("1000").dial("1002")
        sim.phone("1002").wait_ringing()
        chans = requests.get(f"{sim.url}/ari/channels", auth=(sim.username, sim.password),
                             timeout=5).json()
        assert all("channelvars" not in c for c in chans)
        sim.phone("1000").hangup()


def test_set_variable_is_the_dialplan_set_on_any_channel() -> None:
    with AriSimulator(channelvars=True, speed=50) as sim:
        rec = Recorder(sim, "rec", subscribe_all=True)
        try:
            wait_for(lambda: "rec" in sim.pbx.apps)
            sim.phone("1000").dial("1002")
            sim.phone("1002").wait_ringing()
            caller = next(c.id for c in sim.pbx.channels.values()
                          if c.name.startswith("PJSIP/1000"))
            sim.set_variable(caller, "__CTI_DATA", "a=1")
            wait_for(lambda: any(e["type"] == "ChannelVarset"
                                 and e["variable"] == "__CTI_DATA" for e in rec.events))
            ev = next(e for e in rec.events if e["type"] == "ChannelVarset"
                      and e["variable"] == "__CTI_DATA")
            assert ev["value"] == "a=1" and ev["channel"]["channelvars"]["CTI_DATA"] == "a=1"
            with pytest.raises(KeyError):
                sim.set_variable("nope", "X", "1")
            sim.phone("1000").hangup()
        finally:
            rec.close()


def test_originate_with_originator_inherits_its_variables() -> None:
    with AriSimulator(channelvars=True, speed=50) as sim:
        sim.phone("1000").dial("1002")
        sim.phone("1002").wait_ringing()
        caller = next(c for c in sim.pbx.channels.values() if c.name.startswith("PJSIP/1000"))
        sim.set_variable(caller.id, "__CTI_DATA", "a=1")
        sim.set_variable(caller.id, "_ONCE", "x")
        sim.set_variable(caller.id, "PLAIN", "y")
        auth = (sim.username, sim.password)
        made = requests.post(f"{sim.url}/ari/channels", auth=auth, timeout=5, params={
            "endpoint": "PJSIP/1006", "app": "x", "originator": caller.id}).json()
        assert made["channelvars"]["CTI_DATA"] == "a=1"
        with sim.pbx.lock:
            leg = sim.pbx.channels[made["id"]]
            assert leg.variables.get("ONCE") == "x" and "PLAIN" not in leg.variables
            assert leg.inherit["CTI_DATA"] == 2 and leg.inherit["ONCE"] == 0
        sim.phone("1000").hangup()
