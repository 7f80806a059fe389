"""Playbacks (``/channels/{id}/play``, ``/playbacks``) and an outside caller's DTMF, as
``res/res_stasis_playback.c`` and ``res/ari/resource_playbacks.c`` of Asterisk 22 do them."""

from __future__ import annotations

from typing import Any, Dict, Iterator, List

import pytest

from asterisk_cti.sim import AriSimulator

from ..conftest import Ari, Recorder, wait_for


@pytest.fixture
def ivr(sim: AriSimulator, recorders: Dict[str, Recorder]) -> Iterator[str]:
    """An outside caller on the IVR number, in cti-ctl (``Stasis(cti-ctl,ivr,main)``)."""
    cid = sim.trunk_call("+33123", "5000")
    rec = recorders["rec"]
    wait_for(lambda: any(e["type"] == "StasisStart" for e in rec.events), what="StasisStart")
    yield cid


def _of(rec: Recorder, *types: str) -> List[Dict[str, Any]]:
    return [e for e in rec.events if e["type"] in types and e.get("application") == "cti-ctl"]


def _wait_type(rec: Recorder, etype: str, count: int = 1) -> List[Dict[str, Any]]:
    wait_for(lambda: len(_of(rec, etype)) >= count, what=f"{count} {etype}")
    return _of(rec, etype)


def test_the_ivr_number_answers_then_enters_stasis_with_the_flow(
        recorders: Dict[str, Recorder], ivr: str) -> None:
    (start,) = _of(recorders["rec"], "StasisStart")
    assert start["args"] == ["ivr", "main"]
    assert start["channel"]["id"] == ivr and start["channel"]["state"] == "Up"
    assert start["channel"]["dialplan"]["app_name"] == "Stasis"
    assert start["channel"]["dialplan"]["app_data"] == "cti-ctl,ivr,main"


def test_play_answers_201_queued_then_started_continuing_finished(
        ari: Ari, recorders: Dict[str, Recorder], ivr: str) -> None:
    r = ari("POST", f"/channels/{ivr}/play/pb-1", media="sound:hello-world,sound:beep",
            lang="fr")
    assert r.status_code == 201
    assert r.json() == {"id": "pb-1", "media_uri": "sound:hello-world",
                        "next_media_uri": "sound:beep", "target_uri": f"channel:{ivr}",
                        "language": "fr", "state": "queued"}
    rec = recorders["rec"]
    _wait_type(rec, "PlaybackFinished")
    seq = [(e["type"], e["playback"]["media_uri"], e["playback"]["state"],
            e["playback"].get("next_media_uri"))
           for e in _of(rec, "PlaybackStarted", "PlaybackContinuing", "PlaybackFinished")]
    assert seq == [
        ("PlaybackStarted", "sound:hello-world", "playing", "sound:beep"),
        ("PlaybackContinuing", "sound:hello-world", "continuing", "sound:beep"),
        ("PlaybackStarted", "sound:beep", "playing", None),
        ("PlaybackFinished", "sound:beep", "done", None),
    ]
    finished = _of(rec, "PlaybackFinished")[0]
    assert list(finished)[:3] == ["type", "timestamp", "playback"]
    assert finished["asterisk_id"] and finished["application"] == "cti-ctl"
    # a finished playback is forgotten
    assert ari("GET", "/playbacks/pb-1").status_code == 404
    assert ari("DELETE", "/playbacks/pb-1").json() == {"message": "Playback not found"}


def test_a_sound_that_does_not_exist_starts_then_fails(
        ari: Ari, recorders: Dict[str, Recorder], ivr: str) -> None:
    r = ari("POST", f"/channels/{ivr}/play", media="sound:no-such-sound", playbackId="x1")
    assert r.status_code == 201 and r.json()["id"] == "x1"
    rec = recorders["rec"]
    (finished,) = _wait_type(rec, "PlaybackFinished")
    assert finished["playback"]["state"] == "failed"
    assert [e["playback"]["state"] for e in _of(rec, "PlaybackStarted")] == ["playing"]


def test_play_validates_like_asterisk(ari: Ari, ivr: str) -> None:
    assert ari("POST", f"/channels/{ivr}/play", media="sound:beep", skipms=-1).json() == {
        "message": "skipms cannot be negative"}
    assert ari("POST", f"/channels/{ivr}/play", media="sound:beep", offsetms=-5).json() == {
        "message": "offsetms cannot be negative"}
    r = ari("POST", f"/channels/{ivr}/play")
    assert (r.status_code, r.json()) == (500, {"message": "Failed to queue media for playback"})
    assert ari("POST", "/channels/nope/play", media="sound:beep").status_code == 404


