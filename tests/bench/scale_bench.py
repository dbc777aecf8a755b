"""Where W2's time goes: CPU milliseconds per step, by process, measured on a W2 run.

Wall-clock throughput on a shared machine says as much about the neighbours as about
Trellis; CPU time per step does not. A ``bench`` extra (``EXTRAS``): it runs W2 once more
(200 runs x 10 steps, 2 worker processes) and reads, from /proc, the CPU time of

- ``workers``: the qcluster processes (Python: the engine, django-q2, the publisher);
- ``database``: the PostgreSQL backends serving them (0 on SQLite: it runs in-process);
- ``driver``: the process starting the runs and its backend (the API's share).

``w2_cpu_ms_per_step`` holds those and their ``total``: on N idle cores W2 cannot beat
about N x 1000 / total steps/s.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.db import connection

if TYPE_CHECKING:
    from tests.bench.management.commands.bench import Bench

TICK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process used so far; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def group_cpu(pgid: int) -> dict[int, float]:
    """CPU seconds of each live process in a process group."""
    out: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            out[int(entry)] = (int(fields[11]) + int(fields[12])) / TICK
    return out


def backends() -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend on this database (same machine only)."""
    if connection.vendor != "postgresql":
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND backend_type = 'client backend'"
        )
        pids = [row[0] for row in cursor.fetchall()]
    return {pid: process_cpu(pid) for pid in pids}


def delta(before: dict[int, float], after: dict[int, float], skip: set[int]) -> float:
    """CPU seconds the processes of ``after`` used since ``before`` (``skip``: left out)."""
    return sum(after[pid] - before.get(pid, 0.0) for pid in after if pid not in skip)


def bench_extra(bench: Bench) -> dict[str, Any]:
    """W2 again, with the CPU it cost per step (see the module docstring)."""
    runs, steps = 200, 10
    with bench.cluster(workers=2):
        pgid = bench.procs[-1].pid
        mine = 0
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                row = cursor.fetchone()
                mine = int(row[0]) if row else 0
        workers0, db0 = group_cpu(pgid), backends()
        driver0, wall0 = time.process_time(), time.perf_counter()
        w2 = bench.w2(runs)
        driver = time.process_time() - driver0
        workers1, db1 = group_cpu(pgid), backends()
    n = runs * steps
    own = {mine} if mine else set()
    parts = {
        "workers": delta(workers0, workers1, set()),
        "database": delta(db0, db1, own),
        "driver": driver + (db1.get(mine, 0.0) - db0.get(mine, 0.0) if mine else 0.0),
    }
    per_step = {key: round(seconds * 1000 / n, 3) for key, seconds in parts.items()}
    per_step["total"] = round(sum(parts.values()) * 1000 / n, 3)
    return {
        "w2_cpu_ms_per_step": per_step,
        "w2_cpu_run_steps_per_s": round(w2["steps_per_s"], 1),
        "w2_cpu_run_wall_s": round(time.perf_counter() - wall0, 2),
    }
