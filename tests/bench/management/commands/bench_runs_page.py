"""``python manage.py bench_runs_page [--runs 100000] [--modes embedded,scale] [--json]``:
the product runs page (GET /api/v1/products/<slug>/runs) at scale.

Generates ``--runs`` runs (5 steps each) of 3 workflows in 3 environments over 7 days —
90% completed, 7% failed at one of the steps, 3% still running — then times the first
page and each common filter through the real view (median of 5 requests, ms), and the
charts' aggregate. On PostgreSQL it also prints ``EXPLAIN`` of each filter's query: the
index each one reads (no sequential scan).

It never touches your data: it re-runs itself (``--inner``) against a temporary SQLite
database ("embedded") or a temporary PostgreSQL database ("scale": from
TEST_DATABASE_URL or DATABASE_URL), and removes it afterwards.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection
from django.db.models import F
from django.test import Client
from django.utils import timezone

BUDGET_MS = 300
STEPS = ["validate", "charge", "reserve", "ship", "notify"]


def _spec() -> dict[str, Any]:
    noop = "runtime.connectors.code:noop"
    events = [{"type": "CODE", "event": noop, "tag": t} for t in STEPS]
    return {"sequences": [{"tag": "main", "events": events}]}


def generate(n: int) -> dict[str, Any]:
    """``n`` runs with their steps, inserted in batches; returns what the filters need."""
    from django.contrib.auth.models import User

    from designer import services
    from designer.models import Environment, Product
    from runtime.models import Run, StepRun

    product = Product.objects.create(slug="bench", name="Bench")
    envs = [
        Environment.objects.create(product=product, slug=s, name=s, order=i,
                                   is_production=s == "prd")
        for i, s in enumerate(["dev", "staging", "prd"])
    ]  # fmt: skip
    admin = User.objects.create_superuser("bench", password="pw-bench")
    versions = []
    for tag in ("orders", "billing", "shipping"):
        workflow = services.workflow_create(product=product, tag=tag, name=tag)
        versions.append(services.workflow_publish(workflow=workflow, author=admin, spec=_spec()))
    rng = random.Random(7)
    now = timezone.now()
    span = timedelta(days=7).total_seconds()
    batch = 5000
    for start in range(0, n, batch):
        runs = []
        for i in range(start, min(n, start + batch)):
            version = versions[i % 3]
            created = now - timedelta(seconds=span * (1 - i / n))
            roll = rng.random()
            status = "completed" if roll < 0.90 else "failed" if roll < 0.97 else "running"
            failed_at = rng.choice(STEPS) if status == "failed" else None
            runs.append(
                Run(
                    workflow_id=version.workflow_id, version=version,
                    environment=envs[(i // 3) % 3],
                    status=status, input={"customer": {"id": rng.randint(1, 5000)}},
                    output={"ok": True} if status == "completed" else None,
                    error={"step": failed_at, "message": "boom"} if failed_at else None,
                    created_at=created, started_at=created,
                    finished_at=created + timedelta(milliseconds=rng.randint(50, 5000))
                    if status != "running" else None,
                )
            )  # fmt: skip
        made = Run.objects.bulk_create(runs)
        steps = []
        for run in made:
            fail = (run.error or {}).get("step")
            state = "completed"
            for index, tag in enumerate(STEPS):
                if tag == fail:
                    state = "failed"
                elif state == "failed":
                    state = "cancelled"
                elif run.status == "running" and index == 2:
                    state = "running"
                elif state == "running":
                    state = "pending"
                steps.append(StepRun(run=run, tag=tag, sequence="main", index=index,
                                     status=state))  # fmt: skip
        StepRun.objects.bulk_create(steps)
    # created_at is auto_now_add (bulk_create sets it to now): put the generated times back.
    Run.objects.update(created_at=F("started_at"))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    middle = Run.objects.order_by("id").values_list("id", flat=True)[n // 2]
    return {"middle": middle, "some_id": middle + 3}


def cases(info: dict[str, Any]) -> list[tuple[str, dict[str, str], bool]]:
    """(name, query, common filter?) — the common ones must stay under the budget."""
    now = timezone.now()
    hour_ago = (now - timedelta(hours=1)).isoformat()
    day3, day2 = (now - timedelta(days=3)).isoformat(), (now - timedelta(days=2)).isoformat()
    return [
        ("first page", {}, True),
        ("workflow", {"workflow": "orders"}, True),
        ("environment", {"env": "prd"}, True),
        ("workflow + environment", {"workflow": "orders", "env": "prd"}, True),
        ("status failed", {"status": "failed"}, True),
        ("status running", {"status": "running"}, True),
        ("failed at step", {"failed_step": "charge"}, True),
        ("failed at step + workflow", {"failed_step": "charge", "workflow": "billing"}, True),
        ("last hour", {"created_after": hour_ago}, True),
        ("a day, 3 days ago", {"created_after": day3, "created_before": day2}, True),
        ("run id", {"run": str(info["some_id"])}, True),
        ("deep page (cursor)", {"before": str(info["middle"])}, True),
        ("where input.customer.id = 42", {"where": "input.customer.id = 42"}, False),
    ]


def explain(query: dict[str, str]) -> str:
    from designer.models import Product
    from runtime.product_runs import runs_filter_parse, runs_filtered

    product = Product.objects.get(slug="bench")
    f = runs_filter_parse(product=product, params={k: v for k, v in query.items() if k != "before"})
    qs = runs_filtered(f)
    if "before" in query:
        qs = qs.filter(pk__lt=int(query["before"]))
    sql, params = qs[:51].query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        return " | ".join(row[0].strip() for row in cursor.fetchall())


def measure(n: int) -> dict[str, Any]:
    call_command("migrate", verbosity=0)
    began = time.monotonic()
    info = generate(n)
    generated_s = time.monotonic() - began
    from django.contrib.auth.models import User

    client = Client()
    client.force_login(User.objects.get(username="bench"))
    results = []
    for name, query, common in [*cases(info), ("charts (24 h)", {"_stats": "1"}, False)]:
        url = "/api/v1/products/bench/runs"
        if query.pop("_stats", None):
            url += "/stats"
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            response = client.get(url, query)
            times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, response.content[:300]
        row: dict[str, Any] = {
            "case": name,
            "ms": round(statistics.median(times), 1),
            "rows": len(response.json().get("results", response.json().get("buckets", []))),
            "common": common,
        }
        if connection.vendor == "postgresql" and not url.endswith("stats"):
            row["plan"] = explain(query)
        results.append(row)
    return {
        "vendor": connection.vendor,
        "runs": n,
        "generated_s": round(generated_s, 1),
        "results": results,
        "within_budget": all(r["ms"] < BUDGET_MS for r in results if r["common"]),
    }


class Command(BaseCommand):
    help = "Time the product runs page over generated runs (embedded and/or PostgreSQL)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--runs", type=int, default=100_000)
        parser.add_argument("--modes", default="embedded,scale")
        parser.add_argument("--json", action="store_true")
        parser.add_argument("--inner", action="store_true", help=Command.help)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["inner"]:
            print(json.dumps(measure(options["runs"]), default=str))
            return
        reports = []
        for mode in options["modes"].split(","):
            report = self._run(mode, options["runs"])
            if report is not None:
                reports.append(report)
        if options["json"]:
            print(json.dumps({"modes": reports}, indent=2))
            return
        for report in reports:
            self._print(report)
        if not all(r["within_budget"] for r in reports):
            raise SystemExit(1)

    def _run(self, mode: str, n: int) -> dict[str, Any] | None:
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
        env["DJANGO_SETTINGS_MODULE"] = "tests.settings"
        tmp = tempfile.mkdtemp(prefix="bench-runs-")
        env["TRELLIS_VAR_DIR"] = tmp
        env["SQLITE_PATH"] = str(Path(tmp) / "db.sqlite3")
        drop = None
        if mode == "scale":
            base = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
            if not base:
                self.stderr.write("scale: no TEST_DATABASE_URL/DATABASE_URL; skipped")
                return None
            name = f"bench_runs_{uuid.uuid4().hex[:8]}"
            admin = base.rsplit("/", 1)[0] + "/postgres"
            with psycopg.connect(admin, autocommit=True) as pg:
                pg.execute(f'CREATE DATABASE "{name}"')
            env["DATABASE_URL"] = base.rsplit("/", 1)[0] + "/" + name
            drop = (admin, name)
        try:
            done = subprocess.run(
                [sys.executable, "manage.py", "bench_runs_page", "--inner", "--runs", str(n)],
                cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, check=False,
            )  # fmt: skip
            if done.returncode != 0:
                raise SystemExit(f"{mode} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
            report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
            report["mode"] = mode
            return report
        finally:
            if drop is not None:
                with psycopg.connect(drop[0], autocommit=True) as pg:
                    pg.execute(f'DROP DATABASE IF EXISTS "{drop[1]}" WITH (FORCE)')
            subprocess.run(["rm", "-rf", tmp], check=False)

    def _print(self, report: dict[str, Any]) -> None:
        self.stdout.write(
            f"\n{report['mode']} ({report['vendor']}): {report['runs']:,} runs "
            f"(generated in {report['generated_s']} s); budget {BUDGET_MS} ms"
        )
        for row in report["results"]:
            flag = "" if not row["common"] else (" ok" if row["ms"] < BUDGET_MS else " OVER")
            line = f"  {row['case']:<32} {row['ms']:>8.1f} ms  {row['rows']:>4} rows{flag}"
            self.stdout.write(line)
            if "plan" in row:
                self.stdout.write(f"      {row['plan'][:400]}")
