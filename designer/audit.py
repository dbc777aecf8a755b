"""The audit log's writer: who did what to which target, before and after, with values
under secret keys masked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db import transaction

from designer.models import AuditEntry, Product

Actor = AbstractBaseUser | AnonymousUser | None

# Values under these keys never reach the audit log.
_SECRET_KEYS = frozenset({"secrets", "secret", "password", "token", "credentials"})
MASK = "•••"


# --- audit --------------------------------------------------------------------------------


def _masked(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            k: (MASK if str(k).lower() in _SECRET_KEYS else _masked(v)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def user_of(actor: Actor) -> Any:
    """The user to record for ``actor`` (None when anonymous or absent)."""
    return actor if actor is not None and actor.is_authenticated else None


def audit_record(
    *,
    product: Product | None,
    actor: Actor,
    action: str,
    target: str,
    before: Any = None,
    after: Any = None,
) -> AuditEntry:
    """Record who changed what; values under secret-looking keys are masked."""
    return AuditEntry.objects.create(
        product=product,
        actor=user_of(actor),
        action=action,
        target=target[:300],
        before=_masked(before),
        after=_masked(after),
    )


def update_audited(
    obj: Any,
    *,
    actor: Actor,
    fields: dict[str, Any],
    key: str,
    siblings: Any,
    noun: str,
    snapshot: Any,
    action: str,
) -> None:
    """Set ``fields`` on a product-scoped row whose ``key`` (slug/tag) must stay unique
    among ``siblings``, save it and audit before/after in one transaction."""
    new_key = fields.get(key)
    if new_key and new_key != getattr(obj, key):
        if siblings.filter(**{key: new_key}).exists():
            raise ValidationError({key: f"{noun} {new_key!r} already exists"})
    before = snapshot(obj)
    for name, value in fields.items():
        setattr(obj, name, value)
    with transaction.atomic():
        obj.save()
        audit_record(
            product=obj.product,
            actor=actor,
            action=action,
            target=getattr(obj, key),
            before=before,
            after=snapshot(obj),
        )
