"""ServerConfig, topics, payloads and the generated rights (pure), and the core without paho."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys

import pytest

from asterisk_cti import ConfigurationError
from asterisk_cti.server import AgentRights, ServerConfig, acl_text
from asterisk_cti.server.broker import dynsec_document, passwd_line
from tests.conftest import REPO


def test_from_dict_reads_site_broker_and_agents() -> None:
    c = ServerConfig.from_dict(
        {"site": "paris", "broker": "mqtt://127.0.0.1:1884",
         "agents": {"1000": {"lines": ["PJSIP/1000"]},
                    "sup": {"lines": ["PJSIP/1000", "PJSIP/1002"], "supervisor": True}}},
        broker_password="s3cret")
    assert (c.site, c.broker_host, c.broker_port) == ("paris", "127.0.0.1", 1884)
    assert c.agents["sup"] == AgentRights(("PJSIP/1000", "PJSIP/1002"), supervisor=True)
    assert c.lines == ("PJSIP/1000", "PJSIP/1002")
    assert "s3cret" not in repr(c)


@pytest.mark.parametrize("data", [
    {"site": "pa/ris"}, {"site": "#"}, {},
    {"site": "p", "broker": "http://h:1"}, {"site": "p", "broker": "mqtt://u:pw@h:1"},
    {"site": "p", "broker": "mqtt://h:99999"},
    {"site": "p", "agents": {"a+b": {"lines": ["PJSIP/1"]}}},
    {"site": "p", "agents": {"a": {"lines": ["PJSIP/1/#"]}}},
    {"site": "p", "agents": {"a": {"lines": "PJSIP/1"}}},
    {"site": "p", "broker": "mqtts://h:8883/path"}, {"site": "p", "keepalive": "10"},
    {"site": "p", "keepalive": 1}, {"site": "p", "takeover_delay": True},
    {"site": "p", "settle": -1}, {"site": "p", "fence_timeout": 0},
    {"site": "p", "broker_keyfile": "k.pem"}, {"site": "p", "name": "a/b"},
    {"site": "p", "asterisk": ["pbx1"]},
])
def test_malformed_configs_are_refused(data: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigurationError):
        ServerConfig.from_dict(data, broker_password="x")


def _config() -> ServerConfig:
    return ServerConfig(site="s", broker_password="pw", agents={
        "1000": AgentRights(("PJSIP/1000",)), "1002": AgentRights(("PJSIP/1002",))})


def test_acl_gives_each_agent_its_lines_and_its_request_topic_only() -> None:
    text = acl_text(_config())
    block = text.split("user 1000\n")[1].split("\n\n")[0].splitlines()
    assert block == ["topic read cti/s/line/1000/#", "topic read cti/s/server/status",
                     "topic read cti/s/agent/1000/response",
                     "topic write cti/s/agent/1000/request"]
    assert "user cti-server\ntopic readwrite cti/s/#" in text


def test_dynsec_document_hashes_passwords_and_scopes_roles() -> None:
    doc = dynsec_document(_config(), {"cti-server": "pw", "1000": "a", "1002": "b"})
    assert doc["defaultACLAccess"]["subscribe"] is False
    client = next(c for c in doc["clients"] if c["username"] == "1000")
    salt = base64.b64decode(client["salt"])
    digest = hashlib.pbkdf2_hmac("sha512", b"a", salt, client["iterations"])
    assert base64.b64decode(client["password"]) == digest
    role = next(r for r in doc["roles"] if r["rolename"] == "role-1000")
    topics = {(a["acltype"], a["topic"]) for a in role["acls"]}
    assert ("publishClientSend", "cti/s/agent/1000/request") in topics
    assert ("subscribePattern", "cti/s/line/1000/#") in topics
    assert not [t for t in topics if "1002" in t[1]]


def test_passwd_line_is_mosquittos_pbkdf2_format() -> None:
    user, rest = passwd_line("1000", "pw").split(":", 1)
    _, kind, iterations, salt, digest = rest.split("$")
    assert (user, kind, iterations) == ("1000", "7", "101")
    assert base64.b64decode(digest) == hashlib.pbkdf2_hmac(
        "sha512", b"pw", base64.b64decode(salt), 101)


def test_the_core_imports_and_the_cli_parses_without_paho() -> None:
    code = ("import sys; sys.modules['paho'] = None; import asterisk_cti, asterisk_cti.cli; "
            "asterisk_cti.cli.build_parser(); assert 'asterisk_cti.server' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], cwd=str(REPO), capture_output=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()
