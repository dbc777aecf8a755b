"""``python manage.py bench [--json]``: W1/W2/W3 on real qcluster workers.

- W1: one run of 100 sequential no-op CODE steps — ms per step, end to end (start → done).
- W2: 200 runs x 10 steps with 2 worker processes — runs/s and steps/s.
- W3: one step fanning out to 50 parallel sequences that join — seconds.
- W2 again with 1 and 4 worker processes (``--workers 1,2,4``): how throughput scales
  (``w2_steps_per_s_by_workers``).

``--modes embedded,scale`` runs the whole bench once per mode (scale: PostgreSQL +
Redis from DATABASE_URL/REDIS_URL, or TEST_DATABASE_URL/TEST_REDIS_URL) and prints one
comparison table (``--json``: ``{"modes": [...]}``).

It never touches your data: the command re-runs itself (``--inner``) against a temporary
database in a temporary TRELLIS_VAR_DIR (SQLite), or a temporary PostgreSQL database and
queue name when DATABASE_URL/REDIS_URL are set (mode "scale"), starts its own qcluster
subprocess(es) there, and removes everything afterwards.

Extending: other measurements add a callable to ``EXTRAS`` — ``fn(bench: Bench) -> dict``
whose keys are merged into the JSON (e.g. ``push_p50_ms``, tests/bench/live_bench.py);
``Bench.worker(n)`` starts a qcluster with n worker processes, ``Bench.w2(workers=n)``
measures W2 on it.

A dev-only command (the ``tests.bench`` app): ``DJANGO_SETTINGS_MODULE=tests.settings``,
as ``make bench`` sets it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import redis
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from designer import services
from designer.models import Environment, Product, Workflow
from runtime.journal import raw_execute
from runtime.models import JournalEntry, Run
from runtime.services import run_start
from tests.bench import live_bench, scale_bench

ROOT = Path(settings.BASE_DIR)
NOOP = "runtime.connectors.code:noop"


def _step(tag: str) -> dict[str, Any]:
    return {"type": "CODE", "event": NOOP, "tag": tag}


def spec_w1(n: int = 100) -> dict[str, Any]:
    return {"sequences": [{"tag": "main", "events": [_step(f"s{i}") for i in range(n)]}]}


def spec_w2(n: int = 10) -> dict[str, Any]:
    return {"sequences": [{"tag": "main", "events": [_step(f"s{i}") for i in range(n)]}]}


def spec_w3(fan: int = 50) -> dict[str, Any]:
    sequences: list[dict[str, Any]] = [{"tag": "root", "events": [_step("root")]}]
    for i in range(fan):
        sequences.append({"tag": f"p{i}", "parents": ["root"], "events": [_step(f"p{i}")]})
    sequences.append(
        {"tag": "join", "parents": [f"p{i}" for i in range(fan)], "events": [_step("join")]}
    )
    return {"sequences": sequences}


class Bench:
    """The inner side: a fresh database, workflows, and qcluster subprocesses on it."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.workflows: dict[str, Workflow] = {}
        self.env: Environment | None = None
        self.w2_workers: list[int] = [2]  # W2 is measured again with each of these
        self.w1_breakdown: list[dict[str, float]] = []

    def setup(self) -> None:
        """Migrate the scratch database and publish the bench's workflows (w0 warms up)."""
        call_command("migrate", verbosity=0, interactive=False)
        product = Product.objects.create(slug="bench", name="Bench")
        self.env = Environment.objects.create(product=product, slug="dev", name="dev")
        for tag, spec in (
            ("w0", spec_w2(2)),
            ("w1", spec_w1()),
            ("w2", spec_w2()),
            ("w3", spec_w3()),
        ):
            wf = services.workflow_create(product=product, tag=tag, name=tag)
            version = services.workflow_publish(workflow=wf, author=None, spec=spec)
            services.activation_set(workflow=wf, environment=self.env, active=True, version=version)
            self.workflows[tag] = wf

    # ---- workers

    def worker(self, workers: int) -> subprocess.Popen[bytes]:
        """Start a qcluster with ``workers`` worker processes (stopped by ``stop_all``)."""
        env = dict(os.environ, TRELLIS_WORKERS=str(workers), PYTHONUNBUFFERED="1")
        log = open(Path(settings.VAR_DIR) / "qcluster-bench.log", "ab")
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "qcluster"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGTERM the qcluster's process group; SIGKILL it after 20 s."""
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def stop_all(self) -> None:
        """Stop every qcluster this bench started."""
        for proc in self.procs:
            self.stop(proc)
        self.procs.clear()

    @contextmanager
    def cluster(self, workers: int) -> Iterator[None]:
        """A warmed-up qcluster of ``workers`` worker processes for the ``with`` block."""
        proc = self.worker(workers)
        try:
            # Warm up: every worker process imports the engine and caches the plans.
            for _ in range(workers * 3):
                self.wait([self.start("w0")], timeout=60)
            for tag in ("w1", "w2", "w3"):
                self.wait([self.start(tag)], timeout=60)
            yield
        finally:
            self.stop(proc)

    # ---- runs

    def start(self, tag: str) -> int:
        """Start a run of the bench workflow ``tag``; returns its id."""
        assert self.env is not None, "setup() first"
        return int(run_start(workflow=self.workflows[tag], environment=self.env, input={}).pk)

    def wait(self, run_ids: list[int], *, timeout: float = 120.0, every: float = 0.001) -> float:
        """Poll until every run ended; returns the time it happened (perf_counter).

        One cheap query per poll (the highest pending id; runs of a batch finish in
        roughly start order), so the poller does not steal CPU from the workers it times.
        """
        end = time.perf_counter() + timeout
        pending = sorted(run_ids)
        while pending:
            marks = ", ".join(["%s"] * len(pending[-50:]))
            done = {
                row[0]
                for row in raw_execute(
                    f"SELECT id FROM runtime_run WHERE id IN ({marks}) AND status IN "
                    "('completed', 'failed', 'rolled_back', 'cancelled')",
                    pending[-50:],
                ).fetchall()
            }
            pending = [pk for pk in pending if pk not in done]
            if not pending:
                break
            if time.perf_counter() > end:
                raise RuntimeError(f"{len(pending)} runs did not finish in {timeout} s")
            time.sleep(every)
        now = time.perf_counter()
        bad = Run.objects.filter(pk__in=run_ids).exclude(status="completed").count()
        if bad:
            raise RuntimeError(f"{bad} bench runs did not complete")
        return now

    def w1(self, repeat: int = 3) -> float:
        """W1: median ms per step of a 100-step run (``w1_breakdown``: where it went)."""
        samples = []
        self.w1_breakdown = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            run_id = self.start("w1")
            t1 = self.wait([run_id], every=0.0005)
            samples.append((t1 - t0) * 1000 / 100)
            self.w1_breakdown.append(self.breakdown(run_id))
        return statistics.median(samples)

    def breakdown(self, run_id: int) -> dict[str, float]:
        """From the journal: queue pickup (start → first step) and in-worker ms per step."""
        rows = list(JournalEntry.objects.filter(run_id=run_id).order_by("seq").values("kind", "at"))
        started = rows[0]["at"]
        first = next(r["at"] for r in rows if r["kind"] == "step_started")
        done = rows[-1]["at"]
        steps = sum(1 for r in rows if r["kind"] == "step_completed") or 1
        return {
            "pickup_ms": round((first - started).total_seconds() * 1000, 2),
            "exec_ms_per_step": round((done - first).total_seconds() * 1000 / steps, 3),
        }

    def w2(self, runs: int = 200) -> dict[str, float]:
        """W2: ``runs`` runs of 10 steps on the running cluster; throughput."""
        t0 = time.perf_counter()
        ids = [self.start("w2") for _ in range(runs)]
        started = time.perf_counter()
        t1 = self.wait(ids, every=0.005)
        seconds = t1 - t0
        return {
            "seconds": seconds,
            "runs_per_s": runs / seconds,
            "steps_per_s": runs * 10 / seconds,
            "start_s": started - t0,
        }

    def w3(self, repeat: int = 3) -> float:
        """W3: median seconds of a 50-way fan-out and join."""
        samples = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            t1 = self.wait([self.start("w3")], every=0.001)
            samples.append(t1 - t0)
        return statistics.median(samples)

    def run_all(self) -> dict[str, Any]:
        """Every measurement, as the JSON object the outer command prints."""
        mode = str(getattr(settings, "TRELLIS_MODE", "embedded"))
        result: dict[str, Any] = {"mode": mode, "database": connection.vendor}
        with self.cluster(workers=2):
            result["w1_ms_per_step"] = round(self.w1(), 3)
            result["w1_breakdown"] = self.w1_breakdown
            w2 = self.w2()
            result["w2_steps_per_s"] = round(w2["steps_per_s"], 1)
            result["w2_runs_per_s"] = round(w2["runs_per_s"], 1)
            result["w2_seconds"] = round(w2["seconds"], 3)
            result["w2_start_s"] = round(w2["start_s"], 3)
            result["w2_workers"] = 2
            result["w3_s"] = round(self.w3(), 3)
        by_workers = {"2": result["w2_steps_per_s"]}
        for n in self.w2_workers:
            if str(n) not in by_workers:
                with self.cluster(workers=n):
                    by_workers[str(n)] = round(self.w2()["steps_per_s"], 1)
        result["w2_steps_per_s_by_workers"] = {
            key: by_workers[key]
            for key in sorted(by_workers, key=int)
            if int(key) in self.w2_workers
        }
        for extra in EXTRAS:
            result.update(extra(self))
        result["load_average"] = [round(x, 2) for x in os.getloadavg()]  # a shared machine?
        return result


