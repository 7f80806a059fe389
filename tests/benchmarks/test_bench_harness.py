"""The benchmark harness cannot rot silently: its streams are valid ARI frames, the server
frames them as RFC 6455 text frames with the bench fields, and every client variant reads a
short stream end to end (in this process, a few hundred frames)."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import time
from typing import Any, Dict, Iterator, List

import pytest

from benchmarks import client as bench_client
from benchmarks import stream
from benchmarks.server import Encoder, EventServer, split_app

N = 1500


def decode_frames(data: bytes) -> List[bytes]:
    """Parse unmasked server-to-client websocket frames; fail on anything but FIN text."""
    out = []
    i = 0
    while i < len(data):
        assert data[i] == 0x81, f"not a final text frame at byte {i}: {data[i]:#x}"
        length = data[i + 1]
        assert length & 0x80 == 0, "a server frame must not be masked"
        i += 2
        if length == 126:
            length = int.from_bytes(data[i:i + 2], "big")
            i += 2
        elif length == 127:
            length = int.from_bytes(data[i:i + 8], "big")
            i += 8
        out.append(data[i:i + length])
        i += length
    assert i == len(data), "trailing bytes after the last frame"
    return out


@pytest.mark.parametrize("name", stream.STREAMS)
def test_stream_frames_are_ari_events(name: str) -> None:
    frames = stream.build(name, N)
    assert len(frames) == N
    types = set()
    for fr in frames:
        assert b"\n" not in fr
        event = json.loads(fr)
        assert isinstance(event, dict)
        assert isinstance(event["type"], str) and event["type"]
        assert isinstance(event["timestamp"], str)
        types.add(event["type"])
    # each stream carries calls, not only noise
    assert {"ChannelCreated", "ChannelDestroyed", "Dial"} <= types


@pytest.mark.parametrize("name", stream.STREAMS)
def test_every_channel_of_a_stream_is_on_one_of_its_endpoints(name: str) -> None:
    endpoints = set(stream.endpoints(name))
    names = set()
    for fr in stream.build(name, 3000):
        names.update(m.decode() for m in re.findall(rb'"name":"(PJSIP/[^"]+)-[0-9a-f]{8}"', fr))
    assert names, "no PJSIP channel in the stream"
    assert names <= endpoints, sorted(names - endpoints)[:5]


def test_stasis_stream_is_deterministic_and_stasis_shaped() -> None:
    a, b = stream.build("stasis", 400), stream.build("stasis", 400)
    assert a == b
    types = [json.loads(fr)["type"] for fr in a]
    assert "StasisStart" in types and "StasisEnd" in types and "BridgeCreated" in types
    assert types.count("ChannelVarset") / len(types) > 0.2


def test_recording_is_1000_calls_and_repeats_with_new_ids() -> None:
    length = stream.natural_length("recording")
    assert length == 71000
    base = stream.build("recording", length)
    assert stream.calls_in(base) == 1000
    more = stream.build("recording", length + 2000)
    assert more[:length] == base
    created = [json.loads(fr)["channel"]["id"] for fr in more
               if fr.startswith(b'{"type":"ChannelCreated"')]
    assert len(created) == len(set(created)), "a repeated pass reuses channel ids"
    assert stream.calls_in(more) > 1000


def test_encoder_frames_carry_sequence_and_send_time() -> None:
    frames = stream.build("stasis", 50)
    enc = Encoder(frames)
    t0 = time.time()
    data = Encoder.batch(enc.prefixes(45, 10))  # wraps around the end of the list
    payloads = decode_frames(data)
    assert len(payloads) == 10
    for k, payload in enumerate(payloads):
        event = json.loads(payload)
        seq = 45 + k
        assert event["bench_seq"] == seq
        assert t0 - 1 <= event["bench_ts"] <= time.time() + 1
        del event["bench_seq"], event["bench_ts"]
        assert event == json.loads(frames[seq % 50])


def test_app_names_select_stream_and_mode() -> None:
    assert split_app("stasis.full-100") == ("stasis", "full-100")
    assert split_app("full-100") == ("traces", "full-100")
    assert bench_client.app_for("recording", "rate", 10) == "recording.rate-2000-10"
    assert bench_client.app_for("traces", "full", 10, close=True) == "traces.full-10-close"


@pytest.fixture(scope="module")
def server() -> Iterator[EventServer]:
    with EventServer({name: N for name in stream.STREAMS}) as srv:
        yield srv


def _check(result: Dict[str, Any], n: int) -> None:
    assert result["wall"] > 0 and result["cpu"] > 0 and result["rss_kb"] > 1000


@pytest.mark.parametrize("name", stream.STREAMS)
def test_baseline_reads_every_frame(server: EventServer, name: str) -> None:
    result = bench_client.run_base(name, "full", server.port, N)
    _check(result, N)
    assert result["events"] == N


@pytest.mark.parametrize("name", stream.STREAMS)
def test_sdk_consumes_every_frame_in_order(server: EventServer, name: str) -> None:
    result = bench_client.run_sdk(name, "full", server.port, N)
    _check(result, N)
    assert result["frames"] + result["dropped_early"] == N
    assert result["lost_frames"] == 0 and result["overwritten"] == 0
    assert result["order_errors"] == 0
    assert 0 <= result["cpu_start"] <= result["cpu"]
    assert result["events"] > 0 and result["call_events"] > 0
    if name == "stasis":
        assert result["stasis_events"] > 0  # the Stasis application's raw listener


def test_latency_is_sampled_after_the_warm_up(server: EventServer) -> None:
    n = bench_client.WARMUP + 200
    assert n <= N
    result = bench_client.run_base("recording", "rate", server.port, n)
    assert len(result["lat"]) == 200
    assert all(0 <= x < 5 for x in result["lat"])


def test_aioari_peer_reads_every_frame(server: EventServer) -> None:
    if importlib.util.find_spec("aioari") is None:
        pytest.skip("aioari is an optional bench peer (pip install -e '.[bench]')")
    result = bench_client.run_aioari("stasis", "full", server.port, N)
    _check(result, N)
    assert result["events"] == N


def test_sdk_does_not_import_the_bench_peers() -> None:
    code = ("import sys, asterisk_cti, asterisk_cti.client, asterisk_cti.control.calls; "
            "print(sorted(m for m in ('aioari', 'aiohttp', 'aioswagger11') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=30, check=True)
    assert out.stdout.strip() == "[]"




def test_profile_report_attributes_samples_per_thread(tmp_path: Any) -> None:
    from benchmarks.profile import parse_raw, report

    raw = tmp_path / "raw.txt"
    raw.write_text(
        "thread (0x1): asterisk-cti-processor;Thread.run (threading.py:982);"
        "Processor._run (asterisk_cti/processor.py:286);"
        "decode_frame (asterisk_cti/events.py:931) 30\n"
        "thread (0x1): asterisk-cti-processor;Processor._run (asterisk_cti/processor.py:286);"
        "Dispatcher.submit_many (asterisk_cti/dispatcher.py:99);"
        "Future.__init__ (concurrent/futures/_base.py:330) 10\n"
        "thread (0x2);<module> (benchmarks/client.py:1) 10\n"
    )
    rows = parse_raw(str(raw))
    assert [(t, c) for t, _, c in rows] == [("asterisk-cti-processor", 30),
                                            ("asterisk-cti-processor", 10), ("MainThread", 10)]
    text = report(rows)
    assert "50 samples; the SDK's threads (asterisk-cti-*) 80.0 %" in text
    assert "asterisk-cti-processor: 80.0 % of all samples" in text
    assert "75.0  decode_frame (events.py)" in text
    assert "25.0  Dispatcher.submit_many (dispatcher.py) -> Future.__init__ (_base.py)" in text
    assert "MainThread: 20.0 % of all samples" in text


@pytest.mark.parametrize("name", stream.STREAMS)
def test_replay_keeps_the_frames_the_transport_keeps(server: EventServer, name: str) -> None:
    from benchmarks import replay

    result = bench_client.run_sdk(name, "full", server.port, N)
    client = replay._client(name, server.port)
    try:
        kept = replay.kept_frames(client, stream.build(name, N))
    finally:
        client.stop()
    assert len(kept) == result["frames"] > 0


def test_segments_split_a_batch_latency_into_its_stages(server: EventServer) -> None:
    from benchmarks import segments

    m = segments.measure("recording", N)
    assert m["batches"] > 10 and len(m["lat"]) > 0
    seg = m["segments"]
    assert all(len(v) == m["batches"] for v in seg.values())
    total = seg["server send -> lane done"]
    parts = [v for k, v in seg.items() if k != "server send -> lane done"]
    for i, whole in enumerate(total):
        assert all(p[i] >= 0 for p in parts)
        assert abs(sum(p[i] for p in parts) - whole) < 1e-6  # consecutive stages
