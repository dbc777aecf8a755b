"""The runs REST API (/api/v1/runs…): thin views over runtime.services and selectors.

Reading needs the viewer role in the run's product; starting and acting on a run needs
operator (admin in a production environment). Every refusal is a 4xx naming the field.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from designer.api.base import ApiView
from designer.api.errors import StorageUnavailable
from designer.api.pagination import StrictPagination
from designer.api.serializers import Strict
from designer.governance import run_action_audit
from designer.models import Role
from designer.permissions import require_role
from designer.services import audit_record
from runtime import health, selectors, services
from runtime.errors import RunRefused
from runtime.models import Run
from runtime.scheduling import run_schedule


def run_json(run: Run) -> dict[str, Any]:
    return {
        "id": run.pk,
        "workflow": {
            "id": run.workflow_id,
            "tag": run.workflow.tag,
            "product": run.workflow.product.slug,
        },
        "version": run.version.number,
        "environment": run.environment.slug,
        "status": run.status,
        "input": run.input,
        "output": run.output,
        "error": run.error,
        "state": run.state,
        "idempotency_key": run.idempotency_key,
        "parent_run": run.parent_run_id,
        "parent_step": run.parent_step,
        "parent_close_policy": run.parent_close_policy,
        "origin": run.origin_id,
        "origin_kind": run.origin_kind,
        "cancel_requested": run.cancel_requested,
        "stop_reason": run.stop_reason,
        "last_seq": run.last_seq,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "deadline_at": run.deadline_at,
        "wake_at": run.wake_at,
        "trace_id": run.trace_id,
    }


def _body(request: Request, fields: Iterable[str] | None = None) -> dict[str, Any]:
    """The JSON object of the body: an empty body is ``{}``; ``null``, a list, a string…
    are refused (the schema says object), and with ``fields`` so is any other key (the
    schema says ``additionalProperties: false``)."""
    data = request.data
    if not isinstance(data, dict):
        raise RunRefused("the request body must be a JSON object", field="$")
    if fields is not None:
        unknown = set(data) - set(fields)
        if unknown:
            name = sorted(unknown)[0]
            raise RunRefused(f"unknown field '{name[:100]}'", field=name[:100])
    return dict(data)


# Request bodies as the schema shows them (the views check them by hand, to keep the
# runs API's error shape: a 4xx with ``field``). Strict: unknown fields are refused.


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "integer"}]})
class WorkflowRef(serializers.Field[Any, Any, Any, Any]):
    pass


class RunStartIn(Strict):
    workflow = WorkflowRef(help_text="'<product>/<tag>' or the workflow's id.")
    env = serializers.CharField(help_text="Environment slug.")
    input = serializers.DictField(
        required=False, allow_null=True, help_text="Checked against the input schema."
    )
    idempotency_key = serializers.CharField(
        required=False, allow_null=True, min_length=1, max_length=200
    )
    schedule = serializers.DictField(
        required=False, allow_null=True, help_text="{start_at | delay | cron, timezone}"
    )


REASON_HELP = "Why (optional): kept in the audit log and journaled on the run."
REASON_MAX = 1000


def reason_field() -> serializers.CharField:
    return serializers.CharField(
        required=False, allow_blank=True, max_length=REASON_MAX, help_text=REASON_HELP
    )


class RunCancelIn(Strict):
    reason = reason_field()


class RunReplayIn(Strict):
    reason = reason_field()


class RunRestartIn(Strict):
    input = serializers.DictField(required=False, allow_null=True)
    merge = serializers.BooleanField(required=False, help_text="Merge into the old input.")
    reason = reason_field()


class RunResumeIn(Strict):
    skip = serializers.ListField(child=serializers.CharField(), required=False, allow_null=True)
    checkpoint = serializers.CharField(required=False, allow_null=True)
    reason = reason_field()


class RunForkIn(Strict):
    step = serializers.CharField(help_text="The tag of the step to replay from.")
    outputs = serializers.DictField(required=False, allow_null=True)
    reason = reason_field()


# Response bodies as the schema shows them (the views build them with run_json & co.).


class RunWorkflowOut(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    tag = serializers.CharField()
    product = serializers.CharField()


class RunOut(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    workflow = RunWorkflowOut()
    version = serializers.IntegerField()
    environment = serializers.CharField()
    status = serializers.CharField()
    input = serializers.JSONField()
    output = serializers.JSONField(allow_null=True)
    error = serializers.JSONField(allow_null=True)
    state = serializers.JSONField()
    idempotency_key = serializers.CharField(allow_null=True)
    parent_run = serializers.IntegerField(allow_null=True)
    parent_step = serializers.CharField(allow_blank=True)
    parent_close_policy = serializers.CharField(allow_blank=True)
    origin = serializers.IntegerField(allow_null=True)
    origin_kind = serializers.CharField(allow_blank=True)
    cancel_requested = serializers.BooleanField()
    stop_reason = serializers.CharField(allow_blank=True)
    last_seq = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    deadline_at = serializers.DateTimeField(allow_null=True)
    wake_at = serializers.DateTimeField(allow_null=True)
    trace_id = serializers.CharField(allow_blank=True)


class RunPage(serializers.Serializer[Any]):
    count = serializers.IntegerField()
    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    results = RunOut(many=True)


class RunDetailOut(RunOut):
    sequences = serializers.ListField(child=serializers.DictField())
    steps = serializers.ListField(child=serializers.DictField())
    journal = serializers.ListField(child=serializers.DictField())
    journal_next = serializers.IntegerField(
        allow_null=True, help_text="after_seq for the next journal page; null: no more."
    )
    actions = serializers.DictField(
        help_text="{allowed, why}: whether the asking user may act on this run, and why not."
    )


class JournalOut(serializers.Serializer[Any]):
    run = serializers.IntegerField()
    last_seq = serializers.IntegerField()
    entries = serializers.ListField(child=serializers.DictField())


class ScheduledOut(serializers.Serializer[Any]):
    scheduled = serializers.BooleanField()
    schedule_id = serializers.IntegerField()
    next_run = serializers.DateTimeField(allow_null=True)


class SignalOut(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    run = serializers.IntegerField()
    name = serializers.CharField()
    payload = serializers.JSONField()


class QueryOut(serializers.Serializer[Any]):
    run = serializers.IntegerField()
    query = serializers.CharField()
    result = serializers.JSONField(allow_null=True)


RUN_STARTED = PolymorphicProxySerializer(
    component_name="RunStarted",
    serializers=[RunOut, ScheduledOut],
    resource_type_field_name=None,
)


# replay takes no fields: an empty object or no body.
EMPTY_BODY = {"type": "object", "additionalProperties": False, "maxProperties": 0}


def _int(value: Any, field: str, default: int) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise RunRefused(f"{field} must be a whole number", field=field) from None
    if number < 0:
        raise RunRefused(f"{field} cannot be negative", field=field)
    if number > 2**62:  # beyond a database integer: no such entry, and no 500 either
        raise RunRefused(f"{field} is too large", field=field)
    return number


def _reason(body: dict[str, Any]) -> str:
    """The optional ``reason`` of an action: a string of at most REASON_MAX characters."""
    reason = body.pop("reason", "")
    if not isinstance(reason, str):
        raise RunRefused("reason must be a string", field="reason")
    if len(reason) > REASON_MAX:
        raise RunRefused(f"reason is longer than {REASON_MAX} characters", field="reason")
    return reason.strip()


def _derived(request: Request, action: str, run: Run, new: Run, body: dict[str, Any]) -> None:
    """Inside the action's transaction: the audit entry of an action that made ``new``
    from ``run``, and the note (with the reason, if any) journaled on both runs."""
    reason = _reason(body)
    details = {**body, "reason": reason} if reason else body
    run_action_audit(actor=request.user, action=action, run=new, origin=run, details=details)
    services.run_action_note(run=run, new=new, action=action, reason=reason, user=request.user)


def _string_list(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise RunRefused(f"{field} must be a list of step tags", field=field)
    return value


class RunPagination(StrictPagination):
    max_limit = 1000


class RunListApi(ApiView):
    """GET: runs you can see (filters: workflow, env, status, product, parent,
    created_after, created_before, q = text in the input).
    POST: start a run {workflow, env, input, idempotency_key?} → 202 (200 when the key
    was used before: the existing run)."""

    @extend_schema(
        operation_id="runs_list",
        parameters=[
            OpenApiParameter("workflow", str, description="'<product>/<tag>' or an id."),
            OpenApiParameter("env", str, description="Environment slug."),
            OpenApiParameter("status", str, description="Statuses, comma-separated."),
            OpenApiParameter("product", str, description="Product slug."),
            OpenApiParameter("parent", str, description="Id of the parent run."),
            OpenApiParameter("created_after", OpenApiTypes.DATETIME),
            OpenApiParameter("created_before", OpenApiTypes.DATETIME),
            OpenApiParameter("q", str, description="Text in the run's input."),
            *StrictPagination.parameters(),
        ],
        responses={200: RunPage},
    )
    def get(self, request: Request) -> Response:
        q = request.query_params
        for name in ("created_after", "created_before"):
            if q.get(name) == "":  # absent is "no bound"; empty is a malformed date-time
                raise RunRefused(f"{name} must be an ISO 8601 date-time", field=name)
        qs = selectors.runs_list(
            user=request.user,
            workflow=q.get("workflow"),
            env=q.get("env"),
            status=q.get("status"),
            product=q.get("product"),
            parent=q.get("parent"),
            created_after=q.get("created_after"),
            created_before=q.get("created_before"),
            search=q.get("q"),
        )
        paginator = RunPagination()
        page = paginator.paginate_queryset(qs, request, view=self) or []
        return paginator.get_paginated_response([run_json(r) for r in page])

    @extend_schema(
        operation_id="runs_start",
        request=RunStartIn,
        responses={200: RunOut, 202: RUN_STARTED},
    )
    def post(self, request: Request) -> Response:
        if health.disk_low():
            # Refuse before writing: a run accepted now could stall half-way on a full disk.
            raise StorageUnavailable(
                "The server's disk is nearly full; nothing was changed. Try again later.",
                code="storage_full",
            )
        body = _body(request, RunStartIn().fields)
        if "workflow" not in body:
            raise RunRefused("workflow is required: '<product>/<tag>' or an id", field="workflow")
        workflow = selectors.workflow_for(user=request.user, ref=body["workflow"])
        env = selectors.environment_for(product=workflow.product, slug=body.get("env"))
        require_role(request.user, workflow.product, Role.OPERATOR, environment=env)
        key = body.get("idempotency_key")
        if key is not None and (not isinstance(key, str) or not key or len(key) > 200):
            raise RunRefused(
                "idempotency_key must be a string of 1-200 characters", field="idempotency_key"
            )
        input_ = body.get("input", {})
        if body.get("schedule") is not None:
            return self._schedule(request, workflow, env, input_, body["schedule"])
        with transaction.atomic():  # the run and its audit row commit together
            run = services.run_start(
                workflow=workflow,
                environment=env,
                input=input_,
                idempotency_key=key,
                user=request.user,
            )
            reused = run.reused
            run = selectors.run_for(user=request.user, run_id=run.pk)
            if not reused:
                run_action_audit(actor=request.user, action="run.start", run=run, details=body)
        code = status.HTTP_200_OK if reused else status.HTTP_202_ACCEPTED
        return Response(run_json(run), status=code)

    def _schedule(
        self, request: Request, workflow: Any, env: Any, input_: Any, schedule: Any
    ) -> Response:
        """``schedule: {start_at | delay | cron, timezone}`` → a django-q2 schedule that
        starts the run later (JOB semantics) instead of now."""
        if not isinstance(schedule, dict):
            raise RunRefused(
                "schedule must be an object {start_at | cron, timezone}", field="schedule"
            )
        if not isinstance(input_, dict):
            raise RunRefused("input must be an object", field="input")
        with transaction.atomic():
            job = run_schedule(
                workflow=workflow,
                environment=env,
                input=input_,
                schedule=schedule,
                user=request.user,
            )
            audit_record(
                product=workflow.product,
                actor=request.user,
                action="run.schedule",
                target=f"{workflow.tag}@{env.slug}",
                after={"schedule_id": job.pk, "schedule": schedule},
            )
        return Response(
            {"scheduled": True, "schedule_id": job.pk, "next_run": job.next_run},
            status=status.HTTP_202_ACCEPTED,
        )


class RunDetailApi(ApiView):
    """A run with its sequences, steps and the first page of its journal
    (``?after_seq=N&limit=M`` pages through the journal)."""

    @extend_schema(
        operation_id="runs_get",
        parameters=[
            OpenApiParameter("after_seq", {"type": "integer", "minimum": 0}),
            OpenApiParameter("limit", {"type": "integer", "minimum": 0}),
        ],
        responses={200: RunDetailOut},
    )
    def get(self, request: Request, run_id: str) -> Response:
        run = selectors.run_for(user=request.user, run_id=run_id)
        after = _int(request.query_params.get("after_seq"), "after_seq", 0)
        limit = _int(request.query_params.get("limit"), "limit", selectors.JOURNAL_PAGE)
        journal = selectors.run_journal(run=run, after_seq=after, limit=limit)
        data = run_json(run)
        data["sequences"] = selectors.run_sequences(run=run)
        data["steps"] = selectors.run_steps(run=run)
        data["journal"] = journal
        data["journal_next"] = (
            journal[-1]["seq"] if journal and journal[-1]["seq"] < run.last_seq else None
        )
        data["actions"] = selectors.run_actions_allowed(user=request.user, run=run)
        return Response(data)


class RunJournalApi(ApiView):
    @extend_schema(
        operation_id="runs_journal",
        parameters=[
            OpenApiParameter("after_seq", {"type": "integer", "minimum": 0}),
            OpenApiParameter("limit", {"type": "integer", "minimum": 0}),
        ],
        responses={200: JournalOut},
    )
    def get(self, request: Request, run_id: str) -> Response:
        run = selectors.run_for(user=request.user, run_id=run_id)
        after = _int(request.query_params.get("after_seq"), "after_seq", 0)
        limit = _int(request.query_params.get("limit"), "limit", selectors.JOURNAL_PAGE)
        entries = selectors.run_journal(run=run, after_seq=after, limit=limit)
        return Response({"run": run.pk, "last_seq": run.last_seq, "entries": entries})


class RunSignalApi(ApiView):
    """Send a declared signal; the body is its payload (validated against its schema)."""

    @extend_schema(
        operation_id="runs_signal",
        request=OpenApiTypes.OBJECT,
        responses={202: SignalOut},
    )
    def post(self, request: Request, run_id: str, name: str) -> Response:
        run = selectors.run_for(user=request.user, run_id=run_id, role=Role.OPERATOR)
        payload = _body(request)
        with transaction.atomic():
            signal = services.run_signal(run=run, name=name, payload=payload, user=request.user)
            details = {"signal": name, "payload": signal.payload}
            run_action_audit(actor=request.user, action="run.signal", run=run, details=details)
        return Response(
            {"id": signal.pk, "run": run.pk, "name": name, "payload": signal.payload},
            status=status.HTTP_202_ACCEPTED,
        )


class RunCancelApi(ApiView):
    @extend_schema(
        operation_id="runs_cancel",
        request=RunCancelIn,
        responses={202: RunOut},
    )
    def post(self, request: Request, run_id: str) -> Response:
        run = selectors.run_for(user=request.user, run_id=run_id, role=Role.OPERATOR)
        reason = _reason(_body(request, RunCancelIn().fields))
        with transaction.atomic():
            run = services.run_cancel(run=run, user=request.user, reason=reason)
            run_action_audit(
                actor=request.user, action="run.cancel", run=run, details={"reason": reason}
            )
        return Response(run_json(run), status=status.HTTP_202_ACCEPTED)


class RunQueryApi(ApiView):
    @extend_schema(operation_id="runs_query", responses={200: QueryOut})
    def get(self, request: Request, run_id: str, name: str) -> Response:
        run = selectors.run_for(user=request.user, run_id=run_id)
        return Response(
            {"run": run.pk, "query": name, "result": services.run_query(run=run, name=name)}
        )

    @extend_schema(
        operation_id="runs_query_post",
        request={"application/json": EMPTY_BODY},
        responses={200: QueryOut},
    )
    def post(self, request: Request, run_id: str, name: str) -> Response:
        _body(request, ())  # queries take no arguments
        return self.get(request, run_id, name)


class RunReplayApi(ApiView):
    @extend_schema(operation_id="runs_replay", request=RunReplayIn, responses={202: RunOut})
    def post(self, request: Request, run_id: str) -> Response:
        run = selectors.run_for(user=request.user, run_id=run_id, role=Role.OPERATOR)
        body = _body(request, RunReplayIn().fields)  # ``null`` or a list is refused
        with transaction.atomic():
            new = services.run_replay(run=run, user=request.user)
            _derived(request, "run.replay", run, new, body)
        return Response(run_json(new), status=status.HTTP_202_ACCEPTED)


class RunRestartApi(ApiView):
    """{input?, merge? (default true: merged into the old input)}"""

    @extend_schema(
        operation_id="runs_restart",
        request=RunRestartIn,
        responses={202: RunOut},
    )
    def post(self, request: Request, run_id: str) -> Response:
        run = selectors.run_for(user=request.user, run_id=run_id, role=Role.OPERATOR)
        body = _body(request, RunRestartIn().fields)
        _reason(dict(body))  # checked before anything is made
        merge = body.get("merge", True)
        if not isinstance(merge, bool):
            raise RunRefused("merge must be true or false", field="merge")
        with transaction.atomic():
            new = services.run_restart(
                run=run, input=body.get("input"), merge=merge, user=request.user
            )
            _derived(request, "run.restart", run, new, body)
        return Response(run_json(new), status=status.HTTP_202_ACCEPTED)


class RunResumeApi(ApiView):
    """{skip?: [step tags], checkpoint?: name}"""

    @extend_schema(
        operation_id="runs_resume",
        request=RunResumeIn,
        responses={202: RunOut},
    )
    def post(self, request: Request, run_id: str) -> Response:
        run = selectors.run_for(user=request.user, run_id=run_id, role=Role.OPERATOR)
        body = _body(request, RunResumeIn().fields)
        _reason(dict(body))
        checkpoint = body.get("checkpoint")
        if checkpoint is not None and (not isinstance(checkpoint, str) or not checkpoint):
            raise RunRefused("checkpoint must be a checkpoint name", field="checkpoint")
        skip = _string_list(body.get("skip"), "skip")
        with transaction.atomic():
            new = services.run_resume(run=run, skip=skip, checkpoint=checkpoint, user=request.user)
            _derived(request, "run.resume", run, new, body)
        return Response(run_json(new), status=status.HTTP_202_ACCEPTED)


class RunForkApi(ApiView):
    """Replay from a step: {step, outputs?: {earlier step tag: output}}"""

    @extend_schema(operation_id="runs_fork", request=RunForkIn, responses={202: RunOut})
    def post(self, request: Request, run_id: str) -> Response:
        run = selectors.run_for(user=request.user, run_id=run_id, role=Role.OPERATOR)
        body = _body(request, RunForkIn().fields)
        _reason(dict(body))
        step = body.get("step")
        if not isinstance(step, str) or not step:
            raise RunRefused("step is required: the tag of the step to replay from", field="step")
        outputs = body.get("outputs") or {}
        if not isinstance(outputs, dict):
            raise RunRefused("outputs must map step tags to outputs", field="outputs")
        with transaction.atomic():
            new = services.run_fork(run=run, step=step, outputs=outputs, user=request.user)
            _derived(request, "run.fork", run, new, body)
        return Response(run_json(new), status=status.HTTP_202_ACCEPTED)


class RunReplayFromStepApi(RunForkApi):
    """The same as ``fork``, under the name the run monitor uses."""

    @extend_schema(
        operation_id="runs_replay_from_step",
        request=RunForkIn,
        responses={202: RunOut},
    )
    def post(self, request: Request, run_id: str) -> Response:
        return super().post(request, run_id)


class RunRelatedApi(ApiView):
    @extend_schema(operation_id="runs_related", responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, run_id: str) -> Response:
        run = selectors.run_for(user=request.user, run_id=run_id)
        return Response({"run": run.pk, **selectors.run_related(run=run)})


class RunCompareApi(ApiView):
    @extend_schema(operation_id="runs_compare", responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, run_id: str, other_id: str) -> Response:
        a = selectors.run_for(user=request.user, run_id=run_id)
        b = selectors.run_for(user=request.user, run_id=other_id)
        return Response(selectors.runs_compare(a=a, b=b))
