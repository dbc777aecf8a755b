"""Who may do what, everywhere: one table row per route and method of the whole site (API,
pages) and per WebSocket route, each checked for every role plus an outsider, a
superuser and an anonymous caller.

The table is checked against the URL resolver: a new endpoint without a row (or a row
whose endpoint is gone) fails ``test_every_route_has_a_row``. Expectations:

- the smallest role that is enough (and every larger one, and a superuser): allowed —
  no 401/403/404, no 5xx;
- a member whose role is too small: 403;
- an outsider: 404 (the product's existence is not revealed);
- anonymous: 401 on the API, a redirect to the login page on pages, 4401 on sockets.

The prd rule: starting or acting on runs needs ``operator`` in other environments and
``admin`` in the production one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from designer import services
from designer.models import ROLE_RANK, Component, Product, Role
from designer.permissions import require_role
from tests.conftest import client_for
from tests.designer.conftest import main_sequence, two_level_spec

pytestmark = pytest.mark.django_db

# Needs that are not a product role.
ANYONE = "anyone"  # anonymous too
USER = "user"  # any logged-in user, member or not
STAFF = "staff"
SUPERUSER = "superuser"
RUN = "run"  # operator, or admin when the run's environment is production

P = "/api/v1/products/acme/"
W = P + "workflows/onboard/"
BULK = "/api/v1/runs/bulk"


@dataclass(frozen=True)
class Row:
    need: str
    url: str  # may name {dev_run}, {prd_run}
    body: dict[str, Any] | None = None
    page: bool = False
    prd: bool = False  # acts in the production environment (the prd rule applies)


# (route with its trailing slash removed, METHOD) → the rows that exercise it. Routes are
# as the resolver spells them; run routes have a dev row and a prd row (the prd rule).
TABLE: dict[tuple[str, str], list[Row]] = {
    # --- site ------------------------------------------------------------------------------
    ("api/schema", "GET"): [Row(ANYONE, "/api/schema/")],
    ("api/docs", "GET"): [Row(ANYONE, "/api/docs/")],
    ("login", "GET"): [Row(ANYONE, "/login/", page=True)],
    ("login", "POST"): [Row(ANYONE, "/login/", {"username": "x", "password": "y"}, page=True)],
    ("login", "PUT"): [Row(ANYONE, "/login/", {"username": "x", "password": "y"}, page=True)],
    ("logout", "POST"): [Row(ANYONE, "/logout/", page=True)],
    ("demo/accounts/users/validate", "POST"): [
        Row(ANYONE, "/demo/accounts/users/validate", {"userId": "u1"})
    ],
    ("", "GET"): [Row(USER, "/", page=True)],
    ("p/<slug:slug>", "GET"): [Row(Role.VIEWER, "/p/acme/", page=True)],
    ("media/<slug:slug>/<path:path>", "GET"): [
        Row(Role.VIEWER, "/media/acme/dev/files/hello.txt", page=True)
    ],
    ("p/<slug:slug>/w/<slug:tag>", "GET"): [Row(Role.VIEWER, "/p/acme/w/onboard/", page=True)],
    ("p/<slug:slug>/runs", "GET"): [Row(Role.VIEWER, "/p/acme/runs/", page=True)],
    ("p/<slug:slug>/runs/<int:run_id>", "GET"): [
        Row(Role.VIEWER, "/p/acme/runs/{dev_run}/", page=True)
    ],
    ("p/<slug:slug>/w/<slug:tag>/runs", "GET"): [
        Row(Role.VIEWER, "/p/acme/w/onboard/runs/", page=True)
    ],
    ("p/<slug:slug>/activation", "GET"): [Row(Role.VIEWER, "/p/acme/activation/", page=True)],
    ("p/<slug:slug>/environments", "GET"): [Row(Role.VIEWER, "/p/acme/environments/", page=True)],
    ("p/<slug:slug>/members", "GET"): [Row(Role.VIEWER, "/p/acme/members/", page=True)],
    ("p/<slug:slug>/audit", "GET"): [Row(Role.ADMIN, "/p/acme/audit/", page=True)],
    # --- auth, schema, products -------------------------------------------------------------
    ("api/v1/auth/token", "POST"): [
        Row(ANYONE, "/api/v1/auth/token", {"username": "alice", "password": "pw-alice"})
    ],
    ("api/v1/auth/token/revoke", "DELETE"): [Row(USER, "/api/v1/auth/token/revoke")],
    ("api/v1/spec-schema", "GET"): [Row(USER, "/api/v1/spec-schema")],
    ("api/v1/products", "GET"): [Row(USER, "/api/v1/products/")],
    ("api/v1/products", "POST"): [Row(STAFF, "/api/v1/products/", {"slug": "b", "name": "B"})],
    ("api/v1/products/<slug:slug>", "GET"): [Row(Role.VIEWER, P)],
    ("api/v1/products/<slug:slug>", "PATCH"): [Row(Role.ADMIN, P, {"name": "Acme Inc"})],
    ("api/v1/products/<slug:slug>", "DELETE"): [Row(SUPERUSER, P)],
    # --- environments -------------------------------------------------------------------------
    ("api/v1/products/<slug:slug>/environments", "GET"): [Row(Role.VIEWER, P + "environments/")],
    ("api/v1/products/<slug:slug>/environments", "POST"): [
        Row(Role.ADMIN, P + "environments/", {"slug": "qa", "name": "QA"})
    ],
    ("api/v1/products/<slug:slug>/environments/<slug:env>", "GET"): [
        Row(Role.VIEWER, P + "environments/dev/")
    ],
    ("api/v1/products/<slug:slug>/environments/<slug:env>", "PATCH"): [
        Row(Role.ADMIN, P + "environments/dev/", {"name": "Development"})
    ],
    ("api/v1/products/<slug:slug>/environments/<slug:env>", "DELETE"): [
        Row(Role.ADMIN, P + "environments/staging/")
    ],
    ("api/v1/products/<slug:slug>/environments/reorder", "POST"): [
        Row(Role.ADMIN, P + "environments/reorder", {"order": ["staging", "dev", "prd"]})
    ],
    ("api/v1/products/<slug:slug>/environments/diff", "GET"): [
        Row(Role.ADMIN, P + "environments/diff?a=dev&b=prd")
    ],
    ("api/v1/products/<slug:slug>/environments/<slug:env>/production", "POST"): [
        Row(Role.ADMIN, P + "environments/staging/production")
    ],
    ("api/v1/products/<slug:slug>/environments/<slug:env>/production", "DELETE"): [
        Row(Role.ADMIN, P + "environments/prd/production")
    ],
    # --- members, audit -------------------------------------------------------------------
    ("api/v1/products/<slug:slug>/members", "GET"): [Row(Role.VIEWER, P + "members/")],
    ("api/v1/products/<slug:slug>/members", "POST"): [
        Row(Role.ADMIN, P + "members/", {"username": "newbie", "role": "viewer"})
    ],
    ("api/v1/products/<slug:slug>/members/<str:username>", "GET"): [
        Row(Role.VIEWER, P + "members/vera/")
    ],
    ("api/v1/products/<slug:slug>/members/<str:username>", "PATCH"): [
        Row(Role.ADMIN, P + "members/vera/", {"role": "operator"})
    ],
    ("api/v1/products/<slug:slug>/members/<str:username>", "DELETE"): [
        Row(Role.ADMIN, P + "members/vera/")
    ],
    ("api/v1/products/<slug:slug>/audit", "GET"): [Row(Role.ADMIN, P + "audit/")],
    # --- components -------------------------------------------------------------------------
    ("api/v1/products/<slug:slug>/components", "GET"): [Row(Role.VIEWER, P + "components/")],
    ("api/v1/products/<slug:slug>/components", "POST"): [
        Row(Role.DESIGNER, P + "components/", {"kind": "app", "tag": "billing"})
    ],
    ("api/v1/products/<slug:slug>/components/<slug:tag>", "GET"): [
        Row(Role.VIEWER, P + "components/accounts/")
    ],
    ("api/v1/products/<slug:slug>/components/<slug:tag>", "PATCH"): [
        Row(Role.DESIGNER, P + "components/accounts/", {"name": "Accounts"})
    ],
    ("api/v1/products/<slug:slug>/components/<slug:tag>", "DELETE"): [
        Row(Role.DESIGNER, P + "components/billing/")
    ],
    ("api/v1/products/<slug:slug>/components/<slug:tag>/config/<slug:env>", "GET"): [
        Row(Role.DESIGNER, P + "components/accounts/config/prd")
    ],
    ("api/v1/products/<slug:slug>/components/<slug:tag>/config/<slug:env>", "PUT"): [
        Row(
            Role.ADMIN,
            P + "components/accounts/config/prd",
            {"config": {"base_url": "https://x.example"}, "secrets": {"api_key": "s3cret-value"}},
        )
    ],
    # --- workflows --------------------------------------------------------------------------
    ("api/v1/products/<slug:slug>/matrix", "GET"): [Row(Role.VIEWER, P + "matrix")],
    ("api/v1/products/<slug:slug>/workflows", "GET"): [Row(Role.VIEWER, P + "workflows/")],
    ("api/v1/products/<slug:slug>/workflows", "POST"): [
        Row(Role.DESIGNER, P + "workflows/", {"tag": "signup", "name": "Signup"})
    ],
    ("api/v1/products/<slug:slug>/workflows/<slug:tag>", "GET"): [Row(Role.VIEWER, W)],
    ("api/v1/products/<slug:slug>/workflows/<slug:tag>", "PATCH"): [
        Row(Role.DESIGNER, W, {"name": "Welcome"})
    ],
    ("api/v1/products/<slug:slug>/workflows/<slug:tag>", "DELETE"): [
        Row(Role.DESIGNER, P + "workflows/unused/")
    ],
    ("api/v1/products/<slug:slug>/workflows/<slug:tag>/draft", "GET"): [
        Row(Role.VIEWER, W + "draft")
    ],
    ("api/v1/products/<slug:slug>/workflows/<slug:tag>/draft", "PUT"): [
        Row(Role.DESIGNER, W + "draft", {"spec": two_level_spec()})
    ],
    ("api/v1/products/<slug:slug>/workflows/<slug:tag>/draft", "DELETE"): [
        Row(Role.DESIGNER, W + "draft")
    ],
    ("api/v1/products/<slug:slug>/workflows/<slug:tag>/validate", "POST"): [
        Row(Role.VIEWER, W + "validate", {"spec": two_level_spec()})
    ],
    ("api/v1/products/<slug:slug>/workflows/<slug:tag>/publish", "POST"): [
        Row(Role.DESIGNER, W + "publish", {"spec": two_level_spec()})
    ],
    ("api/v1/products/<slug:slug>/workflows/<slug:tag>/versions", "GET"): [
        Row(Role.VIEWER, W + "versions/")
    ],
    ("api/v1/products/<slug:slug>/workflows/<slug:tag>/versions/<int:number>", "GET"): [
        Row(Role.VIEWER, W + "versions/1/")
    ],
    ("api/v1/products/<slug:slug>/workflows/<slug:tag>/activations", "GET"): [
        Row(Role.VIEWER, W + "activations/")
    ],
    ("api/v1/products/<slug:slug>/workflows/<slug:tag>/activations/<slug:env>", "GET"): [
        Row(Role.VIEWER, W + "activations/dev")
    ],
    ("api/v1/products/<slug:slug>/workflows/<slug:tag>/activations/<slug:env>", "PUT"): [
        Row(Role.ADMIN, W + "activations/staging", {"active": True}),
        Row(Role.ADMIN, W + "activations/prd", {"active": False}),
    ],
    ("api/v1/products/<slug:slug>/workflows/<slug:tag>/promote", "POST"): [
        Row(Role.ADMIN, W + "promote", {"from_env": "dev", "to_env": "prd"}),
        Row(Role.ADMIN, W + "promote?preview=1", {"from_env": "dev", "to_env": "staging"}),
    ],
    # --- runs (the prd rule: acting in production needs admin) -------------------------------
    ("api/v1/runs", "GET"): [Row(USER, "/api/v1/runs")],
    ("api/v1/runs", "POST"): [
        Row(RUN, "/api/v1/runs", {"workflow": "acme/onboard", "env": "dev", "input": {}}),
        Row(RUN, "/api/v1/runs", {"workflow": "acme/onboard", "env": "prd"}, prd=True),
    ],
    ("api/v1/runs/<str:run_id>", "GET"): [Row(Role.VIEWER, "/api/v1/runs/{prd_run}")],
    ("api/v1/products/<slug:slug>/runs", "GET"): [Row(Role.VIEWER, P + "runs")],
    ("api/v1/products/<slug:slug>/runs/stats", "GET"): [Row(Role.VIEWER, P + "runs/stats")],
    # Bulk: operator for the request; the prd rule is applied run by run, and a refused
    # run is reported in the answer (the others go ahead), so a prd selection is not a 403.
    ("api/v1/runs/bulk", "POST"): [
        Row(Role.OPERATOR, BULK, {"product": "acme", "action": "cancel", "filter": {"env": "dev"}}),
        Row(Role.OPERATOR, BULK, {"product": "acme", "action": "cancel", "filter": {"env": "prd"}}),
    ],
    ("api/v1/runs/<str:run_id>/journal", "GET"): [
        Row(Role.VIEWER, "/api/v1/runs/{prd_run}/journal")
    ],
    ("api/v1/runs/<str:run_id>/signals/<str:name>", "POST"): [
        Row(RUN, "/api/v1/runs/{dev_run}/signals/approve", {"ok": True}),
        Row(RUN, "/api/v1/runs/{prd_run}/signals/approve", {"ok": True}, prd=True),
    ],
    ("api/v1/runs/<str:run_id>/cancel", "POST"): [
        Row(RUN, "/api/v1/runs/{dev_run}/cancel", {}),
        Row(RUN, "/api/v1/runs/{prd_run}/cancel", {}, prd=True),
    ],
    ("api/v1/runs/<str:run_id>/query/<str:name>", "GET"): [
        Row(Role.VIEWER, "/api/v1/runs/{prd_run}/query/progress")
    ],
    ("api/v1/runs/<str:run_id>/query/<str:name>", "POST"): [
        Row(Role.VIEWER, "/api/v1/runs/{prd_run}/query/progress", {})
    ],
    ("api/v1/runs/<str:run_id>/replay", "POST"): [
        Row(RUN, "/api/v1/runs/{dev_run}/replay", {}),
        Row(RUN, "/api/v1/runs/{prd_run}/replay", {}, prd=True),
    ],
    ("api/v1/runs/<str:run_id>/restart", "POST"): [
        Row(RUN, "/api/v1/runs/{dev_run}/restart", {"input": {"user_id": "u2"}}),
        Row(RUN, "/api/v1/runs/{prd_run}/restart", {}, prd=True),
    ],
    ("api/v1/runs/<str:run_id>/resume", "POST"): [
        Row(RUN, "/api/v1/runs/{dev_run}/resume", {}),
        Row(RUN, "/api/v1/runs/{prd_run}/resume", {}, prd=True),
    ],
    ("api/v1/runs/<str:run_id>/fork", "POST"): [
        Row(RUN, "/api/v1/runs/{dev_run}/fork", {"step": "send_welcome_email"}),
        Row(RUN, "/api/v1/runs/{prd_run}/fork", {"step": "send_welcome_email"}, prd=True),
    ],
    ("api/v1/runs/<str:run_id>/replay-from-step", "POST"): [
        Row(RUN, "/api/v1/runs/{dev_run}/replay-from-step", {"step": "send_welcome_email"}),
        Row(
            RUN,
            "/api/v1/runs/{prd_run}/replay-from-step",
            {"step": "send_welcome_email"},
            prd=True,
        ),
    ],
    ("api/v1/runs/<str:run_id>/related", "GET"): [
        Row(Role.VIEWER, "/api/v1/runs/{prd_run}/related")
    ],
    ("api/v1/runs/<str:run_id>/compare/<str:other_id>", "GET"): [
        Row(Role.VIEWER, "/api/v1/runs/{dev_run}/compare/{prd_run}")
    ],
}

# WebSocket routes (runtime/routing.py): everyone who may read the product may watch.
SOCKETS: dict[str, list[str]] = {
    "ws/runs/<int:run_id>/": ["/ws/runs/{dev_run}/", "/ws/runs/{prd_run}/"],
    "ws/workflows/<slug:product>/<slug:workflow>/": [
        "/ws/workflows/acme/onboard/",
        "/ws/workflows/acme/onboard/?env=prd",
    ],
}

WHO = ["anonymous", "outsider", "vera", "otto", "dana", "alice", "root"]
ROLE_OF = {"vera": Role.VIEWER, "otto": Role.OPERATOR, "dana": Role.DESIGNER, "alice": Role.ADMIN}


# --- enumerating the site -------------------------------------------------------------------


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.callback


def _methods(callback: Any) -> list[str]:
    view = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    if view is None:
        # A function view does not say which methods it answers: the table does.
        return ["*"]
    names = getattr(view, "http_method_names", ["get", "post", "put", "patch", "delete"])
    return [m.upper() for m in names if m not in ("options", "head", "trace") and hasattr(view, m)]


def site_routes() -> set[tuple[str, str]]:
    """Every (route, method) the site answers, Django's admin aside (it has its own
    staff check), with the trailing-slash aliases folded together."""
    routes = set()
    for route, callback in _walk(get_resolver().url_patterns):
        if route.startswith("admin/"):
            continue
        for method in _methods(callback):
            routes.add((route.removesuffix("/"), method))
    return routes


def socket_routes() -> set[str]:
    from runtime.routing import websocket_urlpatterns

    return {str(p.pattern) for p in websocket_urlpatterns}


# Routes whose access does not depend on who is logged in, each checked by its own tests:
# the load balancer's probes answer anyone (tests/runtime/test_health.py), /metrics only a
# bearer token or an allowed address (tests/runtime/test_metrics.py).
NOT_BY_ROLE = {
    ("healthz", "*"): "tests/runtime/test_health.py",
    ("readyz", "*"): "tests/runtime/test_health.py",
    ("metrics", "*"): "tests/runtime/test_metrics.py",
}


def test_every_route_has_a_row() -> None:
    table = set(TABLE) | set(NOT_BY_ROLE)
    routes = site_routes()
    functions = {route for route, method in routes if method == "*"}
    missing = sorted(
        (route, method)
        for route, method in routes
        if (route, method) not in table
        and not (method == "*" and any(r == route for r, _ in table))
    )
    stale = sorted(
        (route, method)
        for route, method in table
        if (route, method) not in routes and route not in functions
    )
    assert not missing, f"routes without a permission row: {missing}"
    assert not stale, f"rows for routes that no longer exist: {stale}"
    assert socket_routes() == set(SOCKETS), "every WebSocket route needs a row in SOCKETS"


# --- the world ----------------------------------------------------------------------------


@pytest.fixture
def world(
    product: Product,
    components: list[Component],
    admin_user: User,
    designer_user: User,
    operator_user: User,
    viewer_user: User,
    outsider: User,
    settings: Any,
    tmp_path: Any,
) -> dict[str, Any]:
    from runtime.models import Run

    settings.MEDIA_ROOT = tmp_path / "media"
    (tmp_path / "media/acme/dev/files").mkdir(parents=True)
    (tmp_path / "media/acme/dev/files/hello.txt").write_text("hello")

    User.objects.create_superuser("root", password="pw-root")
    User.objects.create_user("newbie", password="pw-newbie")
    services.component_create(product=product, kind="app", tag="billing", actor=None)
    services.workflow_create(product=product, tag="unused", name="Unused")
    workflow = services.workflow_create(product=product, tag="onboard", name="Onboard")
    spec = {
        **main_sequence(),
        "signals": {"approve": {"input": {"ok": "boolean"}}},
        "queries": {"progress": {"output": {"status": "$Run{status}"}}},
    }
    version = services.workflow_publish(workflow=workflow, author=None, spec=spec)
    services.draft_save(workflow=workflow, spec=two_level_spec(), author=None)
    runs = {}
    for slug in ("dev", "prd"):
        environment = product.environments.get(slug=slug)
        services.activation_set(workflow=workflow, environment=environment, active=True)
        runs[f"{slug}_run"] = Run.objects.create(
            workflow=workflow,
            version=version,
            environment=environment,
            status="running",
            input={},
            started_at=timezone.now(),
        ).pk
    return {"product": product, "workflow": workflow, **runs}


def _users() -> dict[str, Any]:
    users: dict[str, Any] = {u.username: u for u in User.objects.all()}
    users["anonymous"] = AnonymousUser()
    users["outsider"] = users["mallory"]
    return users


def expected(need: str, who: str, *, production: bool = False) -> str:
    """'ok', 'login' (401 or a redirect to log in), '403' or '404'."""
    if need == ANYONE:
        return "ok"
    if who == "anonymous":
        return "login"
    if who == "root" or need == USER:
        return "ok"
    if need == STAFF:
        return "403"
    if who == "outsider":
        return "404"
    if need == SUPERUSER:
        return "403"
    role = Role.OPERATOR if need == RUN else Role(need)
    if need == RUN and production:
        role = Role.ADMIN
    return "ok" if ROLE_RANK[ROLE_OF[who]] >= ROLE_RANK[role] else "403"


def outcome(response: Any, page: bool) -> str:
    code = response.status_code
    if code >= 500:
        return f"5xx ({code})"
    location = response.get("Location", "") if code == 302 else ""
    if code == 401 or (page and location.startswith("/login/?next=")):
        return "login"
    if code in (403, 404):
        return str(code)
    return "ok"


def call(who: str, method: str, row: Row, world: dict[str, Any]) -> Any:
    users = _users()
    url = row.url.format(**world)
    client: Any
    if row.page:
        client = Client()
        if who != "anonymous":
            client.force_login(users[who])
        data = row.body or {}
        return getattr(client, method.lower())(url, data) if method != "GET" else client.get(url)
    client = APIClient() if who == "anonymous" else client_for(users[who])
    if row.body is None:
        return getattr(client, method.lower())(url)
    return getattr(client, method.lower())(url, row.body, format="json")


CASES = [(route, method, row) for (route, method), rows in TABLE.items() for row in rows]


@pytest.mark.parametrize(
    ("route", "method", "row"),
    CASES,
    ids=[f"{m} {r.url}" for _, m, r in CASES],
)
def test_each_caller_gets_what_the_table_says(
    world: dict[str, Any], route: str, method: str, row: Row
) -> None:
    production = row.need == RUN and row.prd
    wrong = []
    for who in WHO:
        # Each call in a savepoint that is rolled back: every caller sees the same world.
        with transaction.atomic():
            response = call(who, method, row, world)
            transaction.set_rollback(True)
        want = expected(row.need, who, production=production)
        got = outcome(response, row.page)
        if got != want:
            body = getattr(response, "content", b"")[:200]
            wrong.append(f"{who}: expected {want}, got {got} {body!r}")
    assert not wrong, f"{method} {row.url}:\n" + "\n".join(wrong)


# --- sockets ------------------------------------------------------------------------------


def _connect(path: str, user: Any) -> tuple[bool, int | None]:
    from runtime.routing import websocket_urlpatterns

    async def attempt() -> tuple[bool, int | None]:
        communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
        communicator.scope["user"] = user
        connected, _ = await communicator.connect(timeout=5)
        code = None
        if connected:
            # A refusal is sent as a close right after the handshake.
            while True:
                message = await communicator.receive_output(timeout=5)
                if message["type"] == "websocket.close":
                    code = message.get("code")
                    break
                if message["type"] == "websocket.send" and '"ready"' in message.get("text", ""):
                    break
        await communicator.disconnect()
        return connected, code

    return async_to_sync(attempt)()


SOCKET_CASES = [(route, url) for route, urls in SOCKETS.items() for url in urls]


@pytest.mark.parametrize(("route", "url"), SOCKET_CASES, ids=[u for _, u in SOCKET_CASES])
def test_each_caller_may_watch_what_the_table_says(
    world: dict[str, Any], route: str, url: str, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    # The consumers' database calls run on this thread (async_to_sync from the main
    # thread), inside the test's transaction: channels must not close that connection.
    monkeypatch.setattr("channels.db.close_old_connections", lambda: None)
    users = _users()
    wrong = []
    for who in WHO:
        connected, code = _connect(url.format(**world), users[who])
        want = {"anonymous": 4401, "outsider": 4404}.get(who)
        got = code if connected else "no handshake"
        if got != want:
            wrong.append(f"{who}: expected close {want}, got {got}")
    assert not wrong, f"{url}:\n" + "\n".join(wrong)


# --- the prd rule -------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["vera", "otto", "dana", "alice"])
def test_acting_on_runs_in_production_needs_an_admin(world: dict[str, Any], who: str) -> None:
    product = world["product"]
    user = User.objects.get(username=who)
    dev = product.environments.get(slug="dev")
    prd = product.environments.get(slug="prd")
    rank = ROLE_RANK[ROLE_OF[who]]
    for environment, needed in ((dev, Role.OPERATOR), (prd, Role.ADMIN)):
        allowed = rank >= ROLE_RANK[needed]
        try:
            require_role(user, product, Role.OPERATOR, environment=environment)
            got = True
        except Exception:
            got = False
        assert got is allowed, (who, environment.slug)
