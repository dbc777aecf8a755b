"""``python manage.py loadtest --runs 10000 --steps 10 --fail-rate 0.01``: many runs on real
qcluster processes while one of them is SIGKILLed and restarted every few seconds.

At the end every invariant of the execution contract is checked, not sampled:

- every run ended, ``completed`` or ``failed`` exactly as its steps dictate (a step's
  failures are decided by a hash of its idempotency key, so the expected outcome of each
  run is known; with ``--retries`` 1 a step fails for good when both attempts fail);
- no step ran after its run failed and no attempt ran after its step succeeded;
- no step completed twice (journal), and no idempotency key ran twice except steps in
  flight on a killed worker (at most one per worker process per kill);
- every journal is numbered 1..last_seq without a gap.

Each CODE step counts its own executions in a side table (``trellis_loadtest_execution``),
written in autocommit before the step's result commits: a step killed in flight leaves
its row, and its re-execution after recovery adds a second one with the same key.

Like ``bench``, it never touches your data: it re-runs itself (``--inner``) on a
temporary database (SQLite, or a temporary PostgreSQL database and queue name when
DATABASE_URL/REDIS_URL are set) and removes everything afterwards. Exit status 1 when an
invariant is broken. A dev-only command (the ``tests.bench`` app):
``DJANGO_SETTINGS_MODULE=tests.settings``, as ``make loadtest`` sets it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection
from django.db.models import Count, Max, Min

from designer import services
from designer.models import Environment, Product, Workflow
from runtime.errors import StepError
from runtime.models import JournalEntry, Run
from runtime.services import run_start
from runtime.step_functions import register_step_function
from tests.bench.management.commands.bench import scratch_env

ROOT = Path(settings.BASE_DIR)
# The step function the clusters call: listed in their TRELLIS_STEP_FUNCTIONS (see handle).
STEP = "tests.bench.management.commands.loadtest:step"
TABLE = "trellis_loadtest_execution"
FINISHED = ("completed", "failed", "rolled_back", "cancelled")


# --- The step every run is made of (runs in the qcluster processes) --------------------------


def fails(seed: str, key: str, rate: float) -> bool:
    """Whether the attempt with idempotency key ``key`` fails: random-looking, but the same
    answer for the same key (a re-executed in-flight step fails or succeeds again alike)."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def step(input: Any, ctx: Any) -> dict[str, Any]:
    """Record this execution, then fail (retryably) when the key's hash says so."""
    data = input if isinstance(input, dict) else {}
    failed = fails(str(data.get("seed", "")), ctx.idempotency_key, float(data.get("rate", 0)))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (run_id, step, attempt, key, pid, failed) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            [ctx.run_id, ctx.step, ctx.attempt, ctx.idempotency_key, os.getpid(), failed],
        )
    if failed:
        raise StepError(f"injected failure of {ctx.idempotency_key}", retryable=True)
    return {"attempt": ctx.attempt}


