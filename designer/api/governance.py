"""Governance endpoints: the activation matrix, promotion (with a preview), environment
order, the production mark and the configuration diff between two environments.

Routes are listed here (``urlpatterns``) and included first by designer/api/urls.py, so
``environments/diff`` and ``environments/reorder`` are not read as environment slugs
(those slugs are reserved, see ``designer.governance.RESERVED_ENV_SLUGS``).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.urls import URLPattern, path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from designer import governance, selectors
from designer.api.base import ApiView
from designer.api.serializers import EnvironmentOut, Flag, Number, Slug, Strict
from designer.models import Environment, Product, Role

# --- shapes -------------------------------------------------------------------------------


class ReorderIn(Strict):
    order = serializers.ListField(
        child=Slug(max_length=50),
        max_length=200,
        help_text="Every environment slug of the product, in the new order.",
    )


class PromoteIn(Strict):
    from_env = Slug(max_length=50)
    to_env = Slug(max_length=50)
    version = Number(
        min_value=1,
        max_value=2_000_000_000,
        required=False,
        allow_null=True,
        help_text="The version live in from_env (a check); default: whatever is live there.",
    )
    through = Flag(
        required=False,
        help_text="Also make it live in every environment between from_env and to_env.",
    )


class CellOut(serializers.Serializer[Any]):
    active = serializers.BooleanField()
    live_version = serializers.IntegerField(allow_null=True)
    pinned = serializers.BooleanField()
    managed_by = serializers.CharField(help_text="'user', 'code', or '' when never set.")


class MatrixEnvironmentOut(serializers.Serializer[Any]):
    slug = serializers.CharField()
    name = serializers.CharField()
    order = serializers.IntegerField()
    is_production = serializers.BooleanField()


class MatrixRowOut(serializers.Serializer[Any]):
    tag = serializers.CharField()
    name = serializers.CharField()
    source = serializers.CharField()  # type: ignore[assignment]
    latest_version = serializers.IntegerField(allow_null=True)
    cells = serializers.DictField(child=CellOut(), help_text="Keyed by environment slug.")


class MatrixOut(serializers.Serializer[Any]):
    environments = MatrixEnvironmentOut(many=True)
    workflows = MatrixRowOut(many=True)


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes", "on")


# --- views --------------------------------------------------------------------------------


class MatrixApi(ApiView):
    @extend_schema(
        operation_id="activation_matrix",
        responses=MatrixOut,
        description="Workflows x environments: per cell whether the workflow is active, "
        "the live version, whether it is pinned and who decided (user or code).",
    )
    def get(self, request: Request, slug: str) -> Response:
        product = self.product(Role.VIEWER)
        return Response(MatrixOut(governance.activation_matrix(product=product)).data)


class PromoteApi(ApiView):
    @extend_schema(
        operation_id="workflows_promote",
        request=PromoteIn,
        parameters=[
            OpenApiParameter(
                "preview", bool, description="1: only say what would change; change nothing."
            )
        ],
        responses={200: OpenApiTypes.OBJECT},
        description="Admins only. Make the version live in `from_env` live (active, pinned) "
        "in `to_env` — and with `through` in every environment between. The answer (and "
        "the preview) lists per target environment the activation before/after, the spec "
        "differences from the version live there now and the configuration differences of "
        "the components the version uses (secrets by name and a `differs` flag only).",
    )
    def post(self, request: Request, slug: str, tag: str) -> Response:
        product = self.product(Role.ADMIN)
        workflow = selectors.workflow_get(product=product, tag=tag)
        data = self.body(PromoteIn)
        args: dict[str, Any] = {
            "workflow": workflow,
            "version": data.get("version"),
            "from_env": _environment(product, data["from_env"], "from_env"),
            "to_env": _environment(product, data["to_env"], "to_env"),
            "through": data.get("through", False),
        }
        preview = governance.promotion_preview(**args)
        if _truthy(request.query_params.get("preview")):
            return Response({**preview, "preview": True})
        governance.version_promote(actor=request.user, **args)
        matrix = governance.activation_matrix(product=product)
        row = next(r for r in matrix["workflows"] if r["tag"] == workflow.tag)
        return Response({**preview, "preview": False, "cells": MatrixRowOut(row).data["cells"]})


def _environment(product: Product, slug: str, field: str) -> Environment:
    environment = product.environments.filter(slug=slug).first()
    if environment is None:
        raise ValidationError({field: f"no environment '{slug}' in this product"})
    return environment


class EnvironmentReorderApi(ApiView):
    @extend_schema(
        operation_id="environments_reorder",
        request=ReorderIn,
        responses=EnvironmentOut(many=True),
        description="Admins only. Every environment slug, in the new order (dev → prd).",
    )
    def post(self, request: Request, slug: str) -> Response:
        product = self.product(Role.ADMIN)
        data = self.body(ReorderIn)
        environments = governance.environment_reorder(
            product=product, order=data["order"], actor=request.user
        )
        return Response(EnvironmentOut(environments, many=True).data)


class EnvironmentProductionApi(ApiView):
    @extend_schema(
        operation_id="environments_mark_production",
        request=None,
        responses=EnvironmentOut,
        description="Admins only. Make this the production environment (the mark moves "
        "from any other). Production cannot be deleted, keeps its slug, and only admins "
        "may start or act on runs there.",
    )
    def post(self, request: Request, slug: str, env: str) -> Response:
        product = self.product(Role.ADMIN)
        environment = selectors.environment_get(product=product, slug=env)
        environment = governance.environment_mark_production(
            environment=environment, actor=request.user
        )
        return Response(EnvironmentOut(environment).data)

    @extend_schema(
        operation_id="environments_unmark_production",
        responses={200: EnvironmentOut},  # the environment, unmarked (not an empty 204)
        description="Admins only. Remove the production mark (and its protection).",
    )
    def delete(self, request: Request, slug: str, env: str) -> Response:
        product = self.product(Role.ADMIN)
        environment = selectors.environment_get(product=product, slug=env)
        environment = governance.environment_unmark_production(
            environment=environment, actor=request.user
        )
        return Response(EnvironmentOut(environment).data)


class EnvironmentDiffApi(ApiView):
    @extend_schema(
        operation_id="environments_diff",
        parameters=[
            OpenApiParameter("a", str, required=True, description="Environment slug."),
            OpenApiParameter("b", str, required=True, description="Environment slug."),
        ],
        responses={200: OpenApiTypes.OBJECT},
        description="Admins only. Component configuration that differs between two "
        "environments (config, variables and constants by value with secret-looking keys "
        "masked; secrets by name with in_a/in_b/differs flags, never values) and the "
        "workflows whose activation differs.",
    )
    def get(self, request: Request, slug: str) -> Response:
        product = self.product(Role.ADMIN)
        params = request.query_params
        a = _environment(product, params.get("a", "")[:50], "a")
        b = _environment(product, params.get("b", "")[:50], "b")
        return Response(governance.environment_diff(product=product, a=a, b=b))


# --- routes (included first by designer/api/urls.py) --------------------------------------


def _route(pattern: str, view: Any, name: str) -> list[URLPattern]:
    # Same convention as designer/api/urls.py: with or without the trailing slash.
    alias = pattern[:-1] if pattern.endswith("/") else pattern + "/"
    return [path(pattern, view, name=name), path(alias, view)]


P = "products/<slug:slug>/"

urlpatterns: list[Any] = [
    *_route(P + "matrix", MatrixApi.as_view(), "api-matrix"),
    *_route(P + "environments/reorder", EnvironmentReorderApi.as_view(), "api-env-reorder"),
    *_route(P + "environments/diff", EnvironmentDiffApi.as_view(), "api-env-diff"),
    *_route(
        P + "environments/<slug:env>/production",
        EnvironmentProductionApi.as_view(),
        "api-env-production",
    ),
    *_route(P + "workflows/<slug:tag>/promote", PromoteApi.as_view(), "api-promote"),
]
