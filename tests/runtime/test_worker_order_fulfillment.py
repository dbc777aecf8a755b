"""The seed's order-fulfillment workflow, end to end on a real qcluster process, against a
real local HTTP server standing in for the inventory, payment, orders, mail and warehouse
APIs (ACTION steps)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from designer.models import Component, ComponentConfig, Environment, Product
from runtime.models import Run, StepRun
from runtime.services import run_start
from tests.runtime.conftest import make_workflow, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

PORTS = range(8200, 8300)  # the engine engineer's ports


class Shop:
    """The stand-in APIs: answers per path, records every request."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, Any]] = []
        self.available = True
        self.reserve_status = 200
        self.email_status = 200
        self.lock = threading.Lock()
        self.server = self._bind()
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def paths(self) -> list[str]:
        with self.lock:
            return [p for p, _ in self.requests]

    def body(self, path: str) -> Any:
        with self.lock:
            return next(b for p, b in self.requests if p == path)

    def _bind(self) -> ThreadingHTTPServer:
        shop = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                with shop.lock:
                    shop.requests.append((self.path, body))
                status, answer = shop.answer(self.path, body or {})
                raw = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        for port in PORTS:
            try:
                return ThreadingHTTPServer(("127.0.0.1", port), Handler)
            except OSError:
                continue
        raise RuntimeError("no free port in 8200-8299")

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        if path == "/inventory/check":
            return 200, {"available": self.available, "reason": None if self.available else "out"}
        if path == "/charges":
            return 201, {"id": "ch_1", "amount": body.get("amount")}
        if path == "/refunds":
            return 200, {"refunded": body.get("chargeId")}
        if path == "/inventory/reserve":
            if self.reserve_status >= 400:
                return self.reserve_status, {"error": "no stock"}
            return 200, {"reserved": True}
        if path == "/inventory/release":
            return 200, {"released": True}
        if path == "/orders":
            return 201, {"id": "ord_1", "payment_id": body.get("payment_id")}
        if path == "/emails":
            return self.email_status, {"sent": self.email_status < 400}
        if path == "/warehouse":
            return 202, {"queued": body.get("orderId")}
        return 404, {"error": "unknown path"}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def shop() -> Iterator[Shop]:
    s = Shop()
    yield s
    s.close()


def _app(
    product: Product, env: Environment, tag: str, base_url: str, actions: dict[str, str]
) -> None:
    component = Component.objects.create(
        product=product,
        kind="app",
        tag=tag,
        events={name: {"method": "POST", "path": path} for name, path in actions.items()},
    )
    ComponentConfig.objects.create(
        component=component, environment=env, config={"base_url": base_url}
    )


AVAILABLE = "$Step{validate}{available} == true"

SPEC: dict[str, Any] = {
    "options": {"timeout": "5m", "rollback_strategy": "reverse_all"},
    "input": {"orderId": "string", "amount": "number", "customerId": "string", "items": "array"},
    "signals": {"cancel-order": {"input": {"reason": "string"}}},
    "sequences": [
        {
            "tag": "fulfil",
            "events": [
                {
                    "type": "ACTION", "app": "inventory-api", "event": "check-availability",
                    "tag": "validate", "input": {"body": {"items": "$Input{items}"}},
                },
                {
                    "type": "ACTION", "app": "stripe", "event": "create-charge", "tag": "payment",
                    "condition": AVAILABLE, "retries": 3,
                    "input": {"body": {"amount": "$Input{amount}",
                                       "customer": "$Input{customerId}"}},
                    "rollback": {
                        "type": "ACTION", "app": "stripe", "event": "refund",
                        "input": {"body": {"chargeId": "$Step{payment}{id}"}},
                    },
                },
                {
                    "type": "CHECKPOINT", "event": "payment-complete", "condition": AVAILABLE,
                    "input": {"data": {"chargeId": "$Step{payment}{id}"}},
                },
                {
                    "type": "ACTION", "app": "inventory-api", "event": "reserve",
                    "tag": "reserve-inventory", "condition": AVAILABLE,
                    "input": {"body": {"items": "$Input{items}"}},
                    "rollback": {
                        "type": "ACTION", "app": "inventory-api", "event": "release",
                        "input": {"body": {"items": "$Input{items}"}},
                    },
                },
                {
                    "type": "ACTION", "app": "orders-api", "event": "create", "tag": "create-order",
                    "condition": AVAILABLE,
                    "input": {"body": {"customer_id": "$Input{customerId}",
                                       "total": "$Input{amount}",
                                       "payment_id": "$Step{payment}{id}", "status": "processing"}},
                },
                {
                    "type": "ACTION", "app": "mailer", "event": "order-confirmed",
                    "tag": "send-confirmation", "condition": AVAILABLE, "allow_fail": True,
                    "input": {"body": {"orderId": "$Step{create-order}{id}"}},
                },
                {
                    "type": "ACTION", "app": "warehouse", "event": "new-order",
                    "tag": "queue-fulfillment", "condition": AVAILABLE,
                    "input": {"body": {"orderId": "$Step{create-order}{id}",
                                       "items": "$Input{items}"}},
                },
            ],
        }
    ],
    "output": {
        "success": "$Step{validate}{available}",
        "orderId": "$Step{create-order}{id}",
        "chargeId": "$Step{payment}{id}",
    },
}  # fmt: skip


