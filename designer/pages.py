"""Page routes (included at the site root from designer/urls.py)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.urls import include, path

from designer import views
from designer.accounts import login_rate_limited

urlpatterns: list[Any] = [
    path(
        "login/",
        # Per-address rate here; the username+address lockout is django-axes (settings).
        login_rate_limited(
            auth_views.LoginView.as_view(
                template_name="login.html", redirect_authenticated_user=True
            )
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.products, name="home"),
    path("p/<slug:slug>/", views.workflows, name="product"),
    path("p/<slug:slug>/w/<slug:tag>/", views.canvas, name="canvas"),
    path("p/<slug:slug>/runs/", views.product_runs, name="product-runs"),
    path("p/<slug:slug>/runs/<int:run_id>/", views.run_monitor, name="run-monitor"),
    path("p/<slug:slug>/w/<slug:tag>/runs/", views.runs, name="runs"),
    path("media/<slug:slug>/<path:path>", views.media_file, name="media"),
    path("", include("designer.governance_pages")),  # activation, environments, members, audit
]
