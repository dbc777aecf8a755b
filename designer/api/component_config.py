"""A component's configuration for one environment: config, variables, constants and
write-only secrets.

``GET  /api/v1/products/<slug>/components/<tag>/config/<env>`` (designer role) answers
``{component, environment, config, variables, constants, secrets: {name: '•••'}, updated_at}``:
secret values never leave the server, only their names.

``PUT`` (admin role) with any of ``config``, ``variables``, ``constants`` (objects, each
replaced whole when given) and ``secrets`` (``{name: value}`` merged into what is stored;
a ``null`` value deletes that secret). Every change is audited with secret values masked.
"""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from designer import selectors, services
from designer.api.base import ApiView
from designer.api.serializers import Strict
from designer.models import (
    Component,
    ComponentConfig,
    ComponentKind,
    Environment,
    Product,
    Role,
)
from designer.secrets import (
    REDACTED,
    SecretsUnreadable,
    secret_names_masked,
    secrets_decrypt,
    secrets_encrypt,
)
from runtime.cypher import graph_path_issue

SECRET_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-\.]{0,99}$")
MAX_SECRET_CHARS = 10_000
MAX_SECRETS = 200


# --- services ---------------------------------------------------------------------------


def component_config_read(*, component: Component, environment: Environment) -> dict[str, Any]:
    """What the API shows of a component's config in an environment (secret names only)."""
    row = ComponentConfig.objects.filter(component=component, environment=environment).first()
    secrets: dict[str, str] = {}
    unreadable = False
    if row is not None:
        try:
            secrets = secrets_decrypt(row.secrets_encrypted)
        except SecretsUnreadable:
            unreadable = True
    out: dict[str, Any] = {
        "component": component.tag,
        "kind": component.kind,
        "environment": environment.slug,
        "config": row.config if row else {},
        "variables": row.variables if row else {},
        "constants": row.constants if row else {},
        "secrets": secret_names_masked(secrets),
        "updated_at": row.updated_at.isoformat() if row else None,
    }
    if unreadable:
        out["secrets_unreadable"] = True
    return out


def component_config_write(
    *,
    component: Component,
    environment: Environment,
    actor: Any,
    config: dict[str, Any] | None = None,
    variables: dict[str, Any] | None = None,
    constants: dict[str, Any] | None = None,
    secrets: dict[str, str | None] | None = None,
) -> ComponentConfig:
    """Set a component's config for an environment; ``secrets`` are merged (None deletes).

    Secrets are encrypted before they are stored; the audit entry names the secrets that
    changed, never their values.
    """
    with transaction.atomic():
        row, _ = ComponentConfig.objects.select_for_update().get_or_create(
            component=component, environment=environment
        )
        before = {
            "config": row.config,
            "variables": row.variables,
            "constants": row.constants,
        }
        changed_secrets: list[str] = []
        if secrets:
            try:
                current = secrets_decrypt(row.secrets_encrypted)
            except SecretsUnreadable as exc:
                # Replacing every secret is the way out of a lost key: allow only that.
                current = {}
                if any(v is None for v in secrets.values()):
                    raise serializers.ValidationError(
                        {"secrets": "stored secrets are unreadable; set every secret again"}
                    ) from exc
            for name, value in secrets.items():
                if value is None:
                    if current.pop(name, None) is not None:
                        changed_secrets.append(name)
                elif current.get(name) != value:
                    current[name] = value
                    changed_secrets.append(name)
            if len(current) > MAX_SECRETS:
                raise serializers.ValidationError({"secrets": f"at most {MAX_SECRETS} secrets"})
            row.secrets_encrypted = secrets_encrypt(current)
        if config is not None:
            _config_check(component, config)
            row.config = config
        if variables is not None:
            row.variables = variables
        if constants is not None:
            row.constants = constants
        row.save()
        after = {"config": row.config, "variables": row.variables, "constants": row.constants}
        services.audit_record(
            product=component.product,
            actor=actor,
            action="component.config",
            target=f"{component.tag}@{environment.slug}",
            before=before,
            after={**after, "secrets_changed": {n: REDACTED for n in sorted(changed_secrets)}},
        )
    return row


def _config_check(component: Component, config: dict[str, Any]) -> None:
    """A graph's database stays under the admin's graph root (TRELLIS_GRAPH_ROOT)."""
    if component.kind == ComponentKind.GRAPH:
        problem = graph_path_issue(config.get("path"))
        if problem:
            raise serializers.ValidationError({"config.path": problem})


# --- API --------------------------------------------------------------------------------


class SecretsField(serializers.DictField):
    """``{name: value | null}`` with checked names and bounded values."""

    def to_internal_value(self, data: Any) -> dict[str, str | None]:
        if not isinstance(data, dict):
            raise serializers.ValidationError("an object of secret names to values")
        out: dict[str, str | None] = {}
        for name, value in data.items():
            if not SECRET_NAME_RE.match(str(name)):
                raise serializers.ValidationError(
                    f"invalid secret name {str(name)[:100]!r}: letters, digits, _ - . only"
                )
            if value is not None and not isinstance(value, str):
                raise serializers.ValidationError(f"secret {name!r} must be a string or null")
            if isinstance(value, str) and len(value) > MAX_SECRET_CHARS:
                raise serializers.ValidationError(
                    f"secret {name!r} is longer than {MAX_SECRET_CHARS} characters"
                )
            out[str(name)] = value
        return out


class ComponentConfigIn(Strict):
    config = serializers.DictField(required=False)
    variables = serializers.DictField(required=False)
    constants = serializers.DictField(required=False)
    secrets = SecretsField(required=False)


class ComponentConfigOut(serializers.Serializer[Any]):
    component = serializers.CharField()
    kind = serializers.CharField()
    environment = serializers.CharField()
    config = serializers.DictField()
    variables = serializers.DictField()
    constants = serializers.DictField()
    secrets = serializers.DictField(child=serializers.CharField())
    updated_at = serializers.CharField(allow_null=True)


def _environment(product: Product, slug: str) -> Environment:
    environment = product.environments.filter(slug=slug).first()
    if environment is None:
        raise Http404("No such environment.")
    return environment


class ComponentConfigApi(ApiView):
    @extend_schema(operation_id="component_config_get", responses=ComponentConfigOut)
    def get(self, request: Request, slug: str, tag: str, env: str) -> Response:
        product = self.product(Role.DESIGNER)
        component = selectors.component_get(product=product, tag=tag)
        environment = _environment(product, env)
        return Response(component_config_read(component=component, environment=environment))

    @extend_schema(
        operation_id="component_config_put",
        request=ComponentConfigIn,
        responses=ComponentConfigOut,
    )
    def put(self, request: Request, slug: str, tag: str, env: str) -> Response:
        product = self.product(Role.ADMIN)
        component = selectors.component_get(product=product, tag=tag)
        environment = _environment(product, env)
        data = self.body(ComponentConfigIn)
        component_config_write(
            component=component, environment=environment, actor=request.user, **data
        )
        return Response(component_config_read(component=component, environment=environment))
