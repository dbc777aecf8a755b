"""Code-first workflows: ``from runtime import workflows``.

``workflows.define(...)`` (or the ``@workflows.workflow(...)`` decorator) runs the handler
under the recorder (runtime.recorder) and keeps the result — a :class:`WorkflowSpec`, the
same spec the canvas edits — in :data:`registry`. ``python manage.py sync_workflows``
publishes what changed. Steps whose function is arbitrary Python become CODE events
pointing at :func:`run_code_step`, which finds the function again by (workflow, step) and
runs it for real in the worker with a live ctx.

Importing this module never imports Django.
"""

from __future__ import annotations

import contextvars
import importlib
import importlib.util
import inspect
import json
import pkgutil
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from runtime.errors import StepError
from runtime.recorder import (
    MISSING,
    CodeStep,
    RecordingError,
    RecordingResult,
    Site,
    build_sequences,
    record_handler,
    record_query,
    scenario_condition,
    user_site,
)
from runtime.spec import TAG_RE, WorkflowSpec
from runtime.step_functions import register_step_function, step_function

__all__ = [
    "RecordingError",
    "WorkflowDefinition",
    "WorkflowRegistry",
    "define",
    "discover",
    "log_step",
    "register_step_function",
    "registry",
    "run_code_step",
    "step_function",
    "transform_step",
    "workflow",
]

# The seed's camelCase names, accepted where a user would paste them.
_DEFINE_ALIASES = {
    "branchOverrides": "branch_overrides",
    "recordInput": "record_input",
    "recordScenarios": "record_scenarios",
    "inputSchema": "input_schema",
}
_OPTION_ALIASES = {"rollbackStrategy": "rollback_strategy", "maxConcurrency": "max_concurrency"}


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


# --- define --------------------------------------------------------------------------------


def define(
    *,
    product: str,
    tag: str,
    handler: Callable[..., Any],
    name: str | None = None,
    description: str = "",
    options: Mapping[str, Any] | None = None,
    envs: Iterable[Mapping[str, Any]] | None = None,
    signals: Mapping[str, Any] | Iterable[str] | None = None,
    queries: Mapping[str, Any] | None = None,
    branch_overrides: Mapping[str, Any] | None = None,
    record_input: Mapping[str, Any] | None = None,
    record_scenarios: Iterable[Mapping[str, Any]] | None = None,
    input_schema: Mapping[str, Any] | None = None,
    triggers: Iterable[Mapping[str, Any]] | None = None,
    output: Any = MISSING,
    register: bool = True,
    **aliases: Any,
) -> WorkflowDefinition:
    """Define a workflow in code: record ``handler(ctx)`` into a spec and register it.

    - ``options``: ``{timeout, rollback_strategy, max_concurrency}``.
    - ``envs``: ``[{"slug": "dev", "active": True}, ...]`` — activation applied by
      ``sync_workflows`` where nobody set it by hand.
    - ``signals``: ``{"approve": {"input": {"approver_id": "string"}}}``.
    - ``queries``: ``{"getProgress": {"handler": lambda ctx: {...}}}``.
    - ``branch_overrides``: ``{"validate": {"valid": True}}`` — what a step "returns" while
      recording so an ``if`` on it continues; later steps get
      ``$Step{validate}{valid} == true``. Keys may also be references such as
      ``"$State{retries}"``.
    - ``record_input``: sample input so loops over it run (one step per item; put the
      item in the step tag). Inside the loop the items are still references
      (``$Input{items.0.id}``); only step tags use the sample values.
    - ``record_scenarios``: ``[{"type": "a"}, {"type": "b"}]`` — one recording per
      scenario; each step gets ``$Input{type} == 'a'``, joined with ``||`` when several
      scenarios record it.
    - ``output``: the run's output mapping, when the value the handler returns on the
      recorded path is not the right one for every run (an early return in a branch that
      was not recorded, a return after ``trigger_rollback``).

    Raises :class:`RecordingError` naming the line for anything that cannot be recorded.
    The camelCase names of the seed (``branchOverrides``, ``recordInput``,
    ``recordScenarios``, ``inputSchema``) are accepted too.
    """
    site = user_site(2)
    for alias, value in aliases.items():
        target = _DEFINE_ALIASES.get(alias)
        if target is None:
            raise RecordingError(f"define(): unknown argument {alias!r}", site=site)
        if target == "branch_overrides":
            branch_overrides = value
        elif target == "record_input":
            record_input = value
        elif target == "record_scenarios":
            record_scenarios = value
        else:
            input_schema = value
    return _define(
        product=product,
        tag=tag,
        handler=handler,
        name=name,
        description=description,
        options=options,
        envs=envs,
        signals=signals,
        queries=queries,
        branch_overrides=branch_overrides,
        record_input=record_input,
        record_scenarios=record_scenarios,
        input_schema=input_schema,
        triggers=triggers,
        output=output,
        register=register,
        site=site,
    )


