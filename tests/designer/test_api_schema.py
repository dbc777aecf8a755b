"""The OpenAPI schema is served and valid; the docs work offline (sidecar assets)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def test_the_schema_is_served_as_json() -> None:
    response = Client().get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    for expected in [
        "/api/v1/products/",
        "/api/v1/products/{slug}/environments/{env}/",
        "/api/v1/products/{slug}/members/",
        "/api/v1/products/{slug}/components/{tag}/",
        "/api/v1/products/{slug}/workflows/{tag}/draft",
        "/api/v1/products/{slug}/workflows/{tag}/validate",
        "/api/v1/products/{slug}/workflows/{tag}/publish",
        "/api/v1/products/{slug}/workflows/{tag}/versions/{number}/",
        "/api/v1/products/{slug}/workflows/{tag}/activations/{env}",
        "/api/v1/spec-schema",
        "/api/v1/auth/token",
    ]:
        assert expected in paths, expected
    # Slash aliases answer but are not documented twice.
    assert "/api/v1/products" not in paths
    assert "tokenAuth" in schema["components"]["securitySchemes"]


def test_the_docs_page_uses_local_assets() -> None:
    response = Client().get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    assert "cdn" not in html.lower()
    asset = Client().get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert asset.status_code == 200


def test_routes_answer_with_or_without_the_trailing_slash(product: object) -> None:
    from django.contrib.auth.models import User
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(User.objects.create_superuser("root", password="pw"))
    assert client.get("/api/v1/products").status_code == 200
    assert client.get("/api/v1/products/acme/workflows/").status_code == 200
    assert client.get("/api/v1/spec-schema/").status_code == 200


def test_schema_generation_has_no_warnings(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "spectacular",
            "--validate",
            "--fail-on-warn",
            "--file",
            str(tmp_path / "schema.yaml"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Warning" not in result.stderr