@pytest.fixture
def order_run(product: Product, env_dev: Environment, shop: Shop, worker: Any) -> Any:
    _app(product, env_dev, "inventory-api", shop.url, {
        "check-availability": "/inventory/check", "reserve": "/inventory/reserve",
        "release": "/inventory/release",
    })  # fmt: skip
    _app(product, env_dev, "stripe", shop.url, {"create-charge": "/charges", "refund": "/refunds"})
    _app(product, env_dev, "orders-api", shop.url, {"create": "/orders"})
    _app(product, env_dev, "mailer", shop.url, {"order-confirmed": "/emails"})
    _app(product, env_dev, "warehouse", shop.url, {"new-order": "/warehouse"})
    workflow = make_workflow(product, SPEC, tag="order-fulfillment")
    worker()

    def run() -> Run:
        started = run_start(
            workflow=workflow,
            environment=env_dev,
            input={"orderId": "o-1", "amount": 42, "customerId": "c-9", "items": [{"sku": "a"}]},
        )
        assert wait_for(
            lambda: (
                Run.objects.get(pk=started.pk).status
                in ("completed", "failed", "rolled_back", "cancelled")
            ),
            timeout=60,
        )
        return Run.objects.get(pk=started.pk)

    return run


def statuses(run: Run) -> dict[str, str]:
    return dict(StepRun.objects.filter(run=run).values_list("tag", "status"))


def test_all_steps_succeed(order_run: Any, shop: Shop) -> None:
    run = order_run()
    assert run.status == "completed", run.error
    assert run.output == {"success": True, "orderId": "ord_1", "chargeId": "ch_1"}
    assert set(statuses(run).values()) == {"completed"}
    assert shop.paths() == [
        "/inventory/check", "/charges", "/inventory/reserve", "/orders", "/emails", "/warehouse",
    ]  # fmt: skip
    assert shop.body("/orders")["payment_id"] == "ch_1"
    assert run.state["_checkpoints"]["payment-complete"]["data"] == {"chargeId": "ch_1"}


def test_unavailable_items_skip_payment(order_run: Any, shop: Shop) -> None:
    shop.available = False
    run = order_run()
    assert run.status == "completed", run.error
    steps = statuses(run)
    assert steps["validate"] == "completed"
    assert steps["payment"] == "skipped"
    assert {s for t, s in steps.items() if t != "validate"} == {"skipped"}
    assert shop.paths() == ["/inventory/check"]
    assert run.output["success"] is False


def test_a_failed_reservation_refunds_the_payment(order_run: Any, shop: Shop) -> None:
    shop.reserve_status = 409
    run = order_run()
    assert run.status == "rolled_back", run.error
    steps = statuses(run)
    assert steps["payment"] == "rolled_back"
    assert steps["reserve-inventory"] == "failed"
    assert steps["create-order"] == "not_run"  # never started: the run ended first
    assert shop.body("/refunds") == {"chargeId": "ch_1"}
    assert "/inventory/release" not in shop.paths()  # the reservation never happened
    kinds = list(run.journal.order_by("seq").values_list("kind", flat=True))
    assert kinds[-1] == "run_rolled_back"
    assert "step_rolled_back" in kinds


def test_a_failing_confirmation_email_is_allowed(order_run: Any, shop: Shop) -> None:
    shop.email_status = 500
    run = order_run()
    assert run.status == "completed", run.error
    steps = statuses(run)
    assert steps["send-confirmation"] == "failed_allowed"
    assert steps["queue-fulfillment"] == "completed"
    assert "/warehouse" in shop.paths()
