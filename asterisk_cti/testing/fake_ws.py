"""A fake event websocket: the :class:`~asterisk_cti.pipeline.transport.TransportFactory` for tests.

Push events, errors and drops from the test thread; the client's reactor thread reads them as
if Asterisk had sent them. Nothing touches the network.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from typing import Any, Deque, FrozenSet, List, Mapping, Optional, Union

from ..errors import ConnectError, TransportError
from ..pipeline.transport import EventStream, unwanted

Frame = Union[Mapping[str, Any], str, bytes]


def encode_frame(frame: Frame) -> bytes:
    """Encode a frame the way Asterisk sends it (compact JSON, UTF-8)."""
    if isinstance(frame, bytes):
        return frame
    if isinstance(frame, str):
        return frame.encode("utf-8")
    return json.dumps(frame, separators=(",", ":")).encode("utf-8")


class ConnectAttempt:
    """What the client sent when it connected (for assertions)."""

    def __init__(self, url: str, headers: Mapping[str, str], verify_tls: Union[bool, str]):
        self.url = url
        self.headers = dict(headers)
        self.verify_tls = verify_tls


class _FakeStream:
    def __init__(self, owner: FakeWebSocket, read_timeout: float) -> None:
        self._owner = owner
        self._read_timeout = read_timeout
        self._frames: Deque[Union[bytes, BaseException]] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._idle_reader = False
        self._wanted: Optional[FrozenSet[bytes]] = None
        self.pings = 0
        self.dropped = 0

    def _push(self, item: Union[bytes, BaseException]) -> None:
        with self._cond:
            self._frames.append(item)
            self._cond.notify_all()

    def recv_batch(self) -> Optional[List[bytes]]:
        with self._cond:
            if not self._frames and not self._closed:
                # The reader is back for more: everything handed out before is in its ring.
                self._idle_reader = True
                self._cond.notify_all()
                self._cond.wait(self._read_timeout)
                self._idle_reader = False
            if self._closed:
                raise TransportError("websocket aborted")
            if not self._frames:
                return None
            out: List[bytes] = []
            while self._frames:
                item = self._frames[0]
                if isinstance(item, BaseException):
                    if out:
                        break
                    self._frames.popleft()
                    self._closed = True
                    raise item
                self._frames.popleft()
                wanted = self._wanted
                if wanted is not None and unwanted(item, wanted):
                    self.dropped += 1
                    continue
                out.append(item)
            return out

    def set_wanted(self, wanted: Optional[FrozenSet[bytes]]) -> None:
        self._wanted = wanted

    def ping(self) -> None:
        self.pings += 1

    def wait_drained(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(
                lambda: self._closed or (not self._frames and self._idle_reader), timeout)

    def abort(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def close(self) -> None:
        self.abort()


class FakeWebSocket:
    """A scriptable stand-in for Asterisk's ``/ari/events`` websocket.

    Pass :attr:`factory` as ``transport_factory`` to :class:`~asterisk_cti.CtiClient`.
    Frames pushed while no connection is open wait for the next one.

    Threads: the push/drop/refuse methods are called by the test; the stream is read by the
    client's reactor thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._current: Optional[_FakeStream] = None
        self._pending: List[Union[bytes, BaseException]] = []
        self._refusals: Deque[ConnectError] = deque()
        self.attempts: List[ConnectAttempt] = []
        self.connections = 0
        #: frames pushed so far, in total (to tell whether a round of work pushed more)
        self.pushed = 0

    # -- the factory the client calls ---------------------------------------------------

    def factory(
        self,
        url: str,
        headers: Mapping[str, str],
        *,
        connect_timeout: float,
        read_timeout: float,
        verify_tls: Union[bool, str],
    ) -> EventStream:
        """The :class:`~asterisk_cti.pipeline.transport.TransportFactory` (reactor thread)."""
        with self._lock:
            self.attempts.append(ConnectAttempt(url, headers, verify_tls))
            if self._refusals:
                raise self._refusals.popleft()
            stream = _FakeStream(self, min(read_timeout, 0.5))
            for item in self._pending:
                stream._push(item)
            self._pending = []
            self._current = stream
            self.connections += 1
            self._lock.notify_all()
            return stream

    # -- scripting --------------------------------------------------------------------------

    def push(self, *frames: Frame) -> None:
        """Send frames (dicts are JSON-encoded; str/bytes are sent as they are)."""
        with self._lock:
            for frame in frames:
                data = encode_frame(frame)
                self.pushed += 1
                if self._current is not None and not self._current._closed:
                    self._current._push(data)
                else:
                    self._pending.append(data)

    def push_error(self, error: Optional[BaseException] = None) -> None:
        """Make the current connection fail with ``error`` (a dropped connection by default)."""
        err = error or TransportError("connection reset by peer")
        with self._lock:
            if self._current is not None:
                self._current._push(err)
            else:
                self._pending.append(err)

    def drop(self) -> None:
        """Drop the current connection at once, without a close frame."""
        with self._lock:
            if self._current is not None:
                self._current._push(TransportError("connection dropped"))

    def refuse(self, times: int = 1, status: Optional[int] = None) -> None:
        """Make the next ``times`` connection attempts fail (with an HTTP ``status`` if given)."""
        with self._lock:
            for _ in range(times):
                msg = f"websocket handshake refused with HTTP {status}" if status else "refused"
                self._refusals.append(ConnectError(msg, status))

    def wait_connections(self, n: int, timeout: float = 5.0) -> bool:
        """Block until at least ``n`` connections were opened."""
        with self._lock:
            return self._lock.wait_for(lambda: self.connections >= n, timeout)

    def wait_drained(self, timeout: float = 5.0) -> bool:
        """Block until the client's reactor has taken every pushed frame and is waiting for
        more (so they are all in the client's ring). Use :meth:`CtiClient.wait_idle` next."""
        with self._lock:
            current = self._current
        return current.wait_drained(timeout) if current is not None else not self._pending

    @property
    def pings(self) -> int:
        """Pings the client sent on the current connection."""
        return self._current.pings if self._current else 0
