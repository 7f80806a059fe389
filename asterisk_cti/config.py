"""Configuration of a :class:`~asterisk_cti.CtiClient`.

:class:`CtiConfig` is an immutable value validated on creation. It is read by every thread of
the client but never changed after creation, so it needs no lock. The password never appears
in its ``repr``, in URLs or in log lines.
"""

from __future__ import annotations

import base64
import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Tuple, Union
from urllib.parse import quote, urlsplit, urlunsplit

from .errors import ConfigurationError

#: The ten ARI events of the original design, delivered to listeners by default.
DEFAULT_EVENT_TYPES: Tuple[str, ...] = (
    "ChannelCreated",
    "ChannelConnectedLine",
    "ChannelDestroyed",
    "ChannelStateChange",
    "ChannelHold",
    "ChannelUnhold",
    "ChannelTalkingStarted",
    "ChannelTalkingFinished",
    "ChannelEnteredBridge",
    "ChannelLeftBridge",
)

#: Environment variables read by :meth:`CtiConfig.from_env`, with the field each one sets.
ENV_VARIABLES: Mapping[str, str] = {
    "ASTERISK_CTI_URL": "url",
    "ASTERISK_CTI_USERNAME": "username",
    "ASTERISK_CTI_PASSWORD": "password",
    "ASTERISK_CTI_APP": "app",
    "ASTERISK_CTI_EVENTS": "event_types",
    "ASTERISK_CTI_VERIFY_TLS": "verify_tls",
    "ASTERISK_CTI_CA_BUNDLE": "verify_tls",
    "ASTERISK_CTI_RING_CAPACITY": "ring_capacity",
    "ASTERISK_CTI_WORKERS": "workers",
    "ASTERISK_CTI_CONNECT_TIMEOUT": "connect_timeout",
    "ASTERISK_CTI_REQUEST_TIMEOUT": "request_timeout",
}


