"""What differs between two specs, and between two environments' configuration, as an
admin sees it before promoting: values of secret-looking keys masked, secrets compared by
name, presence and whether the values differ (never read out)."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from designer import selectors
from designer.audit import MASK
from designer.models import Component, ComponentConfig, Environment, Product, WorkflowVersion
from designer.secrets import SecretsUnreadable, secrets_decrypt

# Config keys whose values are shown masked even though they are not stored as secrets.
_SECRET_LOOKING = ("secret", "password", "token", "credential", "api_key", "apikey", "private")


# --- spec differences ---------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One difference between two JSON documents at a readable path."""

    path: str
    change: str  # added | removed | changed
    before: Any = None
    after: Any = None

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "change": self.change,
            "before": self.before,
            "after": self.after,
        }


def _item_key(item: Any) -> str | None:
    # Sequences and events are matched by tag (an event's tag defaults to its event), so
    # inserting a step reads as one addition, not as every later step changing.
    if isinstance(item, Mapping):
        key = item.get("tag") or item.get("event") or item.get("name")
        if isinstance(key, str) and key:
            return key
    return None


def _keyed(items: list[Any]) -> dict[str, Any] | None:
    keys = [_item_key(item) for item in items]
    if any(k is None for k in keys) or len(set(keys)) != len(keys):
        return None
    return {str(k): item for k, item in zip(keys, items, strict=True)}


def json_diff(before: Any, after: Any, path: str = "") -> list[Change]:
    """Differences between two JSON values, as paths such as
    ``sequences[main_sequence].events[validate_user].retries``."""
    if before == after:
        return []
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        out: list[Change] = []
        for key in sorted(set(before) | set(after), key=str):
            child = f"{path}.{key}" if path else str(key)
            if key not in before:
                out.append(Change(child, "added", after=after[key]))
            elif key not in after:
                out.append(Change(child, "removed", before=before[key]))
            else:
                out.extend(json_diff(before[key], after[key], child))
        return out
    if isinstance(before, list) and isinstance(after, list):
        old, new = _keyed(before), _keyed(after)
        if old is not None and new is not None:
            out = []
            for key in [*old, *(k for k in new if k not in old)]:
                child = f"{path}[{key}]"
                if key not in new:
                    out.append(Change(child, "removed", before=old[key]))
                elif key not in old:
                    out.append(Change(child, "added", after=new[key]))
                else:
                    out.extend(json_diff(old[key], new[key], child))
            if [k for k in old if k in new] != [k for k in new if k in old]:
                out.append(Change(f"{path} (order)", "changed", list(old), list(new)))
            return out
        if all(not isinstance(v, Mapping | list) for v in [*before, *after]):
            return [Change(path or "$", "changed", before, after)]
        out = []
        for index in range(max(len(before), len(after))):
            child = f"{path}[{index}]"
            if index >= len(before):
                out.append(Change(child, "added", after=after[index]))
            elif index >= len(after):
                out.append(Change(child, "removed", before=before[index]))
            else:
                out.extend(json_diff(before[index], after[index], child))
        return out
    return [Change(path or "$", "changed", before, after)]


def changes_json(changes: list[Change]) -> dict[str, Any]:
    """Changes as the API shows them: ``{"changes": [...], "summary": {added, ...}}``."""
    counts = {"added": 0, "removed": 0, "changed": 0}
    for change in changes:
        counts[change.change] += 1
    return {"changes": [c.as_json() for c in changes], "summary": counts}


# --- configuration differences ------------------------------------------------------------


def _secret_looking(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in _SECRET_LOOKING)


