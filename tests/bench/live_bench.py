"""Push latency: commit of a journal entry → the entry received by a WebSocket client.

The measurement is end to end and across processes, as in production: a real daphne
subprocess serves ``designer.asgi`` on the current database and channel layer, this
process plays the worker (it commits journal entries through the engine's
``journal_append``, which publishes after commit), and a WebSocket client in this
process (its own thread, timestamping each message as it arrives) is the browser.

Also measured: the web process's CPU while idle, with no subscriber and with one idle
subscriber (the embedded layer polls only while someone listens).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.test import Client
from websockets.sync.client import connect
from websockets.typing import Origin

from designer.models import Environment, Product, VersionState, Workflow, WorkflowVersion
from runtime.journal import journal_append
from runtime.models import Run, RunStatus

if TYPE_CHECKING:
    from tests.bench.management.commands.bench import Bench

ASGI_APP = "designer.asgi:application"


def append_entry(run_id: int, kind: str, data: dict[str, Any], *, step: str = "") -> int:
    """Commit one journal entry in its own transaction (published after commit), through
    the engine's ``journal_append``; returns its sequence number."""
    with transaction.atomic():
        run = Run.objects.get(pk=run_id)
        return int(journal_append(run, kind, step=step, data=data).seq)


def _free_port(ports: range) -> int:
    for port in ports:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1}")


def _server_env() -> dict[str, str]:
    """The environment that points a subprocess at this process's database and layer."""
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = os.environ.get("DJANGO_SETTINGS_MODULE", "designer.settings")
    env["TRELLIS_VAR_DIR"] = str(settings.VAR_DIR)
    env["PYTHONPATH"] = os.pathsep.join([str(settings.BASE_DIR), env.get("PYTHONPATH", "")])
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        env.pop("DATABASE_URL", None)
        env["SQLITE_PATH"] = str(db["NAME"])
    elif connection.vendor == "postgresql":
        auth = db["USER"] or ""
        if db.get("PASSWORD"):
            auth += ":" + db["PASSWORD"]
        host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
        env["DATABASE_URL"] = f"postgresql://{auth}@{host}/{db['NAME']}"
    return env


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _cpu_percent(pid: int, seconds: float) -> float:
    start, began = _cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return 100 * (_cpu_seconds(pid) - start) / (time.monotonic() - began)


