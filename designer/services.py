"""Authoring writes: products, environments, components, members, workflows, drafts,
published versions and per-environment activation. Every change an admin or a designer
makes that matters later (publish, activation, component, environment, membership) is
written to the audit log in the same transaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from pydantic import ValidationError as PydanticValidationError

# The audit writer and the component writes live in their own modules; their names stay
# importable from here (``services.audit_record``, ``services.component_create``).
from designer.audit import MASK as MASK
from designer.audit import Actor as Actor
from designer.audit import audit_record as audit_record
from designer.audit import update_audited, user_of
from designer.components import CONNECTION_TARGET_KEYS as CONNECTION_TARGET_KEYS
from designer.components import component_create as component_create
from designer.components import component_delete as component_delete
from designer.components import component_events_check as component_events_check
from designer.components import component_infos as component_infos
from designer.components import component_update as component_update
from designer.models import (
    Activation,
    Environment,
    Membership,
    Product,
    Role,
    Source,
    VersionState,
    Workflow,
    WorkflowVersion,
)
from runtime.compiler import Plan, compile_spec, spec_checksum
from runtime.errors import Issue, SpecError
from runtime.spec import WorkflowSpec
from runtime.step_functions import step_function_names

# --- products, environments, members ------------------------------------------------------


def product_create(
    *, slug: str, name: str, description: str = "", creator: Actor = None
) -> Product:
    """Create a product; its creator becomes its first admin."""
    if Product.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": f"a product {slug!r} already exists"})
    with transaction.atomic():
        product = Product.objects.create(slug=slug, name=name, description=description)
        user = user_of(creator)
        if user is not None:
            Membership.objects.create(product=product, user=user, role=Role.ADMIN)
        audit_record(
            product=product,
            actor=creator,
            action="product.create",
            target=slug,
            after={"slug": slug, "name": name},
        )
    return product


def product_update(*, product: Product, actor: Actor, **fields: Any) -> Product:
    before = {k: getattr(product, k) for k in fields}
    for key, value in fields.items():
        setattr(product, key, value)
    with transaction.atomic():
        product.save()
        audit_record(
            product=product,
            actor=actor,
            action="product.update",
            target=product.slug,
            before=before,
            after=fields,
        )
    return product


def product_delete(*, product: Product, actor: Actor) -> None:
    """Delete a product and everything in it; refused (ProtectedError) while runs exist."""
    with transaction.atomic():
        audit_record(product=None, actor=actor, action="product.delete", target=product.slug)
        product.delete()


def environment_create(
    *,
    product: Product,
    slug: str,
    name: str,
    actor: Actor,
    order: int | None = None,
    is_production: bool = False,
    allowed_hosts: list[str] | None = None,
    retention: dict[str, int] | None = None,
) -> Environment:
    if product.environments.filter(slug=slug).exists():
        raise ValidationError({"slug": f"an environment {slug!r} already exists"})
    if order is None:
        order = (product.environments.aggregate(n=Max("order"))["n"] or 0) + 1
    with transaction.atomic():
        environment = Environment.objects.create(
            product=product,
            slug=slug,
            name=name,
            order=order,
            is_production=is_production,
            allowed_hosts=allowed_hosts or [],
            retention=retention or {},
        )
        audit_record(
            product=product,
            actor=actor,
            action="environment.create",
            target=slug,
            after=_environment_fields(environment),
        )
    return environment


def _environment_fields(environment: Environment) -> dict[str, Any]:
    return {
        "slug": environment.slug,
        "name": environment.name,
        "order": environment.order,
        "is_production": environment.is_production,
        "allowed_hosts": environment.allowed_hosts,
        "retention": environment.retention,
    }


def environment_update(*, environment: Environment, actor: Actor, **fields: Any) -> Environment:
    update_audited(
        environment,
        actor=actor,
        fields=fields,
        key="slug",
        siblings=environment.product.environments,
        noun="an environment",
        snapshot=_environment_fields,
        action="environment.update",
    )
    return environment


def environment_delete(*, environment: Environment, actor: Actor) -> None:
    """Delete an environment that has never run anything and is not production."""
    if environment.is_production:
        raise ValidationError(
            {"is_production": "a production environment is protected: unmark it first"}
        )
    if environment.runs.exists():
        raise ValidationError({"slug": "this environment has runs and is kept for their history"})
    with transaction.atomic():
        audit_record(
            product=environment.product,
            actor=actor,
            action="environment.delete",
            target=environment.slug,
            before=_environment_fields(environment),
        )
        environment.delete()


def _admins_left(product: Product, *, without: Membership) -> bool:
    return product.memberships.filter(role=Role.ADMIN).exclude(pk=without.pk).exists()


def member_set(*, product: Product, user: Any, role: Role | str, actor: Actor) -> Membership:
    """Give ``user`` the ``role`` in ``product`` (adding them if needed)."""
    role = Role(role)
    with transaction.atomic():
        membership = Membership.objects.filter(product=product, user=user).first()
        before = membership.role if membership else None
        if membership is None:
            membership = Membership.objects.create(product=product, user=user, role=role)
        elif membership.role != role:
            if membership.role == Role.ADMIN and not _admins_left(product, without=membership):
                raise ValidationError({"role": "a product needs at least one admin"})
            membership.role = role
            membership.save(update_fields=["role"])
        else:
            return membership
        audit_record(
            product=product,
            actor=actor,
            action="member.set",
            target=user.get_username(),
            before={"role": before} if before else None,
            after={"role": str(role)},
        )
    user.__dict__.pop("_trellis_roles", None)
    return membership


def member_remove(*, membership: Membership, actor: Actor) -> None:
    if membership.role == Role.ADMIN and not _admins_left(membership.product, without=membership):
        raise ValidationError({"username": "a product needs at least one admin"})
    with transaction.atomic():
        audit_record(
            product=membership.product,
            actor=actor,
            action="member.remove",
            target=membership.user.get_username(),
            before={"role": membership.role},
        )
        membership.delete()


# --- workflows, drafts, versions ----------------------------------------------------------


def spec_parse(spec: Mapping[str, Any] | WorkflowSpec) -> WorkflowSpec:
    """Validate a spec's shape; a bad one raises SpecError naming each JSON path."""
    if isinstance(spec, WorkflowSpec):
        return spec
    if not isinstance(spec, Mapping):
        raise SpecError([Issue(path="$", message="a spec is a JSON object")])
    try:
        return WorkflowSpec.model_validate(spec)
    except PydanticValidationError as exc:
        raise SpecError(_pydantic_issues(exc)) from None


