"""The runs page's charts: runs started, completed and failed per interval, and the p50 /
p95 duration, over a time window, per interval and per workflow and environment.

Computed here, on the server, from one indexed read of the window (``created_at``): the
browser gets a few hundred numbers, never the runs. Percentiles are nearest-rank over
the finished runs' durations; SQLite has no percentile function, and one code path for
both databases keeps the two modes' charts identical.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone

from runtime.errors import RunRefused
from runtime.product_runs import RunFilter, runs_filtered

MAX_BUCKETS = 500
MAX_ROWS = 200_000  # a window with more is cut (the answer says so: ``truncated``)
INTERVALS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "6h": 21600, "1d": 86400}
FAILED = {"failed", "rolled_back"}
# A window's ends, with room for a day's arithmetic on either side (no OverflowError).
EARLIEST = datetime.min.replace(tzinfo=UTC) + timedelta(days=2)
LATEST = datetime.max.replace(tzinfo=UTC) - timedelta(days=2)


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def _window(f: RunFilter, interval: str | None) -> tuple[datetime, datetime, int]:
    for name, when in (("created_after", f.created_after), ("created_before", f.created_before)):
        if when is not None and not EARLIEST <= when <= LATEST:
            raise RunRefused(f"{name} is out of range", field=name)
    end = f.created_before or timezone.now()
    start = f.created_after or end - timedelta(hours=24)
    if start >= end:
        raise RunRefused("created_after must be before created_before", field="created_after")
    if interval is not None and interval not in INTERVALS:
        raise RunRefused(f"interval must be one of {', '.join(INTERVALS)}", field="interval")
    span = (end - start).total_seconds()
    step = INTERVALS.get(interval or "") or next(
        (s for s in INTERVALS.values() if span / s <= 60), INTERVALS["1d"]
    )
    if span / step > MAX_BUCKETS:
        raise RunRefused(f"interval: at most {MAX_BUCKETS} intervals per chart", field="interval")
    return start, end, step


def _summary(durations: list[float], statuses: list[str]) -> dict[str, Any]:
    durations.sort()
    return {
        "started": len(statuses),
        "completed": sum(1 for s in statuses if s == "completed"),
        "failed": sum(1 for s in statuses if s in FAILED),
        "p50_ms": percentile(durations, 50),
        "p95_ms": percentile(durations, 95),
    }


def runs_stats(
    *, f: RunFilter, interval: str | None, tags: dict[int, str], envs: dict[int, str]
) -> dict[str, Any]:
    """Buckets of ``interval`` (or one chosen for about 60 bars) over the filter's
    window (default: the last 24 hours), and the same figures per workflow x env."""
    start, end, step = _window(f, interval)
    window = replace(f, created_after=start, created_before=end)
    rows = list(
        runs_filtered(window)
        .order_by()
        .values_list("created_at", "started_at", "finished_at", "status", "workflow_id",
                     "environment_id")[: MAX_ROWS + 1]
    )  # fmt: skip
    truncated = len(rows) > MAX_ROWS
    count = math.ceil((end - start).total_seconds() / step)
    buckets: list[tuple[list[float], list[str]]] = [([], []) for _ in range(count)]
    groups: dict[tuple[int, int], tuple[list[float], list[str]]] = {}
    for created, started, finished, status, workflow_id, env_id in rows[:MAX_ROWS]:
        i = min(count - 1, int((created - start).total_seconds() // step))
        group = groups.setdefault((workflow_id, env_id), ([], []))
        for durations, statuses in (buckets[i], group):
            statuses.append(status)
            if started and finished:
                durations.append((finished - started).total_seconds() * 1000)
    return {
        "from": start,
        "to": end,
        "interval_s": step,
        "truncated": truncated,
        "buckets": [
            {"start": start + timedelta(seconds=i * step), **_summary(*b)}
            for i, b in enumerate(buckets)
        ],
        "groups": sorted(
            (
                {"workflow": tags.get(w, ""), "environment": envs.get(e, ""), **_summary(*g)}
                for (w, e), g in groups.items()
            ),
            key=lambda g: (g["workflow"], g["environment"]),
        ),
    }
