"""The registry of step functions: the only Python a CODE step may call.

A CODE step's ``event`` names a function (``package.module:function``). That name is
looked up here and nowhere else: nothing is imported because a spec named it. Deployed
code fills the registry, by an admin's choice, when the process starts:

- ``@step_function`` (re-exported as ``runtime.workflows.step_function``) on functions in
  an installed app's ``workflows.py`` or a module of ``TRELLIS_WORKFLOW_MODULES``;
- ``TRELLIS_STEP_FUNCTIONS = ["pkg.mod:fn", ...]``: functions named one by one;
- the built-ins (``runtime.connectors.code:noop|echo|fail``) and the recorder's own CODE
  targets (``runtime.workflows:run_code_step|log_step|transform_step``: the names specs
  store, registered by runtime.context where the functions live).

Pure: no Django. The Django side (runtime.apps) loads the modules at startup and hands
:func:`step_function_names` to the compiler, so an unregistered name is refused when a
spec is validated or published, and again by the worker.
"""

from __future__ import annotations

import importlib
import inspect
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from runtime.errors import StepError

F = TypeVar("F", bound=Callable[..., Any])

_PATH_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class StepFunction:
    """A registered step function: its name, the callable, and whether it takes ``ctx``."""

    path: str
    fn: Callable[..., Any]
    wants_ctx: bool


def step_function_path(path: str) -> str:
    """The registry's spelling of a name: ``pkg.mod.fn`` and ``pkg.mod:fn`` are the same."""
    path = path.strip()
    if ":" not in path and "." in path:
        module, _, attr = path.rpartition(".")
        path = f"{module}:{attr}"
    return path


def _wants_ctx(fn: Callable[..., Any]) -> bool:
    try:
        params = [
            p
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        return False
    return len(params) >= 2


class StepFunctionRegistry:
    """Name → :class:`StepFunction`. Registering a name twice with another function is an
    error: the first registration must not be silently replaced by later code."""

    def __init__(self) -> None:
        self._items: dict[str, StepFunction] = {}
        self._lock = threading.RLock()

    def register(self, path: str, fn: Callable[..., Any]) -> StepFunction:
        name = step_function_path(path)
        if not _PATH_RE.match(name):
            raise ValueError(f"{path!r} is not a step function name like 'package.module:function'")
        if not callable(fn):
            raise TypeError(f"step function {name!r} is not callable")
        entry = StepFunction(path=name, fn=fn, wants_ctx=_wants_ctx(fn))
        with self._lock:
            existing = self._items.get(name)
            if existing is not None and not _same_function(existing.fn, fn):
                raise ValueError(f"step function {name!r} is already registered")
            self._items[name] = entry
        return entry

    def get(self, path: str) -> StepFunction | None:
        return self._items.get(step_function_path(path))

    def names(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._items)

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and step_function_path(path) in self._items

    @contextmanager
    def extra(self, functions: dict[str, Callable[..., Any]]) -> Iterator[StepFunctionRegistry]:
        """Functions registered inside the block only (for tests)."""
        with self._lock:
            saved = dict(self._items)
        try:
            for path, fn in functions.items():
                self.register(path, fn)
            yield self
        finally:
            with self._lock:
                self._items = saved


def _same_function(a: Callable[..., Any], b: Callable[..., Any]) -> bool:
    # Re-importing a module (autoreload, importlib.reload) registers the same function again.
    if a is b:
        return True
    return (getattr(a, "__module__", None), getattr(a, "__qualname__", None)) == (
        getattr(b, "__module__", None),
        getattr(b, "__qualname__", None),
    )


registry = StepFunctionRegistry()


def register_step_function(path: str, fn: Callable[..., Any]) -> StepFunction:
    """Register ``fn`` under ``path`` (``package.module:function``)."""
    return registry.register(path, fn)


@overload
def step_function(fn: F, /) -> F: ...
@overload
def step_function(*, name: str | None = None) -> Callable[[F], F]: ...


def step_function(fn: Any = None, /, *, name: str | None = None) -> Any:
    """Register a function CODE steps may call, under ``module:function`` (or ``name``)::

        from runtime import workflows

        @workflows.step_function
        def score(input, ctx):
            ...

    Put it in an installed app's ``workflows.py`` (or a module listed in
    ``TRELLIS_WORKFLOW_MODULES``): Trellis imports those when it starts. The function gets
    the step's resolved input (and an immutable ``ctx`` when it takes two parameters).
    """

    def wrap(f: F) -> F:
        path = name or f"{f.__module__}:{f.__qualname__}"
        registry.register(path, f)
        return f

    if fn is not None:
        return wrap(fn)
    return wrap


def step_function_get(path: str) -> StepFunction:
    """The registered function named ``path``; a non-retryable StepError when there is none.

    Never imports anything: a name nobody registered stays unknown.
    """
    entry = registry.get(path) if isinstance(path, str) else None
    if entry is None:
        raise StepError(
            f"'{path}' is not a registered step function (an admin registers step functions "
            "with @step_function in an installed app's workflows.py or TRELLIS_STEP_FUNCTIONS)",
            retryable=False,
        )
    return entry


def step_function_names() -> frozenset[str]:
    """Every registered name (what the compiler accepts in a CODE step)."""
    return registry.names()


def step_functions_import(paths: Iterable[str]) -> list[StepFunction]:
    """Import and register each ``pkg.mod:fn`` an admin listed (TRELLIS_STEP_FUNCTIONS).

    Runs once at startup from settings, never from a spec. Raises ValueError naming the
    entry that cannot be imported.
    """
    out = []
    for raw in paths:
        path = step_function_path(str(raw))
        if not _PATH_RE.match(path):
            raise ValueError(f"{raw!r} is not a function name like 'package.module:function'")
        module_name, _, attr = path.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ValueError(f"{raw!r}: cannot import {module_name!r}: {exc}") from exc
        fn = getattr(module, attr, None)
        if fn is None or not callable(fn):
            raise ValueError(f"{raw!r}: {module_name!r} has no function {attr!r}")
        out.append(registry.register(path, fn))
    return out