def _pydantic_issues(exc: PydanticValidationError) -> list[Issue]:
    issues = []
    for err in exc.errors():
        path = ""
        for part in err["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        issues.append(Issue(path=path or "$", message=err["msg"]))
    return issues


def _stored(spec: WorkflowSpec) -> dict[str, Any]:
    # What the author wrote, with types checked; defaults stay implicit so stored specs
    # (and the canvas's round trip) stay small.
    return spec.model_dump(mode="json", exclude_unset=True)


def spec_compile(*, product: Product, spec: Mapping[str, Any] | WorkflowSpec) -> Plan:
    """Compile against the product's components; raises SpecError with every issue."""
    return compile_spec(
        spec_parse(spec),
        components=component_infos(product),
        step_functions=step_function_names(),
    )


def workflow_create(
    *,
    product: Product,
    tag: str,
    name: str,
    description: str = "",
    source: str = Source.CANVAS,
    spec: Mapping[str, Any] | None = None,
    author: Actor = None,
) -> Workflow:
    if product.workflows.filter(tag=tag).exists():
        raise ValidationError({"tag": f"a workflow {tag!r} already exists"})
    parsed = spec_parse(spec) if spec is not None else None
    with transaction.atomic():
        workflow = Workflow.objects.create(
            product=product, tag=tag, name=name, description=description, source=Source(source)
        )
        if parsed is not None:
            draft_save(workflow=workflow, spec=parsed, author=author)
        audit_record(
            product=product,
            actor=author,
            action="workflow.create",
            target=tag,
            after={"tag": tag, "name": name, "source": str(source)},
        )
    return workflow


def workflow_update(*, workflow: Workflow, actor: Actor, **fields: Any) -> Workflow:
    for key, value in fields.items():
        setattr(workflow, key, value)
    workflow.save()
    return workflow


def workflow_delete(*, workflow: Workflow, actor: Actor) -> None:
    """Delete a workflow that never ran (runs keep their workflow for history)."""
    if workflow.runs.exists():
        raise ValidationError({"tag": "this workflow has runs and is kept for their history"})
    with transaction.atomic():
        audit_record(
            product=workflow.product,
            actor=actor,
            action="workflow.delete",
            target=workflow.tag,
            before={"tag": workflow.tag, "name": workflow.name},
        )
        # Activations protect the versions they pin; they go first.
        workflow.activations.all().delete()
        workflow.delete()


def draft_save(
    *, workflow: Workflow, spec: Mapping[str, Any] | WorkflowSpec, author: Actor
) -> WorkflowVersion:
    """Create or replace the workflow's draft. The spec's shape must be valid; whether it
    compiles is checked on publish (and by validate), so half-drawn graphs can be saved."""
    stored = _stored(spec_parse(spec))
    with transaction.atomic():
        draft = (
            WorkflowVersion.objects.select_for_update()
            .filter(workflow=workflow, state=VersionState.DRAFT)
            .first()
        )
        if draft is None:
            draft = WorkflowVersion(workflow=workflow, state=VersionState.DRAFT)
        draft.spec = stored
        draft.author = user_of(author)
        draft.save()
    return draft


def draft_discard(*, workflow: Workflow) -> None:
    workflow.versions.filter(state=VersionState.DRAFT).delete()


def workflow_publish(
    *,
    workflow: Workflow,
    author: Actor,
    spec: Mapping[str, Any] | WorkflowSpec | None = None,
    note: str = "",
) -> WorkflowVersion:
    """Compile ``spec`` (or else the draft) and publish it as the next version.

    Publishing consumes the draft. A spec whose checksum equals the latest version's is
    not published again: the latest version is returned as it is (callers can tell by
    comparing it with what was latest before), so re-syncing code-first workflows does
    not pile up identical versions. Raises SpecError with every compiler issue.
    """
    with transaction.atomic():
        # Serialize publishes of one workflow so version numbers never collide.
        Workflow.objects.select_for_update().filter(pk=workflow.pk).first()
        draft = (
            WorkflowVersion.objects.select_for_update()
            .filter(workflow=workflow, state=VersionState.DRAFT)
            .first()
        )
        if spec is None:
            if draft is None:
                raise ValidationError({"spec": "there is no draft to publish: send a spec"})
            spec = draft.spec
        parsed = spec_parse(spec)
        plan = compile_spec(
            parsed,
            components=component_infos(workflow.product),
            step_functions=step_function_names(),
        )
        stored = _stored(parsed)
        checksum = spec_checksum(stored)
        latest = (
            WorkflowVersion.objects.filter(workflow=workflow, state=VersionState.PUBLISHED)
            .order_by("-number")
            .first()
        )
        if latest is not None and latest.checksum == checksum:
            if draft is not None and spec_checksum(draft.spec) == checksum:
                draft.delete()
            return latest
        number = (latest.number or 0) + 1 if latest is not None else 1
        version = draft if draft is not None else WorkflowVersion(workflow=workflow)
        version.state = VersionState.PUBLISHED
        version.number = number
        version.spec = stored
        version.plan = plan.model_dump(mode="json")
        version.checksum = checksum
        version.author = user_of(author)
        version.note = note
        version.published_at = timezone.now()
        version.save()
        Workflow.objects.filter(pk=workflow.pk).update(updated_at=timezone.now())
        audit_record(
            product=workflow.product,
            actor=author,
            action="workflow.publish",
            target=workflow.tag,
            before={"version": latest.number} if latest is not None else None,
            after={"version": number, "checksum": checksum, "note": note},
        )
    return version


# --- activation ---------------------------------------------------------------------------


def _activation_fields(activation: Activation | None) -> dict[str, Any] | None:
    if activation is None:
        return None
    return {
        "active": activation.active,
        "version": activation.version.number if activation.version is not None else None,
        "managed_by": activation.managed_by,
    }


def activation_set(
    *,
    workflow: Workflow,
    environment: Environment,
    active: bool,
    version: WorkflowVersion | None = None,
    actor: Actor = None,
    managed_by: str = "user",
) -> Activation:
    """Decide whether ``workflow`` runs in ``environment`` and which version is live there
    (``version`` pins one; None follows the latest published version).

    A decision made by code-first ``envs`` (``managed_by="code"``) never overrides one a
    person made: the existing activation is returned untouched.
    """
    if environment.product_id != workflow.product_id:
        raise ValidationError({"environment": "the environment belongs to another product"})
    if version is not None and (
        version.workflow_id != workflow.pk or version.state != VersionState.PUBLISHED
    ):
        raise ValidationError({"version": "not a published version of this workflow"})
    if (
        active
        and version is None
        and not workflow.versions.filter(state=VersionState.PUBLISHED).exists()
    ):
        raise ValidationError({"active": "publish a version before activating the workflow"})
    with transaction.atomic():
        activation = (
            # of=self: PostgreSQL cannot lock the nullable side of the version join.
            Activation.objects.select_for_update(of=("self",))
            .select_related("version")
            .filter(workflow=workflow, environment=environment)
            .first()
        )
        if activation is not None and managed_by == "code" and activation.managed_by == "user":
            return activation
        before = _activation_fields(activation)
        if activation is None:
            activation = Activation(workflow=workflow, environment=environment)
        activation.active = active
        activation.version = version
        activation.managed_by = managed_by
        activation.updated_by = user_of(actor)
        activation.save()
        after = _activation_fields(activation)
        if before != after:
            audit_record(
                product=workflow.product,
                actor=actor,
                action="activation.set",
                target=f"{workflow.tag}@{environment.slug}",
                before=before,
                after=after,
            )
    return activation
