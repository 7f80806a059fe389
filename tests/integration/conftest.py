"""Fixtures for tests against the real-Asterisk lab (``tests/integration/lab``).

- ``lab`` (session): provisions the cached root if needed, starts Asterisk and the three
  phones as lab instance ``pytest`` (ports shifted by 100 so that a ``make lab`` instance can
  run beside it), and stops every process at the end of the session, also after failures.
- ``phones`` (function): ``{"1000": Phone, "1002": Phone, "1006": Phone}``, all idle and with
  no channel left in Asterisk, before and after each test.
- ``ari_config`` (session): URL, user, password and Stasis application of the lab's ARI.

Without root, ``chroot`` or ``mmdebstrap`` the tests are skipped, unless
``ASTERISK_CTI_LAB_REQUIRED=1`` (``make integration`` sets it), which turns that into a failure.
On a failing test the report gets the tail of Asterisk's log and the phones' last events.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path
from types import FrameType
from typing import Any, Dict, Generator, Iterator, List, Optional

import pytest

from .lab import AriConfig, Lab, LabConfig, Phone

#: Per-test timeout for tests in this directory that set none (the first test also pays for
#: provisioning the root, about 20 s, more on a slow mirror).
LAB_TEST_TIMEOUT = 300
#: The test session's lab ports are the defaults plus this (ARI on 8188).
LAB_PORT_OFFSET = 100

_HERE = Path(__file__).resolve().parent
_active_lab: Optional[Lab] = None


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    """Mark this directory's tests ``integration`` and give them the lab's timeout."""
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.integration)
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(LAB_TEST_TIMEOUT))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    """Attach Asterisk's log tail and the phones' recent events to a failing test's report."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    lab = _active_lab
    if report.failed and lab is not None and "lab" in getattr(item, "fixturenames", ()):
        report.sections.append(("Asterisk log tail", lab.log_tail(80)))
        lines = []
        for ext, phone in lab.phones.items():
            recent = ", ".join(f"{e.type}({e.param})" for e in phone.events[-10:])
            lines.append(f"{ext} ({phone.state}): {recent}")
        report.sections.append(("lab phones", "\n".join(lines) + "\n"))


def _unavailable(reason: str) -> None:
    if os.environ.get("ASTERISK_CTI_LAB_REQUIRED") == "1":
        pytest.fail(f"the integration lab is required but cannot run: {reason}")
    pytest.skip(f"integration lab unavailable: {reason}")


def _interrupt(signum: int, frame: Optional[FrameType]) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """The started lab; stopped at the end of the session."""
    global _active_lab
    if os.geteuid() != 0:
        _unavailable("needs root (mmdebstrap, chroot)")
    for tool in ("chroot", "mmdebstrap"):
        if shutil.which(tool) is None:
            _unavailable(f"{tool} is not installed (apt-get install mmdebstrap)")
    instance = Lab(LabConfig.from_env("pytest", port_offset=LAB_PORT_OFFSET))
    instance.stop()  # processes an interrupted earlier session may have left
    # SIGTERM would end Python without running finalizers; as an interrupt, pytest tears down
    previous = signal.getsignal(signal.SIGTERM)
    if previous == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        instance.start()
        _active_lab = instance
        yield instance
    finally:
        _active_lab = None
        instance.stop()
        if previous == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="session")
def ari_config(lab: Lab) -> AriConfig:
    """URL, user, password and Stasis application name of the lab's ARI."""
    return lab.ari_config


@pytest.fixture
def phones(lab: Lab) -> Iterator[Dict[str, Phone]]:
    """The three phones, idle, with no channel left in Asterisk, before and after the test."""
    lab.reset_calls()
    yield dict(lab.phones)
    lab.reset_calls()


# The SDK's own fixtures go here, on top of these: a ``cti`` fixture that starts a CtiClient
# against ``ari_config`` (and stops it after the test) belongs to the SDK's integration tests.
