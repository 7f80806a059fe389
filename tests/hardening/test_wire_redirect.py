"""Class 1: credentials go only to the configured server.

A hostile server answers the websocket upgrade with a redirect to another port on
127.0.0.1, where a second server records whatever arrives. The client must fail with a
:class:`~asterisk_cti.RedirectError` naming the ``Location``, and the second server must
never see a connection, let alone an ``Authorization`` header."""

from __future__ import annotations

import pytest

from asterisk_cti import CtiClient, CtiConfig, RedirectError
from asterisk_cti.pipeline.transport import basic_auth_header, websocket_transport

from .hostile_ws import Conn, HostileServer

AUTH = {"Authorization": basic_auth_header("cti", "s3cret")}


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirected_upgrade_is_an_error_naming_the_location(status: int) -> None:
    with HostileServer(lambda c: c.upgrade()) as target:
        location = f"ws://127.0.0.1:{target.port}/stolen"

        def redirect(c: Conn) -> None:
            c.read_request()
            c.send(f"HTTP/1.1 {status} Moved\r\nLocation: {location}\r\n"
                   "Content-Length: 0\r\n\r\n".encode())
            c.wait_closed(2.0)

        with HostileServer(redirect) as front:
            with pytest.raises(RedirectError) as info:
                websocket_transport(front.ws_url, AUTH, connect_timeout=3.0,
                                    read_timeout=1.0, verify_tls=True)
            assert info.value.status == status
            assert info.value.location == location
            assert location in str(info.value)
            assert "s3cret" not in str(info.value)
            assert front.requests[0].authorization == AUTH["Authorization"]
            assert len(front.requests) == 1  # no second handshake on the same server either
        assert target.accepted == 0
        assert target.requests == []


def test_start_fails_at_once_on_a_redirect_and_sends_nothing_elsewhere() -> None:
    with HostileServer(lambda c: c.upgrade()) as target:
        def redirect(c: Conn) -> None:
            c.read_request()
            c.send(f"HTTP/1.1 307 Temporary Redirect\r\nLocation: "
                   f"ws://127.0.0.1:{target.port}/ari/events\r\n\r\n".encode())

        with HostileServer(redirect) as front:
            cfg = CtiConfig(url=front.url, username="cti", password="s3cret", app="desk",
                            connect_timeout=2.0, request_timeout=2.0)
            client = CtiClient(cfg, model=False)
            with pytest.raises(RedirectError, match=str(target.port)):
                client.start(timeout=10.0)
            assert not client.running
        assert target.accepted == 0
