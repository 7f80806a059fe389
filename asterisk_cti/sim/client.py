"""A client of the simulator's admin REST (:mod:`asterisk_cti.sim.admin`), standard library only.

Tests, the example phone bar and ``asterisk-cti sim`` use it to drive a simulator that runs in
another process. Each method is one blocking HTTP request on the caller's thread; the client
keeps no state besides its settings and is safe to share between threads.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, List, Optional, cast

__all__ = ["SimAdmin", "SimAdminError"]

JsonObj = Dict[str, Any]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: it would carry the credentials to another host."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# no proxy from the environment, no redirects: the credentials go to the given URL only
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


class SimAdminError(RuntimeError):
    """The admin request failed.

    :ivar status: the HTTP status (0 when the simulator could not be reached).
    :ivar message: the simulator's message.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}" if status else message)
        self.status = status
        self.message = message


class SimAdmin:
    """Drive a running simulator through its admin REST.

    :param url: the simulator's base URL, e.g. ``http://127.0.0.1:8088`` (``/ari`` or
        ``/sim`` at the end is ignored); only ``http`` and ``https`` are accepted.
    :param username: the ARI user of the simulator.
    :param password: its password (sent only to ``url``, never shown in the repr or errors).
    :param timeout: seconds one request may take (``wait_ringing`` adds its own timeout).
    :raises ValueError: the URL is not an http(s) URL.

    Every method is one blocking request on the calling thread (safe from any thread); a
    refused request raises :class:`SimAdminError`.
    """

    def __init__(self, url: str, username: str, password: str, timeout: float = 10.0) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("the simulator URL must be http://host:port")
        if parts.username or parts.password:
            raise ValueError("give the credentials as arguments, not in the URL")
        base = url.rstrip("/")
        for suffix in ("/ari", "/sim"):
            if base.endswith(suffix):
                base = base[: -len(suffix)]
        self.url = base
        self.username = username
        self._auth = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"SimAdmin(url={self.url!r}, username={self.username!r})"

    # -- plumbing ----------------------------------------------------------------------------
    def _request(self, method: str, path: str, params: Optional[Dict[str, str]] = None,
                 timeout: float = 0.0) -> Any:
        query = "?" + urllib.parse.urlencode(params) if params else ""
        req = urllib.request.Request(
            f"{self.url}/sim/{path}{query}", method=method,
            headers={"Authorization": self._auth, "Accept": "application/json"},
        )
        try:
            with _OPENER.open(req, timeout=self.timeout + timeout) as resp:
                data = resp.read()
        except urllib.error.HTTPError as exc:
            raise SimAdminError(exc.code, _message(exc.read(), exc.reason)) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SimAdminError(0, f"simulator unreachable at {self.url}: {reason}") from None
        if not data:
            return None
        try:
            return json.loads(data)
        except ValueError:
            raise SimAdminError(0, "the simulator answered something that is not JSON") from None

    def _post(self, path: str, **params: str) -> Any:
        return self._request("POST", path, params)

    # -- listing -----------------------------------------------------------------------------
    def phones(self) -> List[JsonObj]:
        """The phones: ``extension``, ``endpoint``, ``name``, ``state``, ``channel_ids``."""
        return cast(List[JsonObj], self._request("GET", "phones"))

    def calls(self) -> List[JsonObj]:
        """The live channels: ``id``, ``name``, ``state``, ``endpoint``, ``caller``,
        ``connected``, ``held``, ``bridge_id``."""
        return cast(List[JsonObj], self._request("GET", "calls"))

    # -- a phone's actions -------------------------------------------------------------------
    def dial(self, extension: str, to: str) -> str:
        """Phone ``extension`` calls ``to``; returns the new channel's id."""
        return str(self._post(f"phones/{_seg(extension)}/dial", to=to)["channel_id"])

    def answer(self, extension: str) -> None:
        """Phone ``extension`` answers its ringing call."""
        self._post(f"phones/{_seg(extension)}/answer")

    def reject(self, extension: str) -> None:
        """Phone ``extension`` declines its ringing call (486)."""
        self._post(f"phones/{_seg(extension)}/reject")

    def hangup(self, extension: str) -> None:
        """Phone ``extension`` hangs up its current call."""
        self._post(f"phones/{_seg(extension)}/hangup")

    def hold(self, extension: str) -> None:
        """Phone ``extension`` puts its call on hold."""
        self._post(f"phones/{_seg(extension)}/hold")

    def resume(self, extension: str) -> None:
        """Phone ``extension`` takes its call off hold."""
        self._post(f"phones/{_seg(extension)}/resume")

    def mute(self, extension: str) -> None:
        """Phone ``extension`` stops talking."""
        self._post(f"phones/{_seg(extension)}/mute")

    def unmute(self, extension: str) -> None:
        """Phone ``extension`` talks again."""
        self._post(f"phones/{_seg(extension)}/unmute")

    def dtmf(self, extension: str, digits: str) -> None:
        """Phone ``extension`` sends DTMF (``*2`` + extension: attended transfer)."""
        self._post(f"phones/{_seg(extension)}/dtmf", digits=digits)

    def transfer(self, extension: str, to: str) -> None:
        """Phone ``extension`` blind-transfers its call to ``to`` (SIP REFER)."""
        self._post(f"phones/{_seg(extension)}/transfer", to=to)

    def wait_ringing(self, extension: str, timeout: float = 5.0) -> str:
        """Block until a call rings at ``extension`` (at most 30 s); returns its channel id.

        :raises SimAdminError: 409 when nothing rang in time.
        """
        result = self._request("POST", f"phones/{_seg(extension)}/wait_ringing",
                               {"timeout": f"{timeout:g}"}, timeout)
        return str(result["channel_id"])

    def set_registered(self, extension: str, registered: bool) -> None:
        """Register or unregister phone ``extension`` (EndpointStateChange)."""
        self._post(f"phones/{_seg(extension)}/register",
                   registered="true" if registered else "false")

    # -- the simulator -----------------------------------------------------------------------
    def restart(self, boot_time: Optional[float] = None) -> None:
        """``core restart now``: every websocket dropped, the PBX down for ``boot_time``
        seconds (connection refused, 404, 503), then back with a new ``startup_time``."""
        self._request("POST", "restart",
                      {"boot_time": f"{boot_time:g}"} if boot_time is not None else None)

    def drop_websockets(self) -> None:
        """Cut every websocket without a close frame (a network blip)."""
        self._post("drop_websockets")

    # -- the outside world -------------------------------------------------------------------
    def trunk_call(self, number: str, to: str, name: str = "") -> str:
        """An outside caller ``number`` (e.g. ``+33 1 23 45 67 89``) calls ``to`` through
        ``PJSIP/trunk``; returns the trunk channel's id."""
        params = {"from": number, "to": to}
        if name:
            params["name"] = name
        return str(self._request("POST", "trunk/call", params)["channel_id"])

    def call_dtmf(self, channel_id: str, digits: str) -> None:
        """The far end of channel ``channel_id`` (an outside caller) keys ``digits``."""
        self._post(f"calls/{_seg(channel_id)}/dtmf", digits=digits)

    def hangup_call(self, channel_id: str) -> None:
        """Hang up one channel from its side (an outside caller hanging up)."""
        self._post(f"calls/{_seg(channel_id)}/hangup")


def _seg(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _message(data: bytes, reason: object) -> str:
    try:
        body = json.loads(data)
    except ValueError:
        return str(reason)
    message = body.get("message") if isinstance(body, dict) else None
    if isinstance(message, str):
        return message
    return str(reason)
