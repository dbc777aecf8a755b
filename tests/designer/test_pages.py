"""The HTML pages: login, the shells behind it, who may open them, and the bootstrap."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client

from designer.models import Product, Workflow
from designer.templatetags import vite


def bootstrap(html: str) -> dict:
    match = re.search(
        r'<script id="trellis-bootstrap" type="application/json">(.*?)</script>', html, re.S
    )
    assert match, "no bootstrap script in the page"
    return json.loads(match.group(1))


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def fake_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / ".vite").mkdir()
    (tmp_path / ".vite" / "manifest.json").write_text(
        json.dumps(
            {
                "src/main.tsx": {
                    "file": "assets/main-abc.js",
                    "css": ["assets/main-def.css"],
                    "isEntry": True,
                }
            }
        )
    )
    monkeypatch.setattr(vite, "DIST_DIR", tmp_path)
    return tmp_path


@pytest.mark.django_db
def test_pages_send_anonymous_users_to_login(product: Product) -> None:
    for url in ["/", "/p/acme/", "/p/acme/w/x/", "/p/acme/runs/1/"]:
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/?next=")


@pytest.mark.django_db
def test_login_page_logs_in_and_redirects_home(admin_user: User) -> None:
    client = Client()
    assert client.get("/login/").status_code == 200
    response = client.post("/login/", {"username": "alice", "password": "pw-alice"})
    assert response.status_code == 302
    assert response["Location"] == "/"
    bad = Client().post("/login/", {"username": "alice", "password": "nope"})
    assert bad.status_code == 200
    assert b"didn&#x27;t match" in bad.content or b"didn't match" in bad.content


@pytest.mark.django_db
def test_logout_is_a_post_that_ends_the_session(admin_user: User) -> None:
    client = logged_in(admin_user)
    assert client.post("/logout/").status_code == 302
    assert client.get("/").status_code == 302


@pytest.mark.django_db
def test_canvas_shell_mounts_the_build_with_a_bootstrap(
    fake_build: Path, designer_user: User, product: Product
) -> None:
    Workflow.objects.create(product=product, tag="orders", name="Orders")
    response = logged_in(designer_user).get("/p/acme/w/orders/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<script type="module" src="/static/assets/main-abc.js"></script>' in html
    assert '<link rel="stylesheet" href="/static/assets/main-def.css">' in html
    boot = bootstrap(html)
    assert boot["page"] == "canvas"
    assert boot["product"] == {"slug": "acme", "name": "Acme", "role": "designer"}
    assert boot["workflow"] == {"tag": "orders"}
    assert boot["user"]["username"] == "dana"
    assert boot["apiBase"] == "/api/v1"
    assert len(boot["csrfToken"]) >= 32


@pytest.mark.django_db
def test_every_shell_names_its_page(fake_build: Path, viewer_user: User, product: Product) -> None:
    Workflow.objects.create(product=product, tag="orders", name="Orders")
    client = logged_in(viewer_user)
    pages = {
        "/": "products",
        "/p/acme/": "workflows",
        "/p/acme/w/orders/": "canvas",
        "/p/acme/runs/7/": "run",
    }
    for url, page in pages.items():
        response = client.get(url)
        assert response.status_code == 200, url
        assert bootstrap(response.content.decode())["page"] == page
    assert bootstrap(client.get("/p/acme/runs/7/").content.decode())["run"] == {"id": 7}


@pytest.mark.django_db
def test_outsiders_get_404_like_the_api(fake_build: Path, outsider: User, product: Product) -> None:
    Workflow.objects.create(product=product, tag="orders", name="Orders")
    client = logged_in(outsider)
    assert client.get("/").status_code == 200  # their (empty) product list
    for url in ["/p/acme/", "/p/acme/w/orders/", "/p/acme/runs/1/", "/p/nope/"]:
        assert client.get(url).status_code == 404, url


@pytest.mark.django_db
def test_an_unknown_workflow_is_404(fake_build: Path, admin_user: User) -> None:
    assert logged_in(admin_user).get("/p/acme/w/missing/").status_code == 404


@pytest.mark.django_db
def test_a_missing_build_says_how_to_make_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, admin_user: User
) -> None:
    monkeypatch.setattr(vite, "DIST_DIR", tmp_path / "nothing")
    response = logged_in(admin_user).get("/")
    assert response.status_code == 200
    assert b"make frontend" in response.content