def workflow(
    *, product: str, tag: str, **kwargs: Any
) -> Callable[[Callable[..., Any]], WorkflowDefinition]:
    """Decorator form of :func:`define` over ``async def handler(ctx)``::

        @workflows.workflow(product="acme", tag="greet", name="Greet")
        async def greet(ctx):
            ...

    The decorated name is bound to the :class:`WorkflowDefinition` (its ``.handler`` is the
    function).
    """
    site = user_site(2)

    def wrap(handler: Callable[..., Any]) -> WorkflowDefinition:
        aliases = {k: v for k, v in kwargs.items() if k in _DEFINE_ALIASES}
        plain = {k: v for k, v in kwargs.items() if k not in _DEFINE_ALIASES}
        for alias, value in aliases.items():
            plain[_DEFINE_ALIASES[alias]] = value
        unknown = set(plain) - set(inspect.signature(_define).parameters)
        if unknown:
            raise RecordingError(f"workflow(): unknown argument {sorted(unknown)[0]!r}", site=site)
        plain.setdefault("name", None)
        return _define(product=product, tag=tag, handler=handler, site=site, **plain)

    return wrap


def _define(
    *,
    product: str,
    tag: str,
    handler: Callable[..., Any],
    name: str | None = None,
    description: str = "",
    options: Mapping[str, Any] | None = None,
    envs: Iterable[Mapping[str, Any]] | None = None,
    signals: Mapping[str, Any] | Iterable[str] | None = None,
    queries: Mapping[str, Any] | None = None,
    branch_overrides: Mapping[str, Any] | None = None,
    record_input: Mapping[str, Any] | None = None,
    record_scenarios: Iterable[Mapping[str, Any]] | None = None,
    input_schema: Mapping[str, Any] | None = None,
    triggers: Iterable[Mapping[str, Any]] | None = None,
    output: Any = MISSING,
    register: bool = True,
    site: Site | None = None,
) -> WorkflowDefinition:
    if not isinstance(product, str) or not TAG_RE.match(product):
        raise RecordingError(f"define(): invalid product {product!r}", site=site)
    if not isinstance(tag, str) or not TAG_RE.match(tag):
        raise RecordingError(
            f"define(): invalid tag {tag!r}: letters, digits, _ - . (start with a letter)",
            site=site,
        )
    if not callable(handler):
        raise RecordingError("define(): handler must be a function taking ctx", site=site)
    module = getattr(handler, "__module__", "") or ""
    key = f"{product}/{tag}"
    overrides = _json_mapping(branch_overrides, "branch_overrides", site)
    sample_input = _json_mapping(record_input, "record_input", site)
    scenarios = _scenarios(record_scenarios, site)
    signal_specs = _signals(signals, site)

    recordings: list[tuple[RecordingResult, str | None]] = []
    runs: list[dict[str, Any] | None] = list(scenarios) if scenarios else [None]
    for scenario in runs:
        result = record_handler(
            handler,
            workflow=key,
            module=module,
            overrides=overrides,
            sample_input=sample_input,
            scenario=scenario,
            signals=frozenset(signal_specs),
            site=site,
        )
        recordings.append((result, scenario_condition(scenario, site) if scenario else None))
    _check_overrides_used(overrides, recordings, site)
    sequences = build_sequences(recordings, site=site)
    recorded_output = _merge_outputs(recordings, site)
    if output is MISSING:
        output = recorded_output
    else:
        output = _json_value(output, "output", site)

    code_steps: dict[str, CodeStep] = {}
    input_paths: set[str] = set()
    for result, _ in recordings:
        for step_tag, code in result.code_steps.items():
            code_steps.setdefault(step_tag, code)
        input_paths |= result.input_paths

    recording: dict[str, Any] = {
        "module": module,
        "handler": getattr(handler, "__qualname__", ""),
        "input_paths": sorted(input_paths),
    }
    if overrides:
        recording["branch_overrides"] = overrides
    if sample_input:
        recording["record_input"] = sample_input
    if scenarios:
        recording["record_scenarios"] = scenarios
    raw = {
        "sequences": sequences,
        "options": _options(options, site),
        "envs": [dict(e) for e in envs or []],
        "signals": signal_specs,
        "queries": _queries(queries, key=key, module=module, site=site),
        "input": dict(input_schema or {}),
        "output": output,
        "triggers": [dict(t) for t in triggers or []],
        "recording": recording,
    }
    try:
        spec = WorkflowSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RecordingError(
            f"define({key!r}): {where}: {first['msg']}"
            + (f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""),
            site=site,
        ) from None
    definition = WorkflowDefinition(
        product=product,
        tag=tag,
        name=name or tag.replace("-", " ").replace("_", " ").capitalize(),
        description=description or "",
        spec=spec,
        handler=handler,
        module=module,
        code_steps=code_steps,
        site=site,
    )
    if register:
        registry.add(definition)
    return definition