# Extra measurements: each takes the Bench and returns JSON keys.
EXTRAS: list[Callable[[Bench], dict[str, Any]]] = [
    live_bench.bench_extra,  # push_p50_ms, push_p95_ms, idle CPU
    scale_bench.bench_extra,  # w2_cpu_ms_per_step: where W2's CPU goes
]


def mode_env(mode: str) -> dict[str, str]:
    """This process's environment, set up for ``mode`` (embedded or scale)."""
    env = dict(os.environ)
    if mode == "embedded":
        env.pop("DATABASE_URL", None)
        env.pop("REDIS_URL", None)
        return env
    if mode != "scale":
        raise CommandError(f"unknown mode {mode!r}: use embedded and/or scale")
    database = env.get("DATABASE_URL") or env.get("TEST_DATABASE_URL")
    redis_url = env.get("REDIS_URL") or env.get("TEST_REDIS_URL")
    if not database or not redis_url:
        raise CommandError(
            "mode 'scale' needs DATABASE_URL and REDIS_URL (or TEST_DATABASE_URL and "
            "TEST_REDIS_URL): a PostgreSQL server (the bench creates and drops its own "
            "database there) and a Redis"
        )
    env.update(DATABASE_URL=database, REDIS_URL=redis_url)
    return env


def _redis_cleanup(url: str, queue: str, prefix: str) -> None:
    """Remove the scratch queue's and channel layer's keys (delayed tasks would stay)."""
    client = redis.Redis.from_url(url)
    for pattern in (f"django_q:{queue}:*", f"{prefix}*"):
        keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            client.delete(*keys)


