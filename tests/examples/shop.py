"""A real local peer for the examples: a tiny shop (inventory and payments) over HTTP on
127.0.0.1, plus the acme components the seed's examples use, pointing at it."""

from __future__ import annotations

import json
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from designer import services
from designer.models import Component, ComponentConfig, Environment, Product
from examples.components import SOCIAL_GRAPH_EVENTS

PORTS = range(8500, 8600)  # the code-first engineer's ports


class Shop:
    """``available``/``fail`` steer the answers; ``requests`` lists what was called."""

    def __init__(self) -> None:
        self.available = True
        self.risk = 0.1  # the fraud score /risk/score answers
        self.fail: set[str] = set()  # paths answered with a 409
        self.requests: list[tuple[str, Any]] = []
        self.lock = threading.Lock()
        self.server = self._bind()
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _bind(self) -> ThreadingHTTPServer:
        for port in PORTS:
            try:
                return ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
            except OSError:
                continue
        raise RuntimeError("no free port in 8500-8599")

    def paths(self) -> list[str]:
        with self.lock:
            return [path for path, _ in self.requests]

    def bodies(self, path: str) -> list[Any]:
        with self.lock:
            return [body for p, body in self.requests if p == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(shop: Shop) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"null")
            with shop.lock:
                shop.requests.append((self.path, body))
                count = len(shop.requests)
            if self.path in shop.fail:
                self.reply(409, {"error": f"{self.path} refused"})
            elif self.path == "/inventory/check":
                self.reply(200, {"available": shop.available, "reason": "stock"})
            elif self.path == "/risk/score":
                self.reply(200, {"score": shop.risk})
            elif self.path == "/stripe/charges":
                self.reply(200, {"id": f"ch_{count}", "amount": (body or {}).get("amount")})
            else:
                self.reply(200, {"ok": True, "path": self.path, "echo": body})

        def reply(self, status: int, payload: Any) -> None:
            raw = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    return Handler


def _post(path: str) -> dict[str, Any]:
    return {"method": "POST", "path": path}


APPS: dict[str, dict[str, Any]] = {
    "inventory-api": {
        "check-availability": _post("/inventory/check"),
        "reserve": _post("/inventory/reserve"),
        "release": _post("/inventory/release"),
    },
    "stripe": {"create-charge": _post("/stripe/charges"), "refund": _post("/stripe/refunds")},
    "orders-api": {
        "validate-order": _post("/orders/validate"),
        "process-item": _post("/orders/item"),
    },
    "api": {"handle-a": _post("/api/a"), "handle-b": _post("/api/b")},
    "risk-api": {"score": _post("/risk/score")},
}


def components_ensure(
    product: Product, *, shop_url: str, db_path: Path, smtp_port: int, env: str = "dev"
) -> None:
    """Create the components of the examples in ``product`` (configured for ``env``)."""
    environment = Environment.objects.get(product=product, slug=env)
    # The stand-in shop and SMTP server listen on loopback, which steps reach only when the
    # environment lists it (an admin's decision; issue 13, item 3).
    if "127.0.0.1" not in environment.allowed_hosts:
        environment.allowed_hosts = [*environment.allowed_hosts, "127.0.0.1"]
        environment.save(update_fields=["allowed_hosts"])
    db_path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(db_path) as db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "customer_id TEXT, items TEXT, total REAL, payment_id TEXT, status TEXT)"
        )
    declared: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
        *(("app", tag, events, {"base_url": shop_url}) for tag, events in APPS.items()),
        (
            "database",
            "orders-db",
            {"create": {"op": "insert", "table": "orders"}},
            {"url": f"sqlite:///{db_path}"},
        ),
        (
            "notification",
            "transactional",
            {
                "order-confirmed": {
                    "channel": "email",
                    "subject": "Order confirmed",
                    "body": "Order {{ orderId }}: thanks! Total: {{ total }}",
                }
            },
            {"email": {"host": "127.0.0.1", "port": smtp_port, "from": "shop@example.com"}},
        ),
        ("broker", "warehouse", {"new-order": {}}, {"backend": "database"}),
        ("graph", "social-graph", SOCIAL_GRAPH_EVENTS, {"path": "acme/social-graph.lbug"}),
        (
            "quota",
            "api-rate-limit",
            {"api-rate-limit": {"limit": 1, "window": "1h"}},
            {"backend": "database"},
        ),
    ]
    for kind, tag, events, config in declared:
        component = Component.objects.filter(product=product, tag=tag).first()
        if component is None:
            component = services.component_create(
                product=product, kind=kind, tag=tag, events=events, actor=None
            )
        ComponentConfig.objects.update_or_create(
            component=component, environment=environment, defaults={"config": config}
        )
