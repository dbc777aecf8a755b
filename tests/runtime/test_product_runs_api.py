"""Every run of a product (GET /api/v1/products/<slug>/runs, …/runs/stats) and bulk
actions (POST /api/v1/runs/bulk): filters, keyset paging, the step grid, permissions
(viewer reads, operator acts per governance, outsiders and other products get 404),
the cap, the typed confirmation, the idempotency key and bad filters naming the field."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from designer.models import AuditEntry, Environment, Product
from runtime import services
from runtime.models import Run
from tests.conftest import client_for
from tests.runtime.conftest import code, drain, make_workflow

pytestmark = pytest.mark.django_db

URL = "/api/v1/products/acme/runs"
BULK = "/api/v1/runs/bulk"


def spec(pay: str = "boom") -> dict[str, Any]:
    return {
        "sequences": [
            {
                "tag": "main",
                "events": [
                    code("add", tag="first", input={"a": 1, "b": 2}),
                    code(pay, tag="pay", input={"a": 1}),
                    code("add", tag="ship"),
                ],
            }
        ]
    }


def start(workflow: Any, env: str = "dev", **input: Any) -> Run:
    environment = Environment.objects.get(product=workflow.product, slug=env)
    return services.run_start(workflow=workflow, environment=environment, input=input)


@pytest.fixture
def world(product: Product, admin_user: User) -> dict[str, Any]:
    """orders (fails at 'pay') in dev and prd, 5 runs (one still pending); billing
    (completes) in dev, 2 runs."""
    orders = make_workflow(product, spec(), tag="orders", envs=("dev", "prd"))
    billing = make_workflow(product, spec("add"), tag="billing")
    failed = [start(orders, customer={"id": i}) for i in range(3)]
    in_prd = [start(orders, "prd", customer={"id": 42})]
    done = [start(billing, customer={"id": 42}), start(billing, customer={"id": 7})]
    drain()
    waiting = start(orders, customer={"id": 99})  # not drained: stays pending
    return {
        "orders": orders, "billing": billing, "failed": failed, "prd": in_prd,
        "done": done, "pending": waiting,
    }  # fmt: skip


def ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.content
    return [r["id"] for r in response.json()["results"]]


def test_it_lists_every_workflow_and_environment_newest_first(
    world: Any, viewer_user: User
) -> None:
    got = ids(client_for(viewer_user).get(URL))
    assert got == sorted(Run.objects.values_list("id", flat=True), reverse=True)
    assert len(got) == 7
    body = client_for(viewer_user).get(URL).json()
    envs = {r["environment"] for r in body["results"]}
    assert envs == {"dev", "prd"}
    first = world["failed"][0].pk
    row = next(r for r in body["results"] if r["id"] == first)
    assert row["status"] == "failed" and row["failed_step"] == "pay"
    # The grid: a row per step of each workflow, a cell per run.
    keys = [r["key"] for r in body["grid"]["rows"]]
    assert keys == ["billing:first", "billing:pay", "billing:ship",
                    "orders:first", "orders:pay", "orders:ship"]  # fmt: skip
    cells = body["grid"]["cells"][str(first)]
    assert cells["orders:first"] == "completed" and cells["orders:pay"] == "failed"


def test_each_filter_narrows_the_list(world: Any, viewer_user: User) -> None:
    vera = client_for(viewer_user)
    failed = {r.pk for r in world["failed"]} | {r.pk for r in world["prd"]}
    assert set(ids(vera.get(URL, {"workflow": "billing"}))) == {r.pk for r in world["done"]}
    assert ids(vera.get(URL, {"env": "prd"})) == [world["prd"][0].pk]
    assert set(ids(vera.get(URL, {"status": "failed,rolled_back"}))) == failed
    assert set(ids(vera.get(URL, {"failed_step": "pay"}))) == failed
    assert ids(vera.get(URL, {"failed_step": "ship"})) == []
    by_customer = set(ids(vera.get(URL, {"where": "input.customer.id = 42"})))
    assert by_customer == {world["prd"][0].pk, world["done"][0].pk}
    both = ids(vera.get(URL, {"where": "input.customer.id = 42", "workflow": "billing"}))
    assert both == [world["done"][0].pk]
    assert set(ids(vera.get(URL, {"where": "input.customer.id >= 42"}))) == by_customer | {
        world["pending"].pk
    }
    output = ids(vera.get(URL, {"where": "output.first.sum = 3"}))
    assert output == [] or all(i in {r.pk for r in world["done"]} for i in output)
    assert ids(vera.get(URL, {"run": str(world["done"][1].pk)})) == [world["done"][1].pk]
    old = world["failed"][0]
    Run.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))
    before = (timezone.now() - timedelta(days=1)).isoformat()
    assert ids(vera.get(URL, {"created_before": before})) == [old.pk]
    assert old.pk not in ids(vera.get(URL, {"created_after": before}))


def test_pages_follow_the_cursor_without_gaps_or_repeats(world: Any, viewer_user: User) -> None:
    vera = client_for(viewer_user)
    seen: list[int] = []
    params: dict[str, Any] = {"limit": 3}
    pages = 0
    while True:
        body = vera.get(URL, params).json()
        seen += [r["id"] for r in body["results"]]
        pages += 1
        if body["next"] is None:
            break
        params["before"] = body["next"]
    assert pages == 3
    assert seen == sorted(Run.objects.values_list("id", flat=True), reverse=True)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "bogus"}, "status"),
        ({"workflow": "nope"}, "workflow"),
        ({"env": "nope"}, "env"),
        ({"where": "input.customer.id ~ 42"}, "where"),
        ({"where": "secrets.x = 1"}, "where"),
        ({"where": "input.a > 'x'"}, "where"),
        ({"where": "input." + ".".join(["a"] * 9) + " = 1"}, "where"),
        ({"where": "input.a = 1e999"}, "where"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"created_after": "2026-13-45T00:00:00"}, "created_after"),
        ({"run": "abc"}, "run"),
        ({"before": "abc"}, "before"),
        ({"limit": "0"}, "limit"),
    ],
)
def test_a_bad_filter_is_a_400_naming_the_field(
    world: Any, viewer_user: User, params: dict[str, str], field: str
) -> None:
    response = client_for(viewer_user).get(URL, params)
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field


def test_outsiders_and_other_products_get_404(world: Any, outsider: User, admin_user: User) -> None:
    assert client_for(outsider).get(URL).status_code == 404
    assert client_for(outsider).get(URL + "/stats").status_code == 404
    other = Product.objects.create(slug="other", name="Other")
    Environment.objects.create(product=other, slug="dev", name="dev")
    theirs = make_workflow(other, spec("add"), tag="theirs")
    foreign = start(theirs)
    # alice is no member of "other": its runs are not hers to list or act on.
    assert client_for(admin_user).get("/api/v1/products/other/runs").status_code == 404
    body = {"product": "acme", "action": "replay", "runs": [foreign.pk]}
    response = client_for(admin_user).post(BULK, body, format="json")
    assert response.status_code == 404 and response.json()["field"] == "runs"
    body = {"product": "other", "action": "replay", "runs": [foreign.pk]}
    assert client_for(admin_user).post(BULK, body, format="json").status_code == 404


def test_a_viewer_reads_but_cannot_act(world: Any, viewer_user: User) -> None:
    vera = client_for(viewer_user)
    assert vera.get(URL + "/stats").status_code == 200
    body = {"product": "acme", "action": "retry", "runs": [world["failed"][0].pk]}
    assert vera.post(BULK, body, format="json").status_code == 403


def test_an_operator_retries_in_dev_but_is_refused_in_prd(
    world: Any, operator_user: User, product: Product
) -> None:
    make_workflow(product, spec("add"), tag="orders", envs=("dev", "prd"))  # the fix: v2
    otto = client_for(operator_user)
    targets = [world["failed"][0].pk, world["prd"][0].pk]
    body = {"product": "acme", "action": "retry", "runs": targets, "preview": True}
    preview = otto.post(BULK, body, format="json").json()
    assert preview["count"] == 1 and preview["runs"] == [world["failed"][0].pk]
    assert preview["refused"][0]["run"] == world["prd"][0].pk
    assert "admin" in preview["refused"][0]["reason"]
    assert preview["versions"] == {"orders@dev": 2}
    assert preview["rerun"] == {"pay": 1, "ship": 1}
    body.pop("preview")
    answer = otto.post(BULK, body, format="json").json()
    assert answer["done"] == 1 and answer["failed"] == 1
    new = Run.objects.get(origin_id=world["failed"][0].pk)
    assert new.origin_kind == "retry" and new.version.number == 2
    assert not Run.objects.filter(origin_id=world["prd"][0].pk).exists()
    drain()
    new.refresh_from_db()
    assert new.status == "completed"
    entry = AuditEntry.objects.get(action="run.retry")
    assert entry.actor == operator_user and entry.after["from_run"] == world["failed"][0].pk


def test_all_matching_a_filter_is_retried_each_with_an_audit_entry(
    world: Any, admin_user: User, product: Product
) -> None:
    make_workflow(product, spec("add"), tag="orders", envs=("dev", "prd"))
    alice = client_for(admin_user)
    body = {"product": "acme", "action": "retry", "filter": {"failed_step": "pay"}}
    answer = alice.post(BULK, body, format="json").json()
    assert answer["done"] == 4, answer
    drain()
    news = Run.objects.filter(origin_kind="retry")
    assert sorted(news.values_list("status", flat=True)) == ["completed"] * 4
    assert AuditEntry.objects.filter(action="run.retry").count() == 4


def test_the_idempotency_key_acts_once(world: Any, admin_user: User) -> None:
    alice = client_for(admin_user)
    body = {"product": "acme", "action": "replay", "runs": [world["done"][0].pk],
            "idempotency_key": "k-1"}  # fmt: skip
    first = alice.post(BULK, body, format="json")
    again = alice.post(BULK, body, format="json")
    assert first.status_code == again.status_code == 200
    assert again.json()["replayed"] is True
    assert again.json()["results"] == first.json()["results"]
    assert Run.objects.filter(origin_kind="replay").count() == 1
    assert AuditEntry.objects.filter(action="run.replay").count() == 1
    other = {**body, "runs": [world["done"][1].pk]}
    response = alice.post(BULK, other, format="json")
    assert response.status_code == 409 and response.json()["field"] == "idempotency_key"


@override_settings(TRELLIS_BULK_MAX_RUNS=2, TRELLIS_BULK_CONFIRM_OVER=1)
def test_the_cap_and_the_typed_confirmation(world: Any, admin_user: User) -> None:
    alice = client_for(admin_user)
    three = [r.pk for r in world["failed"]]
    body: dict[str, Any] = {"product": "acme", "action": "replay", "runs": three}
    response = alice.post(BULK, body, format="json")
    assert response.status_code == 400 and response.json()["field"] == "runs"
    body = {"product": "acme", "action": "replay", "filter": {"workflow": "orders"}}
    response = alice.post(BULK, body, format="json")
    assert response.status_code == 400 and response.json()["field"] == "filter"
    body = {"product": "acme", "action": "replay", "runs": three[:2]}
    response = alice.post(BULK, body, format="json")
    assert response.status_code == 400 and response.json()["field"] == "confirm"
    response = alice.post(BULK, {**body, "confirm": "replay 3 runs"}, format="json")
    assert response.status_code == 400 and response.json()["field"] == "confirm"
    preview = alice.post(BULK, {**body, "preview": True}, format="json").json()
    assert preview["confirm_text"] == "replay 2 runs"
    assert Run.objects.filter(origin_kind="replay").count() == 0
    answer = alice.post(BULK, {**body, "confirm": "replay 2 runs"}, format="json").json()
    assert answer["done"] == 2


def test_bad_bulk_bodies_name_the_field(world: Any, admin_user: User) -> None:
    alice = client_for(admin_user)
    cases = [
        ({"product": "acme", "action": "explode", "runs": [1]}, "action"),
        ({"product": "acme", "action": "fork", "runs": [world["failed"][0].pk]}, "step"),
        ({"product": "acme", "action": "retry"}, "runs"),
        ({"product": "acme", "action": "retry", "filter": {"status": "nope"}}, "status"),
        ({"product": "acme", "action": "retry", "filter": {"where": "input.a ="}}, "where"),
    ]
    for body, field in cases:
        response = alice.post(BULK, body, format="json")
        assert response.status_code == 400, (body, response.content)
        payload = response.json()
        named = payload.get("field") or [e["path"] for e in payload.get("errors", [])]
        assert field in str(named), (body, payload)


def test_cancel_and_fork_in_bulk(world: Any, admin_user: User) -> None:
    alice = client_for(admin_user)
    pending = world["pending"].pk
    body = {"product": "acme", "action": "cancel", "runs": [pending], "reason": "bad batch"}
    assert alice.post(BULK, body, format="json").json()["done"] == 1
    assert Run.objects.get(pk=pending).cancel_requested
    assert AuditEntry.objects.get(action="run.cancel").after["reason"] == "bad batch"
    body = {"product": "acme", "action": "fork", "step": "pay", "preview": True,
            "runs": [world["done"][0].pk]}  # fmt: skip
    preview = alice.post(BULK, body, format="json").json()
    assert preview["rerun"] == {"pay": 1, "ship": 1}
    body.pop("preview")
    answer = alice.post(BULK, body, format="json").json()
    assert answer["done"] == 1
    fork = Run.objects.get(origin_kind="fork")
    assert fork.steps.get(tag="first").status == "completed"
    assert fork.steps.get(tag="pay").status == "pending"


def test_stats_count_per_interval_and_per_workflow_and_environment(
    world: Any, viewer_user: User
) -> None:
    body = client_for(viewer_user).get(URL + "/stats", {"interval": "1h"}).json()
    assert len(body["buckets"]) == 24
    assert sum(b["started"] for b in body["buckets"]) == 7
    assert sum(b["failed"] for b in body["buckets"]) == 4
    groups = {(g["workflow"], g["environment"]): g for g in body["groups"]}
    assert groups[("billing", "dev")]["completed"] == 2
    assert groups[("orders", "prd")]["failed"] == 1
    assert groups[("billing", "dev")]["p95_ms"] is not None
    response = client_for(viewer_user).get(URL + "/stats", {"interval": "3s"})
    assert response.status_code == 400 and response.json()["field"] == "interval"
    response = client_for(viewer_user).get(URL + "/stats", {"created_before": "0001-01-01T00:00Z"})
    assert response.status_code == 400 and response.json()["field"] == "created_before"


def test_the_failed_step_filter_reads_its_index(world: Any) -> None:
    from runtime.product_runs import RunFilter, runs_filtered

    # Enough history for the planner to prefer the narrow index: 3,000 runs of the same
    # workflow that failed elsewhere, and the statistics to know it.
    model = world["failed"][0]
    Run.objects.bulk_create(
        Run(workflow_id=model.workflow_id, version_id=model.version_id,
            environment_id=model.environment_id, status="failed", error={"step": f"s{i % 7}"})
        for i in range(3000)
    )  # fmt: skip
    qs = runs_filtered(RunFilter(workflow_ids=(world["orders"].pk,), failed_step="pay"))
    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        explain = "EXPLAIN " if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN "
        cursor.execute(explain + sql, params)
        plan = " ".join(str(row) for row in cursor.fetchall())
    assert "run_failed_step" in plan, plan
    assert len(qs) == 4  # three in dev, one in prd


def test_stats_buckets_and_percentiles_are_exact(world: Any, viewer_user: User) -> None:
    start = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
    durations = [(i + 1) * 100 for i in range(20)]  # 100 ms … 2,000 ms
    for i, ms in enumerate(durations):
        at = start + timedelta(minutes=30 + (60 if i >= 15 else 0))
        made = Run.objects.create(
            workflow=world["billing"], version=world["done"][0].version,
            environment=world["done"][0].environment, status="completed",
        )  # fmt: skip
        Run.objects.filter(pk=made.pk).update(
            created_at=at, started_at=at, finished_at=at + timedelta(milliseconds=ms)
        )
    params = {
        "created_after": start.isoformat(),
        "created_before": (start + timedelta(hours=3)).isoformat(),
        "interval": "1h",
        "workflow": "billing",
    }
    body = client_for(viewer_user).get(URL + "/stats", params).json()
    counts = [(b["started"], b["completed"], b["p50_ms"], b["p95_ms"]) for b in body["buckets"]]
    assert counts[0][:2] == (15, 15) and counts[1][:2] == (5, 5) and counts[2][:2] == (0, 0)
    assert round(counts[0][2]) == 800 and round(counts[0][3]) == 1500  # nearest rank of 15
    assert round(counts[1][2]) == 1800 and round(counts[1][3]) == 2000
    (group,) = body["groups"]
    assert group["started"] == 20 and round(group["p50_ms"]) == 1000
    assert round(group["p95_ms"]) == 1900
