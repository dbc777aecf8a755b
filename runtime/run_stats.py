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

from django.db.models import DateTimeField, F, FloatField, Func, Value
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


class MsBetween(Func):
    """Milliseconds from one date-time to another, computed by the database: the rows
    come back as numbers (converting tens of thousands of date-times in Python would
    cost more than the query)."""

    output_field = FloatField()
    arity = 2

    def _sides(self, compiler: Any) -> tuple[str, str, tuple[Any, ...]]:
        a, pa = compiler.compile(self.source_expressions[0])
        b, pb = compiler.compile(self.source_expressions[1])
        return a, b, (*pa, *pb)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        a, b, params = self._sides(compiler)
        return f"((julianday({b}) - julianday({a})) * 86400000.0)", params

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        a, b, params = self._sides(compiler)
        return f"(EXTRACT(EPOCH FROM ({b} - {a})) * 1000.0)", params


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
        .annotate(
            since_ms=MsBetween(Value(start, output_field=DateTimeField()), F("created_at")),
            took_ms=MsBetween(F("started_at"), F("finished_at")),
        )
        .values_list("since_ms", "took_ms", "status", "workflow_id", "environment_id")[
            : MAX_ROWS + 1
        ]
    )
    truncated = len(rows) > MAX_ROWS
    count = math.ceil((end - start).total_seconds() / step)
    buckets: list[tuple[list[float], list[str]]] = [([], []) for _ in range(count)]
    groups: dict[tuple[int, int], tuple[list[float], list[str]]] = {}
    for since_ms, took_ms, status, workflow_id, env_id in rows[:MAX_ROWS]:
        i = max(0, min(count - 1, int((since_ms or 0) // (step * 1000))))
        group = groups.setdefault((workflow_id, env_id), ([], []))
        for durations, statuses in (buckets[i], group):
            statuses.append(status)
            if took_ms is not None:
                durations.append(float(took_ms))
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
