"""The MQTT topic names of a site (pure; any thread).

==========================================  =====================================  =========
topic                                       what                                   who writes
==========================================  =====================================  =========
``cti/SITE/line/EXT/events``                every CTI event of the line (QoS 1)    server
``cti/SITE/line/EXT/state``                 the line's snapshot (retained, QoS 1)  server
``cti/SITE/server/status``                  the server's liveness (retained, will) server
                                            and the active/standby lock
``cti/SITE/server/barrier/INSTANCE``        a server's own round-trip marker       server
``cti/SITE/agent/AGENT/request``            control requests (MQTT 5 request)      agent
``cti/SITE/agent/AGENT/response``           their answers (correlation data)       server
==========================================  =====================================  =========

``EXT`` is the line's resource without its technology (``PJSIP/1000`` -> ``1000``), so line
resources must be unique on a site. Agents read only ``cti/SITE/line/EXT/#`` of their lines
and their own ``response`` topic, and write only their own ``request`` topic (the broker's
ACL, :mod:`asterisk_cti.server.broker`).
"""

from __future__ import annotations

__all__ = [
    "line_events", "line_resource", "line_state", "request_filter", "agent_request",
    "agent_response", "server_barrier", "server_status",
]


def line_resource(line: str) -> str:
    """``PJSIP/1000`` -> ``1000`` (the topic level of a line)."""
    return line.split("/", 1)[1] if "/" in line else line


def line_events(site: str, line: str) -> str:
    """The topic of a line's CTI events."""
    return f"cti/{site}/line/{line_resource(line)}/events"


def line_state(site: str, line: str) -> str:
    """The retained topic of a line's snapshot."""
    return f"cti/{site}/line/{line_resource(line)}/state"


def server_status(site: str) -> str:
    """The retained liveness topic of the site's server (its last will too)."""
    return f"cti/{site}/server/status"


def server_barrier(site: str, instance: str) -> str:
    """A server instance's own topic: a token it publishes there comes back after the
    retained status it subscribed to before (a barrier)."""
    return f"cti/{site}/server/barrier/{instance}"


def agent_request(site: str, agent: str) -> str:
    """Where agent ``agent`` publishes its control requests."""
    return f"cti/{site}/agent/{agent}/request"


def agent_response(site: str, agent: str) -> str:
    """Where the server answers agent ``agent``'s requests."""
    return f"cti/{site}/agent/{agent}/response"


def request_filter(site: str) -> str:
    """The server's subscription to every agent's requests."""
    return f"cti/{site}/agent/+/request"