def _json_mapping(value: Any, what: str, site: Site | None) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise RecordingError(f"define(): {what} must be a dict", site=site)
    try:
        return json.loads(json.dumps(dict(value)))  # type: ignore[no-any-return]
    except (TypeError, ValueError) as exc:
        raise RecordingError(f"define(): {what} must be JSON: {exc}", site=site) from None


def _json_value(value: Any, what: str, site: Site | None) -> Any:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise RecordingError(f"define(): {what} must be JSON: {exc}", site=site) from None


def _scenarios(value: Any, site: Site | None) -> list[dict[str, Any]]:
    if value is None:
        return []
    if isinstance(value, Mapping) or isinstance(value, str):
        raise RecordingError("define(): record_scenarios must be a list of dicts", site=site)
    out = []
    for i, item in enumerate(value):
        out.append(_json_mapping(item, f"record_scenarios[{i}]", site))
    return out


def _options(value: Mapping[str, Any] | None, site: Site | None) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise RecordingError("define(): options must be a dict", site=site)
    out = {_OPTION_ALIASES.get(k, k): v for k, v in value.items()}
    unknown = set(out) - {"timeout", "rollback_strategy", "max_concurrency"}
    if unknown:
        raise RecordingError(
            f"define(): unknown option {sorted(unknown)[0]!r} "
            "(allowed: timeout, rollback_strategy, max_concurrency)",
            site=site,
        )
    return out


def _signals(value: Any, site: Site | None) -> dict[str, dict[str, Any]]:
    if value is None:
        return {}
    if isinstance(value, str):
        raise RecordingError("define(): signals must be a dict of name → {input: ...}", site=site)
    if not isinstance(value, Mapping):
        return {str(name): {} for name in value}
    out: dict[str, dict[str, Any]] = {}
    for name, item in value.items():
        if item is None:
            item = {}
        if not isinstance(item, Mapping):
            raise RecordingError(
                f"define(): signal {name!r} must be a dict like {{'input': {{...}}}}", site=site
            )
        out[str(name)] = dict(item)
    return out