def _shown(value: Any) -> Any:
    """A config value as a diff may show it: secret-looking keys masked, at any depth."""
    if isinstance(value, Mapping):
        return {k: (MASK if _secret_looking(str(k)) else _shown(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_shown(v) for v in value]
    return value


def _masked_changes(changes: list[Change]) -> list[Change]:
    out = []
    for change in changes:
        if any(_secret_looking(part) for part in change.path.replace("[", ".").split(".")):
            out.append(
                Change(
                    change.path,
                    change.change,
                    MASK if change.before is not None else None,
                    MASK if change.after is not None else None,
                )
            )
        else:
            out.append(
                Change(change.path, change.change, _shown(change.before), _shown(change.after))
            )
    return out


def _secrets_of(config: ComponentConfig | None) -> dict[str, str] | None:
    if config is None:
        return {}
    try:
        return secrets_decrypt(config.secrets_encrypted)
    except SecretsUnreadable:
        return None


def _secret_rows(a: dict[str, str] | None, b: dict[str, str] | None) -> list[dict[str, Any]]:
    # Values are compared here and dropped: only names and flags leave this function.
    if a is None or b is None:
        return [{"name": "*", "in_a": a is not None, "in_b": b is not None, "unreadable": True}]
    rows = []
    for name in sorted(set(a) | set(b)):
        in_a, in_b = name in a, name in b
        differs = in_a != in_b or not hmac.compare_digest(
            a.get(name, "").encode(), b.get(name, "").encode()
        )
        if differs:
            rows.append({"name": name, "in_a": in_a, "in_b": in_b, "differs": True})
    return rows


def used_components(version: WorkflowVersion | None) -> set[str]:
    """The apps (component tags) the steps and rollbacks of ``version``'s plan use."""
    used: set[str] = set()
    plan = version.plan if version is not None else None
    for sequence in (plan or {}).get("sequences", []):
        for step in sequence.get("events", []):
            for part in (step, step.get("rollback") or {}):
                app = part.get("app") if isinstance(part, Mapping) else None
                if isinstance(app, str) and app:
                    used.add(app)
    return used


def config_diff(
    *, product: Product, a: Environment, b: Environment, only: set[str] | None = None
) -> list[dict[str, Any]]:
    """Per component, how its configuration in ``a`` differs from ``b``: config, variables
    and constants value by value (secret-looking keys masked), secrets by name only
    (``in_a``, ``in_b``, ``differs``). Components configured the same way are left out."""
    components = list(Component.objects.filter(product=product).order_by("kind", "tag"))
    configs = {
        (c.component_id, c.environment_id): c
        for c in ComponentConfig.objects.filter(component__product=product, environment__in=[a, b])
    }
    out = []
    for component in components:
        if only is not None and component.tag not in only:
            continue
        left, right = configs.get((component.pk, a.pk)), configs.get((component.pk, b.pk))
        entry: dict[str, Any] = {
            "component": component.tag,
            "kind": component.kind,
            "configured_in_a": left is not None,
            "configured_in_b": right is not None,
        }
        differs = (left is None) != (right is None)
        for field in ("config", "variables", "constants"):
            changes = json_diff(
                getattr(left, field) if left else {}, getattr(right, field) if right else {}
            )
            entry[field] = [c.as_json() for c in _masked_changes(changes)]
            differs = differs or bool(changes)
        entry["secrets"] = _secret_rows(_secrets_of(left), _secrets_of(right))
        differs = differs or bool(entry["secrets"])
        if differs:
            out.append(entry)
    return out


def environment_diff(*, product: Product, a: Environment, b: Environment) -> dict[str, Any]:
    """What differs between two environments: component configuration and, per workflow,
    whether it is active and which version is live."""
    workflows = []
    for workflow in selectors.workflow_list(product=product):
        rows = {r.environment.pk: r for r in selectors.activation_rows(workflow=workflow)}
        left, right = rows.get(a.pk), rows.get(b.pk)
        if left is None or right is None:
            continue
        if (left.active, left.version) != (right.active, right.version):
            workflows.append(
                {
                    "workflow": workflow.tag,
                    "a": {"active": left.active, "version": left.version},
                    "b": {"active": right.active, "version": right.version},
                }
            )
    return {
        "a": a.slug,
        "b": b.slug,
        "components": config_diff(product=product, a=a, b=b),
        "workflows": workflows,
    }
