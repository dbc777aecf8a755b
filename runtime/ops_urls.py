"""Operations routes at the site root: /metrics, /healthz, /readyz (included from
designer/urls.py)."""

from __future__ import annotations

from typing import Any

from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from runtime import health, metrics

urlpatterns: list[Any] = [
    path("metrics", csrf_exempt(metrics.metrics_view), name="metrics"),
    path("healthz", health.healthz_view, name="healthz"),
    path("readyz", health.readyz_view, name="readyz"),
]