def scratch_env(
    tmp: Path, environ: dict[str, str] | None = None, *, prefix: str = "trellis_bench"
) -> tuple[dict[str, str], Callable[[], None]]:
    """Environment for the inner run (from ``environ``, default this process's):
    temporary var dir, database, queue name and channel-layer prefix."""
    env = dict(os.environ if environ is None else environ)
    env.update(TRELLIS_VAR_DIR=str(tmp), TRELLIS_LOG_LEVEL="WARNING")
    env.pop("SQLITE_PATH", None)
    scratch = uuid.uuid4().hex[:8]
    env["TRELLIS_QUEUE_NAME"] = f"bench-{scratch}"
    env["TRELLIS_CHANNELS_PREFIX"] = f"bench-{scratch}"
    cleanups: list[Callable[[], None]] = []

    def cleanup() -> None:
        for fn in cleanups:
            fn()

    if env.get("REDIS_URL"):
        redis_url = env["REDIS_URL"]
        cleanups.append(
            lambda: _redis_cleanup(redis_url, env["TRELLIS_QUEUE_NAME"], f"bench-{scratch}")
        )
    url = env.get("DATABASE_URL", "")
    if url:
        base, _, _ = url.rpartition("/")
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        admin = f"{base}/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        env["DATABASE_URL"] = f"{base}/{name}"

        def drop() -> None:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        cleanups.append(drop)
    return env, cleanup


def table(result: dict[str, Any]) -> str:
    """The result of one mode as a table with the issue's targets."""
    w1_target = "2" if result.get("mode") == "scale" else "1"  # issue targets per mode
    rows = [
        ("mode", result.get("mode"), ""),
        (
            "W1 100 sequential steps",
            result.get("w1_ms_per_step"),
            f"ms/step (target < {w1_target})",
        ),
        ("W2 200 runs x 10 steps", result.get("w2_steps_per_s"), "steps/s (target >= 1000)"),
        ("W2 runs", result.get("w2_runs_per_s"), "runs/s"),
        ("W3 fan-out 50 + join", result.get("w3_s"), "s (target < 0.5)"),
    ]
    known = {
        "mode", "database", "w1_ms_per_step", "w1_breakdown", "w2_steps_per_s",
        "w2_runs_per_s", "w3_s", "w2_seconds", "w2_workers", "w2_start_s",
    }  # fmt: skip
    rows += [(key, value, "") for key, value in result.items() if key not in known]
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{name:<{width}}  {value!s:>10}  {unit}" for name, value, unit in rows)


COMPARED = [
    ("W1 100 sequential steps", "w1_ms_per_step", "ms/step"),
    ("W2 200 runs x 10 steps, 2 workers", "w2_steps_per_s", "steps/s"),
    ("W2 runs", "w2_runs_per_s", "runs/s"),
    ("W3 fan-out 50 + join", "w3_s", "s"),
    ("push p50", "push_p50_ms", "ms"),
    ("push p95", "push_p95_ms", "ms"),
    ("push idle CPU (subscribed)", "push_idle_cpu_subscribed_pct", "% of a core"),
]


