"""TLS to the broker: verified against the configured CA, an untrusted broker refused with a
typed error, and no password in logs, reprs or exceptions. Real mosquitto with a throwaway
CA made by openssl (tests/mqtt_fixtures.py)."""

from __future__ import annotations

import dataclasses
import logging
import time

import pytest

from asterisk_cti import ConfigurationError, ConnectError
from asterisk_cti.server import BrokerTlsError, CtiServer, ServerConfig
from asterisk_cti.sim import AriSimulator

from .conftest import PASSWORDS, SERVER_PASSWORD, SITE, Agent, Broker, cti_config


def test_server_and_agent_connect_with_tls_verified(
        tls_broker: Broker, sim: AriSimulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    config = tls_broker.config
    assert config.broker_tls and config.broker_ca_file
    with CtiServer(config, cti_config(sim, "cti-tls")) as server:
        assert server.role == "active"
        assert repr(server).count("mqtts://127.0.0.1:") == 1
        agent = Agent(tls_broker.port, "1000", PASSWORDS["1000"], tls_broker.tls)
        try:
            assert not agent.connect_code.is_failure
            assert agent.subscribe(f"cti/{SITE}/server/status") == [1]
            _, status, _, _ = agent.wait(lambda t, p: True)
            assert status["status"] == "online" and status["instance"] == server.instance
            assert agent.request({"version": 1, "op": "explode"})["error"]["type"] == \
                "BadRequestError"
        finally:
            agent.close()
    assert SERVER_PASSWORD not in caplog.text and sim.password not in caplog.text


def test_an_untrusted_broker_certificate_is_refused_typed(
        tls_broker: Broker, sim: AriSimulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    assert tls_broker.tls is not None
    config = dataclasses.replace(tls_broker.config,
                                 broker_ca_file=str(tls_broker.tls.rogue_ca_cert))
    server = CtiServer(config, cti_config(sim, "cti-tls"))
    started = time.monotonic()
    with pytest.raises(BrokerTlsError) as info:
        server.start()
    assert time.monotonic() - started < 5
    assert isinstance(info.value, ConnectError)
    assert "certificate" in str(info.value).lower()
    assert server.role == "stopped" and not server.clients  # never touched Asterisk
    for text in (str(info.value), repr(info.value), repr(server), repr(config),
                 caplog.text):
        assert SERVER_PASSWORD not in text


def test_plain_mqtt_to_a_tls_listener_fails_typed(tls_broker: Broker,
                                                  sim: AriSimulator) -> None:
    config = dataclasses.replace(tls_broker.config, broker_tls=False, broker_ca_file=None,
                                 connect_timeout=3)
    with pytest.raises(ConnectError) as info:
        CtiServer(config, cti_config(sim, "cti-tls")).start()
    assert SERVER_PASSWORD not in str(info.value)


def test_mqtts_urls_and_tls_settings_are_validated(tmp_path: object) -> None:
    c = ServerConfig.from_dict({"site": "s", "broker": "mqtts://broker.example",
                                "broker_ca_file": "/etc/ca.pem"}, broker_password="pw")
    assert (c.broker_tls, c.broker_port, c.broker_ca_file) == (True, 8883, "/etc/ca.pem")
    with pytest.raises(ConfigurationError):  # a CA file for a plain connection: a mistake
        ServerConfig.from_dict({"site": "s", "broker": "mqtt://h", "broker_ca_file": "x"},
                               broker_password="pw")
    with pytest.raises(ConfigurationError):
        ServerConfig(site="s", broker_tls=True, broker_keyfile="k.pem")


def test_a_client_certificate_when_the_broker_requires_one(
        mtls_broker: Broker, sim: AriSimulator) -> None:
    tls = mtls_broker.tls
    assert tls is not None
    with pytest.raises(ConnectError):  # no certificate: the handshake fails
        CtiServer(dataclasses.replace(mtls_broker.config, connect_timeout=3),
                  cti_config(sim, "cti-tls")).start()
    config = dataclasses.replace(mtls_broker.config, broker_certfile=str(tls.client_cert),
                                 broker_keyfile=str(tls.client_key))
    with CtiServer(config, cti_config(sim, "cti-tls")) as server:
        assert server.role == "active"
