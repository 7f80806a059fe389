"""Several Asterisk servers in one CtiServer: one client each, requests routed to the
server of the line, rights unchanged. Two embedded simulators, a real mosquitto."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterator

import pytest

from asterisk_cti import ConfigurationError
from asterisk_cti.server import AgentRights, AsteriskServer, CtiServer, ServerConfig
from asterisk_cti.sim import AriSimulator

from .conftest import SERVER_PASSWORD, SITE, Agent, Broker, _broker, cti_config

PASSWORDS = {"1000": "pw-1000-secret", "2000": "pw-2000-secret", "sup": "pw-sup-secret"}


def _config(port: int) -> ServerConfig:
    return ServerConfig(
        site=SITE, broker_port=port, broker_password=SERVER_PASSWORD,
        agents={"1000": AgentRights(("PJSIP/1000",)), "2000": AgentRights(("PJSIP/2000",)),
                "sup": AgentRights(("PJSIP/1000", "PJSIP/2000"), supervisor=True)},
        asterisk={"pbx1": AsteriskServer(lines=("PJSIP/1000",)),
                  "pbx2": AsteriskServer(lines=("PJSIP/2000",))})


@pytest.fixture
def two_broker(tmp_path: Path) -> Iterator[Broker]:
    yield from _broker(tmp_path, "dynsec", None, _config, PASSWORDS)


@pytest.fixture
def sims() -> Iterator[Dict[str, AriSimulator]]:
    with AriSimulator(speed=20) as one, AriSimulator(
            speed=20, endpoints=(("2000", "Ana"), ("2002", "Bo"))) as two:
        for sim, exts in ((one, ("1000", "1002")), (two, ("2000", "2002"))):
            for ext in exts:
                sim.phone(ext).auto_answer = True
        yield {"pbx1": one, "pbx2": two}



def _channels(sim: AriSimulator) -> int:
    with sim.pbx.lock:
        return len(sim.pbx.channels)


def test_requests_go_to_the_asterisk_server_of_the_line(
        two_broker: Broker, sims: Dict[str, AriSimulator]) -> None:
    made = []

    def agent(user: str) -> Agent:
        made.append(Agent(two_broker.port, user, PASSWORDS[user]))
        return made[-1]

    with CtiServer(two_broker.config,
                   {n: cti_config(s, "cti-m") for n, s in sims.items()}) as server:
        try:
            assert sorted(server.clients) == ["pbx1", "pbx2"]
            assert server.clients["pbx1"].monitored == ("PJSIP/1000",)
            assert server.clients["pbx2"].monitored == ("PJSIP/2000",)
            a1000, a2000, sup = agent("1000"), agent("2000"), agent("sup")
            assert a2000.subscribe(f"cti/{SITE}/line/2000/events") == [1]
            assert a2000.subscribe(f"cti/{SITE}/line/1000/events") == [0x87]
            call = a2000.request({"version": 1, "op": "originate", "line": "PJSIP/2000",
                                  "destination": "2002"})
            assert call["ok"], call
            assert _channels(sims["pbx2"]) == 2 and _channels(sims["pbx1"]) == 0
            _, est, _, _ = a2000.wait(lambda t, p: p.get("kind") == "established")
            assert est["line"] == "PJSIP/2000"
            other = a1000.request({"version": 1, "op": "originate", "line": "PJSIP/1000",
                                   "destination": "1002"})
            assert other["ok"], other
            assert _channels(sims["pbx1"]) == 2
            # rights are per agent whatever the server: 2000 may not touch 1000's call
            refused = a2000.request({"version": 1, "op": "hold",
                                     "connection_id": other["result"]["connection_id"]})
            assert refused["error"]["type"] == "AccessDeniedError"
            # a supervisor's request is routed to the server holding the connection
            for answer in (call, other):
                done = sup.request({"version": 1, "op": "hangup",
                                    "connection_id": answer["result"]["connection_id"]})
                assert done["ok"], done
            a2000.wait(lambda t, p: p.get("kind") == "connection_cleared")
        finally:
            for a in made:
                a.close()


def test_a_line_without_connection_settings_is_refused(sims: Dict[str, AriSimulator]) -> None:
    with pytest.raises(ConfigurationError, match="pbx2"):
        CtiServer(_config(1883), {"pbx1": cti_config(sims["pbx1"], "cti-m")})


@pytest.mark.parametrize("changes", [
    # the same topic level on two servers (or two technologies): refused
    {"asterisk": {"a": AsteriskServer(lines=("PJSIP/1000",)),
                  "b": AsteriskServer(lines=("SIP/1000",))}},
    {"agents": {"x": AgentRights(("PJSIP/1000",)), "y": AgentRights(("IAX2/1000",))}},
    # one line on two servers
    {"asterisk": {"a": AsteriskServer(lines=("PJSIP/1000",)),
                  "b": AsteriskServer(lines=("PJSIP/1000",))}},
    # several servers: every agent line must be on one of them
    {"asterisk": {"a": AsteriskServer(lines=("PJSIP/1000",)),
                  "b": AsteriskServer(lines=("PJSIP/2001",))}},
    {"asterisk": {"bad/name": AsteriskServer(lines=("PJSIP/1000",))}},
])
def test_inconsistent_server_lines_are_refused(changes: Dict[str, object]) -> None:
    base: Dict[str, object] = {
        "site": "s", "broker_password": "pw",
        "agents": {"1000": AgentRights(("PJSIP/1000",)), "2000": AgentRights(("PJSIP/2000",))}}
    with pytest.raises(ConfigurationError):
        ServerConfig(**{**base, **changes})  # type: ignore[arg-type]


def test_the_json_form_names_asterisk_servers() -> None:
    c = ServerConfig.from_dict({
        "site": "s", "agents": {"1000": {"lines": ["PJSIP/1000"]},
                                "2000": {"lines": ["PJSIP/2000"]}},
        "asterisk": {"pbx1": {"url": "https://pbx1:8089", "username": "cti", "app": "cti",
                              "lines": ["PJSIP/1000"]},
                     "pbx2": {"url": "https://pbx2:8089", "password_env": "PBX2_PW",
                              "lines": ["PJSIP/2000"], "verify_tls": False}}},
        broker_password="pw")
    assert c.server_of("PJSIP/2000") == "pbx2" and c.server_of("PJSIP/1000") == "pbx1"
    assert c.asterisk["pbx2"].password_env == "PBX2_PW" and not c.asterisk["pbx2"].verify_tls
    for bad in ({"pbx1": {"lines": "PJSIP/1000"}}, {"pbx1": {"url": 5, "lines": []}},
                {"pbx1": {"lines": [], "password_env": "NOT VALID"}}):
        with pytest.raises(ConfigurationError):
            ServerConfig.from_dict({"site": "s", "asterisk": bad}, broker_password="pw")
