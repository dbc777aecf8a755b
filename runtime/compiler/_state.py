"""What every check of one compilation shares: the spec, the indexes and graph built
from it, and the issues found so far."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from runtime.compiler._paths import _Where, _where_text
from runtime.compiler._plan import ComponentInfo
from runtime.errors import Issue
from runtime.spec import WorkflowSpec


class CompilerState:
    """The shared state. The checks build on it in one line, each using the ones before:
    GraphChecks -> ReferenceChecks -> EventChecks -> the compiler (``_compile``)."""

    def __init__(
        self,
        spec: WorkflowSpec,
        components: Mapping[str, ComponentInfo] | None,
        step_functions: Collection[str] | None = None,
    ) -> None:
        self.spec = spec
        self.components = components
        self.step_functions = step_functions
        self.issues: list[Issue] = []
        self.seq_index: dict[str, int] = {}
        self.step_index: dict[str, tuple[int, int]] = {}
        self.parents: list[list[int]] = []
        self.children: list[list[int]] = []
        self.levels: list[int | None] = []
        self.level_floor: list[int] = []  # the level its parents alone give each sequence
        self.ancestors: list[int] = []
        self.unordered: set[int] = set()  # in or after a cycle: no level, no ancestry
        self.apps: dict[tuple[int, int], str | None] = {}
        self.rollback_apps: dict[tuple[int, int], str | None] = {}

    def issue(self, where: _Where, message: str) -> None:
        self.issues.append(Issue(path=_where_text(where), message=message))
