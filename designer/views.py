"""HTML pages: the shells that mount the frontend bundle, behind login.

Each shell hands the app a bootstrap JSON (who is asking, where we are, the CSRF token and
the API base); everything else comes from /api/v1/. Outsiders get 404, like the API.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.urls import reverse

from designer.models import Product, Role, Workflow
from designer.permissions import role_for


def _product(request: HttpRequest, slug: str) -> tuple[Product, Role]:
    product = Product.objects.filter(slug=slug).first()
    role = role_for(request.user, product) if product is not None else None
    if product is None or role is None:
        raise Http404("No such product.")
    return product, role


def _shell(
    request: HttpRequest,
    *,
    page: str,
    title: str,
    product: Product | None = None,
    role: Role | None = None,
    workflow: Workflow | None = None,
    run_id: int | None = None,
) -> HttpResponse:
    user: Any = request.user
    bootstrap = {
        "page": page,
        "user": {"username": user.get_username(), "isSuperuser": bool(user.is_superuser)},
        "product": (
            {"slug": product.slug, "name": product.name, "role": str(role or "")}
            if product is not None
            else None
        ),
        "workflow": {"tag": workflow.tag} if workflow is not None else None,
        "run": {"id": run_id} if run_id is not None else None,
        "csrfToken": get_token(request),
        "apiBase": "/api/v1",
        "urls": {"home": reverse("home"), "logout": reverse("logout"), "admin": "/admin/"},
    }
    return render(request, "app.html", {"bootstrap": bootstrap, "title": title})


@login_required
def products(request: HttpRequest) -> HttpResponse:
    return _shell(request, page="products", title="Products")


@login_required
def workflows(request: HttpRequest, slug: str) -> HttpResponse:
    product, role = _product(request, slug)
    return _shell(request, page="workflows", title=product.name, product=product, role=role)


@login_required
def canvas(request: HttpRequest, slug: str, tag: str) -> HttpResponse:
    product, role = _product(request, slug)
    workflow = Workflow.objects.filter(product=product, tag=tag).first()
    if workflow is None:
        raise Http404("No such workflow.")
    return _shell(
        request, page="canvas", title=workflow.name, product=product, role=role, workflow=workflow
    )


@login_required
def run_monitor(request: HttpRequest, slug: str, run_id: int) -> HttpResponse:
    # Only the shell: the run monitor reads the run (and checks it) through the API.
    product, role = _product(request, slug)
    return _shell(
        request, page="run", title=f"Run {run_id}", product=product, role=role, run_id=run_id
    )


@login_required
def product_runs(request: HttpRequest, slug: str) -> HttpResponse:
    # Every run of the product: filters, charts, grid, bulk actions
    # (frontend/src/monitor/ProductRunsPage.tsx).
    product, role = _product(request, slug)
    return _shell(
        request, page="product-runs", title=f"Runs of {product.name}", product=product, role=role
    )


@login_required
def runs(request: HttpRequest, slug: str, tag: str) -> HttpResponse:
    # A workflow's runs list and start form (frontend/src/monitor/RunsPage.tsx).
    product, role = _product(request, slug)
    workflow = Workflow.objects.filter(product=product, tag=tag).first()
    if workflow is None:
        raise Http404("No such workflow.")
    return _shell(
        request,
        page="runs",
        title=f"Runs of {workflow.name}",
        product=product,
        role=role,
        workflow=workflow,
    )


# Files a STORAGE step wrote with the file system backend, under MEDIA_ROOT/<product>/…:
# served to members of that product only. Shown inline only when the type cannot run
# script; everything is sandboxed (an uploaded HTML or SVG file must not act as this site).
INLINE_TYPES = {
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
}


@login_required
def media_file(request: HttpRequest, slug: str, path: str) -> FileResponse:
    _product(request, slug)  # 404 unless a member (any role)
    # No file name holds a NUL (the OS refuses it, and pathlib raises ValueError rather
    # than answering "no such file"), and a path the OS cannot stat is no file either:
    # both are a 404, never a 500.
    if "\x00" in path:
        raise Http404("No such file.")
    try:
        root = (Path(settings.MEDIA_ROOT) / slug).resolve()
        file = (root / path).resolve()
        found = file.is_relative_to(root) and file.is_file()
    except (OSError, ValueError):
        found = False
    if not found:
        raise Http404("No such file.")
    content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    response = FileResponse(
        file.open("rb"),
        content_type=content_type,
        as_attachment=content_type not in INLINE_TYPES,
        filename=file.name,
    )
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response["Cache-Control"] = "private, max-age=300"
    return response