@dataclass(frozen=True)
class CtiConfig:
    """Everything a :class:`~asterisk_cti.CtiClient` needs to reach Asterisk.

    Immutable and validated on creation; safe to share between threads.

    :param url: Asterisk's HTTP server, ``http://host:8088`` or ``https://...``. The SDK adds
        ``/ari``; a URL that already ends in ``/ari`` works too. The websocket URL (``ws`` or
        ``wss``) is derived from it. It must not contain credentials.
    :param username: the ARI user (``ari.conf``).
    :param password: the ARI password; never shown in ``repr``, logs, URLs or exceptions.
    :param app: the ARI application name. One websocket per name: two desktop instances need
        two names (a second connection with the same name takes over the first).
    :param event_types: the ARI event types delivered to channel listeners (default: the ten
        events of the original design). The call model receives what it needs regardless.
    :param ring_capacity: frames the circular buffer holds before it overwrites the oldest.
    :param workers: threads of the dispatcher's pool (ordered lanes run on them).
    :param reconnect_min: first reconnect delay, seconds.
    :param reconnect_max: cap of the exponential reconnect delay, seconds.
    :param reconnect_jitter: random fraction (0..1) added to or removed from each delay.
    :param connect_timeout: seconds for a websocket or TCP connect.
    :param request_timeout: seconds for one REST request.
    :param ping_interval: seconds of websocket silence before a keep-alive ping; a connection
        silent for twice this long (no pong) is treated as dead.
    :param verify_tls: ``True`` (the default) verifies the server certificate against the
        system CAs, a string is the path of a CA bundle, ``False`` disables verification.
    :param lane_backlog_warning: events waiting in one dispatcher lane before a warning is logged.
    :param subscribe_bridges: subscribe ``bridge:`` (all bridges) besides the endpoints, so that
        bridge events arrive (endpoint subscriptions deliver none on Asterisk 22).
    :param server_filter: install the server-side event filter (``PUT eventFilter``).
    :param max_message_size: bytes of one websocket message, all its fragments together; a
        longer one fails the connection (which is re-established).
    :param max_handshake_bytes: bytes of the server's answer head to the websocket upgrade.
    :param max_handshake_headers: header lines in that answer.
    :param healthy_after: seconds a websocket must stay up before it counts as healthy: one
        that closes sooner does not reset the reconnect backoff.
    :param replaced_recheck: seconds after ``ApplicationReplaced`` before the client first
        checks whether the application name is free again; the interval then doubles up to
        ``reconnect_max`` * 10; the name counts as free when Asterisk forgot the application
        or lists it without the all-bridges subscription a connected client holds (the rule
        is in "Guarantees under failure").
    :param ring_bytes: bytes of frames the circular buffer holds before it overwrites the
        oldest (besides ``ring_capacity``; 0: no byte bound).
    :param lane_capacity: parsed events one line's lane holds; past it that line's oldest
        events are dropped, announced (``on_events_lost``, reason ``lane_overflow``, with the
        line) and the line is resynchronised.
    :param lane_total_capacity: parsed events all lanes hold together; past it the oldest
        events of the longest lane are dropped the same way.
    :param dedup_window_bytes: bytes of recent frames the duplicate filter remembers (besides
        its 256 frames).
    """

    url: str = "http://127.0.0.1:8088"
    username: str = "asterisk"
    password: str = field(default="", repr=False)
    app: str = "asterisk-cti"
    event_types: Tuple[str, ...] = DEFAULT_EVENT_TYPES
    ring_capacity: int = 65536
    workers: int = 4
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0
    reconnect_jitter: float = 0.2
    connect_timeout: float = 10.0
    request_timeout: float = 10.0
    ping_interval: float = 20.0
    verify_tls: Union[bool, str] = True
    lane_backlog_warning: int = 1000
    subscribe_bridges: bool = True
    server_filter: bool = True
    max_message_size: int = 64 * 1024 * 1024
    max_handshake_bytes: int = 16 * 1024
    max_handshake_headers: int = 64
    healthy_after: float = 10.0
    replaced_recheck: float = 30.0
    ring_bytes: int = 16 * 1024 * 1024
    lane_capacity: int = 4096
    lane_total_capacity: int = 8192
    dedup_window_bytes: int = 1024 * 1024

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError("url", "must be http:// or https:// with a host name")
        if parts.username or parts.password:
            raise ConfigurationError(
                "url", "must not contain credentials; use username and password"
            )
        if parts.query or parts.fragment:
            raise ConfigurationError("url", "must not have a query or fragment")
        try:
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise ConfigurationError("url", "has an invalid port") from None
        if not isinstance(self.username, str) or not self.username:
            raise ConfigurationError("username", "must be a non-empty string")
        if not isinstance(self.password, str):
            raise ConfigurationError("password", "must be a string")
        if not isinstance(self.app, str) or not self.app.strip() or len(self.app) > 200:
            raise ConfigurationError("app", "must be a non-empty string of at most 200 characters")
        validate_app_name(self.app)
        if isinstance(self.event_types, str) or not all(
            isinstance(t, str) and t for t in self.event_types
        ):
            raise ConfigurationError("event_types", "must be a sequence of ARI event type names")
        object.__setattr__(self, "event_types", tuple(dict.fromkeys(self.event_types)))
        _check_int("ring_capacity", self.ring_capacity, 16)
        _check_int("workers", self.workers, 1)
        _check_int("lane_backlog_warning", self.lane_backlog_warning, 1)
        _check_int("max_message_size", self.max_message_size, 1024)
        _check_int("max_handshake_bytes", self.max_handshake_bytes, 1024)
        _check_int("max_handshake_headers", self.max_handshake_headers, 8)
        _check_int("ring_bytes", self.ring_bytes, 0)
        _check_int("lane_capacity", self.lane_capacity, 16)
        _check_int("lane_total_capacity", self.lane_total_capacity, 16)
        _check_int("dedup_window_bytes", self.dedup_window_bytes, 0)
        for name in ("reconnect_min", "reconnect_max", "connect_timeout", "request_timeout",
                     "ping_interval", "healthy_after", "replaced_recheck"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigurationError(name, "must be a positive number of seconds")
        if self.reconnect_max < self.reconnect_min:
            raise ConfigurationError("reconnect_max", "must not be below reconnect_min")
        jitter = self.reconnect_jitter
        if isinstance(jitter, bool) or not isinstance(jitter, (int, float)) or not 0 <= jitter <= 1:
            raise ConfigurationError("reconnect_jitter", "must be a number from 0 to 1")
        if not isinstance(self.verify_tls, (bool, str)) or self.verify_tls == "":
            raise ConfigurationError("verify_tls", "must be True, False or a CA bundle path")
        if isinstance(self.verify_tls, str) and not os.path.exists(self.verify_tls):
            raise ConfigurationError("verify_tls", "CA bundle file does not exist")

    # -- derived values ---------------------------------------------------------------------

    @property
    def ari_url(self) -> str:
        """The ARI REST root, always ending in ``/ari`` (no trailing slash)."""
        parts = urlsplit(self.url)
        path = parts.path.rstrip("/")
        if not path.endswith("/ari"):
            path += "/ari"
        return urlunsplit((parts.scheme, parts.netloc, path, "", ""))

    @property
    def events_url(self) -> str:
        """The websocket URL of ``/ari/events`` for :attr:`app` (no credentials in it)."""
        parts = urlsplit(self.ari_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        query = "app=" + quote(self.app, safe="") + "&subscribeAll=false"
        return urlunsplit((scheme, parts.netloc, parts.path + "/events", query, ""))

    def replace(self, **changes: Any) -> CtiConfig:
        """Return a copy with some fields changed (validated again).

        :param changes: field names and their new values.
        :returns: a new :class:`CtiConfig`.
        :raises ConfigurationError: if a value is invalid.
        """
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(
        cls, environ: Optional[Mapping[str, str]] = None, **overrides: Any
    ) -> CtiConfig:
        """Build a configuration from environment variables.

        ``ASTERISK_CTI_URL``, ``ASTERISK_CTI_USERNAME``, ``ASTERISK_CTI_PASSWORD``,
        ``ASTERISK_CTI_APP``, ``ASTERISK_CTI_EVENTS`` (comma-separated event types),
        ``ASTERISK_CTI_VERIFY_TLS`` (``0``/``false`` disables verification),
        ``ASTERISK_CTI_CA_BUNDLE`` (path of a CA bundle), ``ASTERISK_CTI_RING_CAPACITY``,
        ``ASTERISK_CTI_WORKERS``, ``ASTERISK_CTI_CONNECT_TIMEOUT``,
        ``ASTERISK_CTI_REQUEST_TIMEOUT``. Unset variables keep the defaults; keyword overrides
        win over the environment.

        :param environ: the mapping to read (default: ``os.environ``).
        :param overrides: field values that take precedence.
        :returns: a validated :class:`CtiConfig`.
        :raises ConfigurationError: naming the field whose variable holds a bad value.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for var in ("URL", "USERNAME", "PASSWORD", "APP"):
            if env.get("ASTERISK_CTI_" + var):
                values[var.lower()] = env["ASTERISK_CTI_" + var]
        if env.get("ASTERISK_CTI_EVENTS"):
            values["event_types"] = tuple(
                t.strip() for t in env["ASTERISK_CTI_EVENTS"].split(",") if t.strip()
            )
        verify = env.get("ASTERISK_CTI_VERIFY_TLS", "").strip().lower()
        if verify:
            if verify in ("0", "false", "no", "off"):
                values["verify_tls"] = False
            elif verify in ("1", "true", "yes", "on"):
                values["verify_tls"] = True
            else:
                raise ConfigurationError("verify_tls", "ASTERISK_CTI_VERIFY_TLS must be 0 or 1")
        if env.get("ASTERISK_CTI_CA_BUNDLE"):
            values["verify_tls"] = env["ASTERISK_CTI_CA_BUNDLE"]
        for var, name, conv in (
            ("RING_CAPACITY", "ring_capacity", int),
            ("WORKERS", "workers", int),
            ("CONNECT_TIMEOUT", "connect_timeout", float),
            ("REQUEST_TIMEOUT", "request_timeout", float),
        ):
            raw = env.get("ASTERISK_CTI_" + var)
            if raw:
                try:
                    values[name] = conv(raw)
                except ValueError:
                    raise ConfigurationError(name, f"ASTERISK_CTI_{var} is not a number") from None
        values.update(overrides)
        return cls(**values)


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(name, f"must be an integer >= {minimum}")


#: Characters no app name or monitor source may hold: whitespace and control characters
#: (never part of an Asterisk name; they corrupt logs and URLs), ``,`` (ARI reads a comma as
#: a list separator: ``app=a,b`` registers two applications, ``eventSource=x,y`` subscribes
#: two sources) and, in app names, ``/`` (it would split the ``/applications/{app}`` path).
_FORBIDDEN_EVERYWHERE = frozenset(",")


def _bad_char(text: str, extra: str = "") -> Optional[str]:
    for c in text:
        if c.isspace() or not c.isprintable() or c in _FORBIDDEN_EVERYWHERE or c in extra:
            return c
    return None


def validate_app_name(app: str) -> str:
    """Check an ARI application name: no whitespace or control characters, no ``,``, no ``/``.

    :returns: ``app`` unchanged.
    :raises ConfigurationError: naming the bad value and the character.
    """
    c = _bad_char(app, "/\\")
    if c is not None:
        raise ConfigurationError(
            "app", f"{app!r} holds {c!r}: an ARI application name may not contain "
            "whitespace, control characters, commas or slashes")
    return app


def basic_auth_header(username: str, password: str) -> str:
    """The value of an HTTP basic ``Authorization`` header (the websocket handshake and the
    REST session both send it; it never goes into a URL)."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return "Basic " + token