def test_play_needs_the_channel_in_stasis(sim: AriSimulator, ari: Ari) -> None:
    sim.phone("1000").dial("1002")
    sim.phone("1002").wait_ringing()
    r = ari("POST", f"/channels/{sim.phone('1000').channel_id}/play", media="sound:beep")
    assert (r.status_code, r.json()) == (409, {"message": "Channel not in Stasis application"})


def test_stop_control_and_queueing(ari: Ari, recorders: Dict[str, Recorder],
                                   ivr: str) -> None:
    rec = recorders["rec"]
    assert ari("POST", f"/channels/{ivr}/play/long", media="sound:demo-congrats").ok
    assert ari("POST", f"/channels/{ivr}/play/next", media="sound:beep").ok
    _wait_type(rec, "PlaybackStarted")
    assert ari("GET", "/playbacks/next").json()["state"] == "queued"  # one at a time
    r = ari("POST", "/playbacks/next/control", operation="pause")
    assert (r.status_code, r.json()) == (409, {"message": "Can only pause while media is playing"})
    assert ari("POST", "/playbacks/long/control", operation="jump").json() == {
        "message": "Invalid operation jump"}
    assert ari("POST", "/playbacks/long/control", operation="pause").status_code == 204
    assert ari("GET", "/playbacks/long").json()["state"] == "paused"
    assert ari("POST", "/playbacks/long/control", operation="unpause").status_code == 204
    _wait_type(rec, "PlaybackStarted", 2)  # unpause publishes "playing" again
    assert ari("DELETE", "/playbacks/long").status_code == 204
    (stopped, *_rest) = _wait_type(rec, "PlaybackFinished")
    assert (stopped["playback"]["id"], stopped["playback"]["state"]) == ("long", "done")
    # the queued one starts once the first is over, and a queued one can be cancelled
    assert ari("POST", f"/channels/{ivr}/play/third", media="sound:beep").ok
    assert ari("DELETE", "/playbacks/third").status_code == 204
    wait_for(lambda: {e["playback"]["id"] for e in _of(rec, "PlaybackFinished")}
             == {"long", "next", "third"}, what="all three finished")
    started = [e["playback"]["id"] for e in _of(rec, "PlaybackStarted")]
    assert started.count("third") <= 1 and started[:3] == ["long", "long", "next"]


def test_the_caller_hanging_up_fails_the_playback_before_stasis_end(
        sim: AriSimulator, ari: Ari, recorders: Dict[str, Recorder], ivr: str) -> None:
    rec = recorders["rec"]
    assert ari("POST", f"/channels/{ivr}/play/p", media="sound:demo-congrats").ok
    _wait_type(rec, "PlaybackStarted")
    sim.admin_client().hangup_call(ivr)
    _wait_type(rec, "ChannelDestroyed")
    order = [e["type"] for e in _of(rec, "ChannelHangupRequest", "PlaybackFinished",
                                    "StasisEnd", "ChannelDestroyed")]
    assert order == ["ChannelHangupRequest", "PlaybackFinished", "StasisEnd",
                     "ChannelDestroyed"]
    assert _of(rec, "PlaybackFinished")[0]["playback"]["state"] == "failed"
    assert ari("GET", "/playbacks/p").status_code == 404


def test_continue_ends_the_playback_done(ari: Ari, recorders: Dict[str, Recorder],
                                         ivr: str) -> None:
    rec = recorders["rec"]
    assert ari("POST", f"/channels/{ivr}/play/p", media="tone:ring").ok  # until stopped
    _wait_type(rec, "PlaybackStarted")
    assert ari("POST", f"/channels/{ivr}/continue", context="from-internal",
               extension="2000", priority=1).status_code == 204
    (finished,) = _wait_type(rec, "PlaybackFinished")
    assert finished["playback"]["state"] == "done"


def test_an_outside_caller_keys_dtmf_into_the_app(sim: AriSimulator,
                                                  recorders: Dict[str, Recorder],
                                                  ivr: str) -> None:
    sim.admin_client().call_dtmf(ivr, "12#")
    sim.trunk_dtmf(ivr, "11")
    rec = recorders["rec"]
    events = _wait_type(rec, "ChannelDtmfReceived", 5)
    assert [e["digit"] for e in events] == ["1", "2", "#", "1", "1"]
    assert all(e["channel"]["id"] == ivr and e["duration_ms"] > 0 for e in events)
    with pytest.raises(ValueError):
        sim.trunk_dtmf(ivr, "12x")
    with pytest.raises(KeyError):
        sim.trunk_dtmf("nope", "1")
