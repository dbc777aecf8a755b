from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.core.management import call_command
from django.http import HttpRequest
from django.test import RequestFactory

from designer.models import (
    Activation,
    AuditEntry,
    Component,
    ComponentConfig,
    Environment,
    Membership,
    Product,
    Workflow,
    WorkflowVersion,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def var_dir(tmp_path: Path, settings: Any) -> Path:
    settings.VAR_DIR = tmp_path
    return tmp_path


def load() -> str:
    out = io.StringIO()
    call_command("load_demo", stdout=out)
    return out.getvalue()


def _request() -> HttpRequest:
    # django-axes watches every authenticate(): it needs the request a login came with.
    return RequestFactory().post("/login/")


def counts() -> dict[str, int]:
    models = [Product, Environment, User, Membership, Component, ComponentConfig, Workflow]
    models += [WorkflowVersion, Activation, AuditEntry]
    return {model.__name__: model.objects.count() for model in models}


def test_it_loads_the_demo_and_prints_a_working_login(var_dir: Path) -> None:
    output = load()

    password = (var_dir / "demo_password").read_text().strip()
    assert f"Demo login: demo / {password}" in output
    assert oct((var_dir / "demo_password").stat().st_mode & 0o777) == "0o600"
    user = authenticate(_request(), username="demo", password=password)
    assert user is not None and user.is_staff and not user.is_superuser

    product = Product.objects.get(slug="acme")
    assert [(e.slug, e.is_production) for e in product.environments.order_by("order")] == [
        ("dev", False),
        ("staging", False),
        ("prd", True),
    ]
    assert Membership.objects.get(product=product, user=user).role == "admin"
    assert {c.tag: sorted(c.events) for c in product.components.all()} == {
        "accounts": ["validate_user"],
        "mailer": ["send_welcome_email"],
    }
    assert ComponentConfig.objects.filter(component__product=product).count() == 6

    workflow = Workflow.objects.get(product=product, tag="main_sequence")
    version = workflow.versions.get()
    assert (version.number, version.state, workflow.source) == (1, "published", "canvas")
    steps = version.plan["sequences"][0]["events"]
    assert [(s["event"], s["app"]) for s in steps] == [
        ("validate_user", "accounts"),
        ("send_welcome_email", "mailer"),
    ]
    active = Activation.objects.filter(workflow=workflow, active=True)
    assert [a.environment.slug for a in active] == ["dev"]


def test_running_it_again_changes_nothing(var_dir: Path) -> None:
    first = load()
    before = counts()
    second = load()
    assert counts() == before
    assert first.splitlines()[-1] == second.splitlines()[-1]  # same password printed


def test_it_never_undoes_what_people_changed(var_dir: Path) -> None:
    load()
    user = User.objects.get(username="demo")
    user.set_password("my-own-password")
    user.save()
    Activation.objects.filter(environment__slug="dev").update(active=False)
    config = ComponentConfig.objects.get(component__tag="accounts", environment__slug="dev")
    config.config = {"base_url": "https://accounts.example.com"}
    config.save()

    output = load()

    assert "changed since it was generated" in output
    assert authenticate(_request(), username="demo", password="my-own-password") is not None
    assert not Activation.objects.get(environment__slug="dev").active
    config.refresh_from_db()
    assert config.config == {"base_url": "https://accounts.example.com"}


def test_the_demo_accounts_service_answers(client: Any) -> None:
    ok = client.post(
        "/demo/accounts/users/validate", data={"userId": "u1"}, content_type="application/json"
    )
    assert ok.json() == {"valid": True, "id": "u1"}
    missing = client.post("/demo/accounts/users/validate", data={}, content_type="application/json")
    assert missing.json()["valid"] is False
    assert client.get("/demo/accounts/users/validate").status_code == 405


def test_the_demo_lists_its_stand_in_services_so_its_action_reaches_them(var_dir: Path) -> None:
    # Outgoing connections reach loopback only when an environment lists it (issue 13,
    # item 3): the demo lists its stand-in, and its ACTION really gets there.
    from designer.management.commands.load_demo import demo_load
    from runtime.connectors import execute
    from runtime.connectors.loader import connector_call
    from tests.runtime.test_worker_ssrf import Recorder

    server = Recorder()
    try:
        demo_load(base_url=f"http://127.0.0.1:{server.port}/demo")
        for env in Environment.objects.filter(product__slug="acme"):
            assert env.allowed_hosts == [f"127.0.0.1:{server.port}"], env.slug
        dev = Environment.objects.get(product__slug="acme", slug="dev")
        call = connector_call(
            type="ACTION", event="validate_user", app="accounts", input={}, environment=dev
        )
        assert execute(call) == {"ok": True}
        assert server.paths == ["/demo/accounts/users/validate"]
    finally:
        server.close()
