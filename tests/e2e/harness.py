"""A real Trellis for browser tests: a fresh SQLite database, migrated and seeded by a
subprocess, served by daphne (ASGI, static files through whitenoise from frontend/dist, or
frontend/dist-bench for the canvas benchmark).

Used by tests/e2e/conftest.py and by the canvas benchmark (tests/e2e/bench_canvas.py).
Run as ``python -m tests.e2e.harness seed`` it is the seeding side (inside the server's
environment).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable
PORTS = range(8300, 8400)
ASGI_APP = "designer.asgi:application"
DIST = ROOT / "frontend" / "dist"  # the production bundle (`make frontend`)
# The production bundle plus the canvas benchmark hook (`make frontend-bench`).
BENCH_DIST = ROOT / "frontend" / "dist-bench"
MANIFEST = DIST / ".vite" / "manifest.json"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

# Users (password "pw-<name>") and the components the example workflows use.
USERS = {"alice": "admin", "dana": "designer", "vera": "viewer"}
_EVENTS = {
    ("app", "inventory-api", "Inventory API"): ["check-availability", "reserve", "release"],
    ("app", "stripe", "Stripe"): ["create-charge", "refund"],
    ("app", "users-api", "Users API"): ["validate_user"],
    ("database", "orders-db", "Orders DB"): ["create"],
    ("notification", "transactional", "Transactional"): ["order-confirmed", "send_welcome_email"],
    ("broker", "warehouse", "Warehouse queue"): ["new-order"],
}
COMPONENTS: list[dict[str, Any]] = [
    {"kind": kind, "tag": tag, "name": name, "events": {e: {"description": e} for e in events}}
    for (kind, tag, name), events in _EVENTS.items()
]


def free_port() -> int:
    for port in PORTS:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as probe:  # the range is taken: any free port
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def require_build(dist: Path = DIST) -> None:
    manifest = dist / ".vite" / "manifest.json"
    if not manifest.exists():
        target = "frontend-bench" if dist == BENCH_DIST else "frontend"
        raise RuntimeError(f"the frontend is not built ({manifest} missing): run `make {target}`")


class Server:
    """Migrate + seed a fresh database under ``base``, then serve it with daphne and the
    frontend built in ``dist`` (BENCH_DIST for the canvas benchmark)."""

    def __init__(self, base: Path, dist: Path = DIST) -> None:
        self.base = base
        self.dist = dist
        base.mkdir(parents=True, exist_ok=True)
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"DATABASE_URL", "REDIS_URL", "SQLITE_PATH", "SQLITE_TEST_PATH"}
        } | {
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "TRELLIS_VAR_DIR": str(base),
            "SQLITE_PATH": str(base / "db.sqlite3"),
            "TRELLIS_FRONTEND_DIST": str(dist),  # read by tests.settings
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            # Every test logs in from 127.0.0.1: the per-address login rate is not under test.
            "TRELLIS_LOGIN_RATE": "1000/minute",
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        require_build(self.dist)
        for leftover in self.base.glob("db.sqlite3*"):
            leftover.unlink()
        done = subprocess.run(
            [PYTHON, "-m", "tests.e2e.harness", "seed"],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if done.returncode != 0:
            raise RuntimeError(f"seeding failed:\n{done.stdout}\n{done.stderr}")
        self.port = free_port()
        log = open(self.base / "daphne.log", "ab")
        self.process = subprocess.Popen(
            [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), ASGI_APP],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited: see {self.base / 'daphne.log'}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise TimeoutError("daphne did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
            if self.process.poll() is None:
                self.process.kill()

    def api(self, username: str = "alice") -> httpx.Client:
        """An API client with a token for ``username``."""
        client = httpx.Client(base_url=f"{self.url}/api/v1", timeout=30)
        credentials = {"username": username, "password": f"pw-{username}"}
        response = client.post("/auth/token", json=credentials)
        response.raise_for_status()
        client.headers["Authorization"] = f"Token {response.json()['token']}"
        return client


def create_workflow(
    api: httpx.Client, tag: str, name: str, spec: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"tag": tag, "name": name, **extra}
    if spec is not None:
        body["spec"] = spec
    response = api.post("/products/acme/workflows/", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def fixture_spec(name: str) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads((ROOT / "tests" / "fixtures" / f"{name}.json").read_text())
    return spec


# --- the seeding side (runs inside the server's environment) ---------------------------------


def seed() -> None:
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command

    from designer.models import Component, Environment, Membership, Product

    call_command("migrate", "--noinput", verbosity=0)
    product = Product.objects.create(slug="acme", name="Acme", description="The demo product")
    for order, slug in enumerate(["dev", "staging", "prd"]):
        Environment.objects.create(
            product=product, slug=slug, name=slug, order=order, is_production=slug == "prd"
        )
    for username, role in USERS.items():
        user = User.objects.create_user(username=username, password=f"pw-{username}")
        Membership.objects.create(product=product, user=user, role=role)
    for component in COMPONENTS:
        Component.objects.create(product=product, **component)
    print(json.dumps({"product": product.slug, "users": list(USERS)}))


if __name__ == "__main__":
    if sys.argv[1:] == ["seed"]:
        seed()
    else:
        raise SystemExit("usage: python -m tests.e2e.harness seed")
