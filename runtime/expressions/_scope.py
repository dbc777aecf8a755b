"""A :class:`Scope` over plain dicts: :class:`DictScope`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from runtime.expressions._paths import walk

if TYPE_CHECKING:
    from runtime.expressions._nodes import Ref


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class DictScope:
    """A scope over plain dicts: ``steps={tag: output}``, ``sequences={seq: {step: output}}``,
    ``variables``/``constants`` ``{app: {key: value}}``, ``secrets`` ``{key: value}``,
    ``run`` ``{id, status, completed_steps, current_step}``; ``now`` returns the time
    ``$Now`` gives (a datetime is turned into an ISO 8601 string)."""

    input: Any = None
    steps: Mapping[str, Any] = field(default_factory=dict)
    sequences: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    state: Mapping[str, Any] = field(default_factory=dict)
    variables: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    constants: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    secrets: Mapping[str, Any] = field(default_factory=dict)
    run: Mapping[str, Any] = field(default_factory=dict)
    now: Callable[[], Any] = _now_iso
    # A FOREACH iteration's item and index ($Item, $Index); None outside a loop body.
    item: Any = None
    index: int | None = None

    def lookup(self, ref: Ref) -> Any:
        kind = ref.kind
        if kind == "Input":
            base = self.input
        elif kind == "Step":
            base = self.steps.get(ref.args[0])
        elif kind == "Sequence":
            base = walk(self.sequences, ref.args)
        elif kind == "State":
            base = self.state
        elif kind in ("Variable", "Constant"):
            source = self.variables if kind == "Variable" else self.constants
            base = source.get(ref.args[0])
        elif kind == "Secret":
            return self.secrets.get(ref.args[0])
        elif kind == "Run":
            base = self.run
        elif kind == "Item":
            base = self.item
        elif kind == "Index":
            return self.index
        else:  # Now
            now = self.now()
            return now.isoformat() if isinstance(now, datetime) else now
        return walk(base, ref.segments) if ref.segments else base