def table_reset() -> None:
    """Create the side table if needed and empty it."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (run_id bigint NOT NULL, "
            "step varchar(100) NOT NULL, attempt integer NOT NULL, key varchar(200) NOT NULL, "
            "pid integer NOT NULL, failed boolean NOT NULL)"
        )
        cursor.execute(f"DELETE FROM {TABLE}")


def journal_violations(workflow: Workflow) -> list[str]:
    """Steps completed twice, and journals not numbered 1..last_seq without a gap."""
    v: list[str] = []
    twice = (
        JournalEntry.objects.filter(run__workflow=workflow, kind="step_completed")
        .values("run_id", "step")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    for row in twice[:20]:
        v.append(f"run {row['run_id']}: step {row['step']} completed {row['n']} times")
    last = dict(Run.objects.filter(workflow=workflow).values_list("pk", "last_seq"))
    stats = (
        JournalEntry.objects.filter(run__workflow=workflow)
        .values("run_id")
        .annotate(n=Count("id"), lo=Min("seq"), hi=Max("seq"))
    )
    gaps = 0
    for stat in stats:
        if not (stat["lo"] == 1 and stat["hi"] == stat["n"] == last[stat["run_id"]]):
            gaps += 1
            if gaps <= 20:
                v.append(
                    f"run {stat['run_id']}: journal has {stat['n']} entries numbered "
                    f"{stat['lo']}..{stat['hi']}, last_seq {last[stat['run_id']]}"
                )
    if gaps > 20:
        v.append(f"... {gaps} runs with a journal gap in all")
    return v


# --- The load ---------------------------------------------------------------------------------


class Cluster(Protocol):
    """A running qcluster the load test may SIGKILL (``tests`` pass their Worker)."""

    workers: int

    def kill(self) -> None: ...


@dataclass
class LoadConfig:
    """The size and shape of a load test (the command's options)."""

    runs: int = 10_000
    steps: int = 10
    fail_rate: float = 0.01
    retries: int = 1
    clusters: int = 2
    workers: int = 1  # worker processes per cluster
    kill_every: float = 4.0  # seconds; 0: never
    min_kills: int = 0  # keep killing (after the last start) until this many kills
    in_flight: int = (
        500  # unfinished runs at most: keeps the queue shorter than the sweep's patience
    )
    seed: str = ""
    timeout: float = 0.0  # 0: derived from the number of runs


@dataclass
class Report:
    """What a load test measured, and the invariants it found broken (``violations``)."""

    mode: str
    database: str
    runs: int
    steps_per_run: int
    fail_rate: float
    retries: int
    clusters: int
    workers_per_cluster: int
    duration_s: float = 0.0
    runs_per_s: float = 0.0
    steps_per_s: float = 0.0
    executions: int = 0
    completed_runs: int = 0
    failed_runs: int = 0
    expected_failed_runs: int = 0
    retried_steps: int = 0
    kills: int = 0
    reexecuted_in_flight: int = 0
    load_average: list[float] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


class LoadTest:
    """Drive a load on the current database with clusters made by ``start_cluster``."""

    def __init__(
        self,
        config: LoadConfig,
        *,
        environment: Environment,
        start_cluster: Callable[[], Cluster],
        log: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.config = config
        self.environment = environment
        self.start_cluster = start_cluster
        self.log = log
        self.seed = config.seed or os.urandom(4).hex()
        self.clusters: list[Cluster] = []
        self.kills = 0
        self.started: list[int] = []
        self.producing = True
        self.stop = threading.Event()
        self.killer_error: BaseException | None = None

    # ---- setup

    def spec(self) -> dict[str, Any]:
        """The workflow every run is made of: ``steps`` CODE steps calling ``step``."""
        c = self.config
        events = [
            {
                "type": "CODE",
                "event": STEP,
                "tag": f"s{i}",
                "retries": c.retries,
                "input": {"seed": self.seed, "rate": c.fail_rate},
            }
            for i in range(c.steps)
        ]
        return {"sequences": [{"tag": "main", "events": events}]}

    def workflow(self) -> Workflow:
        """Publish and activate the load test's workflow in the environment."""
        # This process publishes the workflow (its CODE step must be registered to pass
        # validation); the clusters get it through TRELLIS_STEP_FUNCTIONS (see handle).
        register_step_function(STEP, step)
        tag = f"loadtest-{self.seed}"
        workflow = services.workflow_create(product=self.environment.product, tag=tag, name=tag)
        version = services.workflow_publish(workflow=workflow, author=None, spec=self.spec())
        services.activation_set(
            workflow=workflow, environment=self.environment, active=True, version=version
        )
        return workflow

    # ---- the run

    def run(self) -> Report:
        """Start the clusters and the killer, keep ``in_flight`` runs going, then check."""
        c = self.config
        table_reset()
        workflow = self.workflow()
        for _ in range(c.clusters):
            self.clusters.append(self.start_cluster())
        killer = threading.Thread(target=self.killer, name="loadtest-killer", daemon=True)
        t0 = time.perf_counter()
        killer.start()
        timeout = c.timeout or max(300.0, c.runs / 10)
        deadline = time.monotonic() + timeout
        unfinished = Run.objects.filter(workflow=workflow).exclude(status__in=FINISHED)
        try:
            next_report = time.monotonic() + 5
            while len(self.started) < c.runs and time.monotonic() < deadline:
                room = c.in_flight - unfinished.count()
                for _ in range(min(room, c.runs - len(self.started), 100)):
                    run = run_start(workflow=workflow, environment=self.environment, input={})
                    self.started.append(run.pk)
                if room <= 0:
                    time.sleep(0.02)
                if time.monotonic() > next_report:
                    self.log(f"  started {len(self.started)}, kills {self.kills}")
                    next_report = time.monotonic() + 5
            self.producing = False
            while unfinished.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            t1 = time.perf_counter()
        finally:
            self.producing = False
            self.stop.set()
            killer.join(timeout=60)
        report = self.check(workflow, duration=t1 - t0)
        if self.killer_error is not None:
            report.violations.append(f"the killer failed: {self.killer_error!r}")
        return report

    def killer(self) -> None:
        """SIGKILL the oldest cluster and start a fresh one, every ``kill_every`` seconds."""
        c = self.config
        if not c.kill_every:
            return
        try:
            while not self.stop.wait(c.kill_every):
                if not self.producing and self.kills >= c.min_kills:
                    return
                victim = self.clusters.pop(0)
                victim.kill()
                self.kills += 1
                self.clusters.append(self.start_cluster())
        except BaseException as exc:  # reported with the results
            self.killer_error = exc

    # ---- the verdict

    def expected(self, run_id: int) -> tuple[str, dict[str, int], str | None]:
        """(run status, {step: attempts it takes}, the step that fails for good)."""
        c = self.config
        attempts: dict[str, int] = {}
        for i in range(c.steps):
            tag = f"s{i}"
            for attempt in range(1, c.retries + 2):
                attempts[tag] = attempt
                if not fails(self.seed, f"{run_id}:{tag}:{attempt}", c.fail_rate):
                    break
            else:
                return "failed", attempts, tag
        return "completed", attempts, None

    def check(self, workflow: Workflow, *, duration: float) -> Report:
        """Every invariant of the execution contract, checked on every run (see above)."""
        c = self.config
        report = Report(
            mode=str(getattr(settings, "TRELLIS_MODE", "embedded")),
            database=connection.vendor,
            runs=len(self.started),
            steps_per_run=c.steps,
            fail_rate=c.fail_rate,
            retries=c.retries,
            clusters=c.clusters,
            workers_per_cluster=c.workers,
            kills=self.kills,
            load_average=[round(x, 2) for x in os.getloadavg()],
        )
        v = report.violations
        if len(self.started) < c.runs:
            v.append(f"only {len(self.started)} of {c.runs} runs were started before the timeout")
        statuses = dict(Run.objects.filter(workflow=workflow).values_list("pk", "status"))
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT run_id, step, attempt, key FROM {TABLE}")
            rows = cursor.fetchall()
        runs_of = Counter(int(r[0]) for r in rows)
        per_key = Counter(str(r[3]) for r in rows)
        executed: dict[int, Counter[tuple[str, int]]] = {}
        for run_id, tag, attempt, _key in rows:
            executed.setdefault(int(run_id), Counter())[(str(tag), int(attempt))] += 1
        report.executions = len(rows)
        report.reexecuted_in_flight = sum(n - 1 for n in per_key.values() if n > 1)
        stray = set(runs_of) - set(statuses)
        if stray:
            v.append(f"executions recorded for {len(stray)} runs that do not exist")
        for run_id, status in statuses.items():
            want, attempts, _failing = self.expected(run_id)
            if want == "failed":
                report.expected_failed_runs += 1
            if status == "completed":
                report.completed_runs += 1
            elif status == "failed":
                report.failed_runs += 1
            if status != want:
                v.append(f"run {run_id} ended {status!r}, its steps dictate {want!r}")
                continue
            ran = executed.get(run_id, Counter())
            should = {(tag, a) for tag, n in attempts.items() for a in range(1, n + 1)}
            missing = should - set(ran)
            extra = set(ran) - should
            if missing:
                v.append(f"run {run_id}: attempts never executed: {sorted(missing)[:5]}")
            if extra:
                v.append(f"run {run_id}: attempts that must not have run: {sorted(extra)[:5]}")
        report.retried_steps = sum(
            1 for run_id in statuses for n in self.expected(run_id)[1].values() if n > 1
        )
        # Each killed worker process had at most one step in flight.
        bound = self.kills * c.workers
        if report.reexecuted_in_flight > bound:
            v.append(
                f"{report.reexecuted_in_flight} executions repeated an idempotency key, "
                f"more than the {bound} steps that can have been in flight on killed workers"
            )
        v.extend(journal_violations(workflow))
        report.duration_s = round(duration, 2)
        if duration > 0:
            report.runs_per_s = round(len(statuses) / duration, 1)
            report.steps_per_s = round(len(rows) / duration, 1)
        return report


# --- Processes ----------------------------------------------------------------------------------


class Qcluster:
    """``manage.py qcluster`` in its own process group (SIGKILL takes all of it)."""

    def __init__(self, workers: int, log: Path) -> None:
        self.workers = workers
        env = dict(os.environ, TRELLIS_WORKERS=str(workers), PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "qcluster"],
            cwd=ROOT,
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        """SIGKILL the whole process group and reap it."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)


def format_report(report: Report) -> str:
    """The report as an aligned table, violations (at most 50) below."""
    rows = [
        ("mode", f"{report.mode} ({report.database})"),
        ("runs x steps", f"{report.runs} x {report.steps_per_run}"),
        ("failure rate, retries", f"{report.fail_rate}, {report.retries}"),
        ("clusters x workers", f"{report.clusters} x {report.workers_per_cluster}"),
        ("duration", f"{report.duration_s} s"),
        ("runs/s", report.runs_per_s),
        ("steps/s (executions)", report.steps_per_s),
        ("executions", report.executions),
        ("completed runs", report.completed_runs),
        ("failed runs (expected)", f"{report.failed_runs} ({report.expected_failed_runs})"),
        ("retried steps", report.retried_steps),
        ("kills (SIGKILL)", report.kills),
        ("re-executed in-flight steps", report.reexecuted_in_flight),
        ("load average", " ".join(str(x) for x in report.load_average)),
        ("verdict", "OK" if report.ok else f"{len(report.violations)} VIOLATIONS"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    lines += [f"  - {line}" for line in report.violations[:50]]
    return "\n".join(lines)


class Command(BaseCommand):
    help = "Load test: many runs on real workers killed every few seconds; checks every invariant."

    def add_arguments(self, parser: CommandParser) -> None:
        d = LoadConfig()
        parser.add_argument("--runs", type=int, default=d.runs)
        parser.add_argument("--steps", type=int, default=d.steps)
        parser.add_argument("--fail-rate", type=float, default=d.fail_rate)
        parser.add_argument("--retries", type=int, default=d.retries, help="per step")
        parser.add_argument("--clusters", type=int, default=d.clusters, help="qcluster processes")
        parser.add_argument("--workers", type=int, default=d.workers, help="workers per cluster")
        parser.add_argument(
            "--kill-every", type=float, default=d.kill_every, help="seconds; 0: never"
        )
        parser.add_argument("--in-flight", type=int, default=d.in_flight)
        parser.add_argument("--seed", default="")
        parser.add_argument("--timeout", type=float, default=0.0)
        parser.add_argument("--json", action="store_true", help="print the report as JSON")
        parser.add_argument("--inner", action="store_true", help="(internal)")

    def config(self, options: dict[str, Any]) -> LoadConfig:
        """The LoadConfig the command line asks for."""
        return LoadConfig(
            runs=options["runs"],
            steps=options["steps"],
            fail_rate=options["fail_rate"],
            retries=options["retries"],
            clusters=options["clusters"],
            workers=options["workers"],
            kill_every=options["kill_every"],
            in_flight=options["in_flight"],
            seed=options["seed"],
            timeout=options["timeout"],
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["inner"]:
            self.inner(self.config(options))
            return
        tmp = Path(tempfile.mkdtemp(prefix="trellis-loadtest-"))
        env, cleanup = scratch_env(tmp, prefix="trellis_scale_loadtest")
        # The clusters may call the load test's step function (and nothing else new).
        listed = [p for p in env.get("TRELLIS_STEP_FUNCTIONS", "").split(",") if p.strip()]
        env["TRELLIS_STEP_FUNCTIONS"] = ",".join([*listed, STEP])
        argv = [a for a in sys.argv[2:] if a != "--json"]
        self.stderr.write(f"load test in {settings.TRELLIS_MODE} mode (scratch: {tmp})")
        try:
            out = subprocess.run(
                [sys.executable, str(ROOT / "manage.py"), "loadtest", "--inner", *argv],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                text=True,
                check=False,
            )
        finally:
            cleanup()
        lines = out.stdout.strip().splitlines()
        if out.returncode not in (0, 1) or not lines:
            log = tmp / "qcluster-loadtest.log"
            tail = log.read_text()[-3000:] if log.exists() else ""
            self.stderr.write(out.stdout[-3000:] + "\n--- qcluster log ---\n" + tail)
            raise SystemExit(2)
        shutil.rmtree(tmp, ignore_errors=True)
        result = json.loads(lines[-1])
        if options["json"]:
            self.stdout.write(json.dumps(result))
        else:
            self.stdout.write(format_report(Report(**result)))
        if result["violations"]:
            raise SystemExit(1)

    def inner(self, config: LoadConfig) -> None:
        """The load test itself, on the scratch database; prints the report as JSON."""
        call_command("migrate", verbosity=0, interactive=False)
        product = Product.objects.create(slug="loadtest", name="Load test")
        environment = Environment.objects.create(product=product, slug="dev", name="dev")
        log = Path(settings.VAR_DIR) / "qcluster-loadtest.log"
        test = LoadTest(
            config,
            environment=environment,
            start_cluster=lambda: Qcluster(config.workers, log),
            log=lambda line: self.stderr.write(line),
        )
        try:
            report = test.run()
        finally:
            for cluster in test.clusters:
                cluster.kill()
        self.stdout.write(json.dumps(asdict(report)))
        if not report.ok:
            raise SystemExit(1)
