"""Governance: environments (create, rename, reorder, the protected production one),
promotion of a version from one environment to another, the differences an admin sees
before promoting, and the workflows x environments activation matrix.

Every write is audited in its own transaction. Secrets are never read out: two
environments' secrets are compared by name, presence and whether the values differ.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from designer import selectors, services
from designer.audit import Actor, audit_record

# The differences live in their own module; their names stay importable from here.
from designer.differences import Change as Change
from designer.differences import changes_json, config_diff, used_components
from designer.differences import environment_diff as environment_diff
from designer.differences import json_diff as json_diff
from designer.models import (
    Activation,
    AuditEntry,
    Component,
    ComponentConfig,
    Environment,
    Product,
    VersionState,
    Workflow,
    WorkflowVersion,
)

# URL segments under environments/ that name an endpoint, not an environment.
RESERVED_ENV_SLUGS = frozenset({"diff", "reorder", "matrix"})


# --- environments -------------------------------------------------------------------------


def _check_slug(slug: str) -> None:
    if slug in RESERVED_ENV_SLUGS:
        raise ValidationError({"slug": f"'{slug}' is reserved; choose another slug"})


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
    """Add an environment (last in the order unless ``order`` is given). Marking it as
    production moves the production mark from any other environment."""
    _check_slug(slug)
    with transaction.atomic():
        environment = services.environment_create(
            product=product,
            slug=slug,
            name=name,
            actor=actor,
            order=order,
            allowed_hosts=allowed_hosts,
            retention=retention,
        )
        if is_production:
            environment = environment_mark_production(environment=environment, actor=actor)
    return environment


def environment_rename(
    *, environment: Environment, actor: Actor, name: str | None = None, slug: str | None = None
) -> Environment:
    """Change an environment's display name and/or slug. A production environment keeps
    its slug: scripts, code-first ``envs`` and run links name it."""
    fields: dict[str, Any] = {}
    if name is not None and name != environment.name:
        fields["name"] = name
    if slug is not None and slug != environment.slug:
        _check_slug(slug)
        if environment.is_production:
            raise ValidationError(
                {"slug": "a production environment's slug cannot change: unmark it first"}
            )
        fields["slug"] = slug
    if not fields:
        return environment
    return services.environment_update(environment=environment, actor=actor, **fields)


def environment_update(*, environment: Environment, actor: Actor, **fields: Any) -> Environment:
    """A PATCH of an environment with the governance rules applied: the production
    environment's slug is fixed, and ``is_production`` moves the mark (one per product)."""
    production = fields.pop("is_production", None)
    with transaction.atomic():
        environment = environment_rename(
            environment=environment,
            actor=actor,
            name=fields.pop("name", None),
            slug=fields.pop("slug", None),
        )
        if fields:
            environment = services.environment_update(
                environment=environment, actor=actor, **fields
            )
        if production is True and not environment.is_production:
            environment = environment_mark_production(environment=environment, actor=actor)
        elif production is False and environment.is_production:
            environment = environment_unmark_production(environment=environment, actor=actor)
    return environment


def environment_reorder(
    *, product: Product, order: Sequence[str], actor: Actor
) -> list[Environment]:
    """Put the product's environments in the order of ``order`` (every slug, once)."""
    with transaction.atomic():
        environments = {
            e.slug: e for e in Environment.objects.select_for_update().filter(product=product)
        }
        if len(set(order)) != len(order):
            raise ValidationError({"order": "each environment may appear only once"})
        unknown = [slug for slug in order if slug not in environments]
        if unknown:
            raise ValidationError({"order": f"no environment '{unknown[0]}' in this product"})
        missing = sorted(set(environments) - set(order))
        if missing:
            raise ValidationError({"order": f"environment '{missing[0]}' is missing"})
        before = [e.slug for e in sorted(environments.values(), key=lambda e: (e.order, e.pk))]
        if before != list(order):
            for index, slug in enumerate(order):
                environment = environments[slug]
                if environment.order != index:
                    environment.order = index
                    environment.save(update_fields=["order"])
            audit_record(
                product=product,
                actor=actor,
                action="environment.reorder",
                target=product.slug,
                before={"order": before},
                after={"order": list(order)},
            )
    return list(selectors.environment_list(product=product))


