"""The call-control operations the IVR is built on: play, stop_playback, continue_in_dialplan."""

from __future__ import annotations

import pytest

from asterisk_cti import CtiClient
from asterisk_cti.errors import NotInStasisError
from asterisk_cti.sim import AriSimulator

from .conftest import Recorder, wait_until


def _in_app(sim: AriSimulator, cti: CtiClient) -> str:
    cid = sim.trunk_call("+331", "5000")
    wait_until(lambda: cti.control.in_stasis(cid), what="the call in the application")
    return cid


def test_play_and_stop_playback(sim: AriSimulator, cti: CtiClient, recorder: Recorder) -> None:
    cid = _in_app(sim, cti)
    pid = cti.control.play(cid, ["sound:hello-world", "sound:demo-congrats"], lang="en",
                           playback_id="ivr-p1")
    assert pid == "ivr-p1"
    wait_until(lambda: recorder.media() == ["sound:hello-world", "sound:demo-congrats"],
               what="both media started")
    assert cti.control.stop_playback(pid) is True
    wait_until(lambda: len(recorder.finished()) == 1, what="PlaybackFinished")
    assert recorder.finished()[0]["state"] == "done"
    assert cti.control.stop_playback(pid) is False  # finished: Asterisk forgot it
    generated = cti.control.play(cid, "sound:beep")
    assert generated.startswith("cti-p")
    with pytest.raises(ValueError):
        cti.control.play(cid, "sound:a,sound:b")
    with pytest.raises(ValueError):
        cti.control.play(cid, [])


def test_continue_in_dialplan_sets_variables_then_continues(sim: AriSimulator,
                                                            cti: CtiClient) -> None:
    cid = _in_app(sim, cti)
    with pytest.raises(ValueError):
        cti.control.continue_in_dialplan(cid, priority=0)
    cti.control.continue_in_dialplan(cid, context="from-internal", extension="2000",
                                     priority=1, variables={"IVR_STATUS": "DONE"})
    wait_until(lambda: not cti.control.in_stasis(cid), what="StasisEnd")
    with sim.pbx.lock:
        ch = sim.pbx.channels[cid]
        assert ch.variables["IVR_STATUS"] == "DONE" and ch.queued
    with pytest.raises(NotInStasisError):  # refused before sending: the SDK saw it leave
        cti.control.play(cid, "sound:beep")
    sim.admin_client().hangup_call(cid)
