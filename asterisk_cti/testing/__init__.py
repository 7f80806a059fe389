"""Fakes for testing code built on asterisk_cti, without a PBX.

- :class:`FakeWebSocket`: a scriptable event websocket (push events, errors, drops, refusals).
- :class:`FakeAri`: a stateful fake ARI REST server mounted in a ``requests.Session``.
- :class:`FakeAsterisk`: both together, with :meth:`FakeAsterisk.client` to build a client.
- :func:`load_trace`: read a JSON-lines trace (``asterisk-cti record`` output).

See the "Testing with the fakes" page of the documentation.
"""

from .fake_ari import FakeAri, RecordedRequest
from .fake_ws import FakeWebSocket, encode_frame
from .replay import FakeAsterisk, load_trace, trace_endpoints

__all__ = [
    "FakeAri",
    "FakeAsterisk",
    "FakeWebSocket",
    "RecordedRequest",
    "encode_frame",
    "load_trace",
    "trace_endpoints",
]
