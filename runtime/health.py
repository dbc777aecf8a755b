"""Health checks: ``/healthz`` (the process answers), ``/readyz`` (it can do its work),
``manage.py doctor`` (the same checks for a person, with what to do), and the disk guard
that makes ``POST /runs`` answer 503 before a nearly full disk stalls the runs.

Readiness: the database takes a write, the broker answers, a worker's heartbeat (the
engine's sweep, which a running ``qcluster`` renews every couple of seconds) is recent,
and the disk holding the data has room.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone

from runtime.models import EngineBeat


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    advice: str = ""


@dataclass(frozen=True)
class Sizes:
    database: int
    wal: int


def data_dir() -> Path:
    """Where the data lives: TRELLIS_DATA_DIR, else the SQLite file's folder, else VAR_DIR."""
    configured = getattr(settings, "TRELLIS_DATA_DIR", "")
    if configured:
        return Path(configured)
    if connection.vendor == "sqlite":
        return Path(str(settings.DATABASES["default"]["NAME"])).parent
    return Path(settings.VAR_DIR)


def min_free_bytes() -> int:
    return int(getattr(settings, "TRELLIS_DISK_MIN_FREE_MB", 200)) * 1024 * 1024


def disk_free() -> int:
    return shutil.disk_usage(data_dir()).free


def disk_low() -> bool:
    """Whether the disk holding the data has less room than TRELLIS_DISK_MIN_FREE_MB."""
    try:
        return disk_free() < min_free_bytes()
    except OSError:
        return False  # cannot tell: the database's own error will say it if it is so


def check_disk() -> Check:
    try:
        free = disk_free()
    except OSError as exc:
        return Check("disk", False, f"cannot read free space: {exc.strerror}")
    need = min_free_bytes()
    detail = f"{free // (1024 * 1024)} MB free, {need // (1024 * 1024)} MB required"
    advice = (
        "Free space on the data disk (prune old runs: manage.py prune; lower the retention "
        "on the Environments page), or grow the disk. New runs are refused (503) meanwhile."
    )
    return Check("disk", free >= need, detail, "" if free >= need else advice)


def check_database() -> Check:
    """A real committed write: a read-only, locked or full database fails here."""
    try:
        with transaction.atomic():
            updated = EngineBeat.objects.filter(name="readyz").update(beat_at=timezone.now())
            if not updated:
                EngineBeat.objects.create(name="readyz", beat_at=timezone.now())
    except DatabaseError as exc:
        return Check(
            "database",
            False,
            f"write failed: {str(exc)[:200]}",
            "Check the database is running, its disk has room and DATABASE_URL/SQLITE_PATH "
            "point at it with write rights.",
        )
    return Check("database", True, f"{connection.vendor} writable")


def check_broker() -> Check:
    from runtime.brokers import broker, is_orm_broker

    try:
        if is_orm_broker():
            from django_q.models import OrmQ

            OrmQ.objects.exists()
            return Check("broker", True, "ORM broker (the database)")
        broker().connection.ping()
    except Exception as exc:
        return Check(
            "broker",
            False,
            f"unreachable: {str(exc)[:200]}",
            "Start Redis, or check REDIS_URL.",
        )
    return Check("broker", True, "Redis answers")


def check_worker() -> Check:
    limit = float(getattr(settings, "TRELLIS_READY_HEARTBEAT_S", 30.0))
    beat = EngineBeat.objects.filter(name="sweep").values_list("beat_at", flat=True).first()
    if beat is None:
        return Check("worker", False, "no worker has ever run", "Start one: manage.py qcluster.")
    age = (timezone.now() - beat).total_seconds()
    if age > limit:
        return Check(
            "worker",
            False,
            f"last heartbeat {age:.0f} s ago (limit {limit:.0f} s)",
            "Start a worker (manage.py qcluster) or look at its log: runs do not move.",
        )
    return Check("worker", True, f"last heartbeat {age:.1f} s ago")


def checks() -> list[Check]:
    return [check_database(), check_broker(), check_worker(), check_disk()]


def database_sizes() -> Sizes:
    """Bytes of the database and of its write-ahead log."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            name = Path(str(settings.DATABASES["default"]["NAME"]))
            cursor.execute("PRAGMA page_count")
            pages = int(cursor.fetchone()[0])
            cursor.execute("PRAGMA page_size")
            size = pages * int(cursor.fetchone()[0])
            wal = Path(f"{name}-wal")
            return Sizes(size, wal.stat().st_size if wal.exists() else 0)
        cursor.execute("SELECT pg_database_size(current_database())")
        size = int(cursor.fetchone()[0])
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT COALESCE(sum(size), 0) FROM pg_ls_waldir()")
            wal_size = int(cursor.fetchone()[0])
    except DatabaseError:  # pg_ls_waldir needs pg_monitor: report 0 rather than fail
        wal_size = 0
    return Sizes(size, wal_size)


def healthz_view(request: HttpRequest) -> JsonResponse:
    """The process is alive and answers (no database access: a load balancer's liveness)."""
    return JsonResponse({"status": "ok"})


def readyz_view(request: HttpRequest) -> JsonResponse:
    """Ready for work: every check passes (503 otherwise). Unauthenticated (load balancers
    call it), so only whether each check passed: ``manage.py doctor`` tells the details."""
    results = checks()
    ready = all(c.ok for c in results)
    body = {
        "status": "ok" if ready else "unavailable",
        "checks": {c.name: {"ok": c.ok} for c in results},
    }
    return JsonResponse(body, status=200 if ready else 503)
