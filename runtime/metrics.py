"""The Prometheus endpoint, ``GET /metrics``.

Two kinds of numbers:

- What the workers did (runs started/completed/failed, retries, re-executions, lease
  expiries, compensations, step durations) is folded from the journal into database
  totals at scrape time (:mod:`runtime.metrics_fold`), so it is the same whichever web
  process is scraped and whatever machine the workers ran on — no multiprocess files.
- What is true now (queue depth and age, database and WAL size, the workers' heartbeat)
  is read at scrape time; live sockets and push latency belong to the web process that
  serves the sockets and are kept in its memory (scrape every web process).

Labels are low-cardinality: workflow (``product/tag``), environment (slug), event type,
status — never a run id.

The endpoint is refused unless ``TRELLIS_METRICS_TOKEN`` (sent as ``Authorization: Bearer
…``) or ``TRELLIS_METRICS_ALLOW`` (client addresses or networks) lets the caller in.
"""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Min
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from designer.accounts import client_ip
from designer.models import Environment, Workflow
from runtime import health
from runtime.metrics_fold import BUCKETS, CURSOR, metrics_fold
from runtime.models import EngineBeat, MetricTotal, Run, SequenceRun

# No auto-describe: it would call the database collector (queries) when it is registered.
REGISTRY = CollectorRegistry(auto_describe=False)

# Kept by the web process that holds the sockets (runtime/consumers.py).
LIVE_SOCKETS = Gauge(
    "trellis_live_sockets", "WebSocket connections open on this web process", registry=REGISTRY
)
PUSH_LATENCY = Histogram(
    "trellis_push_latency_seconds",
    "From a journal entry's commit to its push on a socket (this web process)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY,
)

COUNTERS = {
    "runs_started": ("trellis_runs_started", "Runs started", None),
    "runs_completed": ("trellis_runs_completed", "Runs completed", None),
    "runs_failed": ("trellis_runs_failed", "Runs failed or rolled back", None),
    "runs_cancelled": ("trellis_runs_cancelled", "Runs cancelled", None),
    "step_retries": ("trellis_step_retries", "Step attempts that failed and were retried", None),
    "step_reexecutions": (
        "trellis_step_reexecutions",
        "Step attempts run again after their worker stopped (at-least-once delivery)",
        None,
    ),
    "task_failures": (
        "trellis_task_failures",
        "Engine tasks that failed: lease_expired (the worker died) or crashed",
        "reason",
    ),
    "compensations": (
        "trellis_compensations",
        "Compensation (rollback) steps by outcome",
        "outcome",
    ),
}


def _names() -> tuple[dict[int, str], dict[int, str]]:
    workflows = {
        pk: f"{product}/{tag}"
        for pk, product, tag in Workflow.objects.values_list("pk", "product__slug", "tag")
    }
    envs = {
        pk: f"{product}/{slug}"
        for pk, product, slug in Environment.objects.values_list("pk", "product__slug", "slug")
    }
    return workflows, envs


