"""The call-centre benchmark cannot rot silently: a quick run (a real mosquitto, the server,
desktops in two processes, direct clients) loses no event and reports every figure.
Structure and loss only; no timing is asserted (the machine is shared)."""

from __future__ import annotations

import math
import os
import shutil

import pytest

from benchmarks import callcentre

pytestmark = pytest.mark.skipif(
    not (shutil.which("mosquitto") or os.access("/usr/sbin/mosquitto", os.X_OK)),
    reason="mosquitto is needed (make broker-deps)")


def test_quick_run_loses_nothing_and_reports_every_figure() -> None:
    plan = callcentre.Plan.quick()
    plan.duration = 4.0
    plan.direct_duration = 3.0
    logged: list[str] = []
    run = callcentre.run_once(plan, log=logged.append)

    assert len(run.rates) == 1
    r = run.rates[0]
    assert r.calls >= 60  # 20 calls/s for 4 s
    # the PBX sees the server's application only, whatever the number of desktops
    assert (r.pbx_apps, r.pbx_websockets) == (1, 1)
    # every desktop received exactly the events the server counted for its line
    assert r.events_expected > 0
    assert r.events_received == r.events_expected
    assert (r.lost, r.duplicated, r.desktops_short) == (0, 0, 0)
    # half the lines have a desktop: they get a share of all the events
    assert 0 < r.events_expected < r.events_published
    # one latency per event received, all finite and positive
    for value in (r.p50_ms, r.p99_ms, r.max_ms, r.server_p50_ms, r.server_p99_ms):
        assert math.isfinite(value) and value > 0
    assert r.p50_ms <= r.p99_ms <= r.max_ms
    assert set(r.cpu) == {"server", "broker", "desktops", "pbx"}
    assert all(v > 0 for v in r.cpu.values())
    assert r.pbx_frames_server > r.calls  # several ARI frames per call to the one app
    # every desktop got its line's retained snapshot at least
    assert run.snapshots_received >= plan.desktops

    d = run.direct
    assert d is not None and d.clients == plan.direct
    assert d.pbx_apps == plan.direct + 1
    assert d.calls > 0 and d.events_direct > 0
    # each direct application costs the PBX frames of its own: more than the one server
    assert d.frames_direct > d.frames_server

    table, notes = callcentre.report([run], plan)
    text = "\n".join(table + notes)
    assert "applications the PBX sees with 100 desktops: 1" in text
    assert "lost events at 20 calls/s: 0" in text
    assert "100 direct (x10, linear)" in text


def test_benchmarks_page_carries_the_call_centre_section() -> None:
    # make bench rewrites docs/benchmarks.rst and appends this section; both must agree
    page = (callcentre.ROOT / "docs" / "benchmarks.rst").read_text(encoding="utf-8")
    assert page.rstrip().endswith(callcentre.DOC_SECTION.rstrip())
    assert callcentre.DOC_INC.is_file()
