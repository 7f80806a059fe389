"""The call-centre benchmark cannot rot silently: a quick run (a real mosquitto, the server,
RemoteClient desktops in two processes, direct clients) loses no event and reports every
figure; the plain-paho variant kept for comparison works too. Structure and loss only; no
timing is asserted (the machine is shared)."""

from __future__ import annotations

import math

import pytest

from benchmarks import callcentre


def test_quick_run_loses_nothing_and_reports_every_figure() -> None:
    plan = callcentre.Plan.quick()
    plan.duration = 4.0
    plan.direct_duration = 3.0
    logged: list[str] = []
    assert plan.desktop == "remote"  # what users run
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
    for value in (r.p50_ms, r.p99_ms, r.max_ms, r.server_p50_ms, r.server_p99_ms,
                  r.desktop_p50_ms, r.desktop_p99_ms):
        assert math.isfinite(value) and value > 0
    assert r.p50_ms <= r.p99_ms <= r.max_ms
    # the desktop's share (paho's callback -> the listener) is a part of the whole
    assert r.desktop_p50_ms < r.p50_ms
    assert set(r.cpu) == {"server", "broker", "desktops", "pbx"}
    assert all(v > 0 for v in r.cpu.values())
    assert r.pbx_frames_server > r.calls  # several ARI frames per call to the one app
    # every desktop's listener got its line's snapshot (from the retained state) at least
    assert run.snapshots_received >= plan.desktops
    # each RemoteClient (workers=1, no connection listener) costs its process two threads:
    # paho's network thread and one lane thread, no more
    assert [u["desktops"] for u in run.desktop_usage_end] == [50, 50]
    for usage in run.desktop_usage_end:
        added = usage["after"]["threads"] - usage["before"]["threads"]
        assert added == 2 * usage["desktops"]
        assert usage["after"]["rss_mib"] > 0

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
    assert "with 100 RemoteClient desktops" in text
    assert "100 direct (x10, linear)" in text
    assert "desktop process" in text and "threads / desktop" in text


def test_plain_paho_variant_loses_nothing() -> None:
    plan = callcentre.Plan(lines=100, desktops=20, workers=1, rates=(10.0,), duration=2.0,
                           talk_time=0.5, direct=0, desktop="paho")
    run = callcentre.run_once(plan, log=lambda s: None)
    r = run.rates[0]
    assert r.events_expected > 0
    assert r.events_received == r.events_expected
    assert (r.lost, r.duplicated, r.desktops_short) == (0, 0, 0)
    assert math.isfinite(r.p99_ms) and r.p99_ms > 0
    assert run.snapshots_received >= plan.desktops  # the retained state topic
    table, notes = callcentre.report([run], plan)
    assert "with 20 plain paho desktops" in "\n".join(notes)
    assert "plain paho" in "\n".join(table)  # the desktop process row


def test_unknown_desktop_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown desktop kind"):
        callcentre.make_desktop("telnet", 1883, "100000", "pw", lambda *a: None)


def test_benchmarks_page_carries_the_call_centre_section() -> None:
    # make bench rewrites docs/benchmarks.rst and appends this section; both must agree
    page = (callcentre.ROOT / "docs" / "benchmarks.rst").read_text(encoding="utf-8")
    assert page.rstrip().endswith(callcentre.DOC_SECTION.rstrip())
    assert callcentre.DOC_INC.is_file()
