"""The registry of recorded workflows: filled by ``define()`` where workflows are loaded,
read by the worker when a CODE step runs (:func:`find`)."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from runtime.errors import StepError
from runtime.recorder._recording import CodeStep
from runtime.recorder._sites import RecordingError, Site
from runtime.spec import WorkflowSpec


@dataclass(frozen=True)
class WorkflowDefinition:
    """A recorded code-first workflow: its spec plus the Python behind its CODE steps."""

    product: str
    tag: str
    name: str
    description: str
    spec: WorkflowSpec
    handler: Callable[..., Any] = field(repr=False)
    module: str = ""
    code_steps: Mapping[str, CodeStep] = field(default_factory=dict, repr=False)
    site: Site | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        """``product/tag``: how a worker finds this definition again."""
        return f"{self.product}/{self.tag}"

    def spec_json(self) -> dict[str, Any]:
        """The spec as stored in a workflow version (defaults left out: same meaning)."""
        return self.spec.model_dump(mode="json", exclude_defaults=True)


class WorkflowRegistry:
    """Every workflow defined in this process, by ``product/tag``."""

    def __init__(self) -> None:
        self._items: dict[str, WorkflowDefinition] = {}
        self._lock = threading.RLock()

    def add(self, definition: WorkflowDefinition) -> None:
        with self._lock:
            existing = self._items.get(definition.key)
            if existing is not None and not _same_place(existing, definition):
                raise RecordingError(
                    f"workflow {definition.key!r} is defined twice (first at {existing.site})",
                    site=definition.site,
                )
            self._items[definition.key] = definition

    def get(self, product: str, tag: str) -> WorkflowDefinition | None:
        return self._items.get(f"{product}/{tag}")

    def get_key(self, key: str) -> WorkflowDefinition | None:
        return self._items.get(key)

    def all(self) -> list[WorkflowDefinition]:
        with self._lock:
            return list(self._items.values())

    def remove(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    @contextmanager
    def isolated(self) -> Iterator[WorkflowRegistry]:
        """An empty registry inside the block; the previous contents come back afterwards
        (for tests)."""
        with self._lock:
            saved = dict(self._items)
            self._items = {}
        try:
            yield self
        finally:
            with self._lock:
                self._items = saved


def _same_place(a: WorkflowDefinition, b: WorkflowDefinition) -> bool:
    # Re-importing a module (autoreload, importlib.reload) defines the same workflow again.
    if a.site is None or b.site is None:
        return a.module == b.module
    return (a.site.filename, a.site.lineno) == (b.site.filename, b.site.lineno)


registry = WorkflowRegistry()


# Definitions in use by a caller that did not register them (runtime.testing runs
# `define(..., register=False)` workflows): found first.
_IN_USE: contextvars.ContextVar[Mapping[str, WorkflowDefinition] | None] = contextvars.ContextVar(
    "trellis_workflows_in_use", default=None
)


@contextmanager
def using(*definitions: WorkflowDefinition) -> Iterator[None]:
    """Make ``definitions`` findable by :func:`find` (so by CODE steps) inside the block."""
    token = _IN_USE.set({**(_IN_USE.get() or {}), **{d.key: d for d in definitions}})
    try:
        yield
    finally:
        _IN_USE.reset(token)


def find(key: str, module: str | None = None) -> WorkflowDefinition:
    """The definition of ``product/tag`` among the workflows this process loaded.

    Definitions come from the modules loaded at startup (installed apps' ``workflows``
    modules and ``TRELLIS_WORKFLOW_MODULES``, see runtime.apps). ``module`` (what a
    recorded step's input says) is only named in the error: a step's input never makes
    the worker import anything.
    """
    definition = (_IN_USE.get() or {}).get(key) or registry.get_key(key)
    if definition is None:
        where = f" (recorded in module {module!r})" if module else ""
        raise StepError(
            f"code workflow {key!r}{where} is not defined in this process: list its module "
            "in TRELLIS_WORKFLOW_MODULES or put it in an installed app's workflows.py",
            retryable=False,
        )
    return definition