class DatabaseCollector(Collector):
    """Everything read from the database at scrape time."""

    def describe(self) -> Iterator[Any]:
        return iter(())  # its names come from the database; nothing to check at import

    def collect(self) -> Iterator[Any]:
        metrics_fold()
        yield from self._totals()
        yield from self._queue()
        yield from self._storage()

    def _totals(self) -> Iterator[Any]:
        workflows, envs = _names()
        families: dict[str, CounterMetricFamily] = {}
        for key, (name, doc, extra) in COUNTERS.items():
            labels = ["workflow", "environment"] + ([extra] if extra else [])
            families[key] = CounterMetricFamily(name, doc, labels=labels)
        buckets: dict[str, dict[str, float]] = {}
        sums: dict[str, float] = {}
        rows = MetricTotal.objects.exclude(name=CURSOR).values_list(
            "name", "workflow_id", "environment_id", "label", "value"
        )
        for name, workflow_id, environment_id, label, value in rows:
            if name in families:
                labels = [
                    workflows.get(workflow_id, f"#{workflow_id}"),
                    envs.get(environment_id, f"#{environment_id}"),
                ]
                if COUNTERS[name][2]:
                    labels.append(label)
                families[name].add_metric(labels, value)
            elif name == "step_seconds_bucket":
                event_type, _, bound = label.partition("|")
                buckets.setdefault(event_type, {})[bound] = value
            elif name == "step_seconds_sum":
                sums[label] = value
        yield from families.values()
        histogram = HistogramMetricFamily(
            "trellis_step_duration_seconds",
            "Step attempt durations by event type",
            labels=["event_type"],
        )
        for event_type, counts in sorted(buckets.items()):
            bounds = [(str(b), counts.get(str(b), 0.0)) for b in BUCKETS]
            bounds.append(("+Inf", counts.get("+Inf", 0.0)))
            histogram.add_metric([event_type], bounds, sums.get(event_type, 0.0))
        yield histogram

    def _queue(self) -> Iterator[Any]:
        now = timezone.now()
        depth = GaugeMetricFamily(
            "trellis_queue_depth", "Tasks on the queue, due now (not delayed)", value=queue_depth()
        )
        yield depth
        oldest = SequenceRun.objects.filter(status="running", lease_owner="").aggregate(
            at=Min(Coalesce("kicked_at", "started_at"))
        )["at"]
        age = (now - oldest).total_seconds() if oldest is not None else 0.0
        yield GaugeMetricFamily(
            "trellis_queue_oldest_age_seconds",
            "Age of the oldest started sequence no worker has picked up yet",
            value=max(0.0, age),
        )
        active = GaugeMetricFamily("trellis_runs_active", "Unfinished runs", labels=["status"])
        counts = dict(
            Run.objects.filter(status__in=["pending", "running", "waiting"])
            .values("status")
            .annotate(n=Count("id"))
            .values_list("status", "n")
        )
        for status in ("pending", "running", "waiting"):
            active.add_metric([status], float(counts.get(status, 0)))
        yield active
        beat = EngineBeat.objects.filter(name="sweep").values_list("beat_at", flat=True).first()
        yield GaugeMetricFamily(
            "trellis_worker_heartbeat_age_seconds",
            "Seconds since a worker last ran the engine's sweep",
            value=_age(beat, now),
        )

    def _storage(self) -> Iterator[Any]:
        sizes = health.database_sizes()
        yield GaugeMetricFamily(
            "trellis_database_bytes", "Size of the database", value=float(sizes.database)
        )
        yield GaugeMetricFamily(
            "trellis_database_wal_bytes",
            "Size of the write-ahead log (SQLite -wal file; PostgreSQL pg_wal when readable)",
            value=float(sizes.wal),
        )


def _age(at: datetime | None, now: datetime) -> float:
    return (now - at).total_seconds() if at is not None else float("inf")


def queue_depth() -> float:
    """Tasks due now: ORM broker rows not held back (delayed or claimed), or the Redis list."""
    from runtime.brokers import broker, is_orm_broker

    if is_orm_broker():
        from django_q.models import OrmQ

        return float(OrmQ.objects.filter(lock__lte=timezone.now()).count())
    return float(broker().connection.llen(broker().list_key))


REGISTRY.register(DatabaseCollector())


def _allowed(request: HttpRequest) -> bool:
    token: str = getattr(settings, "TRELLIS_METRICS_TOKEN", "")
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header[7:].strip().encode(), token.encode())
    networks: list[str] = getattr(settings, "TRELLIS_METRICS_ALLOW", [])
    address = client_ip(request)
    if not networks or address is None:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net, strict=False) for net in networks)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """``GET /metrics``: the Prometheus text format, for a token holder or an allowed address."""
    if request.method != "GET":
        return JsonResponse({"code": "method_not_allowed", "message": "GET only"}, status=405)
    if not _allowed(request):
        return JsonResponse(
            {
                "code": "forbidden",
                "message": "metrics need TRELLIS_METRICS_TOKEN (Authorization: Bearer …) "
                "or a client address in TRELLIS_METRICS_ALLOW",
            },
            status=403,
        )
    started = time.monotonic()
    body = generate_latest(REGISTRY)
    response = HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
    response["X-Scrape-Seconds"] = f"{time.monotonic() - started:.3f}"
    return response


def observe_push(at_iso: str) -> None:
    """A journal entry committed at ``at_iso`` was just pushed on a socket."""
    try:
        at = datetime.fromisoformat(at_iso)
    except (TypeError, ValueError):
        return
    PUSH_LATENCY.observe(max(0.0, (timezone.now() - at) / timedelta(seconds=1)))
