"""The one line that says what machine a benchmark ran on (both benchmark pages print it)."""

from __future__ import annotations

import datetime
import os
import platform


def machine() -> str:
    """``2 CPUs (nproc 2), AMD EPYC ..., Python 3.11.7, 2026-12-01``."""
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {cpu}, "
            f"Python {platform.python_version()}, {datetime.date.today().isoformat()}")
