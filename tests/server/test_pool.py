"""The request pool is bounded: past ``max_pending`` a request is refused at once, typed."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional

import paho.mqtt.client as mqtt

from asterisk_cti import CtiConfig
from asterisk_cti.server import CtiServer, ServerConfig


def _message(agent: str) -> mqtt.MQTTMessage:
    msg = mqtt.MQTTMessage(topic=f"cti/s/agent/{agent}/request".encode())
    msg.payload = b'{"version": 1, "op": "hold", "connection_id": "x"}'
    return msg


def test_requests_past_max_pending_get_server_busy() -> None:
    config = ServerConfig(site="s", broker_password="pw", workers=1, max_pending=1)
    server = CtiServer(config, CtiConfig(url="http://127.0.0.1:1", username="u",
                                         password="p", app="a"))
    release, running = threading.Event(), threading.Event()
    answers: List[Dict[str, Any]] = []

    def execute(agent: str, payload: bytes) -> Dict[str, Any]:
        running.set()
        release.wait(10)
        return {"done": agent}

    def answer(agent: str, correlation: Optional[bytes], *, result: Any = None,
               error: Optional[BaseException] = None) -> None:
        answers.append({"agent": agent, "result": result,
                        "error": type(error).__name__ if error else None})

    server._execute = execute  # type: ignore[method-assign]
    server._answer = answer  # type: ignore[method-assign]
    pool = ThreadPoolExecutor(1, thread_name_prefix="asterisk-cti-server")
    server._pool = pool
    try:
        server._on_request(_message("1000"))
        assert running.wait(5)
        server._on_request(_message("1002"))
        assert answers == [{"agent": "1002", "result": None, "error": "ServerBusyError"}]
        release.set()
    finally:
        release.set()
        pool.shutdown(wait=True)
    assert answers[1] == {"agent": "1000", "result": {"done": "1000"}, "error": None}
    assert server._pending == 0
