"""401 and 403 are different answers (issue 10, class 9): 403 is "Write access denied" for a
read-only ARI user or "Access denied by ACL"; the password is not the problem."""

from __future__ import annotations

import pytest

from asterisk_cti import CtiClient, CtiConfig
from asterisk_cti.errors import AuthenticationError, ForbiddenError
from asterisk_cti.testing.fake_ari import FakeAri
from asterisk_cti.testing.fake_ws import FakeWebSocket


@pytest.mark.parametrize(("status", "cls", "words"), [
    (401, AuthenticationError, "check username/password"),
    (403, ForbiddenError, "forbidden (ari.conf ACL?)"),
])
def test_start_tells_a_refused_password_from_a_forbidden_user(status: int, cls: type,
                                                              words: str) -> None:
    ws = FakeWebSocket()
    ws.refuse(times=100, status=status)
    config = CtiConfig(url="http://asterisk.test:8088", username="asterisk", password="secret",
                       app="cti", request_timeout=2.0, connect_timeout=2.0)
    client = CtiClient(config, transport_factory=ws.factory, session=FakeAri().session())
    with pytest.raises(AuthenticationError) as info:
        client.start(timeout=5)
    assert type(info.value) is cls and info.value.status == status
    assert words in str(info.value)
    if status == 403:
        assert "password" not in str(info.value)
    assert not client.running
