"""The ported seed examples, synced as code-first workflows, run on a real qcluster
process against real peers (an HTTP shop, SMTP, SQLite, the database broker)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from designer import services
from designer.models import ComponentConfig, Environment, Product, Workflow
from examples import (
    batch_charges,
    branch_overrides,
    components,
    control_flow,
    order_fulfillment,
    record_input,
    record_scenarios,
    signals_queries,
)
from runtime.management.commands.sync_workflows import workflows_sync
from runtime.models import RUN_FINISHED, Run, StepRun
from runtime.services import run_query, run_signal, run_start
from tests.examples import worker_samples
from tests.examples.conftest import Inbox
from tests.examples.shop import Shop
from tests.runtime.conftest import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

ORDER = {
    "orderId": "o-1",
    "items": [{"sku": "tea", "qty": 2}],
    "amount": 42,
    "customerId": "c-9",
    "email": "ada@example.com",
}


def publish(*definitions: Any) -> dict[str, Workflow]:
    results = workflows_sync(definitions=list(definitions))
    assert all(r.status in {"created", "published", "unchanged"} for r in results), [
        r.describe() for r in results
    ]
    found = {d.tag: Workflow.objects.get(product__slug="acme", tag=d.tag) for d in definitions}
    for workflow in found.values():
        env = workflow.product.environments.get(slug="dev")
        services.activation_set(workflow=workflow, environment=env, active=True)
    return found


def dev(product: Product) -> Environment:
    return product.environments.get(slug="dev")


def finished(run: Run, timeout: float = 30.0) -> Run:
    assert wait_for(lambda: _status(run) in RUN_FINISHED, timeout=timeout), _status(run)
    run.refresh_from_db()
    return run


def _status(run: Run) -> str:
    return Run.objects.filter(pk=run.pk).values_list("status", flat=True).first() or ""


def statuses(run: Run) -> dict[str, str]:
    return dict(StepRun.objects.filter(run=run).values_list("tag", "status"))


def test_the_complete_order_fulfillment_example_on_a_worker(
    product: Product,
    shop: Shop,
    smtp: tuple[Inbox, int],
    shop_components: Path,
    worker: Any,
) -> None:
    wf = publish(order_fulfillment.workflow)["order-fulfillment"]
    env = dev(product)
    worker()

    # 1. Everything succeeds.
    run = finished(run_start(workflow=wf, environment=env, input=ORDER))
    assert run.status == "completed", run.error
    with sqlite3.connect(shop_components) as db:
        order_id, payment_id, status = db.execute(
            "SELECT id, payment_id, status FROM orders"
        ).fetchone()
    charge = shop.bodies("/stripe/charges")[0]
    assert charge == {"amount": 42, "customer": "c-9"}
    assert run.output == {"success": True, "orderId": order_id, "chargeId": payment_id}
    assert status == "processing"
    inbox, _ = smtp[0], smtp[1]
    assert [rcpt for rcpt, _ in inbox.messages] == [["ada@example.com"]]
    message = inbox.messages[0][1]
    assert message["Subject"] == "Order confirmed"
    assert f"Order {order_id}: thanks! Total: 42" in message.get_payload(decode=True).decode()
    kinds = list(run.journal.values_list("kind", "step"))
    assert ("log", "log") in kinds and ("checkpoint", "payment-complete") in kinds
    assert statuses(run)["queue-fulfillment"] == "completed"

    # 2. The items are unavailable: the handler's early return ends the run with its own
    # output; payment and everything after it never runs.
    shop.available = False
    before = len(shop.bodies("/stripe/charges"))
    run = finished(run_start(workflow=wf, environment=env, input=ORDER))
    assert run.status == "completed", run.error
    assert run.output == {"success": False, "reason": "items_unavailable"}
    assert {t: s for t, s in statuses(run).items() if s == "completed"} == {
        "log": "completed",
        "validate": "completed",
        "return": "completed",
    }
    assert "running" not in statuses(run).values() and "pending" not in statuses(run).values()
    assert len(shop.bodies("/stripe/charges")) == before
    assert run.journal.order_by("seq").last().kind == "run_completed"

    # 3. Reserving fails: the payment is refunded through its rollback.
    shop.available = True
    shop.fail = {"/inventory/reserve"}
    run = finished(run_start(workflow=wf, environment=env, input=ORDER))
    assert run.status == "rolled_back", run.error
    payment = StepRun.objects.get(run=run, tag="payment")
    assert shop.bodies("/stripe/refunds") == [{"chargeId": payment.output["id"]}]
    assert payment.rollback_status == "rolled_back"
    assert statuses(run)["create-order"] == "not_run"  # never ran

    # 4. The confirmation email fails (SMTP refuses the connection): allowed, run completes.
    shop.fail = set()
    cfg = ComponentConfig.objects.get(component__tag="transactional", environment=env)
    cfg.config = {"email": {"host": "127.0.0.1", "port": 1, "from": "shop@example.com"}}
    cfg.save()
    run = finished(run_start(workflow=wf, environment=env, input=ORDER))
    assert run.status == "completed", run.error
    assert statuses(run)["send-confirmation"] == "failed_allowed"
    assert statuses(run)["queue-fulfillment"] == "completed"


def test_the_conditional_signal_child_and_sleep_examples_on_a_worker(
    product: Product, shop: Shop, shop_components: Path, worker: Any
) -> None:
    wfs = publish(
        branch_overrides.workflow,
        record_input.workflow,
        record_scenarios.workflow,
        signals_queries.workflow,
        control_flow.parent_workflow,
        control_flow.child_workflow,
        worker_samples.nap,
    )
    env = dev(product)
    worker()

    def start(tag: str, **input: Any) -> Run:
        return run_start(workflow=wfs[tag], environment=env, input=input)

    started = time.monotonic()
    nap = start("nap", n=1)
    invalid = start("order-validation", orderId="o-2", amount=5)
    shop.fail = set()
    items = start("process-orders", items=[{"id": "x"}, {"id": "y"}, {"id": "z"}])
    only_b = start("handle-by-type", type="b")
    approval = start("approval")
    parent = start("checkout", amount=12)

    # branch_overrides: the real validation says valid is missing (not true) → the early
    # return ends the run with its own output; payment never runs.
    invalid = finished(invalid)
    assert invalid.status == "completed", invalid.error
    assert invalid.output == {"success": False, "error": None}
    assert statuses(invalid)["return"] == "completed"
    assert statuses(invalid)["process-payment"] != "completed"
    assert "/stripe/charges" not in shop.paths()
    # record_input: a runtime loop, one iteration per real item (the sample had two).
    assert finished(items).status == "completed"
    assert shop.bodies("/orders/item") == [{"id": "x"}, {"id": "y"}, {"id": "z"}]
    assert {t: s for t, s in statuses(items).items() if t.startswith("process")} == {
        "process[0]": "completed",
        "process[1]": "completed",
        "process[2]": "completed",
    }
    # record_scenarios: only the matching branch runs.
    assert finished(only_b).status == "completed"
    assert statuses(only_b) == {"handle-a": "skipped", "handle-b": "completed"}
    assert "/api/a" not in shop.paths()
    # child workflows: the child run's output is the step's result.
    parent = finished(parent)
    assert parent.status == "completed", parent.error
    assert parent.output == {"charged": 12}
    child = Run.objects.get(parent_run=parent)
    assert (child.workflow.tag, child.status) == ("payment-processing", "completed")
    # signals and queries: the run waits (no worker held), answers its query, resumes.
    assert wait_for(lambda: _status(approval) == "waiting")
    approval.refresh_from_db()
    assert run_query(run=approval, name="getProgress") == {
        "completed_steps": [],
        "current_step": "wait-approve",
    }
    run_signal(run=approval, name="approve", payload={"approver_id": "u-7", "comments": "ok"})
    approval = finished(approval)
    assert approval.output == {"approved_by": "u-7", "comments": "ok"}
    log = approval.journal.get(kind="log")
    assert log.data["message"] == "Approved by: u-7"
    # sleep: the run parked and woke up.
    nap = finished(nap)
    assert nap.status == "completed", nap.error
    assert nap.output == {"n": 2}
    assert time.monotonic() - started >= 1.5
    assert ("step_waiting", "sleep") in list(nap.journal.values_list("kind", "step"))


def test_the_loop_example_charges_each_real_line_and_refunds_them_on_failure(
    product: Product, shop: Shop, shop_components: Path, worker: Any
) -> None:
    wf = publish(batch_charges.workflow)["batch-charges"]
    env = dev(product)
    worker(workers=2)
    lines = [{"sku": f"s{i}", "amount": 10 + i} for i in range(5)]
    run = finished(
        run_start(workflow=wf, environment=env, input={"orderId": "o-7", "lines": lines})
    )
    assert run.status == "completed", run.error
    assert [c["amount"] for c in run.output["charges"]] == [10, 11, 12, 13, 14]
    assert sorted(b["sku"] for b in shop.bodies("/stripe/charges")) == [f"s{i}" for i in range(5)]
    assert shop.bodies("/orders/validate")[-1]["charges"] == run.output["charges"]
    assert {t: s for t, s in statuses(run).items() if t.startswith("charge-line[")} == {
        f"charge-line[{i}]": "completed" for i in range(5)
    }

    # The confirmation fails: every line charged is refunded, newest first.
    shop.fail = {"/orders/validate"}
    three = [{"sku": f"r{i}", "amount": i} for i in range(3)]
    run = finished(
        run_start(workflow=wf, environment=env, input={"orderId": "o-8", "lines": three})
    )
    assert run.status == "rolled_back", run.error
    assert sorted(b["sku"] for b in shop.bodies("/stripe/refunds")) == ["r0", "r1", "r2"]
    rolled = run.journal.filter(kind="step_rolled_back").values_list("step", flat=True)
    assert sorted(rolled) == ["charge-line[0]", "charge-line[1]", "charge-line[2]"]


def test_raise_and_trigger_rollback_examples_end_runs_the_way_the_handler_says(
    product: Product, shop: Shop, shop_components: Path, worker: Any
) -> None:
    wfs = publish(control_flow.rollback_workflow, components.quota_workflow)
    env = dev(product)
    worker()

    def start(tag: str, **input: Any) -> Run:
        return run_start(workflow=wfs[tag], environment=env, input=input)

    # The quota allows one call an hour: the first run goes through, the second raises.
    allowed = finished(start("rate-limited", userId="u-1", orderId="o-1"))
    assert allowed.status == "completed", allowed.error
    assert allowed.output == {"validated": True, "remaining": 0}
    refused = finished(start("rate-limited", userId="u-1", orderId="o-2"))
    assert refused.status == "failed"
    assert refused.error is not None
    assert (refused.error["message"], refused.error["code"]) == ("Rate limit exceeded", "raised")
    assert statuses(refused)["raise"] == "failed"
    assert statuses(refused)["validate"] != "completed"
    assert shop.bodies("/orders/validate") == [{"orderId": "o-1"}]

    # A fraud score above 0.8: trigger_rollback refunds the payment and hands the steps
    # back; the handler logs them and returns; the run ends rolled back with that output.
    shop.risk = 0.95
    fraud = finished(start("fraud-guarded-payment", amount=12))
    assert fraud.status == "rolled_back", fraud.error
    assert fraud.output == {"success": False, "reason": "fraud_detected"}
    assert fraud.error is None
    charge_id = StepRun.objects.get(run=fraud, tag="payment").output["id"]
    assert shop.bodies("/stripe/refunds") == [{"chargeId": charge_id}]
    rollback = StepRun.objects.get(run=fraud, tag="rollback")
    assert rollback.output["rolled_back_steps"] == ["payment"]
    log = fraud.journal.get(kind="log", step="log")
    assert log.data["data"] == {"steps": ["payment"]}
    assert fraud.journal.order_by("seq").last().kind == "run_rolled_back"

    # No fraud: nothing is undone, the run completes with the handler's other return.
    shop.risk = 0.1
    fine = finished(start("fraud-guarded-payment", amount=7))
    assert fine.status == "completed", fine.error
    fine_charge = StepRun.objects.get(run=fine, tag="payment").output["id"]
    assert fine.output == {"success": True, "chargeId": fine_charge}
    assert statuses(fine)["rollback"] != "completed"
    assert len(shop.bodies("/stripe/refunds")) == 1
