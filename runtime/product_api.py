"""Every run of a product (``/api/v1/products/<slug>/runs``), its charts' aggregates
(``…/runs/stats``) and bulk actions on runs (``POST /api/v1/runs/bulk``): thin views over
runtime.product_runs, runtime.run_stats and runtime.bulk.

Reading needs the viewer role in the product (outsiders get 404); a bulk action needs
operator, and each run is then checked like a single action (admin in production).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from designer.api.base import ApiView
from designer.api.serializers import Strict
from designer.models import Environment, Product, Role, Workflow
from designer.permissions import require_role
from designer.selectors import product_for
from runtime import bulk
from runtime.errors import RunRefused
from runtime.models import BulkRequest
from runtime.product_runs import PAGE, PAGE_MAX, runs_filter_parse, runs_page
from runtime.run_stats import INTERVALS, runs_stats

_FILTERS = [
    OpenApiParameter("workflow", str, description="Workflow tag."),
    OpenApiParameter("env", str, description="Environment slug."),
    OpenApiParameter("status", str, description="Statuses, comma-separated."),
    OpenApiParameter("failed_step", str, description="The step the run failed at."),
    OpenApiParameter("created_after", OpenApiTypes.DATETIME),
    OpenApiParameter("created_before", OpenApiTypes.DATETIME),
    OpenApiParameter(
        "where", str, description="JSON path filter, e.g. input.customer.id = 42 (and …)."
    ),
    OpenApiParameter("run", str, description="A run id."),
]


class RunsPageOut(serializers.Serializer[Any]):
    results = serializers.ListField(child=serializers.DictField())
    next = serializers.CharField(
        allow_null=True, help_text="The `before` cursor of the next page; null: the last page."
    )
    grid = serializers.DictField(
        help_text="{rows: [{key, workflow, tag}], cells: {run: {key: status}}}"
    )


def _whole(request: Request, name: str, default: int | None, maximum: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18 or not 1 <= int(raw) <= maximum:
        raise RunRefused(f"{name} must be a whole number from 1 to {maximum}", field=name)
    return int(raw)


def _names(product: Product) -> tuple[dict[int, str], dict[int, str]]:
    tags = dict(Workflow.objects.filter(product=product).values_list("id", "tag"))
    envs = dict(Environment.objects.filter(product=product).values_list("id", "slug"))
    return tags, envs


class ProductRunsApi(ApiView):
    """A page of the product's runs, newest first, with the step grid of those runs;
    ``before`` (the previous answer's ``next``) pages on."""

    @extend_schema(
        operation_id="product_runs_list",
        parameters=[
            *_FILTERS,
            OpenApiParameter("before", {"type": "integer", "minimum": 1}, description="Cursor."),
            OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": PAGE_MAX}),
        ],
        responses={200: RunsPageOut},
    )
    def get(self, request: Request, slug: str) -> Response:
        product = self.product(Role.VIEWER)
        f = runs_filter_parse(product=product, params=request.query_params)
        before = _whole(request, "before", None, 2**62)
        limit = _whole(request, "limit", PAGE, PAGE_MAX) or PAGE
        return Response(runs_page(product=product, f=f, before=before, limit=limit))


class ProductRunStatsApi(ApiView):
    """Runs started / completed / failed and p50 / p95 duration per interval, and per
    workflow x environment, over the window (default: the last 24 hours)."""

    @extend_schema(
        operation_id="product_runs_stats",
        parameters=[
            *_FILTERS,
            OpenApiParameter("interval", str, enum=list(INTERVALS), description="Bar width."),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, slug: str) -> Response:
        product = self.product(Role.VIEWER)
        f = runs_filter_parse(product=product, params=request.query_params)
        tags, envs = _names(product)
        interval = request.query_params.get("interval")
        return Response(runs_stats(f=f, interval=interval, tags=tags, envs=envs))


class BulkFilterIn(Strict):
    workflow = serializers.CharField(required=False, allow_blank=True, max_length=100)
    env = serializers.CharField(required=False, allow_blank=True, max_length=100)
    status = serializers.CharField(required=False, allow_blank=True, max_length=200)
    failed_step = serializers.CharField(required=False, allow_blank=True, max_length=100)
    created_after = serializers.CharField(required=False, max_length=40, help_text="ISO 8601")
    created_before = serializers.CharField(required=False, max_length=40, help_text="ISO 8601")
    where = serializers.CharField(required=False, allow_blank=True, max_length=500)
    run = serializers.CharField(required=False, allow_blank=True, max_length=20)


class BulkIn(Strict):
    product = serializers.SlugField(max_length=100)
    action = serializers.ChoiceField(choices=bulk.ACTIONS)
    runs = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**62),
        required=False,
        max_length=10_000,
        help_text="Run ids (checked rows); or `filter`.",
    )
    filter = BulkFilterIn(required=False, help_text="Every run matching, as on the runs page.")
    step = serializers.CharField(
        required=False, allow_blank=True, max_length=100, help_text="fork: the step to run from."
    )
    preview = serializers.BooleanField(
        required=False, help_text="Say what would happen; do nothing."
    )
    confirm = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=100,
        help_text="Above the threshold: the preview's confirm_text.",
    )
    reason = serializers.CharField(required=False, allow_blank=True, max_length=1000)
    idempotency_key = serializers.CharField(required=False, min_length=1, max_length=200)


