"""CtiConfig validation and the typed event layer."""

from __future__ import annotations

import json
import logging
import pickle
import sys

import pytest

from asterisk_cti import ConfigurationError, CtiConfig, EventParseError, Party
from asterisk_cti.events import (
    CallerID,
    ChannelCreated,
    ChannelDestroyed,
    Dial,
    Event,
    channel_ids_of,
    decode_frame,
    endpoint_of_channel_name,
    parse_event,
    wire,
)
from asterisk_cti.events.catalogue import EVENT_CLASSES
from tests.conftest import traces_dir


def test_config_derives_ari_and_websocket_urls() -> None:
    cfg = CtiConfig(url="https://pbx.example:8089/", password="pw")
    assert cfg.ari_url == "https://pbx.example:8089/ari"
    assert cfg.events_url == "wss://pbx.example:8089/ari/events?app=asterisk-cti&subscribeAll=false"
    assert CtiConfig(url="http://h:8088/ari").ari_url == "http://h:8088/ari"


def test_app_name_is_url_encoded_in_the_events_url() -> None:
    cfg = CtiConfig(app="desk-1000&x=?")
    assert "app=desk-1000%26x%3D%3F&" in cfg.events_url


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("url", "ftp://h"),
        ("url", "http://user:pw@h:8088"),
        ("url", "http://h:99999"),
        ("username", ""),
        ("app", " "),
        ("event_types", "ChannelCreated"),
        ("ring_capacity", 1),
        ("workers", 0),
        ("reconnect_min", 0),
        ("reconnect_max", 0.1),
        ("reconnect_jitter", 1.5),
        ("request_timeout", -1),
        ("verify_tls", "/no/such/ca.pem"),
    ],
)
def test_bad_values_raise_configuration_error_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        CtiConfig(**{field: value})  # type: ignore[arg-type]
    assert info.value.field == field
    assert isinstance(info.value, ValueError)


def test_from_env_reads_documented_variables_and_overrides_win() -> None:
    env = {
        "ASTERISK_CTI_URL": "http://10.0.0.5:8088",
        "ASTERISK_CTI_USERNAME": "cti",
        "ASTERISK_CTI_PASSWORD": "s3cret",
        "ASTERISK_CTI_APP": "desk",
        "ASTERISK_CTI_EVENTS": "ChannelCreated, Dial",
        "ASTERISK_CTI_VERIFY_TLS": "0",
        "ASTERISK_CTI_WORKERS": "8",
    }
    cfg = CtiConfig.from_env(env, app="other")
    assert (cfg.url, cfg.username, cfg.password, cfg.app) == (
        "http://10.0.0.5:8088", "cti", "s3cret", "other")
    assert cfg.event_types == ("ChannelCreated", "Dial")
    assert cfg.verify_tls is False and cfg.workers == 8
    with pytest.raises(ConfigurationError) as info:
        CtiConfig.from_env({"ASTERISK_CTI_WORKERS": "many"})
    assert info.value.field == "workers"


def test_password_never_in_repr_or_str(caplog: pytest.LogCaptureFixture) -> None:
    cfg = CtiConfig(password="hunter2-secret")
    assert "hunter2" not in repr(cfg) and "hunter2" not in str(cfg)
    assert "hunter2" not in cfg.events_url and "hunter2" not in cfg.ari_url
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("x").info("config %s", cfg)
    assert "hunter2" not in caplog.text


def test_endpoint_of_channel_name() -> None:
    assert endpoint_of_channel_name("PJSIP/1000-0000001c") == "PJSIP/1000"
    assert endpoint_of_channel_name("Local/1006@from-internal-00000000;1") == \
        "Local/1006@from-internal"
    assert endpoint_of_channel_name("PJSIP/trunk-a-00000001") == "PJSIP/trunk-a"
    assert endpoint_of_channel_name("weird") == "weird"


def test_every_trace_frame_parses_into_its_class() -> None:
    files = sorted(traces_dir().glob("*.jsonl"))
    seen = set()
    for path in files:
        for line in path.read_text().splitlines():
            data = json.loads(line)
            event = parse_event(data)
            assert event.type == data["type"]
            assert type(event) is EVENT_CLASSES.get(data["type"], Event)
            assert event.raw is data
            assert event.time is not None
            seen.add(data["type"])
    assert {"ChannelCreated", "Dial", "BridgeAttendedTransfer"} <= seen
    assert all(t in EVENT_CLASSES for t in seen)


