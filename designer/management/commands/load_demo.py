"""Load the demo (idempotently): product "acme" with dev → staging → prd, a demo admin,
the components the seed's ``main_sequence`` names, and that workflow published and active
in dev. Running it again changes nothing that exists; it never overrides what a person
changed since (configuration, activation, the demo user's password)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand
from django.db import transaction

from designer import services
from designer.models import (
    Activation,
    Component,
    ComponentConfig,
    ComponentKind,
    Environment,
    Membership,
    Product,
    Role,
    VersionState,
    Workflow,
)

DEMO_USERNAME = "demo"
ENVIRONMENTS = [
    ("dev", "Development", False),
    ("staging", "Staging", False),
    ("prd", "Production", True),
]

# The seed's "Sequencing Events" example. The ACTION's input is put in the shape the
# connector reads (an ACTION sends `body`); the rest, the email's input too, is as written.
MAIN_SEQUENCE: dict[str, Any] = {
    "sequences": [
        {
            "tag": "main_sequence",
            "events": [
                {
                    "type": "ACTION",
                    "event": "validate_user",
                    "input": {"body": {"userId": "$Input{user_id}"}},
                    "retries": 2,
                    "allow_fail": False,
                },
                {
                    "type": "NOTIFICATION",
                    "event": "send_welcome_email",
                    "input": {"email": "$Input{email}"},
                    "retries": 1,
                    "allow_fail": True,
                },
            ],
        }
    ],
    "input": {
        "type": "object",
        "properties": {"user_id": {"type": "string"}, "email": {"type": "string"}},
        "required": ["user_id", "email"],
    },
}


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str | None  # None: changed by someone since it was generated


def _password_file() -> Path:
    return Path(settings.VAR_DIR) / "demo_password"


def _demo_user() -> tuple[Any, str | None]:
    """The demo user and its password: generated once, kept in TRELLIS_VAR_DIR."""
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(
        username=DEMO_USERNAME, defaults={"is_staff": True, "email": "demo@acme.example"}
    )
    path = _password_file()
    stored = path.read_text().strip() if path.exists() else ""
    if not created and stored:
        return user, stored if user.check_password(stored) else None
    password = stored or secrets.token_urlsafe(12)
    user.set_password(password)
    user.is_staff = True
    user.save()
    # Staff, not superuser: the admin shows the demo's models, the API its product only.
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="designer"),
        *Permission.objects.filter(content_type__app_label="runtime", codename__startswith="view_"),
    )
    path.write_text(password + "\n")
    path.chmod(0o600)
    return user, password


def demo_load(*, base_url: str) -> DemoLogin:
    """Create whatever part of the demo is missing; return the demo login."""
    with transaction.atomic():
        user, password = _demo_user()
        product, _ = Product.objects.get_or_create(
            slug="acme",
            defaults={"name": "Acme", "description": "The demo product: a user sign-up flow."},
        )
        Membership.objects.get_or_create(product=product, user=user, defaults={"role": Role.ADMIN})
        environments = {}
        stand_in = demo_allowed_host(base_url)
        for order, (slug, name, production) in enumerate(ENVIRONMENTS):
            environment, _ = Environment.objects.get_or_create(
                product=product,
                slug=slug,
                defaults={"name": name, "order": order, "is_production": production},
            )
            if not environment.allowed_hosts:
                # The demo's stand-in services answer on this server (loopback): outgoing
                # connections reach only what an environment lists, so the demo lists
                # them. Also fills a list left empty by a release where empty meant "any".
                environment.allowed_hosts = [stand_in]
                environment.save(update_fields=["allowed_hosts"])
            environments[slug] = environment
        _components(product, environments, base_url=base_url, user=user)
        _workflow(product, environments["dev"], user=user)
    return DemoLogin(username=DEMO_USERNAME, password=password)


def _components(
    product: Product, environments: dict[str, Environment], *, base_url: str, user: Any
) -> None:
    # kind, tag, name, events, and the config for an environment slug
    declared: list[
        tuple[ComponentKind, str, str, dict[str, Any], Callable[[str], dict[str, Any]]]
    ] = [
        (
            ComponentKind.APP,
            "accounts",
            "Accounts API",
            {"validate_user": {"method": "POST", "path": "/users/validate"}},
            lambda env: {"base_url": f"{base_url}/accounts", "timeout": 5000},
        ),
        (
            ComponentKind.NOTIFICATION,
            "mailer",
            "Mailer",
            {
                "send_welcome_email": {
                    "channel": "email",
                    "subject": "Welcome to Acme",
                    "body": "Hello {{ email }}, your account is ready.",
                }
            },
            # The console backend prints the email in the worker's output: nothing leaves
            # the machine until someone configures a real SMTP server here.
            lambda env: {
                "email": {"backend": "console", "from": f"Acme {env} <noreply@acme.example>"}
            },
        ),
    ]
    for kind, tag, name, events, config in declared:
        component = Component.objects.filter(product=product, tag=tag).first()
        if component is None:
            component = services.component_create(
                product=product, kind=kind, tag=tag, name=name, events=events, actor=user
            )
        for slug, environment in environments.items():
            ComponentConfig.objects.get_or_create(
                component=component, environment=environment, defaults={"config": config(slug)}
            )


def _workflow(product: Product, dev: Environment, *, user: Any) -> None:
    workflow = Workflow.objects.filter(product=product, tag="main_sequence").first()
    if workflow is None:
        workflow = services.workflow_create(
            product=product,
            tag="main_sequence",
            name="Main sequence",
            description="Validate a new user, then send a welcome email (the seed's example).",
            author=user,
        )
    if not workflow.versions.filter(state=VersionState.PUBLISHED).exists():
        services.workflow_publish(workflow=workflow, author=user, spec=MAIN_SEQUENCE, note="demo")
    if not Activation.objects.filter(workflow=workflow, environment=dev).exists():
        services.activation_set(workflow=workflow, environment=dev, active=True, actor=user)


def demo_allowed_host(base_url: str) -> str:
    """The allow-list entry for the demo's stand-in services: ``host:port`` of ``base_url``
    (an IP address as is, so a loopback address is named explicitly)."""
    parts = urlsplit(base_url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def default_base_url() -> str:
    return f"http://127.0.0.1:{os.environ.get('PORT') or 8000}/demo"


class Command(BaseCommand):
    help = "Load the demo product, user, components and workflow (safe to run again)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--base-url",
            default=None,
            help="Where the demo's accounts service answers (default: this server's /demo).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        login = demo_load(base_url=options["base_url"] or default_base_url())
        self.stdout.write(
            "Demo: product 'acme' (dev, staging, prd), workflow 'main_sequence' active in dev."
        )
        self.stdout.write(f"Demo login: {login.username} / {describe_password(login)}")


def describe_password(login: DemoLogin) -> str:
    if login.password is None:
        return "(changed since it was generated; not shown)"
    return login.password
