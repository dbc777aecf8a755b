"""Engine test helpers: publish+activate a workflow in one call, run queued tasks in-process
(``drain``), and a real ``qcluster`` subprocess (``worker``) for integration tests."""

from __future__ import annotations

import os
import pydoc
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from designer.models import Activation, Environment, Product, Workflow, WorkflowVersion
from runtime.compiler import compile_spec, spec_checksum
from runtime.models import RUN_FINISHED, Run

ROOT = Path(__file__).resolve().parents[2]


def make_workflow(
    product: Product,
    spec: dict[str, Any],
    *,
    tag: str = "wf",
    envs: tuple[str, ...] = ("dev",),
) -> Workflow:
    """Create (or re-publish) a workflow with ``spec`` as its next version, active in ``envs``."""
    workflow, _ = Workflow.objects.get_or_create(product=product, tag=tag, defaults={"name": tag})
    plan = compile_spec(spec)
    number = workflow.versions.count() + 1
    version = WorkflowVersion.objects.create(
        workflow=workflow,
        state="published",
        number=number,
        spec=spec,
        plan=plan.model_dump(mode="json"),
        checksum=spec_checksum(spec),
        published_at=timezone.now(),
    )
    for slug in envs:
        env = Environment.objects.get(product=product, slug=slug)
        Activation.objects.update_or_create(
            workflow=workflow, environment=env, defaults={"active": True, "version": version}
        )
    return workflow


def code(fn: str, **extra: Any) -> dict[str, Any]:
    """A CODE event calling ``tests.runtime.steps:<fn>``."""
    return {"type": "CODE", "event": f"tests.runtime.steps:{fn}", **extra}


def drain(*, max_tasks: int = 10_000, wait_delayed: float = 0.0) -> int:
    """Run queued django-q2 tasks in this process until the queue is empty.

    Delayed tasks due within ``wait_delayed`` seconds are waited for. Returns how many ran.
    """
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    ran = 0
    deadline = time.monotonic() + wait_delayed
    while ran < max_tasks:
        row = OrmQ.objects.filter(lock__lte=timezone.now()).order_by("id").first()
        if row is None:
            if OrmQ.objects.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
                continue
            return ran
        OrmQ.objects.filter(pk=row.pk).delete()
        task = SignedPackage.loads(row.payload)
        func = pydoc.locate(task["func"])
        assert callable(func), task["func"]
        func(*task["args"], **task["kwargs"])
        ran += 1
    return ran


def run_until_done(run: Run, *, timeout: float = 10.0) -> Run:
    """Drain until ``run`` is finished (waiting on delayed tasks as needed)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        drain(wait_delayed=0.05)
        run.refresh_from_db()
        if run.status in RUN_FINISHED:
            return run
        time.sleep(0.02)
    return run


def wait_for(predicate: Callable[[], bool], *, timeout: float = 20.0, every: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(every)
    return predicate()


def journal_kinds(run: Run) -> list[tuple[str, str]]:
    return list(run.journal.order_by("seq").values_list("kind", "step"))


@pytest.fixture(autouse=True)
def _fresh_plan_cache() -> Iterator[None]:
    # Test databases roll back, so version ids come back with other plans behind them.
    from runtime.engine.plans import plan_cache_clear

    plan_cache_clear()
    yield
    plan_cache_clear()


@pytest.fixture
def product(product: Product) -> Product:
    """The shared product, its environments listing 127.0.0.1: runtime tests talk to real
    peers on loopback, which no environment reaches unless an admin lists it."""
    Environment.objects.filter(product=product).update(allowed_hosts=["127.0.0.1"])
    product.refresh_from_db()
    return product


@pytest.fixture
def env_dev(product: Product) -> Environment:
    return Environment.objects.get(product=product, slug="dev")


@pytest.fixture
def side_effects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory where test step functions record what they did (shared with workers)."""
    path = tmp_path / "effects"
    path.mkdir()
    monkeypatch.setenv("TRELLIS_TEST_EFFECTS", str(path))
    return path


# --- A real qcluster process ----------------------------------------------------------------


class Worker:
    """``manage.py qcluster`` on the test database, as a subprocess."""

    def __init__(self, *, workers: int = 1, env: dict[str, str] | None = None) -> None:
        self.workers = workers
        self.extra_env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = Path(settings.VAR_DIR) / f"qcluster-test-{os.getpid()}.log"

    def start(self) -> Worker:
        env = dict(os.environ)
        db = settings.DATABASES["default"]
        if db["ENGINE"].endswith("sqlite3"):
            env["SQLITE_PATH"] = str(db["NAME"])
        env.update(
            {
                "TRELLIS_WORKERS": str(self.workers),
                "TRELLIS_QUEUE_POLL": env.get("TRELLIS_QUEUE_POLL", "0.02"),
                "DJANGO_SETTINGS_MODULE": "tests.settings",
                "PYTHONUNBUFFERED": "1",
            }
        )
        if connection.vendor == "postgresql" and "DATABASE_URL" in env:
            env["DATABASE_URL"] = _test_database_url(env["DATABASE_URL"], str(db["NAME"]))
        env.update(self.extra_env)
        log = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "qcluster"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: we stop exactly what we started
        )
        return self

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=4)  # a graceful stop can take long; the test is over
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)

    def kill(self) -> None:
        """SIGKILL the whole cluster (sentinel, pusher, workers, monitor): a crash."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)


def _test_database_url(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture
def worker(transactional_db: None) -> Iterator[Callable[..., Worker]]:
    """Start qcluster subprocesses (``worker()``, ``worker(workers=2)``); all stopped after."""
    started: list[Worker] = []

    def start(**kwargs: Any) -> Worker:
        w = Worker(**kwargs).start()
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()
