"""``define()`` and ``@workflow``: record a handler (once per scenario) into a spec and
register the definition."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from runtime.recorder._definitions import WorkflowDefinition, registry
from runtime.recorder._recording import CodeStep
from runtime.recorder._run import RecordingResult, record_handler, record_query
from runtime.recorder._sequences import build_sequences, scenario_condition
from runtime.recorder._sites import RecordingError, Site, user_site
from runtime.recorder._text import MISSING
from runtime.spec import TAG_RE, WorkflowSpec

# The seed's camelCase names, accepted where a user would paste them.
_DEFINE_ALIASES = {
    "branchOverrides": "branch_overrides",
    "recordInput": "record_input",
    "recordScenarios": "record_scenarios",
    "inputSchema": "input_schema",
}
_OPTION_ALIASES = {"rollbackStrategy": "rollback_strategy", "maxConcurrency": "max_concurrency"}
# Recordings of one handler at most (its paths through branches on overrides x scenarios).
MAX_RECORDINGS = 64


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
    - ``output``: the run's output mapping, replacing what the handler returns on the
      overrides' path. Other arms of an ``if`` on an override are recorded too: a path
      returning something else ends with a RETURN step, one that raises with a FAIL step.

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
    _check_names(product, tag, handler, site)
    module = getattr(handler, "__module__", "") or ""
    key = f"{product}/{tag}"
    overrides = _json_mapping(branch_overrides, "branch_overrides", site)
    sample_input = _json_mapping(record_input, "record_input", site)
    scenarios = _scenarios(record_scenarios, site)
    signal_specs = _signals(signals, site)
    recordings = _record_each(
        handler,
        key=key,
        module=module,
        overrides=overrides,
        sample_input=sample_input,
        scenarios=scenarios,
        signals=frozenset(signal_specs),
        site=site,
    )
    _check_overrides_used(overrides, recordings, site)
    recorded_output = main_output(recordings)
    sequences = build_sequences(recordings, site=site, main_output=recorded_output)
    output = recorded_output if output is MISSING else _json_value(output, "output", site)
    code_steps, input_paths = _code_steps(recordings)
    recording: dict[str, Any] = {
        "module": module,
        "handler": getattr(handler, "__qualname__", ""),
        "input_paths": sorted(input_paths),
        **({"branch_overrides": overrides} if overrides else {}),
        **({"record_input": sample_input} if sample_input else {}),
        **({"record_scenarios": scenarios} if scenarios else {}),
    }
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
    definition = WorkflowDefinition(
        product=product,
        tag=tag,
        name=name or tag.replace("-", " ").replace("_", " ").capitalize(),
        description=description or "",
        spec=_validated_spec(raw, key, site),
        handler=handler,
        module=module,
        code_steps=code_steps,
        site=site,
    )
    if register:
        registry.add(definition)
    return definition


def _record_each(
    handler: Callable[..., Any],
    *,
    key: str,
    module: str,
    overrides: Mapping[str, Any],
    sample_input: Mapping[str, Any],
    scenarios: list[dict[str, Any]],
    signals: frozenset[str],
    site: Site | None,
) -> list[tuple[RecordingResult, str | None]]:
    """One recording per scenario (or one without), each with its scenario's condition."""
    recordings: list[tuple[RecordingResult, str | None]] = []
    runs: list[dict[str, Any] | None] = list(scenarios) if scenarios else [None]
    for scenario in runs:
        clause = scenario_condition(scenario, site) if scenario else None
        # Every arm of every branch on an override value: the first recording takes the
        # overrides' outcomes; each branch it (or a later one) meets is flipped in a
        # recording of its own, so each path's return or raise is known.
        todo: list[tuple[bool, ...]] = [()]
        while todo:
            forced = todo.pop(0)
            if len(recordings) >= MAX_RECORDINGS:
                raise RecordingError(
                    f"the handler has more than {MAX_RECORDINGS} paths (branches on "
                    "branch_overrides values x scenarios); split it into child workflows",
                    site=site,
                )
            result = record_handler(
                handler,
                workflow=key,
                module=module,
                overrides=overrides,
                sample_input=sample_input,
                scenario=scenario,
                signals=signals,
                site=site,
                forced=forced,
            )
            outcomes = result.path.outcomes
            for i in range(len(forced), len(outcomes)):
                todo.append((*outcomes[:i], not outcomes[i]))
            recordings.append((result, clause))
    return recordings


def _check_names(product: Any, tag: Any, handler: Any, site: Site | None) -> None:
    if not isinstance(product, str) or not TAG_RE.match(product):
        raise RecordingError(f"define(): invalid product {product!r}", site=site)
    if not isinstance(tag, str) or not TAG_RE.match(tag):
        raise RecordingError(
            f"define(): invalid tag {tag!r}: letters, digits, _ - . (start with a letter)",
            site=site,
        )
    if not callable(handler):
        raise RecordingError("define(): handler must be a function taking ctx", site=site)


def _code_steps(
    recordings: list[tuple[RecordingResult, str | None]],
) -> tuple[dict[str, CodeStep], set[str]]:
    """The Python behind the CODE steps (first recording wins) and every input path read."""
    code_steps: dict[str, CodeStep] = {}
    input_paths: set[str] = set()
    for result, _ in recordings:
        for step_tag, code in result.code_steps.items():
            code_steps.setdefault(step_tag, code)
        input_paths |= result.input_paths
    return code_steps, input_paths


def _validated_spec(raw: Mapping[str, Any], key: str, site: Site | None) -> WorkflowSpec:
    try:
        return WorkflowSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RecordingError(
            f"define({key!r}): {where}: {first['msg']}"
            + (f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""),
            site=site,
        ) from None


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


def main_output(recordings: list[tuple[RecordingResult, str | None]]) -> Any:
    """The workflow's output mapping: what the first recording that returns gives (the
    overrides' own path); other paths that return something else get a RETURN step."""
    for result, _ in recordings:
        if result.ending is None or result.ending.kind == "return":
            return result.output
    return None
