"""Details of the simulator measured on the lab that no translated testsuite test covers."""

from __future__ import annotations

from typing import Iterator

import pytest
import requests

from asterisk_cti.sim import AriSimulator


@pytest.fixture
def sim() -> Iterator[AriSimulator]:
    with AriSimulator(speed=10) as s:
        yield s


def _post(sim: AriSimulator, path: str, **params: str) -> requests.Response:
    return requests.post(
        f"{sim.url}/ari/{path}", params=params, auth=(sim.username, sim.password), timeout=5
    )


def test_a_channel_id_that_starts_an_existing_one_conflicts(sim: AriSimulator) -> None:
    local = {"endpoint": "Local/s@default", "extension": "echo", "context": "default"}
    assert _post(sim, "channels", channelId="abc-long", **local).status_code == 200
    assert _post(sim, "channels", channelId="abc", **local).status_code == 409
    assert _post(sim, "channels", channelId="ABC-LONG", **local).status_code == 409
    assert _post(sim, "channels/abc-lo", **local).status_code == 409
    assert _post(sim, "channels", channelId="abd", **local).status_code == 200


def test_dynamic_config_of_a_pjsip_endpoint(sim: AriSimulator) -> None:
    auth = (sim.username, sim.password)
    base = f"{sim.url}/ari/asterisk/config/dynamic/res_pjsip"
    resp = requests.get(f"{base}/endpoint/1000", auth=auth, timeout=5)
    assert resp.status_code == 200
    attrs = {t["attribute"]: t["value"] for t in resp.json()}
    assert attrs["aors"] == "1000"
    assert attrs["context"] == "from-internal"
    assert attrs["callerid"] == '"Kai" <1000>'
    missing = requests.get(f"{base}/endpoint/nobody", auth=auth, timeout=5)
    assert (missing.status_code, missing.json()) == (
        404, {"message": "Object with id 'nobody' not found"})
    other = requests.get(f"{base}/nothing/x", auth=auth, timeout=5)
    assert (other.status_code, other.json()) == (404, {"message": "objectType 'nothing' not found"})


def test_move_of_a_channel_outside_stasis_is_409(sim: AriSimulator) -> None:
    local = {"endpoint": "Local/s@default", "extension": "echo", "context": "default"}
    assert _post(sim, "channels", channelId="dp-chan", **local).status_code == 200
    assert _post(sim, "channels/dp-chan/move", app="nope").status_code == 409
