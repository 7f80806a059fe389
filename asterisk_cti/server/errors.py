"""The errors the server answers a refused request with (their class name is the ``type``
of the response's ``error``)."""

from __future__ import annotations

from asterisk_cti import AsteriskCtiError, ConnectError

__all__ = ["AccessDeniedError", "BadRequestError", "BrokerTlsError", "ServerBusyError",
           "ServerRequestError"]


class BrokerTlsError(ConnectError):
    """TLS with the MQTT broker failed: its certificate is not trusted (``ca_file``) or does
    not name the host, or the handshake failed."""


class ServerRequestError(AsteriskCtiError):
    """A control request the server refused before acting on it."""


class AccessDeniedError(ServerRequestError):
    """The target connection or line is not one of the requesting agent's lines."""


class BadRequestError(ServerRequestError):
    """The request is not valid JSON, names an unknown operation or lacks a field."""


class ServerBusyError(ServerRequestError):
    """Too many requests are waiting already (``ServerConfig.max_pending``)."""
