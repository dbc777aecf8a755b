"""SIGTERM to a busy qcluster's whole process group (systemd's KillMode=control-group)
stops it within seconds: the steps in flight finish, the sequences are handed back, and
another worker finishes every run with no step lost or run twice."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from typing import Any

import pytest

from designer.models import Environment, Product
from runtime.models import Run, StepRun
from runtime.services import run_start
from tests.runtime import steps
from tests.runtime.conftest import code, make_workflow, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

STEPS = 6


def test_sigterm_to_the_process_group_stops_a_busy_cluster_without_losing_a_step(
    product: Product, env_dev: Environment, side_effects: Any, worker: Any
) -> None:
    events = [code("slow", tag=f"s{i}", input={"seconds": 0.4}) for i in range(STEPS)]
    wf = make_workflow(product, {"sequences": [{"tag": "m", "events": events}]}, tag="busy")
    runs = [run_start(workflow=wf, environment=env_dev, input={}) for _ in range(4)]
    first = worker(workers=2)
    assert wait_for(lambda: steps.count("s1") >= 2, timeout=60), "the worker never got busy"

    assert first.proc is not None
    started = time.monotonic()
    os.killpg(first.proc.pid, signal.SIGTERM)  # the whole group: leader, sentinel, workers
    try:
        first.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("the cluster did not stop within 10 s of SIGTERM to its process group")
    took = time.monotonic() - started
    assert first.proc.returncode is not None
    done_before = Run.objects.filter(status="completed").count()
    assert done_before < len(runs), "every run ended before the stop: the test proves nothing"
    # Nothing of the cluster is left behind (no defunct sentinel, no orphaned worker).
    left = subprocess.run(
        ["pgrep", "-g", str(first.proc.pid)], capture_output=True, text=True, check=False
    )
    assert left.stdout.strip() == "", left.stdout

    worker(workers=2)  # another worker takes over at once: the sequences were handed back
    assert wait_for(
        lambda: Run.objects.filter(status="completed").count() == len(runs), timeout=60
    ), list(Run.objects.values_list("id", "status"))
    for i in range(STEPS):
        started_keys = Counter(steps.keys(f"s{i}.start"))
        finished_keys = Counter(steps.keys(f"s{i}"))
        assert len(finished_keys) == len(runs), (i, finished_keys)
        assert max(started_keys.values()) == 1, f"s{i} started twice: {started_keys}"
        assert max(finished_keys.values()) == 1, f"s{i} ran twice: {finished_keys}"
    assert set(StepRun.objects.values_list("attempt", flat=True)) == {1}
    print(f"stopped in {took:.1f} s")


def test_a_worker_that_does_not_stop_within_the_grace_period_is_ended(tmp_path: Any) -> None:
    """django-q2 stops a worker stuck past the task timeout with SIGTERM: a worker noting
    the signal must still end, after TRELLIS_STOP_GRACE_S."""
    import sys
    from pathlib import Path

    script = (
        "import os, signal, time, django\n"
        "os.environ['TRELLIS_STOP_GRACE_S'] = '0.5'\n"
        "django.setup()\n"
        "from runtime import graceful\n"
        "graceful.worker_started()\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
        "assert graceful.stopping()\n"
        "print('noted', flush=True)\n"
        "time.sleep(30)\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, env=env, capture_output=True, timeout=25
    )
    assert done.stdout.decode().strip() == "noted", done.stderr.decode()[-2000:]
    assert done.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 20
