"""Steps' dependencies as the recorder keeps them: only those no other one implies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def reduce_deps(deps: set[str], nodes: Mapping[str, Any]) -> tuple[str, ...]:
    """Drop dependencies implied by others (``x`` when ``y`` already waits for ``x``)."""
    if len(deps) <= 1:
        return tuple(deps)  # the common case: a straight run of steps

    def ancestors(tag: str) -> set[str]:
        seen: set[str] = set()
        stack = list(_node_deps(nodes[tag])) if tag in nodes else []
        while stack:
            item = stack.pop()
            if item not in seen:
                seen.add(item)
                if item in nodes:
                    stack.extend(_node_deps(nodes[item]))
        return seen

    implied: set[str] = set()
    for dep in deps:
        implied |= ancestors(dep)
    order = list(nodes)
    return tuple(sorted(deps - implied, key=lambda t: order.index(t) if t in order else 0))


def _node_deps(node: Any) -> tuple[str, ...] | set[str]:
    deps: tuple[str, ...] | set[str] = node.deps  # a Node's, or a merged step's
    return deps
