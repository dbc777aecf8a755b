"""Run-monitor browser test setup, run inside the e2e server's environment (its database):
``python -m tests.e2e.live_setup <shop_url> <orders_db_path> <smtp_port>``.

Configures the seed's components for dev against the test's local peers (the HTTP shop,
an SQLite orders database, an SMTP inbox), and publishes two workflows active in dev:
the seed's order fulfillment (tests/fixtures/order_fulfillment.json) and "approval",
which waits for a signal.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

APPROVAL = {
    "sequences": [
        {
            "tag": "main",
            "events": [
                {"type": "CODE", "event": "runtime.connectors.code:noop", "tag": "prepare"},
                {"type": "WAIT_SIGNAL", "event": "approve", "tag": "wait"},
                {"type": "CODE", "event": "runtime.connectors.code:noop", "tag": "finish"},
            ],
        }
    ],
    "signals": {"approve": {"input": {"by": "string"}}},
}


def main(shop_url: str, db_path: str, smtp_port: int) -> None:
    import django

    django.setup()
    from django.contrib.auth.models import User

    from designer import services
    from designer.models import Component, Environment, Product, Workflow
    from tests.examples.shop import APPS, components_ensure

    product = Product.objects.get(slug="acme")
    for tag, events in APPS.items():  # the e2e seed declared them without HTTP routes
        Component.objects.filter(product=product, tag=tag).update(events=events)
    Component.objects.filter(product=product, tag="orders-db").update(
        events={"create": {"op": "insert", "table": "orders"}}
    )
    Component.objects.filter(product=product, tag="transactional").update(
        events={
            "order-confirmed": {
                "channel": "email",
                "subject": "Order confirmed",
                "body": "Order {{ orderId }}: thanks! Total: {{ total }}",
            }
        }
    )
    components_ensure(product, shop_url=shop_url, db_path=Path(db_path), smtp_port=smtp_port)
    alice = User.objects.get(username="alice")
    dev = Environment.objects.get(product=product, slug="dev")
    order_spec = json.loads((ROOT / "tests" / "fixtures" / "order_fulfillment.json").read_text())
    for tag, name, spec in [
        ("order-fulfillment", "Order fulfillment", order_spec),
        ("approval", "Approval", APPROVAL),
    ]:
        workflow = Workflow.objects.filter(product=product, tag=tag).first()
        if workflow is None:
            workflow = services.workflow_create(product=product, tag=tag, name=name, author=alice)
        services.workflow_publish(workflow=workflow, author=alice, spec=spec)
        services.activation_set(workflow=workflow, environment=dev, active=True, actor=alice)
    print(json.dumps({"ok": True}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