def _user(request: Request) -> User | None:
    user = request.user
    return user if isinstance(user, User) else None


def _fingerprint(body: dict[str, Any]) -> str:
    text = json.dumps(
        {k: v for k, v in body.items() if k != "confirm"}, sort_keys=True, default=str
    )
    return hashlib.sha256(text.encode()).hexdigest()


class RunsBulkApi(ApiView):
    """Cancel, retry (from the failed step, on the live version), replay or fork (from
    ``step``, on the live version) the runs named by ``runs`` or ``filter``. With
    ``preview``: what would happen. The same ``idempotency_key`` again returns the first
    answer; with another body it is refused (409)."""

    @extend_schema(operation_id="runs_bulk", request=BulkIn, responses={200: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        body = self.body(BulkIn)
        product = product_for(user=request.user, slug=body["product"], role=Role.VIEWER)
        require_role(request.user, product, Role.OPERATOR)
        if ("runs" in body) == ("filter" in body):
            raise RunRefused("name the runs with either runs (ids) or filter", field="runs")
        f = runs_filter_parse(product=product, params=body["filter"]) if "filter" in body else None
        runs = bulk.bulk_runs(product=product, ids=body.get("runs"), f=f)
        plan = bulk.bulk_plan(
            action=body["action"], runs=runs, user=request.user, step=body.get("step", "")
        )
        preview = bulk.bulk_preview_json(plan)
        if body.get("preview"):
            return Response(preview)
        if preview["confirm_required"] and body.get("confirm") != preview["confirm_text"]:
            raise RunRefused(
                f"confirm: type '{preview['confirm_text']}' to act on {preview['count']} runs",
                field="confirm",
            )
        key = body.get("idempotency_key", "")
        if not key:
            return Response(bulk.bulk_apply(plan, user=request.user, reason=body.get("reason", "")))
        return self._once(product, body, key, plan)

    def _once(
        self, product: Product, body: dict[str, Any], key: str, plan: bulk.BulkPlan
    ) -> Response:
        fingerprint = _fingerprint(body)
        try:
            with transaction.atomic():
                record = BulkRequest.objects.create(
                    product=product, user=_user(self.request), key=key, fingerprint=fingerprint
                )
        except IntegrityError:
            record = BulkRequest.objects.get(product=product, key=key)
            if record.fingerprint != fingerprint:
                raise RunRefused(
                    "idempotency_key was used for another request",
                    field="idempotency_key",
                    status=409,
                ) from None
            if not record.response:
                raise RunRefused(
                    "a request with this idempotency_key is still running",
                    field="idempotency_key",
                    status=409,
                ) from None
            return Response({**record.response, "replayed": True})
        try:
            answer = bulk.bulk_apply(
                plan, user=self.request.user, reason=body.get("reason", ""), key=key
            )
        except BaseException:
            # Nothing to replay: the key may be used again (a run already acted on is
            # then refused by its own state, e.g. a cancelled run cannot be cancelled).
            BulkRequest.objects.filter(pk=record.pk).delete()
            raise
        BulkRequest.objects.filter(pk=record.pk).update(response=answer)
        return Response(answer)