def comparison(results: list[dict[str, Any]]) -> str:
    """One table, a column per mode: the headline figures, W2 by worker count, the rest."""
    head = [("", "", *[str(r.get("mode")) for r in results])]
    rows: list[tuple[str, ...]] = [("database", "", *[str(r.get("database")) for r in results])]
    for name, key, unit in COMPARED:
        rows.append((name, unit, *[str(r.get(key, "-")) for r in results]))
    counts = sorted({int(n) for r in results for n in r.get("w2_steps_per_s_by_workers", {})})
    for n in counts:
        rows.append(
            (
                f"W2 with {n} worker process{'es' if n > 1 else ''}",
                "steps/s",
                *[str(r.get("w2_steps_per_s_by_workers", {}).get(str(n), "-")) for r in results],
            )
        )
    parts = [
        p
        for p in ("workers", "database", "driver", "total")
        if any(p in r.get("w2_cpu_ms_per_step", {}) for r in results)
    ]
    for part in parts:
        rows.append(
            (
                f"W2 CPU per step: {part}",
                "ms",
                *[str(r.get("w2_cpu_ms_per_step", {}).get(part, "-")) for r in results],
            )
        )
    shown = {key for _, key, _ in COMPARED} | {"mode", "database", "w2_steps_per_s_by_workers"}
    extra = [
        key
        for r in results
        for key, value in r.items()
        if key not in shown and not isinstance(value, dict | list)
    ]
    for key in dict.fromkeys(extra):
        rows.append((key, "", *[str(r.get(key, "-")) for r in results]))
    rows.append(
        ("load average", "", *[" ".join(map(str, r.get("load_average", []))) for r in results])
    )
    table_rows = head + rows
    widths = [max(len(row[i]) for row in table_rows) for i in range(len(table_rows[0]))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i < 2 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in table_rows
    )


def _worker_counts(text: str) -> list[int]:
    try:
        counts = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError as exc:
        raise CommandError(f"--workers must be numbers like 1,2,4, not {text!r}") from exc
    if not counts or min(counts) < 1 or max(counts) > 32:
        raise CommandError("--workers: between 1 and 32 worker processes")
    return counts


class Command(BaseCommand):
    help = "Benchmark the engine on real workers (W1/W2/W3) without touching your data."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.add_argument("--inner", action="store_true", help="(internal)")
        parser.add_argument(
            "--workers",
            default="1,2,4",
            help="measure W2 with each of these numbers of worker processes (default 1,2,4)",
        )
        parser.add_argument(
            "--modes",
            default="",
            help="embedded,scale: bench each mode and print one comparison table "
            "(default: the mode this process is configured for)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        workers = _worker_counts(options["workers"])
        if options["inner"]:
            bench = Bench()
            bench.w2_workers = workers
            try:
                bench.setup()
                result = bench.run_all()
            finally:
                bench.stop_all()
            self.stdout.write(json.dumps(result))
            return
        current = str(getattr(settings, "TRELLIS_MODE", "embedded"))
        modes = [m.strip() for m in options["modes"].split(",") if m.strip()] or [current]
        envs = [mode_env(mode) if options["modes"] else None for mode in modes]  # fail early
        results = []
        for mode, base in zip(modes, envs, strict=True):
            if len(modes) > 1:
                self.stderr.write(f"bench: {mode} mode…")
            results.append(self.bench_once(base, options["workers"]))
        if options["json"]:
            self.stdout.write(json.dumps(results[0] if len(results) == 1 else {"modes": results}))
        elif len(results) == 1:
            self.stdout.write(table(results[0]))
        else:
            self.stdout.write(comparison(results))

    def bench_once(self, base: dict[str, str] | None, workers: str) -> dict[str, Any]:
        """Run the inner bench in a scratch environment (``base``: the mode's variables)."""
        tmp = Path(tempfile.mkdtemp(prefix="trellis-bench-"))
        env, cleanup = scratch_env(tmp, base)
        try:
            out = subprocess.run(
                [sys.executable, str(ROOT / "manage.py"), "bench", "--inner", "--workers", workers],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
        finally:
            cleanup()
        if out.returncode != 0:
            log = tmp / "qcluster-bench.log"
            tail = log.read_text()[-3000:] if log.exists() else ""
            shutil.rmtree(tmp, ignore_errors=True)
            self.stderr.write(
                out.stdout[-3000:] + out.stderr[-5000:] + "\n--- qcluster log ---\n" + tail
            )
            raise SystemExit(1)
        shutil.rmtree(tmp, ignore_errors=True)
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return result
