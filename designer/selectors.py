"""Authoring reads: every lookup the API makes goes through here, and every product-scoped
lookup checks who is asking first (outsider → 404, too small a role → 403)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Max, Prefetch, QuerySet
from django.http import Http404

from designer.models import (
    Activation,
    AuditEntry,
    Component,
    Environment,
    Membership,
    Product,
    Role,
    VersionState,
    Workflow,
    WorkflowVersion,
)
from designer.permissions import require_role, visible_products


def product_for(*, user: Any, slug: str, role: Role) -> Product:
    """The product ``slug`` if ``user`` holds at least ``role`` in it.

    A missing product and a product the user is no member of both give 404, so an
    outsider cannot probe which products exist.
    """
    product = Product.objects.filter(slug=slug).first()
    if product is None:
        raise Http404("No such product.")
    require_role(user, product, role)
    return product


def product_list(*, user: Any) -> QuerySet[Product]:
    return visible_products(user).order_by("slug")


def environment_list(*, product: Product) -> QuerySet[Environment]:
    return product.environments.order_by("order", "id")


def environment_get(*, product: Product, slug: str) -> Environment:
    environment = product.environments.filter(slug=slug).first()
    if environment is None:
        raise Http404("No such environment.")
    return environment


def component_list(*, product: Product) -> QuerySet[Component]:
    return product.components.order_by("kind", "tag")


def component_get(*, product: Product, tag: str) -> Component:
    component = product.components.filter(tag=tag).first()
    if component is None:
        raise Http404("No such component.")
    return component


def _workflows(product: Product) -> QuerySet[Workflow]:
    # One query each for drafts and activations instead of one per workflow.
    return (
        product.workflows.select_related("product")
        .annotate(latest_number=Max("versions__number"))
        .prefetch_related(
            Prefetch(
                "versions",
                queryset=WorkflowVersion.objects.filter(state=VersionState.DRAFT).select_related(
                    "author"
                ),
                to_attr="drafts",
            ),
            Prefetch(
                "activations",
                queryset=Activation.objects.select_related("environment", "version"),
                to_attr="activation_rows",
            ),
            Prefetch(
                "product__environments",
                queryset=Environment.objects.order_by("order", "id"),
                to_attr="ordered_environments",
            ),
        )
    )


def workflow_list(*, product: Product) -> QuerySet[Workflow]:
    return _workflows(product).order_by("tag")


def workflow_get(*, product: Product, tag: str) -> Workflow:
    workflow = _workflows(product).filter(tag=tag).first()
    if workflow is None:
        raise Http404("No such workflow.")
    return workflow


def draft_get(*, workflow: Workflow) -> WorkflowVersion | None:
    """The editable draft, if the workflow has one."""
    drafts = getattr(workflow, "drafts", None)
    if drafts is not None:
        return drafts[0] if drafts else None
    return workflow.versions.filter(state=VersionState.DRAFT).select_related("author").first()


def version_latest(*, workflow: Workflow) -> WorkflowVersion | None:
    """The newest published version."""
    return (
        workflow.versions.filter(state=VersionState.PUBLISHED)
        .select_related("author")
        .order_by("-number")
        .first()
    )


def version_list(*, workflow: Workflow) -> QuerySet[WorkflowVersion]:
    # The list leaves out the (possibly large) spec and plan; the detail has them.
    return (
        workflow.versions.filter(state=VersionState.PUBLISHED)
        .select_related("author")
        .defer("spec", "plan")
        .order_by("-number")
    )


def version_get(*, workflow: Workflow, number: int) -> WorkflowVersion:
    version = (
        workflow.versions.filter(state=VersionState.PUBLISHED, number=number)
        .select_related("author")
        .first()
    )
    if version is None:
        raise Http404("No such version.")
    return version


@dataclass(frozen=True)
class ActivationRow:
    """A workflow in one environment: whether it runs there and which version is live."""

    environment: Environment
    active: bool
    version: int | None  # the live version number (pinned, or else the latest)
    pinned: bool
    managed_by: str


def activation_rows(*, workflow: Workflow) -> list[ActivationRow]:
    """One row per environment of the product, in environment order; an environment
    nobody has decided about yet reads as inactive."""
    environments = getattr(workflow.product, "ordered_environments", None)
    if environments is None:
        environments = list(workflow.product.environments.order_by("order", "id"))
    activations = getattr(workflow, "activation_rows", None)
    if activations is None:
        activations = list(workflow.activations.select_related("environment", "version"))
    if hasattr(workflow, "latest_number"):
        latest = workflow.latest_number
    else:
        latest = workflow.versions.aggregate(n=Max("number"))["n"]
    by_env = {a.environment_id: a for a in activations}
    rows = []
    for environment in environments:
        activation = by_env.get(environment.pk)
        if activation is None:
            rows.append(ActivationRow(environment, False, latest, False, ""))
            continue
        pinned = activation.version_id is not None
        number = activation.version.number if activation.version is not None else latest
        rows.append(
            ActivationRow(environment, activation.active, number, pinned, activation.managed_by)
        )
    return rows


def member_list(*, product: Product) -> QuerySet[Membership]:
    return product.memberships.select_related("user").order_by("user__username")


def member_get(*, product: Product, username: str) -> Membership:
    membership = product.memberships.select_related("user").filter(user__username=username).first()
    if membership is None:
        raise Http404("No such member.")
    return membership


def audit_list(
    *, product: Product, action: str = "", actor: str = "", target: str = ""
) -> QuerySet[AuditEntry]:
    entries = product.audit.select_related("actor").order_by("-at", "-id")
    if action:
        entries = entries.filter(action__startswith=action)
    if actor:
        entries = entries.filter(actor__username=actor)
    if target:
        entries = entries.filter(target__icontains=target)
    return entries