def environment_mark_production(*, environment: Environment, actor: Actor) -> Environment:
    """Make ``environment`` the product's production environment (the mark moves: a
    product has at most one). Production is protected: it cannot be deleted, its slug is
    fixed, and only admins may start or act on runs there."""
    with transaction.atomic():
        others = list(
            Environment.objects.select_for_update()
            .filter(product_id=environment.product_id, is_production=True)
            .exclude(pk=environment.pk)
        )
        if environment.is_production and not others:
            return environment
        for other in others:
            other.is_production = False
            other.save(update_fields=["is_production"])
        environment.is_production = True
        environment.save(update_fields=["is_production"])
        audit_record(
            product=environment.product,
            actor=actor,
            action="environment.mark_production",
            target=environment.slug,
            before={"production": [o.slug for o in others]},
            after={"production": [environment.slug]},
        )
    return environment


def environment_unmark_production(*, environment: Environment, actor: Actor) -> Environment:
    if not environment.is_production:
        return environment
    with transaction.atomic():
        environment.is_production = False
        environment.save(update_fields=["is_production"])
        audit_record(
            product=environment.product,
            actor=actor,
            action="environment.unmark_production",
            target=environment.slug,
            before={"production": [environment.slug]},
            after={"production": []},
        )
    return environment


# --- promotion ----------------------------------------------------------------------------


def _activation(workflow: Workflow, environment: Environment) -> Activation | None:
    return (
        Activation.objects.select_related("version")
        .filter(workflow=workflow, environment=environment)
        .first()
    )


def live_version(*, workflow: Workflow, environment: Environment) -> WorkflowVersion | None:
    """The version runs would use in ``environment`` if the workflow is active there."""
    activation = _activation(workflow, environment)
    return activation.live_version() if activation is not None else None


def _promoted_version(
    workflow: Workflow, version: int | None, from_env: Environment
) -> WorkflowVersion:
    source = _activation(workflow, from_env)
    live = source.live_version() if source is not None and source.active else None
    if version is None:
        if live is None:
            raise ValidationError(
                {
                    "from_env": f"'{workflow.tag}' is not active in '{from_env.slug}': "
                    "nothing to promote"
                }
            )
        return live
    chosen = workflow.versions.filter(state=VersionState.PUBLISHED, number=version).first()
    if chosen is None:
        raise ValidationError({"version": f"there is no published version {version}"})
    if live is None or live.pk != chosen.pk:
        where = f"v{live.number} is live there" if live is not None else "it is not active there"
        raise ValidationError(
            {"version": f"v{version} is not the version live in '{from_env.slug}' ({where})"}
        )
    return chosen


def _targets(
    product: Product, from_env: Environment, to_env: Environment, through: bool
) -> list[Environment]:
    if from_env.pk == to_env.pk:
        raise ValidationError({"to_env": "promote to another environment than the source"})
    if not through:
        return [to_env]
    ordered = list(selectors.environment_list(product=product))
    i, j = ordered.index(from_env), ordered.index(to_env)
    if j < i:
        raise ValidationError({"through": "'through' needs a target after the source"})
    return ordered[i + 1 : j + 1]


def _unconfigured(product: Product, environment: Environment) -> set[str]:
    """Tags of the product's components that have no configuration in ``environment``."""
    configured = ComponentConfig.objects.filter(environment=environment).values("component_id")
    return set(
        Component.objects.filter(product=product)
        .exclude(pk__in=configured)
        .values_list("tag", flat=True)
    )


def promotion_preview(
    *,
    workflow: Workflow,
    version: int | None,
    from_env: Environment,
    to_env: Environment,
    through: bool = False,
) -> dict[str, Any]:
    """What promoting would change in ``to_env`` (and, with ``through``, in the
    environments between): the spec differences from the version live there now, and the
    configuration differences of the components the promoted version uses, and which of
    those have no configuration at all in the target (``unconfigured``)."""
    promoted = _promoted_version(workflow, version, from_env)
    targets = _targets(workflow.product, from_env, to_env, through)
    used = used_components(promoted)
    environments = []
    for target in targets:
        activation = _activation(workflow, target)
        current = activation.live_version() if activation is not None else None
        spec_changes = json_diff(current.spec if current is not None else {}, promoted.spec)
        environments.append(
            {
                "env": target.slug,
                "is_production": target.is_production,
                "before": {
                    "active": bool(activation and activation.active),
                    "version": current.number if current is not None else None,
                    "pinned": bool(activation and activation.version_id),
                    "managed_by": activation.managed_by if activation else "",
                },
                "after": {
                    "active": True,
                    "version": promoted.number,
                    "pinned": True,
                    "managed_by": "user",
                },
                "spec_diff": {
                    "from_version": current.number if current is not None else None,
                    "to_version": promoted.number,
                    **changes_json(spec_changes),
                },
                "config_diff": config_diff(
                    product=workflow.product, a=from_env, b=target, only=used
                ),
                "unconfigured": sorted(used & _unconfigured(workflow.product, target)),
            }
        )
    return {
        "workflow": workflow.tag,
        "version": promoted.number,
        "from_env": from_env.slug,
        "to_env": to_env.slug,
        "components_used": sorted(used),
        "environments": environments,
    }


