"""/api/v1/ routes of the authoring API (included from designer/urls.py).

Each route also answers with or without its trailing slash (the alias is left out of the
OpenAPI schema by ``designer.api.schema.drop_slash_aliases``), so scripts need not guess.
"""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, path

from designer.api import auth, component_config, components, governance, products, workflows


def route(pattern: str, view: Any, name: str) -> list[URLPattern]:
    alias = pattern[:-1] if pattern.endswith("/") else pattern + "/"
    return [path(pattern, view, name=name), path(alias, view)]


P = "products/<slug:slug>/"
W = P + "workflows/<slug:tag>/"

urlpatterns: list[Any] = [
    *governance.urlpatterns,  # first: environments/diff|reorder are not env slugs
    *route("auth/token", auth.TokenApi.as_view(), "api-token"),
    *route("auth/token/revoke", auth.TokenRevokeApi.as_view(), "api-token-revoke"),
    *route("spec-schema", workflows.SpecSchemaApi.as_view(), "api-spec-schema"),
    *route("products/", products.ProductListApi.as_view(), "api-products"),
    *route(P, products.ProductDetailApi.as_view(), "api-product"),
    *route(P + "environments/", products.EnvironmentListApi.as_view(), "api-environments"),
    *route(
        P + "environments/<slug:env>/",
        products.EnvironmentDetailApi.as_view(),
        "api-environment",
    ),
    *route(P + "members/", products.MemberListApi.as_view(), "api-members"),
    *route(P + "members/<str:username>/", products.MemberDetailApi.as_view(), "api-member"),
    *route(P + "audit/", products.AuditListApi.as_view(), "api-audit"),
    *route(P + "components/", components.ComponentListApi.as_view(), "api-components"),
    *route(P + "components/<slug:tag>/", components.ComponentDetailApi.as_view(), "api-component"),
    *route(
        P + "components/<slug:tag>/config/<slug:env>",
        component_config.ComponentConfigApi.as_view(),
        "api-component-config",
    ),
    *route(P + "workflows/", workflows.WorkflowListApi.as_view(), "api-workflows"),
    *route(W, workflows.WorkflowDetailApi.as_view(), "api-workflow"),
    *route(W + "draft", workflows.DraftApi.as_view(), "api-draft"),
    *route(W + "validate", workflows.ValidateApi.as_view(), "api-validate"),
    *route(W + "publish", workflows.PublishApi.as_view(), "api-publish"),
    *route(W + "versions/", workflows.VersionListApi.as_view(), "api-versions"),
    *route(W + "versions/<int:number>/", workflows.VersionDetailApi.as_view(), "api-version"),
    *route(W + "activations/", workflows.ActivationListApi.as_view(), "api-activations"),
    *route(W + "activations/<slug:env>", workflows.ActivationDetailApi.as_view(), "api-activation"),
]
