"""Trace replay: feed recorded ARI frames (JSON lines) through a real client pipeline.

The format is the one ``asterisk-cti record`` writes and the repository's ``tests/data/traces``
holds: one raw ARI websocket text frame per line. :class:`FakeAsterisk` pairs a
:class:`FakeWebSocket` with a :class:`FakeAri` so that a :class:`~asterisk_cti.CtiClient`
runs unchanged (all its threads, filter, model and lanes) with no PBX.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Union

from ..client import CtiClient
from ..config import CtiConfig
from .fake_ari import FakeAri
from .fake_ws import FakeWebSocket

PathLike = Union[str, Path]


def load_trace(path: PathLike, application: Optional[str] = None) -> List[Dict[str, Any]]:
    """Read a JSON-lines trace.

    :param path: the file.
    :param application: keep only frames sent to this ARI application (a trace recorded with
        two applications on one websocket holds some events twice).
    :returns: the decoded frames, in order; blank lines are skipped.
    :raises ValueError: naming the line of a frame that is not JSON.
    """
    frames: List[Dict[str, Any]] = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                frame = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{path}:{n}: not JSON: {exc}") from None
            if application is None or frame.get("application") == application:
                frames.append(frame)
    return frames


def trace_endpoints(frames: Iterable[Dict[str, Any]]) -> List[str]:
    """The PJSIP-style endpoints (``TECH/RES``) whose channels appear in a trace, sorted."""
    found = set()
    for frame in frames:
        for key in ("channel", "peer", "caller"):
            chan = frame.get(key)
            if isinstance(chan, dict) and isinstance(chan.get("name"), str):
                name = chan["name"]
                if not name.startswith("Local/") and "-" in name:
                    found.add(name.rsplit("-", 1)[0])
        ep = frame.get("endpoint")
        if isinstance(ep, dict):
            found.add(f"{ep.get('technology')}/{ep.get('resource')}")
    return sorted(found)


class FakeAsterisk:
    """A fake Asterisk for tests and replays: a websocket to push frames and a REST fake.

    :param username: the ARI user the fake accepts.
    :param password: its password.
    :param endpoints: endpoints to create (``PJSIP/1000``), registered (``online``).

    Example::

        fake = FakeAsterisk(endpoints=["PJSIP/1000", "PJSIP/1002"])
        client = fake.client(app="test")
        client.add_listener(my_listener)
        client.monitor("PJSIP/1000")
        client.start()
        fake.replay(load_trace("basic.jsonl", application="cti-rec"))
        client.wait_idle()
        client.stop()
    """

    def __init__(self, username: str = "asterisk", password: str = "secret",
                 endpoints: Iterable[str] = ()) -> None:
        self.url = "http://asterisk.test:8088"
        self.username = username
        self.password = password
        self.ari = FakeAri(self.url, username, password)
        self.ws = FakeWebSocket()
        for ep in endpoints:
            self.ari.add_endpoint(ep)

    def config(self, **overrides: Any) -> CtiConfig:
        """A :class:`CtiConfig` pointing at this fake (override any field)."""
        values: Dict[str, Any] = {"url": self.url, "username": self.username,
                                  "password": self.password, "app": "cti-test",
                                  "reconnect_min": 0.01, "reconnect_max": 0.05,
                                  "request_timeout": 2.0, "connect_timeout": 2.0}
        values.update(overrides)
        return CtiConfig(**values)

    def client(self, config: Optional[CtiConfig] = None, **kwargs: Any) -> CtiClient:
        """A new (not started) :class:`CtiClient` wired to this fake."""
        return CtiClient(config or self.config(), transport_factory=self.ws.factory,
                         session=self.ari.session(), **kwargs)

    def push(self, *frames: Any) -> None:
        """Send frames on the websocket (see :meth:`FakeWebSocket.push`)."""
        self.ws.push(*frames)

    def settle(self, client: CtiClient, timeout: float = 5.0, *, quiet: bool = False) -> bool:
        """Block until every frame pushed so far was delivered to the client's listeners
        (and call control acted on it).

        :param quiet: repeat until a round pushed no new frame: for routes that answer the
            client's requests with events (a scripted PBX), whose frames call control's
            reactions may push while the client settles.
        :returns: False on timeout.
        """
        deadline = time.monotonic() + timeout
        while True:
            pushed = self.ws.pushed
            left = max(0.0, deadline - time.monotonic())
            if not (self.ws.wait_drained(left) and client.wait_idle(left)):
                return False
            if not quiet or self.ws.pushed == pushed:
                return True

    def replay(self, frames: Iterable[Dict[str, Any]]) -> int:
        """Send every frame of a trace; returns how many."""
        frames = list(frames)
        self.ws.push(*frames)
        return len(frames)
