"""A small runner for our translation of Asterisk's ``tests/rest_api`` testsuite tests.

The testsuite (github.com/asterisk/testsuite) describes most ARI tests as a list of
*event -> action* pairs (``pluggable_modules.EventActionModule``): at start, or when an ARI
event matches, send ARI requests (each with an expected status) and possibly stop the test.
When the test stops, every event description must have been matched a number of times within
its count range. This module keeps its rules (``lib/python/asterisk/ari.py`` and
``test_suite_utils.all_match``), written anew:

- **matching**: a dict pattern matches when every key of the pattern is present in the
  message and matches (extra keys are fine); a string pattern is a regular expression matched
  with ``re.match`` against ``str(value)`` (so it is anchored at the start only); an int is
  compared literally; a list must have the same length and match element-wise; ``None``
  matches anything. ``nomatch`` excludes events that match it.
- **counting**: ``count`` is an int (exactly), ``"<N"`` (at most N), ``">N"`` (at least N);
  an ``ari-events`` description without ``count`` expects exactly 1. Every matching event
  runs the step's actions again (``instance`` limits a request to the N-th trigger).
- **requests**: ``expect`` is the exact status; without it any 2xx passes. ``{a.b}`` in the
  uri or a parameter is replaced from the event that triggered the request.
- **end**: the ``stop_test`` action ends the test; a timeout (``reactor-timeout``) fails it.

The tests themselves are data (:mod:`tests.sim.testsuite.cases`); the same runner runs them
against the simulator (``tests/sim/testsuite``) and the real lab
(``tests/integration/test_ari_testsuite.py``).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import requests
import websocket

Pattern = Any
START = "start"


@dataclass
class Req:
    """One ARI request of an ``ari-requests`` action."""

    method: str
    uri: str
    params: Optional[Dict[str, Any]] = None
    body: Optional[Any] = None
    expect: Optional[int] = None
    instance: Optional[int] = None
    form: bool = False  # send ``body`` form-encoded instead of JSON (request-bodies test)
    body_match: Optional[Any] = None  # ``response_body: match``: replaces the status check
    auth: Optional[Tuple[str, str]] = None  # other credentials (("", "") for none)
    api_key: bool = False  # credentials as ``?api_key=user:password``, not Basic


@dataclass
class Ev:
    """One event description of an ``ari-events`` trigger."""

    match: Dict[str, Pattern]
    count: Union[int, str] = 1
    nomatch: Optional[Dict[str, Pattern]] = None
    seen: int = 0


@dataclass
class Step:
    """An ``event-actions`` entry: a trigger (``START`` or event descriptions) and actions."""

    on: Union[str, List[Ev]]
    requests: List[Req] = field(default_factory=list)
    stop: bool = False
    stop_after: Optional[int] = None  # a callback's stop_reactor() on its N-th call
    triggered: int = 0


@dataclass
class AriTest:
    """A translated testsuite test.

    :ivar name: its path under ``tests/rest_api`` in the testsuite.
    :ivar adapted: empty when translated as is; else how and why it differs from the original.
    """

    name: str
    steps: List[Step]
    apps: Sequence[str] = ("testsuite",)
    subscribe_all: bool = False
    timeout: float = 15.0
    adapted: str = ""


@dataclass
class Outcome:
    passed: bool
    errors: List[str]


def all_match(pattern: Pattern, message: Any) -> bool:
    """The testsuite's ``all_match``: subset match of dicts, regex strings, literal ints."""
    if pattern is None:
        return True
    if isinstance(pattern, list):
        if not isinstance(message, list) or len(pattern) != len(message):
            return False
        return all(all_match(p, m) for p, m in zip(pattern, message))
    if isinstance(pattern, dict):
        if not isinstance(message, dict):
            return False
        for key, value in pattern.items():
            got = message.get(key)
            if got is None or not all_match(value, got):
                return False
        return True
    if isinstance(pattern, str):
        text = message if isinstance(message, str) else json_str(message)
        return re.match(pattern, text) is not None
    if isinstance(pattern, (bool, int)):
        return bool(pattern == message)
    raise TypeError(f"unhandled pattern type {type(pattern).__name__}")


def json_str(value: Any) -> str:
    """``str()`` as Python 3 renders the testsuite's decoded JSON values."""
    return str(value)


def decode_range(count: Union[int, str]) -> Tuple[int, float]:
    if isinstance(count, int):
        return count, count
    if count.startswith("<"):
        return 0, int(count[1:])
    if count.startswith(">"):
        return int(count[1:]), float("inf")
    return int(count), int(count)


def var_replace(text: Any, values: Any) -> Any:
    if not isinstance(text, str):
        return text
    for token in re.findall(r"(?<!\\){[^}]*(?<!\\)}", text):
        value = values
        for part in token[1:-1].split("."):
            if not isinstance(value, dict) or part not in value:
                raise KeyError(f"cannot replace {token} in {text!r}")
            value = value[part]
        text = text.replace(token, str(value))
    return text


