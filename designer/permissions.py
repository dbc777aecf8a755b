"""Per-product roles: viewer < operator < designer < admin. Superusers are admins everywhere.

An outsider (no membership) gets 404 — they do not learn the product exists; a member
with too small a role gets 403.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from rest_framework.exceptions import PermissionDenied

from designer.models import ROLE_RANK, Environment, Membership, Product, Role


def role_for(user: Any, product: Product | int) -> Role | None:
    """The user's role in the product, or None for an outsider."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return Role.ADMIN
    product_id = product if isinstance(product, int) else product.pk
    cache: dict[int, Role | None] = user.__dict__.setdefault("_trellis_roles", {})
    if product_id not in cache:
        raw = (
            Membership.objects.filter(user=user, product_id=product_id)
            .values_list("role", flat=True)
            .first()
        )
        cache[product_id] = Role(raw) if raw else None
    return cache[product_id]


def has_role(user: Any, product: Product | int, needed: Role) -> bool:
    role = role_for(user, product)
    return role is not None and ROLE_RANK[role] >= ROLE_RANK[needed]


def require_role(
    user: Any, product: Product | int, needed: Role, *, environment: Environment | None = None
) -> Role:
    """Raise 404 for outsiders and 403 for too small a role; return the user's role.

    Production environments may demand more: starting or acting on runs there needs
    ``admin`` when the environment is production (the prd rule).
    """
    role = role_for(user, product)
    if role is None:
        raise Http404("No such product.")
    if environment is not None and environment.is_production and needed == Role.OPERATOR:
        if ROLE_RANK[role] < ROLE_RANK[Role.ADMIN]:
            # Say why: the user has the role that acts elsewhere, but not here.
            raise PermissionDenied(
                f"{environment.name} is a production environment: acting on its runs needs "
                f"the admin role (you are {role.label.lower()})."
            )
        needed = Role.ADMIN
    if ROLE_RANK[role] < ROLE_RANK[needed]:
        raise PermissionDenied(
            f"This needs the {needed.label.lower()} role in this product "
            f"(you are {role.label.lower()})."
        )
    return role


def visible_products(user: Any) -> QuerySet[Product]:
    """Products the user can see (any role)."""
    if user.is_superuser:
        return Product.objects.all()
    return Product.objects.filter(memberships__user=user)
