"""Issue 13 item 7: the small holes — a NUL in a /media/ path, the Content-Security-Policy
of every page, the file modes of var/ and the SQLite database, `check --deploy`."""

from __future__ import annotations

import os
import re
import secrets
import stat
import subprocess
import sys
from base64 import urlsafe_b64encode
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from designer.models import Product, Workflow
from tests.designer.test_pages import fake_build  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[2]


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- /media/ ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_nul_byte_in_a_media_path_is_a_404(
    viewer_user: User, settings: Any, tmp_path: Path
) -> None:
    settings.MEDIA_ROOT = tmp_path
    (tmp_path / "acme").mkdir()
    (tmp_path / "acme/hello.txt").write_text("hello")
    client = logged_in(viewer_user)
    assert client.get("/media/acme/hello.txt").status_code == 200
    for path in ["/media/acme/hello.txt%00", "/media/acme/%00/x", "/media/acme/a%00.txt"]:
        assert client.get(path).status_code == 404, path
    # A name too long for the file system is no file either (the OS raises, not Django).
    assert client.get("/media/acme/" + "a" * 5000).status_code == 404


# --- Content-Security-Policy --------------------------------------------------------------


def directives(header: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for part in header.split(";"):
        name, *sources = part.split()
        found[name] = sources
    return found


class InlineCode(HTMLParser):
    """Inline <script> (other than JSON data blocks), <style>, style="" and on*=""."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "script" and "src" not in named and named.get("type") != "application/json":
            self.found.append("inline <script>")
        if tag == "style":
            self.found.append("inline <style>")
        for name, _ in attrs:
            if name == "style" or name.startswith("on"):
                self.found.append(f'{tag} {name}=""')


@pytest.mark.django_db
def test_every_page_sends_a_strict_csp_that_its_markup_fits(
    fake_build: Path,  # noqa: F811
    admin_user: User,
    product: Product,
) -> None:
    Workflow.objects.create(product=product, tag="orders", name="Orders")
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    pages = [
        "/",
        "/p/acme/",
        "/p/acme/w/orders/",
        "/p/acme/w/orders/runs/",
        "/p/acme/runs/1/",
        "/p/acme/activation/",
        "/p/acme/environments/",
        "/p/acme/members/",
        "/p/acme/audit/",
    ]
    client = logged_in(admin_user)
    checked = [(url, client.get(url)) for url in pages]
    checked.append(("/login/", Client().get("/login/")))
    for url, response in checked:
        assert response.status_code == 200, url
        policy = directives(response["Content-Security-Policy"])
        assert policy["script-src"] == ["'self'"], url
        assert policy["style-src"] == ["'self'"], url
        assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
        assert policy["base-uri"] == ["'none'"]
        # ...and the page needs nothing the policy forbids.
        parser = InlineCode()
        parser.feed(response.content.decode())
        assert parser.found == [], (url, parser.found)


@pytest.mark.django_db
def test_admin_and_api_docs_pages_have_a_policy_without_inline_script_or_eval(
    admin_user: User,
) -> None:
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    client = logged_in(admin_user)
    urls = [
        "/admin/",
        "/admin/designer/product/",
        "/admin/designer/product/add/",
        "/api/docs/",
        "/api/docs/?script=",
        "/api/schema/",
        "/api/v1/products/",
        "/nope/",  # a 404 page too
    ]
    responses = [(url, client.get(url)) for url in urls]
    responses.append(("/admin/login/", Client().get("/admin/login/")))
    for url, response in responses:
        assert response.status_code in (200, 404), url
        header = response["Content-Security-Policy"]
        assert "unsafe-eval" not in header, url
        policy = directives(header)
        assert policy["script-src"] == ["'self'"], url
        assert "'unsafe-inline'" not in policy.get("default-src", []), url
        if response["Content-Type"].startswith("text/html"):
            scripts = re.findall(
                r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", str(response.content)
            )
            assert scripts == [], (url, scripts)
    docs = client.get("/api/docs/").content.decode()
    assert '<script src="/api/docs/?script="></script>' in docs  # the init script is a file


@pytest.mark.django_db
def test_media_files_keep_their_own_sandbox_policy(
    viewer_user: User, settings: Any, tmp_path: Path
) -> None:
    settings.MEDIA_ROOT = tmp_path
    (tmp_path / "acme").mkdir()
    (tmp_path / "acme/page.html").write_text("<script>alert(1)</script>")
    response = logged_in(viewer_user).get("/media/acme/page.html")
    assert response["Content-Security-Policy"] == "sandbox; default-src 'none'"


# --- file modes ---------------------------------------------------------------------------


def test_var_dir_and_sqlite_database_are_private_to_the_trellis_account(tmp_path: Path) -> None:
    """A fresh install under a permissive umask: nobody else may read var/ or the
    database that holds tokens and sessions."""
    var = tmp_path / "var"
    env = {
        **os.environ,
        "TRELLIS_VAR_DIR": str(var),
        "DJANGO_SETTINGS_MODULE": "designer.settings",
    }
    for name in ("DATABASE_URL", "SQLITE_PATH", "SECRET_KEY", "REDIS_URL"):
        env.pop(name, None)
    script = (
        "import os; os.umask(0o022)\n"
        "import django; django.setup()\n"
        "from django.core.management import call_command\n"
        "call_command('migrate', verbosity=0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(var) == 0o700
    assert mode(var / "secret_key") == 0o600
    database = var / "trellis.sqlite3"
    assert mode(database) == 0o600
    for extra in (Path(f"{database}-wal"), Path(f"{database}-shm")):
        if extra.exists():
            assert mode(extra) & 0o077 == 0, extra

    # An install made before the rule (a 0644 database, a 0755 var/) is fixed on start.
    database.chmod(0o644)
    var.chmod(0o755)
    script = (
        "import django; django.setup()\n"
        "from django.db import connection\n"
        "connection.ensure_connection()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert mode(var) == 0o700
    assert mode(database) == 0o600


# --- check --deploy -----------------------------------------------------------------------

# The production variables the README documents (scale-out behind a TLS proxy).
PRODUCTION = {
    "DEBUG": "false",
    "ALLOWED_HOSTS": "trellis.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://trellis.example.com",
    "TRUST_X_FORWARDED_PROTO": "true",
    "TRELLIS_TRUSTED_PROXIES": "1",
    "SESSION_COOKIE_SECURE": "true",
    "CSRF_COOKIE_SECURE": "true",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
}


def check_deploy(tmp_path: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        TRELLIS_VAR_DIR=str(tmp_path / "var"),
        SECRET_KEY=secrets.token_urlsafe(60),
        TRELLIS_SECRETS_KEY=urlsafe_b64encode(os.urandom(32)).decode(),
        **variables,
    )
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "mode",
    [
        {},  # embedded (one machine)
        {
            "DATABASE_URL": "postgresql://trellis:pw@db.internal:5432/trellis",
            "REDIS_URL": "redis://cache.internal:6379/0",
        },
    ],
    ids=["embedded", "scale-out"],
)
def test_check_deploy_is_clean_with_the_documented_production_variables(
    tmp_path: Path, mode: dict[str, str]
) -> None:
    done = check_deploy(tmp_path, **PRODUCTION, **mode)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "no issues" in done.stdout


def test_check_deploy_names_a_missing_hsts_subdomain_setting(tmp_path: Path) -> None:
    done = check_deploy(tmp_path, **{**PRODUCTION, "SECURE_HSTS_INCLUDE_SUBDOMAINS": "false"})
    assert done.returncode != 0
    assert "security.W005" in done.stderr