class _Receiver(threading.Thread):
    """Reads a WebSocket and notes when each entry arrived (perf_counter)."""

    def __init__(self, ws: Any) -> None:
        super().__init__(daemon=True, name="push-latency-client")
        self.ws = ws
        self.arrived: dict[int, float] = {}
        self.ready = threading.Event()
        self.changed = threading.Condition()

    def run(self) -> None:
        with contextlib.suppress(Exception):
            for raw in self.ws:
                now = time.perf_counter()
                message = json.loads(raw)
                if message["type"] == "ready":
                    self.ready.set()
                elif message["type"] == "entry" and message.get("step") == "bench":
                    with self.changed:
                        self.arrived[message["seq"]] = now
                        self.changed.notify_all()

    def wait_for(self, seq: int, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        with self.changed:
            while seq not in self.arrived:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.changed.wait(left)
            return self.arrived[seq]


def _note_time(into: list[float]) -> None:
    into.append(time.perf_counter())


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def _fixtures() -> tuple[Any, int, str]:
    """A throwaway superuser, product, workflow and run; returns (user, run id, cookie)."""
    tag = f"bench-live-{secrets.token_hex(4)}"
    user = User.objects.create_superuser(username=tag, password=secrets.token_hex(16))
    product = Product.objects.create(slug=tag, name=tag)
    environment = Environment.objects.create(product=product, slug="dev", name="dev")
    workflow = Workflow.objects.create(product=product, tag="push", name="push latency")
    version = WorkflowVersion.objects.create(
        workflow=workflow, state=VersionState.PUBLISHED, number=1, spec={}
    )
    run = Run.objects.create(
        workflow=workflow, version=version, environment=environment, status=RunStatus.RUNNING
    )
    client = Client()
    client.force_login(user)
    return user, run.pk, client.cookies[settings.SESSION_COOKIE_NAME].value


def _drop_fixtures(user: Any, run_id: int) -> None:
    run = Run.objects.select_related("workflow").get(pk=run_id)
    product_id = run.workflow.product_id
    run.delete()
    Product.objects.filter(pk=product_id).delete()
    user.delete()


def _wait_listening(server: subprocess.Popen[bytes], port: int, timeout: float = 30) -> None:
    """Wait until the server accepts connections on ``port``."""
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the daphne server did not start")
        time.sleep(0.05)


def _sample(
    receiver: _Receiver, run_id: int, warmup: int, samples: int, interval: float
) -> tuple[list[float], int]:
    """Commit ``warmup + samples`` entries one by one; (latencies in ms, entries lost)."""
    latencies: list[float] = []
    lost = 0
    for n in range(warmup + samples):
        committed: list[float] = []
        with transaction.atomic():
            # Registered first, so it runs first after commit: the commit instant.
            transaction.on_commit(functools.partial(_note_time, committed))
            seq = append_entry(run_id, "log", {"n": n}, step="bench")
        arrived = receiver.wait_for(seq, timeout=5)
        if arrived is None:
            lost += 1
        elif n >= warmup:
            latencies.append(1000 * (arrived - committed[0]))
        time.sleep(interval)
    return latencies, lost


def measure_push_latency(
    *,
    samples: int = 200,
    warmup: int = 10,
    interval: float = 0.005,
    idle_seconds: float = 2.0,
    ports: range = range(8600, 8700),
    env: Mapping[str, str] | None = None,
) -> dict[str, float]:
    """Measure commit → WebSocket client latency through a real daphne subprocess.

    Returns ``push_p50_ms``, ``push_p95_ms``, ``push_max_ms``, ``push_samples``,
    ``push_lost`` (entries never received within 5 s), and the server's idle CPU in % of
    one core: ``push_idle_cpu_pct`` (no subscriber) and ``push_idle_cpu_subscribed_pct``
    (one idle subscriber). Creates and removes its own user/product/run.
    """
    user, run_id, cookie = _fixtures()
    port = _free_port(ports)
    server_env = _server_env() | dict(env or {})
    server = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), ASGI_APP],
        env=server_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(server, port)
        time.sleep(0.5)  # let start-up work settle before measuring idle CPU
        idle = _cpu_percent(server.pid, idle_seconds)
        ws = connect(
            f"ws://127.0.0.1:{port}/ws/runs/{run_id}/",
            origin=Origin(f"http://127.0.0.1:{port}"),
            additional_headers={"Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}"},
            open_timeout=10,
        )
        receiver = _Receiver(ws)
        receiver.start()
        if not receiver.ready.wait(10):
            raise RuntimeError("the live socket never became ready")
        idle_subscribed = _cpu_percent(server.pid, idle_seconds)
        latencies, lost = _sample(receiver, run_id, warmup, samples, interval)
        ws.close()
        receiver.join(timeout=5)
    finally:
        server.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=10)
        if server.poll() is None:
            server.kill()
        _drop_fixtures(user, run_id)
    if not latencies:
        raise RuntimeError("no push arrived")
    return {
        "push_p50_ms": round(_percentile(latencies, 0.50), 2),
        "push_p95_ms": round(_percentile(latencies, 0.95), 2),
        "push_max_ms": round(max(latencies), 2),
        "push_samples": len(latencies),
        "push_lost": lost,
        "push_idle_cpu_pct": round(idle, 2),
        "push_idle_cpu_subscribed_pct": round(idle_subscribed, 2),
    }


def bench_extra(bench: Bench) -> dict[str, Any]:
    """The bench command's hook (``EXTRAS``): push latency on the bench's database."""
    return dict(measure_push_latency())
