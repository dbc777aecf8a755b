"""``python manage.py sync_workflows``: publish code-first workflows.

Imports the modules that define workflows (every installed app's ``workflows`` module and
``settings.TRELLIS_WORKFLOW_MODULES``, or the ``--module`` given), then for each recorded
workflow: creates it (source = code) or updates its name and description, publishes a new
version only when the recorded spec changed, and applies its ``envs`` to the environments
nobody activated by hand. A workflow that does not compile is reported with every issue;
the others are still synced (``--strict`` makes any failure the command's failure).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.management.base import BaseCommand, CommandError
from rest_framework.exceptions import ValidationError as DRFValidationError

from designer import services
from designer.models import Product, Source, VersionState, Workflow
from runtime.errors import SpecError, TrellisError
from runtime.recorder import WorkflowDefinition
from runtime.workflow_modules import discover


@dataclass
class SyncResult:
    """What happened to one code-first workflow."""

    key: str
    status: str  # created | published | unchanged | skipped | failed
    version: int | None = None
    activations: dict[str, bool] = field(default_factory=dict)
    kept: list[str] = field(default_factory=list)  # environments managed by hand
    errors: list[str] = field(default_factory=list)

    def describe(self) -> str:
        text = f"{self.key}: {self.status}"
        if self.version is not None:
            text += f" v{self.version}"
        if self.activations:
            text += (
                " ("
                + ", ".join(
                    f"{env} {'active' if on else 'inactive'}"
                    for env, on in self.activations.items()
                )
                + ")"
            )
        if self.kept:
            text += f"; kept by hand: {', '.join(self.kept)}"
        for error in self.errors:
            text += f"\n    {error}"
        return text


def workflows_sync(*, definitions: list[WorkflowDefinition]) -> list[SyncResult]:
    """Create, update, publish and activate each code-first workflow; never raises for
    one workflow's problem (it is reported in its result)."""
    return [_sync_one(definition) for definition in definitions]


def _sync_one(definition: WorkflowDefinition) -> SyncResult:
    result = SyncResult(key=definition.key, status="unchanged")
    product = Product.objects.filter(slug=definition.product).first()
    if product is None:
        result.status = "skipped"
        result.errors.append(f"no product '{definition.product}'")
        return result
    workflow = Workflow.objects.filter(product=product, tag=definition.tag).first()
    if workflow is not None and workflow.source != Source.CODE:
        result.status = "skipped"
        result.errors.append(
            f"a {workflow.source} workflow '{definition.tag}' already exists; code does not "
            "take over workflows drawn by hand (rename one of them)"
        )
        return result
    try:
        if workflow is None:
            workflow = services.workflow_create(
                product=product,
                tag=definition.tag,
                name=definition.name,
                description=definition.description,
                source=Source.CODE,
            )
            result.status = "created"
        elif (workflow.name, workflow.description) != (definition.name, definition.description):
            services.workflow_update(
                workflow=workflow,
                actor=None,
                name=definition.name,
                description=definition.description,
            )
        before = _latest_number(workflow)
        version = services.workflow_publish(
            workflow=workflow,
            author=None,
            spec=definition.spec_json(),
            note=f"sync_workflows ({definition.module or 'code'})",
        )
        result.version = version.number
        if version.number != before and result.status != "created":
            result.status = "published"
    except SpecError as exc:
        result.status = "failed"
        result.errors.extend(f"{i.path}: {i.message}" for i in exc.issues)
        return result
    except (TrellisError, DjangoValidationError, DRFValidationError) as exc:
        result.status = "failed"
        result.errors.append(str(exc))
        return result
    _apply_envs(definition, workflow, result)
    return result


def _latest_number(workflow: Workflow) -> int | None:
    return (
        workflow.versions.filter(state=VersionState.PUBLISHED)
        .order_by("-number")
        .values_list("number", flat=True)
        .first()
    )


def _apply_envs(definition: WorkflowDefinition, workflow: Workflow, result: SyncResult) -> None:
    for setting in definition.spec.envs:
        environment = workflow.product.environments.filter(slug=setting.slug).first()
        if environment is None:
            result.errors.append(f"envs: no environment '{setting.slug}' in {workflow.product}")
            continue
        activation = services.activation_set(
            workflow=workflow, environment=environment, active=setting.active, managed_by="code"
        )
        if activation.managed_by == "user":
            result.kept.append(setting.slug)
        else:
            result.activations[setting.slug] = activation.active


class Command(BaseCommand):
    help = "Publish code-first workflows (workflows.py modules) that changed."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--module",
            action="append",
            dest="modules",
            help="Import this module (a package: all its modules) instead of the configured "
            "ones. Repeatable.",
        )
        parser.add_argument(
            "--strict", action="store_true", help="Fail when any workflow cannot be synced."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        errors: list[tuple[str, Exception]] = []
        definitions = discover(options["modules"], errors=errors)
        for module, exc in errors:
            self.stderr.write(f"{module}: not loaded: {exc}")
        if options["modules"]:
            wanted = tuple(options["modules"])
            definitions = [
                d
                for d in definitions
                if d.module in wanted or d.module.startswith(tuple(f"{w}." for w in wanted))
            ]
        results = workflows_sync(definitions=definitions)
        for result in results:
            stream = self.stderr if result.status in {"failed", "skipped"} else self.stdout
            stream.write(result.describe())
        if not results and not errors:
            self.stdout.write("No code-first workflows found.")
        failed = [r.key for r in results if r.status in {"failed", "skipped"}]
        failed += [module for module, _ in errors]
        if failed and options["strict"]:
            raise CommandError(f"not synced: {', '.join(failed)}")
