"""/api/v1/runs… routes (included from designer/urls.py). Each also answers without or
with a trailing slash, like the authoring API."""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, path

from runtime import api, product_api


def route(pattern: str, view: Any, name: str) -> list[URLPattern]:
    alias = pattern[:-1] if pattern.endswith("/") else pattern + "/"
    return [path(pattern, view, name=name), path(alias, view)]


R = "runs/<str:run_id>/"

urlpatterns: list[Any] = [
    *route("runs", api.RunListApi.as_view(), "api-runs"),
    # Before runs/<run_id>: "bulk" is not a run id.
    *route("runs/bulk", product_api.RunsBulkApi.as_view(), "api-runs-bulk"),
    *route("products/<slug:slug>/runs", product_api.ProductRunsApi.as_view(), "api-product-runs"),
    *route(
        "products/<slug:slug>/runs/stats",
        product_api.ProductRunStatsApi.as_view(),
        "api-product-runs-stats",
    ),
    *route(R[:-1], api.RunDetailApi.as_view(), "api-run"),
    *route(R + "journal", api.RunJournalApi.as_view(), "api-run-journal"),
    *route(R + "signals/<str:name>", api.RunSignalApi.as_view(), "api-run-signal"),
    *route(R + "cancel", api.RunCancelApi.as_view(), "api-run-cancel"),
    *route(R + "query/<str:name>", api.RunQueryApi.as_view(), "api-run-query"),
    *route(R + "replay", api.RunReplayApi.as_view(), "api-run-replay"),
    *route(R + "restart", api.RunRestartApi.as_view(), "api-run-restart"),
    *route(R + "resume", api.RunResumeApi.as_view(), "api-run-resume"),
    *route(R + "fork", api.RunForkApi.as_view(), "api-run-fork"),
    *route(R + "replay-from-step", api.RunReplayFromStepApi.as_view(), "api-run-replay-from-step"),
    *route(R + "related", api.RunRelatedApi.as_view(), "api-run-related"),
    *route(R + "compare/<str:other_id>", api.RunCompareApi.as_view(), "api-run-compare"),
]