class Runner:
    """Runs :class:`AriTest` objects against one ARI server (``url`` without ``/ari``)."""

    def __init__(self, url: str, username: str, password: str) -> None:
        self.url = url.rstrip("/")
        self.auth = (username, password)
        self.session = requests.Session()

    def run(self, test: AriTest) -> Outcome:
        errors: List[str] = []
        for step in test.steps:  # a test object may be run twice: start afresh
            step.triggered = 0
            if step.on != START:
                for ev in step.on:
                    ev.seen = 0
        ws_url = self.url.replace("http", "ws", 1) + "/ari/events"
        query = f"?app={','.join(test.apps)}&subscribeAll={str(test.subscribe_all).lower()}"
        ws = websocket.create_connection(
            ws_url + query, header=[_basic(self.auth)], timeout=test.timeout
        )
        stopped = False
        deadline = time.monotonic() + test.timeout
        try:
            for step in test.steps:
                if step.on == START:
                    stopped = self._fire(step, {}, errors) or stopped
            while not stopped:
                left = deadline - time.monotonic()
                if left <= 0:
                    errors.append("timed out before stop_test")
                    break
                ws.settimeout(left)
                try:
                    text = ws.recv()
                except websocket.WebSocketTimeoutException:
                    errors.append("timed out before stop_test")
                    break
                if not text:
                    errors.append("websocket closed before stop_test")
                    break
                event = json.loads(text)
                for step in test.steps:
                    if step.on == START:
                        continue
                    for ev in step.on:
                        if not all_match(ev.match, event):
                            continue
                        if ev.nomatch and all_match(ev.nomatch, event):
                            continue
                        ev.seen += 1
                        if self._fire(step, event, errors):
                            stopped = True
        finally:
            # Hang up what the test left while its application is still connected, then
            # close: Asterisk 22 tearing the application down while the cleanup's hang-ups
            # land wedged its HTTP server now and then (every later request timed out).
            self._cleanup(test)
            ws.close()
        for step in test.steps:
            if step.on == START:
                continue
            for ev in step.on:
                low, high = decode_range(ev.count)
                if not low <= ev.seen <= high:
                    errors.append(f"expected {low} <= count <= {high}; was {ev.seen}: {ev.match}")
        return Outcome(not errors, errors)

    def _fire(self, step: Step, event: Dict[str, Any], errors: List[str]) -> bool:
        step.triggered += 1
        for req in step.requests:
            if req.instance is not None and req.instance != step.triggered:
                continue
            self.send(req, event, errors)
        return step.stop or step.stop_after == step.triggered

    def send(
        self, req: Req, event: Dict[str, Any], errors: List[str]
    ) -> Optional[requests.Response]:
        try:
            uri = var_replace(req.uri, event)
            params = {k: var_replace(v, event) for k, v in (req.params or {}).items()}
        except KeyError as exc:
            errors.append(str(exc))
            return None
        auth = req.auth if req.auth is not None else self.auth
        kwargs: Dict[str, Any] = {"params": params, "timeout": 10}
        if req.api_key:
            params["api_key"] = f"{auth[0]}:{auth[1]}"
        elif auth != ("", ""):
            kwargs["auth"] = auth
        if req.body is not None:
            if isinstance(req.body, str):  # a raw body, sent as JSON even if it is not
                kwargs["data"] = req.body
                kwargs["headers"] = {"Content-Type": "application/json"}
            elif req.form:
                kwargs["data"] = req.body
            else:
                kwargs["data"] = json.dumps(req.body)
                kwargs["headers"] = {"Content-Type": "application/json"}
        resp = self.session.request(req.method.upper(), f"{self.url}/ari/{uri}", **kwargs)
        if req.body_match is not None:
            try:
                body = resp.json()
            except ValueError:
                body = None
            if not all_match(req.body_match, body):
                errors.append(f"{req.method} {uri} {params}: {resp.status_code} {resp.text[:200]}"
                              f" does not match {req.body_match}")
            return resp
        ok = resp.status_code == req.expect if req.expect else resp.status_code // 100 == 2
        if not ok:
            errors.append(
                f"{req.method} {uri} {params}: expected {req.expect or '2xx'}, "
                f"got {resp.status_code} {resp.text[:200]}"
            )
        return resp

    def _cleanup(self, test: AriTest) -> None:
        """Hang up what the test left (the testsuite restarts Asterisk between tests)."""
        try:
            chans = self.session.get(f"{self.url}/ari/channels", auth=self.auth, timeout=10)
            for ch in chans.json() if chans.ok else []:
                self.session.delete(f"{self.url}/ari/channels/{ch['id']}", auth=self.auth,
                                    timeout=10)
            bridges = self.session.get(f"{self.url}/ari/bridges", auth=self.auth, timeout=10)
            for b in bridges.json() if bridges.ok else []:
                if b.get("bridge_class") == "stasis":
                    self.session.delete(f"{self.url}/ari/bridges/{b['id']}", auth=self.auth,
                                        timeout=10)
        except requests.RequestException:
            pass


def _basic(auth: Tuple[str, str]) -> str:
    import base64

    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    return f"Authorization: Basic {token}"
