"""Authoring-side domain: products, environments, components, workflows, versions,
per-environment activation and per-product membership."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from runtime.spec import WorkflowSpec


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    OPERATOR = "operator", "Operator"
    DESIGNER = "designer", "Designer"
    ADMIN = "admin", "Admin"


ROLE_RANK = {Role.VIEWER: 1, Role.OPERATOR: 2, Role.DESIGNER: 3, Role.ADMIN: 4}


class Product(models.Model):
    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Membership(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["product", "user"], name="uniq_member_per_product")
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.product}: {self.role}"


class Environment(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="environments")
    slug = models.SlugField(max_length=50)
    name = models.CharField(max_length=100)
    order = models.PositiveIntegerField(default=0)  # dev (0) → staging → prd
    is_production = models.BooleanField(default=False)
    # Where steps in this environment may connect (runtime/netguard.py): host names,
    # *.domain, IP addresses, networks, any of them :port. Private/loopback/link-local
    # addresses need an entry naming the address. Empty: public addresses only, and
    # nothing at all when is_production. Admin-only, like component configs.
    allowed_hosts = models.JSONField(default=list, blank=True)
    # How long finished runs and audit entries are kept (runtime/retention.py): keys
    # completed_days, failed_days, keep_last, audit_days; a missing key takes the product
    # default (TRELLIS_RETENTION_* settings). Admin-only.
    retention = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["product", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["product", "slug"], name="uniq_env_slug_per_product")
        ]

    def __str__(self) -> str:
        return f"{self.product.slug}/{self.slug}"


RETENTION_KEYS = ("completed_days", "failed_days", "keep_last", "audit_days")


def retention_defaults() -> dict[str, int]:
    """The product default of every retention key (TRELLIS_RETENTION_* settings)."""
    return {
        "completed_days": int(getattr(settings, "TRELLIS_RETENTION_COMPLETED_DAYS", 30)),
        "failed_days": int(getattr(settings, "TRELLIS_RETENTION_FAILED_DAYS", 90)),
        "keep_last": int(getattr(settings, "TRELLIS_RETENTION_KEEP_LAST", 20)),
        "audit_days": int(getattr(settings, "TRELLIS_RETENTION_AUDIT_DAYS", 365)),
    }


def retention_problems(value: Any) -> list[tuple[str, str]]:
    """(path, message) for each problem of an environment's retention object."""
    if not isinstance(value, dict):
        return [("retention", "must be an object")]
    problems = []
    for key, item in value.items():
        if key not in RETENTION_KEYS:
            allowed = ", ".join(RETENTION_KEYS)
            problems.append((f"retention.{key}", f"unknown key; allowed: {allowed}"))
        elif item is not None and (
            not isinstance(item, int) or isinstance(item, bool) or not 0 <= item <= 36500
        ):
            problems.append((f"retention.{key}", "must be a whole number from 0 to 36500"))
    return problems


def retention_effective(environment: Environment) -> dict[str, int]:
    """The environment's retention with the product default filling the missing keys."""
    own = environment.retention if isinstance(environment.retention, dict) else {}
    return {
        key: own[key] if isinstance(own.get(key), int) else default
        for key, default in retention_defaults().items()
    }


class ComponentKind(models.TextChoices):
    APP = "app", "App"
    DATABASE = "database", "Database"
    NOTIFICATION = "notification", "Notification"
    STORAGE = "storage", "Storage"
    BROKER = "broker", "Broker"
    QUOTA = "quota", "Quota"
    FALLBACK = "fallback", "Fallback"
    GRAPH = "graph", "Graph"


class Component(models.Model):
    """A system a product talks to, configured once per environment, used by tag.

    ``events`` declares what can be done with it (an app's actions, a database's
    operations, a notifier's messages...) keyed by event tag; its shape depends on
    ``kind`` and is validated by the matching connector.
    """

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="components")
    kind = models.CharField(max_length=20, choices=ComponentKind.choices)
    tag = models.SlugField(max_length=100)
    name = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    events = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["product", "kind", "tag"]
        constraints = [
            models.UniqueConstraint(fields=["product", "tag"], name="uniq_component_tag")
        ]

    def __str__(self) -> str:
        return f"{self.product.slug}/{self.kind}:{self.tag}"


class ComponentConfig(models.Model):
    """A component's configuration for one environment: base URL, auth, variables,
    constants (plain JSON) and secrets (encrypted at rest, never returned)."""

    component = models.ForeignKey(Component, on_delete=models.CASCADE, related_name="configs")
    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="component_configs"
    )
    config = models.JSONField(default=dict, blank=True)
    variables = models.JSONField(default=dict, blank=True)
    constants = models.JSONField(default=dict, blank=True)
    secrets_encrypted = models.TextField(blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["component", "environment"], name="uniq_component_env_config"
            )
        ]


class Source(models.TextChoices):
    CANVAS = "canvas", "Canvas"
    CODE = "code", "Code"


class Workflow(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="workflows")
    tag = models.SlugField(max_length=100)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.CANVAS)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["product", "tag"]
        constraints = [models.UniqueConstraint(fields=["product", "tag"], name="uniq_workflow_tag")]

    def __str__(self) -> str:
        return f"{self.product.slug}/{self.tag}"


class VersionState(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"


class WorkflowVersion(models.Model):
    """A workflow's spec. At most one draft per workflow (editable); published versions
    are immutable and numbered 1, 2, 3…, carrying the compiled plan and a checksum."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="versions")
    state = models.CharField(
        max_length=10, choices=VersionState.choices, default=VersionState.DRAFT
    )
    number = models.PositiveIntegerField(null=True, blank=True)
    spec = models.JSONField(default=dict)
    plan = models.JSONField(null=True, blank=True)
    checksum = models.CharField(max_length=64, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["workflow", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["workflow", "number"],
                condition=Q(number__isnull=False),
                name="uniq_version_number",
            ),
            models.UniqueConstraint(
                fields=["workflow"], condition=Q(state="draft"), name="one_draft_per_workflow"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.workflow} v{self.number or 'draft'}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk and self.state == VersionState.PUBLISHED:
            stored = WorkflowVersion.objects.filter(pk=self.pk).values("state", "spec").first()
            if stored and stored["state"] == VersionState.PUBLISHED and stored["spec"] != self.spec:
                raise ValueError("a published version is immutable")
        super().save(*args, **kwargs)

    @property
    def parsed_spec(self) -> WorkflowSpec:
        return WorkflowSpec.model_validate(self.spec)


class Activation(models.Model):
    """Whether a workflow runs in an environment, and which version is live there.

    ``version`` pins a version; when it is empty the latest published version is live.
    ``managed_by`` records who decided: code-first ``envs`` never override a hand-made
    ("user") decision.
    """

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="activations")
    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="activations"
    )
    active = models.BooleanField(default=False)
    version = models.ForeignKey(
        WorkflowVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    managed_by = models.CharField(
        max_length=10, choices=[("code", "Code"), ("user", "User")], default="user"
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workflow", "environment"], name="uniq_activation")
        ]

    def live_version(self) -> WorkflowVersion | None:
        if self.version_id:
            return self.version
        return (
            self.workflow.versions.filter(state=VersionState.PUBLISHED).order_by("-number").first()
        )


class AuditEntry(models.Model):
    """Who changed what, when: publishes, activations, promotions, config and secret
    changes (masked), membership changes and operator actions."""

    product = models.ForeignKey(
        Product, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=60)
    target = models.CharField(max_length=300, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]