def version_promote(
    *,
    workflow: Workflow,
    version: int | None,
    from_env: Environment,
    to_env: Environment,
    actor: Actor,
    through: bool = False,
) -> list[Activation]:
    """Make the version live in ``from_env`` live (pinned, active) in ``to_env`` — and in
    every environment between them with ``through`` — in one transaction, audited as one
    promotion per target. ``version``, when given, must be the one live in ``from_env``."""
    with transaction.atomic():
        preview = promotion_preview(
            workflow=workflow, version=version, from_env=from_env, to_env=to_env, through=through
        )
        promoted = workflow.versions.get(state=VersionState.PUBLISHED, number=preview["version"])
        activations = []
        for target, row in zip(
            _targets(workflow.product, from_env, to_env, through),
            preview["environments"],
            strict=True,
        ):
            activations.append(
                services.activation_set(
                    workflow=workflow,
                    environment=target,
                    active=True,
                    version=promoted,
                    actor=actor,
                )
            )
            audit_record(
                product=workflow.product,
                actor=actor,
                action="workflow.promote",
                target=f"{workflow.tag}@{target.slug}",
                before=row["before"],
                after={**row["after"], "from_env": from_env.slug},
            )
    return activations


# --- the audit log -----------------------------------------------------------------------


def _moment(raw: str, field: str, *, end: bool) -> datetime:
    # A date means the whole day: since=2026-01-02 from its start, until=… to its end.
    text = raw.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day + timedelta(days=1) if end else day, time.min)
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(
            {field: "a date (2026-01-31) or a date and time (2026-01-31T12:00:00Z)"}
        ) from None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_current_timezone())
    return moment


def audit_between(entries: QuerySet[AuditEntry], params: Mapping[str, str]) -> QuerySet[AuditEntry]:
    """Audit entries narrowed by the ``since`` / ``until`` query parameters (dates or
    ISO date-times; ``until`` of a date includes that whole day)."""
    since, until = params.get("since", "")[:40], params.get("until", "")[:40]
    if since:
        entries = entries.filter(at__gte=_moment(since, "since", end=False))
    if until:
        moment = _moment(until, "until", end=True)
        entries = (
            entries.filter(at__lt=moment)
            if len(until.strip()) == 10
            else entries.filter(at__lte=moment)
        )
    return entries


def run_action_audit(
    *,
    actor: Actor,
    action: str,
    run: Any,
    origin: Any = None,
    details: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Record an operator action on a run (``run.start``, ``run.signal``, ``run.cancel``,
    ``run.replay``, ``run.restart``, ``run.resume``, ``run.fork``): who, which run in
    which environment, and what was sent (values under secret-looking keys masked).
    ``origin`` is the run acted on when the action made a new one."""
    after: dict[str, Any] = {
        "run": run.pk,
        "environment": run.environment.slug,
        "version": run.version.number,
        "status": run.status,
        **(details or {}),
    }
    if origin is not None:
        after["from_run"] = origin.pk
    return audit_record(
        product=run.workflow.product,
        actor=actor,
        action=action,
        target=f"{run.workflow.tag}@{run.environment.slug}#{(origin or run).pk}",
        after=after,
    )


# --- the activation matrix ----------------------------------------------------------------


def activation_matrix(*, product: Product) -> dict[str, Any]:
    """Workflows x environments: per cell whether the workflow is active there, the live
    version, whether it is pinned and who decided (``user``, ``code`` or '' = nobody)."""
    environments = list(selectors.environment_list(product=product))
    rows = []
    for workflow in selectors.workflow_list(product=product):
        cells = {
            row.environment.slug: {
                "active": row.active,
                "live_version": row.version,
                "pinned": row.pinned,
                "managed_by": row.managed_by,
            }
            for row in selectors.activation_rows(workflow=workflow)
        }
        rows.append(
            {
                "tag": workflow.tag,
                "name": workflow.name,
                "source": workflow.source,
                "latest_version": getattr(workflow, "latest_number", None),
                "cells": cells,
            }
        )
    return {
        "environments": [
            {"slug": e.slug, "name": e.name, "order": e.order, "is_production": e.is_production}
            for e in environments
        ],
        "workflows": rows,
    }
