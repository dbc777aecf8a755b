"""Real processes for the live-run tests: a daphne web server and a journal writer.

Each :class:`LiveStack` owns a database of its own (a SQLite file in embedded mode, a
fresh PostgreSQL database + a Redis key prefix in scale-out mode), migrated and seeded by
a subprocess, so the same tests run in both modes whatever the pytest process itself
uses. Run as a module (``python -m tests.runtime.live_harness seed|writer``) it is
the other side of that: the code that runs inside those subprocesses.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable
PORTS = range(8600, 8700)

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def free_port() -> int:
    for port in PORTS:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 8600-8699")


def wait_for_port(port: int, process: subprocess.Popen[Any], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


class LiveStack:
    """A database, a daphne server on it and a journal-writer process, in one mode."""

    def __init__(self, mode: str, base: Path, *, extra_env: dict[str, str] | None = None):
        # embedded: SQLite + the journal layer; scale: PostgreSQL + channels-redis;
        # embedded-pg: PostgreSQL + the journal layer (DATABASE_URL without REDIS_URL).
        assert mode in {"embedded", "scale", "embedded-pg"}
        self.mode = mode
        self.base = base
        self.base.mkdir(parents=True, exist_ok=True)
        self.processes: list[subprocess.Popen[Any]] = []
        self.clusters: list[subprocess.Popen[Any]] = []
        self.pg_admin_url: str | None = None
        self.pg_name: str | None = None
        self.redis_url: str | None = None
        self.prefix = f"trellis-live-{secrets.token_hex(4)}"
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in {"DATABASE_URL", "REDIS_URL", "SQLITE_PATH", "SQLITE_TEST_PATH"}
        }
        env |= {
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "TRELLIS_VAR_DIR": str(base),
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            "TRELLIS_LIVE_REPLAY_LIMIT": "50",
            "TRELLIS_LIVE_CATCHUP_SECONDS": "1",
        }
        if mode in {"scale", "embedded-pg"}:
            self.pg_admin_url = os.environ.get("TEST_DATABASE_URL") or DEFAULT_DATABASE_URL
            self.pg_name = f"trellis_live_{secrets.token_hex(4)}"
            parts = urlsplit(self.pg_admin_url)
            env["DATABASE_URL"] = urlunsplit(parts._replace(path="/" + self.pg_name))
            env["TRELLIS_QUEUE_NAME"] = self.prefix
        if mode == "scale":
            self.redis_url = os.environ.get("TEST_REDIS_URL") or DEFAULT_REDIS_URL
            env["REDIS_URL"] = self.redis_url
            env["TRELLIS_CHANNELS_PREFIX"] = self.prefix
        else:
            env["SQLITE_PATH"] = str(base / "db.sqlite3")
        env |= extra_env or {}
        self.env = env
        self.port = 0
        self.writer: subprocess.Popen[str] | None = None
        self.seed: dict[str, Any] = {}

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> LiveStack:
        if self.pg_name:
            self._create_database()
        else:
            for leftover in self.base.glob("db.sqlite3*"):
                leftover.unlink()
        self.call("migrate", "--noinput", manage=True)
        self.seed = self.call_json("seed")
        self.start_server()
        self.writer = self.spawn_writer()
        return self

    def spawn_writer(self) -> subprocess.Popen[str]:
        """Another journal-writer process on the stack's database."""
        writer = subprocess.Popen(
            [PYTHON, "-m", "tests.runtime.live_harness", "writer"],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.processes.append(writer)
        return writer

    def start_server(self) -> None:
        self.port = free_port()
        server = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "designer.asgi:application",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=open(self.base / f"daphne-{self.port}.log", "a"),
        )
        self.processes.append(server)
        self.server = server
        wait_for_port(self.port, server)

    def stop_server(self) -> None:
        self.server.terminate()
        self.server.wait(timeout=10)
        self.processes.remove(self.server)

    def close(self) -> None:
        for cluster in self.clusters:
            # qcluster forks workers: stop its whole process group (only ours).
            with contextlib.suppress(ProcessLookupError):
                os.killpg(cluster.pid, signal.SIGTERM)
            with contextlib.suppress(Exception):
                cluster.wait(timeout=15)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(cluster.pid, signal.SIGKILL)
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            with contextlib.suppress(Exception):
                process.wait(timeout=10)
        if self.pg_name:
            self._drop_database()
        if self.redis_url:
            self._drop_redis_keys()

    def _create_database(self) -> None:
        import psycopg

        assert self.pg_admin_url and self.pg_name
        with psycopg.connect(self.pg_admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.pg_name}"')
            # Tests measure behaviour, not the disk: skip the fsync at each commit.
            conn.execute(f'ALTER DATABASE "{self.pg_name}" SET synchronous_commit = off')

    def _drop_database(self) -> None:
        import psycopg

        assert self.pg_admin_url and self.pg_name
        with psycopg.connect(self.pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')

    def _drop_redis_keys(self) -> None:
        import redis

        assert self.redis_url
        client = redis.Redis.from_url(self.redis_url)
        keys = list(client.scan_iter(match=f"{self.prefix}*", count=1000))
        if keys:
            client.delete(*keys)

    # -- talking to the subprocesses ------------------------------------------------------------

    def call(self, *args: str, manage: bool = False) -> str:
        command = (
            [PYTHON, "manage.py", *args]
            if manage
            else [
                PYTHON,
                "-m",
                "tests.runtime.live_harness",
                *args,
            ]
        )
        done = subprocess.run(
            command, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def call_json(self, *args: str) -> Any:
        return json.loads(self.call(*args).strip().splitlines()[-1])

    def _ask(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.writer is not None and self.writer.stdin and self.writer.stdout
        self.writer.stdin.write(json.dumps(command) + "\n")
        self.writer.stdin.flush()
        line = self.writer.stdout.readline()
        if not line:
            raise RuntimeError("the writer process died")
        return dict(json.loads(line))

    def new_run(self, env: str = "dev") -> int:
        return int(self._ask({"op": "run", "env": env})["run"])

    def engine_run(self, steps: int) -> int:
        """Start a run of a ``steps``-step workflow through the engine (needs a qcluster)."""
        return int(self._ask({"op": "engine-run", "steps": steps})["run"])

    def start_qcluster(self) -> subprocess.Popen[Any]:
        """A real ``manage.py qcluster`` on the stack's database (its own process group)."""
        env = self.env | {"TRELLIS_WORKERS": "1", "TRELLIS_QUEUE_POLL": "0.02"}
        worker = subprocess.Popen(
            [PYTHON, "manage.py", "qcluster"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(self.base / "qcluster.log", "a"),
            start_new_session=True,
        )
        self.clusters.append(worker)
        return worker

    def append(
        self,
        run_id: int,
        count: int,
        *,
        interval: float = 0.0,
        kind: str = "log",
        big: int = 0,
        silent: bool = False,
    ) -> list[dict[str, Any]]:
        """Have the writer process append ``count`` entries; returns {seq, t} of each.

        ``silent``: commit without publishing (as a worker dying right after commit).
        """
        command = {
            "op": "append",
            "run": run_id,
            "count": count,
            "interval": interval,
            "kind": kind,
            "big": big,
            "silent": silent,
        }
        return list(self._ask(command)["written"])

    def append_async(
        self,
        run_id: int,
        count: int,
        *,
        interval: float,
        writer: subprocess.Popen[str] | None = None,
    ) -> None:
        """Start appending without waiting; collect with :meth:`collect`."""
        writer = writer or self.writer
        assert writer is not None and writer.stdin
        command = {"op": "append", "run": run_id, "count": count, "interval": interval}
        writer.stdin.write(json.dumps(command) + "\n")
        writer.stdin.flush()

    def collect(self, writer: subprocess.Popen[str] | None = None) -> list[dict[str, Any]]:
        writer = writer or self.writer
        assert writer is not None and writer.stdout
        return list(json.loads(writer.stdout.readline())["written"])

    def ws_url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connect(self, path: str, user: str | None = "vera", **kwargs: Any) -> Any:
        from websockets.sync.client import connect

        headers = {}
        if user is not None:
            headers["Cookie"] = f"sessionid={self.seed['sessions'][user]}"
        kwargs.setdefault("origin", self.origin)
        return connect(self.ws_url(path), additional_headers=headers, open_timeout=10, **kwargs)


def receive(ws: Any, timeout: float = 10) -> dict[str, Any]:
    return json.loads(ws.recv(timeout=timeout))


def entries_until(ws: Any, run_id: int, seq: int, timeout: float = 15) -> list[dict[str, Any]]:
    """Entry messages of a run up to and including ``seq`` (other messages skipped)."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not got or got[-1]["seq"] < seq:
        message = receive(ws, timeout=max(0.01, deadline - time.monotonic()))
        if message["type"] == "entry" and message["run"] == run_id:
            got.append(message)
    return got


def quiet(ws: Any, wait: float = 0.5) -> list[dict[str, Any]]:
    """Whatever else arrives within ``wait`` seconds (expected: nothing)."""
    extra = []
    with contextlib.suppress(TimeoutError):
        while True:
            extra.append(receive(ws, timeout=wait))
    return extra


# -- the subprocess side ------------------------------------------------------------------------


def _seed() -> dict[str, Any]:
    from django.contrib.auth.models import User
    from django.test import Client

    from designer.models import (
        Environment,
        Membership,
        Product,
        Role,
        VersionState,
        Workflow,
        WorkflowVersion,
    )

    product = Product.objects.create(slug="acme", name="Acme")
    other = Product.objects.create(slug="globex", name="Globex")
    envs = {}
    for order, slug in enumerate(["dev", "staging", "prd"]):
        envs[slug] = Environment.objects.create(
            product=product, slug=slug, name=slug, order=order, is_production=slug == "prd"
        ).pk
    Environment.objects.create(product=other, slug="dev", name="dev")
    workflow = Workflow.objects.create(product=product, tag="orders", name="Orders")
    WorkflowVersion.objects.create(
        workflow=workflow, state=VersionState.PUBLISHED, number=1, spec={"tag": "orders"}
    )
    sessions = {}
    for name, role, where in [
        ("alice", Role.ADMIN, product),
        ("vera", Role.VIEWER, product),
        ("mallory", Role.ADMIN, other),  # an admin elsewhere: an outsider to acme
    ]:
        user = User.objects.create_user(username=name, password="pw-" + name)
        Membership.objects.create(product=where, user=user, role=role)
        client = Client()
        client.force_login(user)
        sessions[name] = client.cookies["sessionid"].value
    return {"sessions": sessions, "environments": envs, "workflow": workflow.pk}


def _new_run(env_slug: str) -> dict[str, Any]:
    from designer.models import Environment, Workflow
    from runtime.models import Run, RunStatus

    workflow = Workflow.objects.get(product__slug="acme", tag="orders")
    run = Run.objects.create(
        workflow=workflow,
        version=workflow.versions.get(number=1),
        environment=Environment.objects.get(product=workflow.product, slug=env_slug),
        status=RunStatus.RUNNING,
        input={"order": 1},
    )
    return {"run": run.pk}


def _append_silently(run_id: int, kind: str, data: dict[str, Any]) -> int:
    """A committed entry that is never published: a worker that died right after commit."""
    from django.db import transaction
    from django.db.models import F
    from django.utils import timezone

    from runtime.models import JournalEntry, Run

    with transaction.atomic():
        Run.objects.filter(pk=run_id).update(last_seq=F("last_seq") + 1)
        seq = Run.objects.values_list("last_seq", flat=True).get(pk=run_id)
        JournalEntry.objects.create(
            run_id=run_id, seq=seq, kind=kind, step="s", data=data, at=timezone.now()
        )
    return int(seq)


NOOP = "runtime.connectors.code:noop"


def _start_workflow_run(steps: int) -> dict[str, Any]:
    """Publish a workflow of ``steps`` CODE no-op steps, active in dev, and start a run
    of it through the engine (a qcluster executes it)."""
    from django.utils import timezone

    from designer.models import Activation, Environment, Product, Workflow, WorkflowVersion
    from runtime.compiler import compile_spec, spec_checksum
    from runtime.services import run_start

    spec = {
        "sequences": [
            {
                "tag": "main",
                "events": [{"type": "CODE", "event": NOOP, "tag": f"s{n}"} for n in range(steps)],
            }
        ]
    }
    product = Product.objects.get(slug="acme")
    workflow, _ = Workflow.objects.get_or_create(
        product=product, tag="engine", defaults={"name": "engine"}
    )
    version, _ = WorkflowVersion.objects.get_or_create(
        workflow=workflow,
        number=1,
        defaults={
            "state": "published",
            "spec": spec,
            "plan": compile_spec(spec).model_dump(mode="json"),
            "checksum": spec_checksum(spec),
            "published_at": timezone.now(),
        },
    )
    environment = Environment.objects.get(product__slug="acme", slug="dev")
    Activation.objects.update_or_create(
        workflow=workflow, environment=environment, defaults={"active": True, "version": version}
    )
    run = run_start(workflow=workflow, environment=environment, input={})
    return {"run": run.pk}


def _writer() -> None:
    from tests.bench.live_bench import append_entry

    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "run":
            print(json.dumps(_new_run(command["env"])), flush=True)
            continue
        if command["op"] == "engine-run":
            print(json.dumps(_start_workflow_run(command["steps"])), flush=True)
            continue
        written = []
        for n in range(command["count"]):
            data: dict[str, Any] = {"n": n, "t": time.time()}
            if command.get("big", 0):
                data["blob"] = "x" * command["big"]
            kind = command.get("kind", "log")
            if command.get("silent"):
                seq = _append_silently(command["run"], kind, data)
            else:
                seq = append_entry(command["run"], kind, data, step="s")
            written.append({"seq": seq, "t": data["t"]})
            if command["interval"]:
                time.sleep(command["interval"])
        print(json.dumps({"written": written}), flush=True)


def main(argv: list[str]) -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    django.setup()
    if argv[0] == "seed":
        print(json.dumps(_seed()))
    elif argv[0] == "writer":
        _writer()
    else:
        raise SystemExit(f"unknown command {argv[0]}")


if __name__ == "__main__":
    main(sys.argv[1:])