def _queries(
    value: Mapping[str, Any] | None, *, key: str, module: str, site: Site | None
) -> dict[str, dict[str, Any]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise RecordingError("define(): queries must be a dict of name → {handler: ...}", site=site)
    out: dict[str, dict[str, Any]] = {}
    for name, item in value.items():
        description = ""
        if callable(item):
            handler: Any = item
        elif isinstance(item, Mapping):
            unknown = set(item) - {"handler", "output", "description"}
            if unknown:
                raise RecordingError(
                    f"define(): query {name!r}: unknown key {sorted(unknown)[0]!r}", site=site
                )
            handler = item.get("handler")
            description = str(item.get("description", ""))
            if handler is None:
                out[str(name)] = {"output": item.get("output"), "description": description}
                continue
        else:
            raise RecordingError(
                f"define(): query {name!r} must be a dict or a function", site=site
            )
        if not callable(handler):
            raise RecordingError(f"define(): query {name!r}: handler must be a function", site=site)
        output = record_query(handler, name=str(name), workflow=key, module=module, site=site)
        out[str(name)] = {"output": output, "description": description}
    return out


def _check_overrides_used(
    overrides: Mapping[str, Any],
    recordings: list[tuple[RecordingResult, str | None]],
    site: Site | None,
) -> None:
    tags: set[str] = set()
    used: set[str] = set()
    for result, _ in recordings:
        tags |= set(result.nodes)
        used |= result.used_overrides
    for key in overrides:
        if key.startswith("$"):
            if key not in used:
                raise RecordingError(
                    f"branch_overrides: {key!r} is never read by the handler", site=site
                )
        elif key not in tags:
            known = ", ".join(sorted(tags)) or "none"
            raise RecordingError(
                f"branch_overrides: no step {key!r} was recorded (steps: {known})", site=site
            )


def _merge_outputs(recordings: list[tuple[RecordingResult, str | None]], site: Site | None) -> Any:
    output: Any = None
    for result, _ in recordings:
        if result.output is None:
            continue
        if output is None:
            output = result.output
        elif result.output != output:
            raise RecordingError(
                "the handler returns a different output in different scenarios "
                f"({json.dumps(output)} vs {json.dumps(result.output)}); return one mapping, "
                "e.g. with ctx.default($Step{a}{x}, $Step{b}{x})",
                site=site,
            )
    return output


# --- discovery --------------------------------------------------------------------------


def discover(
    modules: Iterable[str] | None = None, *, errors: list[tuple[str, Exception]] | None = None
) -> list[WorkflowDefinition]:
    """Import every module that defines workflows and return the registry's contents.

    With ``modules`` given, imports exactly those (a package imports all its modules).
    Otherwise: the ``workflows`` module of every installed Django app plus the modules
    listed in the ``TRELLIS_WORKFLOW_MODULES`` setting. With ``errors``, a module that
    fails (a RecordingError, an ImportError) is reported there and the others still load;
    without it, the first failure raises.
    """
    if modules is None:
        modules = _configured_modules()
    for name in modules:
        try:
            _import_tree(name)
        except Exception as exc:
            if errors is None:
                raise
            errors.append((name, exc))
    return registry.all()


def _configured_modules() -> list[str]:
    from django.apps import apps
    from django.conf import settings

    names: list[str] = []
    for config in apps.get_app_configs():
        candidate = f"{config.name}.workflows"
        if candidate == __name__:
            continue
        if importlib.util.find_spec(candidate) is not None:
            names.append(candidate)
    names.extend(getattr(settings, "TRELLIS_WORKFLOW_MODULES", []))
    return names


def _import_tree(name: str) -> None:
    module = importlib.import_module(name)
    path = getattr(module, "__path__", None)
    if path is None:
        return
    for info in pkgutil.walk_packages(path, prefix=f"{name}."):
        if not info.name.rsplit(".", 1)[-1].startswith("_"):
            importlib.import_module(info.name)


# Definitions in use by a caller that did not register them (runtime.testing runs
# `define(..., register=False)` workflows): found first.
_IN_USE: contextvars.ContextVar[Mapping[str, WorkflowDefinition] | None] = contextvars.ContextVar(
    "trellis_workflows_in_use", default=None
)


@contextmanager
def using(*definitions: WorkflowDefinition) -> Iterator[None]:
    """Make ``definitions`` findable by :func:`run_code_step` inside the block."""
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


# --- run time: CODE events emitted by the recorder ------------------------------------------


@step_function
def run_code_step(input: Mapping[str, Any], ctx: Any = None) -> Any:
    """CODE event target: run a code step's (or its rollback's) function for real.

    ``input`` is ``{workflow, module, step, refs?, ctx?, rollback?, result?}``: ``refs`` are
    the recorded values the function captured and ``ctx`` the run data it reads
    (input, steps, state), both already resolved by the engine. Only the workflow that
    recorded the step may run it.
    """
    from runtime.context import EngineRuntime, run_step_function, runtime_for

    key = str(input.get("workflow", ""))
    step = str(input.get("step", ""))
    runtime = runtime_for(ctx, input.get("ctx") if isinstance(input.get("ctx"), Mapping) else None)
    if isinstance(runtime, EngineRuntime) and runtime.workflow_key() != key:
        raise StepError(
            f"step {step!r} belongs to code workflow {key!r}; only that workflow runs it",
            retryable=False,
        )
    definition = find(key, input.get("module") or None)
    code = definition.code_steps.get(step)
    rollback = bool(input.get("rollback"))
    fn = None if code is None else (code.rollback if rollback else code.fn)
    if fn is None:
        what = "rollback of step" if rollback else "step"
        raise StepError(
            f"code workflow {key!r} has no {what} {step!r} (was the code changed since "
            "this version was published?)",
            retryable=False,
        )
    return run_step_function(
        fn,
        refs=input.get("refs") or {},
        runtime=runtime,
        rollback=rollback,
        result=input.get("result"),
    )


@step_function
def log_step(input: Mapping[str, Any], ctx: Any = None) -> Any:
    """CODE event target for ``ctx.log.*`` in a handler: one ``log`` journal entry."""
    from runtime.context import log_to

    log_to(ctx, str(input.get("level", "info")), input.get("message"), input.get("data"))
    return {}


@step_function
def transform_step(input: Mapping[str, Any]) -> Any:
    """CODE event target for ``ctx.transform.parse_json/stringify`` of a run-time value
    (the expression language has no JSON operators): ``{value}``."""
    op = input.get("op")
    value = input.get("value")
    if op == "parse_json":
        try:
            return {"value": json.loads(value) if isinstance(value, str) else value}
        except ValueError as exc:
            raise StepError(f"parse_json: not JSON: {exc}", retryable=False) from None
    if op == "stringify":
        return {"value": json.dumps(value)}
    raise StepError(f"unknown transform {op!r}", retryable=False)
