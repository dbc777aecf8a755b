"""/healthz, /readyz and ``manage.py doctor``; a nearly full disk refuses new runs with a
JSON 503 and loses nothing, and once space returns every run goes on."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django_q.models import OrmQ
from rest_framework.test import APIClient

from designer.models import Product
from runtime.engine.sweep import sweep_kick
from runtime.models import EngineBeat, Run
from tests.runtime.conftest import make_workflow, run_until_done

pytestmark = pytest.mark.django_db

MB = 1024 * 1024
SPEC = {
    "sequences": [
        {
            "tag": "m",
            "events": [{"type": "CODE", "event": "runtime.connectors.code:noop", "tag": "n"}],
        }
    ]
}


def test_healthz_answers_without_the_database() -> None:
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_fails_without_a_worker_heartbeat_and_passes_with_one(settings: Any) -> None:
    settings.TRELLIS_DISK_MIN_FREE_MB = 1
    EngineBeat.objects.filter(name="sweep").delete()
    response = Client().get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"] == {
        "database": {"ok": True},
        "broker": {"ok": True},
        "worker": {"ok": False},
        "disk": {"ok": True},
    }
    sweep_kick(force=True)  # what a starting worker does: its heartbeat
    ready = Client().get("/readyz")
    assert ready.status_code == 200, ready.content
    assert ready.json()["status"] == "ok"


def test_doctor_says_what_failed_and_what_to_do(settings: Any) -> None:
    settings.TRELLIS_DISK_MIN_FREE_MB = 1
    EngineBeat.objects.filter(name="sweep").delete()
    out = StringIO()
    with pytest.raises(CommandError, match="not ready: worker"):
        call_command("doctor", stdout=out)
    text = out.getvalue()
    assert "FAIL worker" in text
    assert "Start one: manage.py qcluster" in text
    assert "ok   database" in text
    sweep_kick(force=True)
    out = StringIO()
    call_command("doctor", stdout=out)
    assert "ready" in out.getvalue().splitlines()[-1]


@contextlib.contextmanager
def small_disk(tmp_path: Path, size_mb: int) -> Iterator[tuple[Path, bool]]:
    """A size-limited tmpfs (when this process may mount one), else a plain directory.

    Yields the directory and whether it is a real small filesystem.
    """
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    try:
        yield mount, done.returncode == 0
    finally:
        if done.returncode == 0:
            subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path, leave_bytes: int) -> Path:
    """Write a file until ``leave_bytes`` or less are free (a real full-ish disk)."""
    ballast = directory / "ballast"
    chunk = b"\0" * MB
    with ballast.open("wb") as f:
        while shutil.disk_usage(directory).free > leave_bytes:
            room = shutil.disk_usage(directory).free - leave_bytes
            f.write(chunk[: max(4096, min(MB, room))])
            f.flush()
            os.fsync(f.fileno())
    return ballast


def queued() -> tuple[int, int]:
    return Run.objects.count(), OrmQ.objects.count()


def test_a_nearly_full_disk_refuses_new_runs_and_loses_nothing(
    api: APIClient, product: Product, settings: Any, tmp_path: Path
) -> None:
    make_workflow(product, SPEC, tag="flow")
    body = {"workflow": "acme/flow", "env": "dev", "input": {}}
    in_flight = api.post("/api/v1/runs", body, format="json")
    assert in_flight.status_code == 202, in_flight.content
    with small_disk(tmp_path, 8) as (disk, real):
        settings.TRELLIS_DATA_DIR = str(disk)
        if real:
            settings.TRELLIS_DISK_MIN_FREE_MB = 2
            ballast = fill(disk, leave_bytes=1 * MB)
        else:  # no mount allowed here: the same rule against the real free space
            free = shutil.disk_usage(disk).free
            settings.TRELLIS_DISK_MIN_FREE_MB = free // MB + 10
            ballast = None
        before = queued()
        refused = api.post("/api/v1/runs", body, format="json")
        assert refused.status_code == 503, refused.content
        assert refused["Content-Type"] == "application/json"
        assert refused.json() == {
            "code": "storage_full",
            "message": "The server's disk is nearly full; nothing was changed. Try again later.",
        }
        assert queued() == before  # no run, no task
        ready = Client().get("/readyz").json()
        assert ready["checks"]["disk"] == {"ok": False}

        # Space returns.
        if ballast is not None:
            ballast.unlink()
        else:
            settings.TRELLIS_DISK_MIN_FREE_MB = 0
        accepted = api.post("/api/v1/runs", body, format="json")
        assert accepted.status_code == 202, accepted.content
        assert Client().get("/readyz").json()["checks"]["disk"] == {"ok": True}
    for run_id in (in_flight.json()["id"], accepted.json()["id"]):
        run = run_until_done(Run.objects.get(pk=run_id))
        assert run.status == "completed", run.error
    assert Run.objects.count() == 2
