"""Workflows: drafts, validation, publishing, versions and per-environment activation."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response

from designer import selectors, services
from designer.api.base import ApiView
from designer.api.serializers import (
    ActivationIn,
    ActivationOut,
    DraftOut,
    PublishIn,
    PublishOut,
    SpecIn,
    ValidateOut,
    VersionDetailOut,
    VersionOut,
    WorkflowIn,
    WorkflowOut,
    WorkflowUpdate,
)
from designer.models import Role, Source, VersionState, Workflow, WorkflowVersion
from runtime.compiler import Plan
from runtime.spec import spec_json_schema


class DefinedInCode(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = (
        "This workflow is defined in Python code: change the code and sync it "
        "(manage.py sync_workflows) instead of editing it here."
    )
    default_code = "defined_in_code"


def _editable(workflow: Workflow) -> Workflow:
    if workflow.source == Source.CODE:
        raise DefinedInCode()
    return workflow


def _plan_summary(plan: Plan) -> dict[str, Any]:
    levels: dict[int, list[str]] = {}
    for sequence in plan.sequences:
        levels.setdefault(sequence.level, []).append(sequence.tag)
    return {
        "ok": True,
        "levels": [levels[level] for level in sorted(levels)],
        "sequences": len(plan.sequences),
        "steps": sum(len(sequence.events) for sequence in plan.sequences),
    }


# --- workflows ----------------------------------------------------------------------------


class WorkflowListApi(ApiView):
    @extend_schema(operation_id="workflows_list", responses=WorkflowOut(many=True))
    def get(self, request: Request, slug: str) -> Response:
        product = self.product(Role.VIEWER)
        return Response(WorkflowOut(selectors.workflow_list(product=product), many=True).data)

    @extend_schema(
        operation_id="workflows_create",
        request=WorkflowIn,
        responses={201: WorkflowOut},
        description="Create a workflow; a `spec` given here becomes its draft.",
    )
    def post(self, request: Request, slug: str) -> Response:
        product = self.product(Role.DESIGNER)
        data = self.body(WorkflowIn)
        workflow = services.workflow_create(product=product, author=request.user, **data)
        workflow = selectors.workflow_get(product=product, tag=workflow.tag)
        return Response(WorkflowOut(workflow).data, status=status.HTTP_201_CREATED)


class WorkflowScopedApi(ApiView):
    def workflow(self, role: Role) -> Workflow:
        product = self.product(role)
        return selectors.workflow_get(product=product, tag=self.kwargs["tag"])


class WorkflowDetailApi(WorkflowScopedApi):
    @extend_schema(operation_id="workflows_get", responses=WorkflowOut)
    def get(self, request: Request, slug: str, tag: str) -> Response:
        return Response(WorkflowOut(self.workflow(Role.VIEWER)).data)

    @extend_schema(operation_id="workflows_update", request=WorkflowUpdate, responses=WorkflowOut)
    def patch(self, request: Request, slug: str, tag: str) -> Response:
        workflow = self.workflow(Role.DESIGNER)
        data = self.body(WorkflowUpdate)
        services.workflow_update(workflow=workflow, actor=request.user, **data)
        return Response(WorkflowOut(self.workflow(Role.DESIGNER)).data)

    @extend_schema(
        operation_id="workflows_delete",
        responses={204: None},
        description="Refused while the workflow has runs.",
    )
    def delete(self, request: Request, slug: str, tag: str) -> Response:
        workflow = self.workflow(Role.DESIGNER)
        services.workflow_delete(workflow=workflow, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- draft, validate, publish -------------------------------------------------------------


def _draft_out(draft: WorkflowVersion | None) -> dict[str, Any]:
    if draft is None:
        return {"spec": None, "author": None, "updated_at": None}
    author = draft.author.get_username() if draft.author is not None else None
    return {"spec": draft.spec, "author": author, "updated_at": draft.updated_at}


class DraftApi(WorkflowScopedApi):
    @extend_schema(
        operation_id="drafts_get",
        responses=DraftOut,
        description="The editable draft; `spec` is null when there is none.",
    )
    def get(self, request: Request, slug: str, tag: str) -> Response:
        workflow = self.workflow(Role.VIEWER)
        return Response(DraftOut(_draft_out(selectors.draft_get(workflow=workflow))).data)

    @extend_schema(
        operation_id="drafts_save",
        request=SpecIn,
        responses=DraftOut,
        description="Save the draft. Its shape must be valid (400 invalid_spec naming each "
        "path); whether it compiles is checked by validate and publish.",
    )
    def put(self, request: Request, slug: str, tag: str) -> Response:
        workflow = _editable(self.workflow(Role.DESIGNER))
        data = self.body(SpecIn)
        draft = services.draft_save(workflow=workflow, spec=data["spec"], author=request.user)
        return Response(DraftOut(_draft_out(draft)).data)

    @extend_schema(operation_id="drafts_discard", responses={204: None})
    def delete(self, request: Request, slug: str, tag: str) -> Response:
        workflow = self.workflow(Role.DESIGNER)
        services.draft_discard(workflow=workflow)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ValidateApi(WorkflowScopedApi):
    @extend_schema(
        operation_id="workflows_validate",
        request=SpecIn,
        responses={200: ValidateOut, 400: OpenApiTypes.OBJECT},
        description="Compile without saving: 200 with the levels, or 400 "
        "{code: 'invalid_spec', errors: [{path, message}]}.",
    )
    def post(self, request: Request, slug: str, tag: str) -> Response:
        workflow = self.workflow(Role.VIEWER)
        data = self.body(SpecIn)
        plan = services.spec_compile(product=workflow.product, spec=data["spec"])
        return Response(ValidateOut(_plan_summary(plan)).data)


def _version_summary(version: WorkflowVersion) -> dict[str, Any]:
    return {
        "number": version.number,
        "checksum": version.checksum,
        "author": version.author.get_username() if version.author is not None else None,
        "note": version.note,
        "published_at": version.published_at,
    }


def _version_out(version: WorkflowVersion, **extra: Any) -> dict[str, Any]:
    return {**_version_summary(version), "spec": version.spec, "plan": version.plan, **extra}


class PublishApi(WorkflowScopedApi):
    @extend_schema(
        operation_id="workflows_publish",
        request=PublishIn,
        responses={201: PublishOut, 200: PublishOut, 400: OpenApiTypes.OBJECT},
        description="Compile the given spec (default: the draft) and publish it as the "
        "next version (201). A spec equal to the latest version's publishes nothing: "
        "200 with that version and `unchanged: true`.",
    )
    def post(self, request: Request, slug: str, tag: str) -> Response:
        workflow = _editable(self.workflow(Role.DESIGNER))
        data = self.body(PublishIn)
        before = selectors.version_latest(workflow=workflow)
        version = services.workflow_publish(
            workflow=workflow, author=request.user, spec=data.get("spec"), note=data.get("note", "")
        )
        unchanged = before is not None and before.pk == version.pk
        code = status.HTTP_200_OK if unchanged else status.HTTP_201_CREATED
        return Response(PublishOut(_version_out(version, unchanged=unchanged)).data, status=code)


# --- versions -----------------------------------------------------------------------------


class VersionListApi(WorkflowScopedApi):
    @extend_schema(
        operation_id="versions_list",
        responses=VersionOut(many=True),
        description="Published versions, newest first (without spec and plan).",
    )
    def get(self, request: Request, slug: str, tag: str) -> Response:
        workflow = self.workflow(Role.VIEWER)
        versions = [_version_summary(v) for v in selectors.version_list(workflow=workflow)]
        return Response(VersionOut(versions, many=True).data)


class VersionDetailApi(WorkflowScopedApi):
    @extend_schema(operation_id="versions_get", responses=VersionDetailOut)
    def get(self, request: Request, slug: str, tag: str, number: int) -> Response:
        workflow = self.workflow(Role.VIEWER)
        version = selectors.version_get(workflow=workflow, number=number)
        return Response(VersionDetailOut(_version_out(version)).data)


# --- activations --------------------------------------------------------------------------


class ActivationListApi(WorkflowScopedApi):
    @extend_schema(
        operation_id="activations_list",
        responses=ActivationOut(many=True),
        description="One row per environment, in environment order.",
    )
    def get(self, request: Request, slug: str, tag: str) -> Response:
        workflow = self.workflow(Role.VIEWER)
        rows = selectors.activation_rows(workflow=workflow)
        return Response(ActivationOut(rows, many=True).data)


class ActivationDetailApi(WorkflowScopedApi):
    def row(self, workflow: Workflow, env: str) -> Any:
        for row in selectors.activation_rows(workflow=workflow):
            if row.environment.slug == env:
                return row
        raise exceptions.NotFound("No such environment.")

    @extend_schema(operation_id="activations_get", responses=ActivationOut)
    def get(self, request: Request, slug: str, tag: str, env: str) -> Response:
        workflow = self.workflow(Role.VIEWER)
        return Response(ActivationOut(self.row(workflow, env)).data)

    @extend_schema(
        operation_id="activations_set",
        request=ActivationIn,
        responses=ActivationOut,
        description="Admins only. Activate or deactivate the workflow in the environment; "
        "`version` pins a published version (null follows the latest). Deactivating "
        "stops new runs; runs already going finish.",
    )
    def put(self, request: Request, slug: str, tag: str, env: str) -> Response:
        product = self.product(Role.ADMIN)
        workflow = selectors.workflow_get(product=product, tag=tag)
        environment = selectors.environment_get(product=product, slug=env)
        data = self.body(ActivationIn)
        version = None
        if data.get("version") is not None:
            version = workflow.versions.filter(
                state=VersionState.PUBLISHED, number=data["version"]
            ).first()
            if version is None:
                raise ValidationError(
                    {"version": f"there is no published version {data['version']}"}
                )
        services.activation_set(
            workflow=workflow,
            environment=environment,
            active=data["active"],
            version=version,
            actor=request.user,
        )
        workflow = selectors.workflow_get(product=product, tag=tag)
        return Response(ActivationOut(self.row(workflow, env)).data)


# --- spec schema --------------------------------------------------------------------------


class SpecSchemaApi(ApiView):
    @extend_schema(
        operation_id="spec_schema",
        responses=OpenApiTypes.OBJECT,
        description="The JSON Schema of a workflow spec.",
    )
    def get(self, request: Request) -> Response:
        return Response(spec_json_schema())
