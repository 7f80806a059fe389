"""Every recorded Asterisk 22 trace replays through the whole pipeline (reactor, ring,
processor, filter, lanes): each monitored extension receives exactly the expected sequence of
the ten default events, in order. The expected sequences live in ``golden_channel_events.json``
(reviewed by hand; regenerate with ``python -m tests.pipeline.test_trace_replay``)."""

from __future__ import annotations

import json
import sys
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List

import pytest

from asterisk_cti import ChannelEventListener, Event
from asterisk_cti.testing import FakeAsterisk, load_trace
from tests.conftest import traces_dir

GOLDEN = Path(__file__).with_name("golden_channel_events.json")
LINES = ["PJSIP/1000", "PJSIP/1002", "PJSIP/1006"]


class PerLine(ChannelEventListener):
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_line: Dict[str, List[str]] = defaultdict(list)

    def on_event(self, event: Event) -> None:
        chan = event.channel
        name = chan.name if chan is not None else ""
        line = next((ln for ln in LINES if name.startswith(ln + "-")), "other:" + name)
        detail = event.type
        if chan is not None and event.type in ("ChannelCreated", "ChannelStateChange"):
            detail += ":" + chan.state
        if event.type == "ChannelDestroyed":
            detail += f":{event.raw.get('cause')}"
        if event.type == "ChannelConnectedLine" and chan is not None:
            detail += ":" + chan.connected.number
        with self.lock:
            self.by_line[line].append(detail)


def replay(path: Path) -> Dict[str, List[str]]:
    app = "cti-all" if path.name.endswith(".all.jsonl") else "cti-rec"
    frames = load_trace(path, application=app)
    fake = FakeAsterisk(endpoints=LINES)
    rec = PerLine()
    client = fake.client(model=False)
    client.add_listener(rec)
    client.monitor(*LINES)
    with client.start():
        fake.replay(frames)
        assert fake.settle(client, 10)
        assert client.stats()["processor"]["malformed"] == 0
    return {k: v for k, v in sorted(rec.by_line.items())}


def _trace_files() -> List[Path]:
    return sorted(traces_dir().glob("*.jsonl"))


@pytest.mark.parametrize("name", [p.name for p in _trace_files()])
def test_trace_delivers_the_expected_events_per_extension(name: str) -> None:
    path = traces_dir() / name
    golden = json.loads(GOLDEN.read_text())
    assert replay(path) == golden[name]


def test_basic_call_as_the_original_design_expects() -> None:
    path = traces_dir() / "basic.jsonl"
    got = replay(path)
    assert got["PJSIP/1000"][0] == "ChannelCreated:Ring"
    assert got["PJSIP/1000"][-1] == "ChannelDestroyed:16"
    assert got["PJSIP/1002"][:2] == ["ChannelCreated:Down", "ChannelConnectedLine:1000"]
    assert "ChannelStateChange:Ringing" in got["PJSIP/1002"]
    assert "ChannelStateChange:Up" in got["PJSIP/1002"]
    assert got["PJSIP/1002"][-1] == "ChannelDestroyed:16"
    assert "PJSIP/1006" not in got


if __name__ == "__main__":  # regenerate the golden file after reviewing a change
    out: Dict[str, Any] = {p.name: replay(p) for p in _trace_files()}
    GOLDEN.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    sys.stdout.write(f"wrote {GOLDEN} ({len(out)} traces)\n")
