"""Page shells of the product's admin sections: activation matrix, environments, members
and the audit log (frontend/src/admin/). Included from designer/pages.py.

Like every page: anonymous → login, outsider → 404. The audit log is for admins (403
otherwise); the other pages are readable by every member and offer changes by role.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import path

from designer.models import ROLE_RANK, Role
from designer.views import _product, _shell

TITLES = {
    "activation": "Activation",
    "environments": "Environments",
    "members": "Members",
    "audit": "Audit log",
}


def _section(page: str, needed: Role = Role.VIEWER) -> Any:
    @login_required
    def view(request: HttpRequest, slug: str) -> HttpResponse:
        product, role = _product(request, slug)
        if ROLE_RANK[role] < ROLE_RANK[needed]:
            raise PermissionDenied(f"This needs the {needed.label.lower()} role.")
        title = f"{TITLES[page]} · {product.name}"
        return _shell(request, page=page, title=title, product=product, role=role)

    view.__name__ = f"{page}_page"
    return view


urlpatterns: list[Any] = [
    path("p/<slug:slug>/activation/", _section("activation"), name="activation"),
    path("p/<slug:slug>/environments/", _section("environments"), name="environments"),
    path("p/<slug:slug>/members/", _section("members"), name="members"),
    path("p/<slug:slug>/audit/", _section("audit", Role.ADMIN), name="audit"),
]
