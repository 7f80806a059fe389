"""Call data: the codec's rules, and setting/reading it through call control on the simulator."""

from __future__ import annotations

import threading
from typing import Iterator

import pytest

from asterisk_cti import (
    CallDataError,
    CallEvent,
    CallListener,
    CtiClient,
    CtiConfig,
    NotInStasisError,
)
from asterisk_cti.calldata import (
    MAX_ENCODED,
    MAX_ITEMS,
    MAX_VALUE,
    decode_call_data,
    encode_call_data,
    merge_call_data,
)
from asterisk_cti.sim import AriSimulator


def test_round_trip_sorts_keys_and_escapes_values() -> None:
    data = {"choice": "billing", "account": "12345", "name": "Zoë & Co=1"}
    text = encode_call_data(data)
    assert text.startswith("account=12345&choice=billing&name=")
    assert decode_call_data(text) == data
    assert decode_call_data("") == {}


def test_dialplan_written_form_decodes() -> None:
    assert decode_call_data("account=42&choice=billing") == {"account": "42", "choice": "billing"}


@pytest.mark.parametrize("data", [
    {"1abc": "x"}, {"a b": "x"}, {"": "x"}, {"a/b": "x"}, {"a" * 65: "x"},
    {"k": "v" * (MAX_VALUE + 1)}, {f"k{i}": "v" for i in range(MAX_ITEMS + 1)},
])
def test_encode_refuses_what_breaks_a_rule(data: dict) -> None:
    with pytest.raises(CallDataError):
        encode_call_data(data)


def test_encode_refuses_non_string_values_and_too_long_forms() -> None:
    with pytest.raises(CallDataError, match="must be a string"):
        encode_call_data({"k": 5})  # type: ignore[dict-item]
    big = {f"k{i}": "é" * 40 for i in range(MAX_ITEMS)}  # 32 x 40 x 6 escaped chars
    with pytest.raises(CallDataError, match="encoded call data"):
        encode_call_data(big)


@pytest.mark.parametrize("text", [
    5, None, "novalue", "a=1&&b", "x" * (MAX_ENCODED + 1), "1bad=2",
    "&".join(f"k{i}=v" for i in range(MAX_ITEMS + 1)),
])
def test_decode_refuses_hostile_values_with_a_typed_error(text: object) -> None:
    with pytest.raises(CallDataError):
        decode_call_data(text)


def test_merge_removes_keys_given_none_and_checks_the_result() -> None:
    assert merge_call_data({"a": "1", "b": "2"}, {"b": None, "c": "3"}) == {"a": "1", "c": "3"}
    with pytest.raises(CallDataError):
        merge_call_data({"a": "1"}, {"b": "x" * (MAX_VALUE + 1)})


@pytest.fixture
def sim() -> Iterator[AriSimulator]:
    with AriSimulator(speed=20) as s:
        yield s


def test_set_and_read_call_data_on_a_channel_in_the_application(sim: AriSimulator) -> None:
    for ext in ("1000", "1002"):
        sim.phone(ext).auto_answer = True
    config = CtiConfig(url=sim.url, username=sim.username, password=sim.password, app="cd")
    with CtiClient(config) as cti:
        call = cti.control.originate("PJSIP/1000", "1002", wait_for="established", timeout=10)
        assert cti.control.call_data(call) == {}
        assert cti.control.set_call_data(call, {"account": "12345"}) == {"account": "12345"}
        merged = cti.control.set_call_data(call, {"choice": "billing", "account": None})
        assert merged == {"choice": "billing"}
        assert cti.control.call_data(call) == {"choice": "billing"}
        assert cti.control.set_call_data(call, {"x": "1"}, replace=True) == {"x": "1"}
        # the inherited form is what Asterisk stores (the dialplan can read it as CTI_DATA)
        with sim.pbx.lock:
            assert sim.pbx.channels[call.channel_id].variables["CTI_DATA"] == "x=1"
        with pytest.raises(CallDataError):
            cti.control.set_call_data(call, {"bad key": "1"})
        assert cti.control.call_data(call) == {"x": "1"}
        cti.control.hangup(call, timeout=10)


def test_set_call_data_outside_the_application_is_refused_before_sending(
        sim: AriSimulator) -> None:
    config = CtiConfig(url=sim.url, username=sim.username, password=sim.password, app="cd")
    with CtiClient(config) as cti:
        dialling = threading.Event()

        class Dialling(CallListener):
            def on_call_event(self, event: CallEvent) -> None:
                dialling.set()

        cti.monitor("PJSIP/1000")
        cti.add_listener(Dialling())
        sim.phone("1000").dial("1002")
        assert dialling.wait(5)
        line = cti.line("PJSIP/1000")
        assert line is not None and line.connections
        channel = line.connections[0].connection_id
        with pytest.raises(NotInStasisError):
            cti.control.set_call_data(channel, {"account": "1"})
        assert cti.control.call_data(channel) == {}