def test_typed_fields_of_a_real_event() -> None:
    raw = {
        "type": "ChannelDestroyed", "timestamp": "2026-11-26T03:53:40.100+0000",
        "cause": 16, "cause_txt": "Normal Clearing", "tech_cause": 200, "future_field": [1],
        "channel": {"id": "1.0", "name": "PJSIP/1002-00000001", "state": "Up",
                    "caller": {"name": "Ping", "number": "1002"},
                    "connected": {"name": "Kai", "number": "1000"},
                    "dialplan": {"context": "c", "exten": "1002", "priority": "3",
                                 "app_name": "Dial", "app_data": ""},
                    "channelvars": {"CHANNEL(linkedid)": "1.0"}},
    }
    ev = parse_event(raw)
    assert isinstance(ev, ChannelDestroyed)
    assert (ev.cause, ev.cause_txt, ev.tech_cause) == (16, "Normal Clearing", 200)
    assert ev.channel.endpoint == "PJSIP/1002"
    assert ev.channel.caller.number == "1002" and ev.channel.connected.name == "Kai"
    assert ev.channel.dialplan.priority == 3
    assert ev.channel.linkedid == "1.0"
    assert ev.raw["future_field"] == [1]
    with pytest.raises(AttributeError):
        ev.type = "x"  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(ev)) == ev


def test_unknown_type_is_a_generic_event_with_the_raw_dict() -> None:
    raw = {"type": "ChannelFromTheFuture", "timestamp": "x", "thing": {"a": 1}}
    ev = parse_event(raw)
    assert type(ev) is Event and ev.type == "ChannelFromTheFuture"
    assert ev.raw["thing"] == {"a": 1} and ev.channel is None and ev.time is None


@pytest.mark.parametrize("bad", [[], "x", 3, None, {}, {"type": 5}, {"type": ""}])
def test_non_event_json_raises_event_parse_error(bad: object) -> None:
    with pytest.raises(EventParseError):
        parse_event(bad)


def test_dial_channel_is_the_peer_and_ids_cover_both_sides() -> None:
    ev = parse_event({"type": "Dial", "dialstatus": "BUSY",
                      "caller": {"id": "a", "name": "PJSIP/1000-1"},
                      "peer": {"id": "b", "name": "PJSIP/1002-2"}})
    assert isinstance(ev, Dial) and ev.channel.id == "b" and ev.dialstatus == "BUSY"
    assert channel_ids_of(ev) == ["a", "b"]
    assert isinstance(parse_event({"type": "ChannelCreated", "channel": {}}), ChannelCreated)


@pytest.fixture(params=["stdlib", "orjson"])
def decoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """decode_frame on each path: the standard library's scanner, and the ``speed`` extra's
    orjson (installed by the test extra)."""
    if request.param == "stdlib":
        monkeypatch.setattr(wire, "_fast_loads", None)
    else:
        orjson = pytest.importorskip("orjson")
        monkeypatch.setattr(wire, "_fast_loads", orjson.loads)
    return str(request.param)


def test_decode_frame_matches_json_loads_and_rejects_what_it_rejects(decoder: str) -> None:
    for good in (b'{"type":"X","n":[1,2]}', ' {"a": "\\u00e9"} ', '{"a":1}\n', "[]",
                 # orjson refuses these; the standard path takes them, on both paths
                 b'{"a":NaN}', '["\\ud800"]', b'{"a":1,"a":2}', b'[1.5e3, -0, true, null]'):
        got = decode_frame(good)
        want = json.loads(good)
        assert repr(got) == repr(want)
    for bad in (b"", b"{", b'{"a":1}x', b"\xff\xfe", b"[1] [2]", b"nul", b'"\xed\xa0\x80"'):
        with pytest.raises(ValueError):
            decode_frame(bad)


def test_the_accelerator_is_used_only_when_orjson_imports(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "orjson", None)  # import orjson raises ImportError
    assert wire._load_accelerator() is None
    monkeypatch.delitem(sys.modules, "orjson")
    orjson = pytest.importorskip("orjson")
    assert wire._load_accelerator() is orjson.loads


def test_caller_id_fields_are_read_by_name_and_converted_to_party_by_name() -> None:
    ev = parse_event({"type": "ChannelCreated",
                      "channel": {"id": "a", "caller": {"name": "Kai", "number": "1000"}}})
    caller = ev.channel.caller
    assert caller == CallerID(name="Kai", number="1000")
    assert (caller.name, caller.number) == ("Kai", "1000")
    party = Party.from_caller(caller)
    assert (party.number, party.name) == ("1000", "Kai")


def test_old_catalogue_names_still_import_from_catalogue() -> None:
    from asterisk_cti import events
    from asterisk_cti.events import catalogue

    for name in ("CallerID", "DialplanCEP", "Channel", "Bridge", "Endpoint", "decode_frame",
                 "channel_ids_of", "endpoint_of_channel_name"):
        assert getattr(catalogue, name) is getattr(events, name)
