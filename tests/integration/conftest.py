"""Fixtures for tests against the real-Asterisk lab (``tests/integration/lab``).

- ``lab`` (session): provisions the cached root if needed, starts Asterisk and the three
  phones as lab instance ``pytest`` (ports shifted by 100 so that a ``make lab`` instance can
  run beside it), and stops every process at the end of the session, also after failures.
- ``phones`` (function): ``{"1000": Phone, "1002": Phone, "1006": Phone}``, all idle and with
  no channel left in Asterisk, before and after each test.
- ``ari_config`` (session): URL, user, password and Stasis application of the lab's ARI.
- ``cti`` (function): a started :class:`~asterisk_cti.CtiClient` of its own application
  (``cti-it-<n>``) monitoring ``PJSIP/1000``, ``PJSIP/1002`` and ``PJSIP/1006``, with a
  :class:`~.cti_recorder.CtiRecorder` (``cti.events``); stopped after the test, and no
  ``asterisk-cti-*`` thread may be left. ``cti_factory(app=..., monitor=...)`` makes more
  (call-control tests that need the switch of ``7XXX`` use ``app=lab.config.app``).

Without root, ``chroot`` or ``mmdebstrap`` the tests are skipped, unless
``ASTERISK_CTI_LAB_REQUIRED=1`` (``make integration`` sets it), which turns that into a failure.
On a failing test the report gets the tail of Asterisk's log and the phones' last events.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any, Callable, Dict, Generator, Iterator, List, Optional, Sequence
from urllib.parse import quote

import pytest

from asterisk_cti import CtiClient, CtiConfig

from .cti_recorder import CtiRecorder
from .lab import AriConfig, Lab, LabConfig, Phone

#: Per-test timeout for tests in this directory that set none (the first test also pays for
#: provisioning the root, about 20 s, more on a slow mirror).
LAB_TEST_TIMEOUT = 300
#: The test session's lab ports are the defaults plus this (ARI on 8188).
LAB_PORT_OFFSET = 100

#: The lines every ``cti`` client monitors.
LAB_LINES = ("PJSIP/1000", "PJSIP/1002", "PJSIP/1006")

_HERE = Path(__file__).resolve().parent
_active_lab: Optional[Lab] = None
_active_recorders: List[CtiRecorder] = []
_app_numbers = itertools.count(1)


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
    if report.failed:
        for recorder in list(_active_recorders):
            report.sections.append((f"CTI events of {recorder.name}", recorder.format() + "\n"))


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
    name = os.environ.get("ASTERISK_CTI_LAB_INSTANCE", "pytest")
    instance = Lab(LabConfig.from_env(name, port_offset=LAB_PORT_OFFSET))
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



class LabCti:
    """A started client of the lab and its recorder; other attributes are the client's.

    :ivar client: the :class:`~asterisk_cti.CtiClient`.
    :ivar events: the :class:`~.cti_recorder.CtiRecorder` registered on it before start.
    """

    def __init__(self, client: CtiClient, events: CtiRecorder) -> None:
        self.client = client
        self.events = events

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    @property
    def app(self) -> str:
        """The client's ARI application name."""
        return self.client.config.app


CtiFactory = Callable[..., LabCti]


def _sdk_threads() -> List[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("asterisk-cti")]


def _drop_application(lab: Lab, app: str) -> None:
    """Remove what a stopped client left subscribed, so Asterisk forgets the application."""
    response = lab.ari("GET", f"/applications/{quote(app)}")
    if response.status_code != 200:
        return
    body = response.json()
    sources = [f"endpoint:{e}" for e in body.get("endpoint_ids") or []]
    sources += [f"bridge:{b}" for b in body.get("bridge_ids") or []]
    sources += [f"channel:{c}" for c in body.get("channel_ids") or []]
    for source in sources:
        lab.ari("DELETE", f"/applications/{quote(app)}/subscription",
                params={"eventSource": source})


@pytest.fixture
def cti_factory(lab: Lab, ari_config: AriConfig) -> Iterator[CtiFactory]:
    """``make(app=None, monitor=LAB_LINES, start=True, **config)``: a client of the lab with
    a recorder; every client made is stopped after the test and must leave no thread."""
    made: List[LabCti] = []

    def make(app: Optional[str] = None, monitor: Sequence[str] = LAB_LINES,
             start: bool = True, **config: Any) -> LabCti:
        app = app or f"cti-it-{os.getpid()}-{next(_app_numbers)}"
        settings: Dict[str, Any] = {"reconnect_min": 0.2, "reconnect_max": 2.0,
                                    "request_timeout": 5.0, "connect_timeout": 5.0}
        settings.update(config)
        client = CtiClient(CtiConfig(url=ari_config.url, username=ari_config.user,
                                     password=ari_config.password, app=app, **settings))
        recorder = CtiRecorder(app)
        client.add_listener(recorder)
        if monitor:
            client.monitor(*monitor)
        handle = LabCti(client, recorder)
        made.append(handle)
        _active_recorders.append(recorder)
        if start:
            client.start(timeout=15.0)
        return handle

    try:
        yield make
    finally:
        stopped = True
        for handle in made:
            stopped &= handle.client.stop(timeout=10.0)
            handle.client.close()
            _active_recorders.remove(handle.events)
        for handle in made:
            _drop_application(lab, handle.app)
        deadline = time.monotonic() + 5.0
        while _sdk_threads() and time.monotonic() < deadline:
            time.sleep(0.05)
        left = _sdk_threads()
        assert stopped and not left, f"client threads left after stop(): {left}"


@pytest.fixture
def cti(cti_factory: CtiFactory, phones: Dict[str, Phone]) -> LabCti:
    """A started client (application ``cti-it-<pid>-<n>``) monitoring the three lab lines,
    its recorder in ``cti.events``; the phones are idle before and after the test."""
    return cti_factory()
