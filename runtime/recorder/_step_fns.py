"""Step functions: a connector call (run at define time) or code (a CODE event), what the
code reads from ctx and which recorded values it captured."""

from __future__ import annotations

import ast
import inspect
import types
from collections.abc import Callable
from typing import Any

from runtime.recorder._calls import CONNECTOR_NAMESPACES
from runtime.recorder._recording import Recording
from runtime.recorder._sites import RecordingError, Site
from runtime.recorder._source import function_node
from runtime.recorder._text import ref_text
from runtime.recorder._values import contains_recorded


def ctx_param_position(fn: Callable[..., Any], kind: str) -> int | None:
    """Which positional parameter receives ctx: step fns take () or (ctx); rollback fns
    take (), (result) or (result, ctx)."""
    count = _positional_count(fn)
    if kind == "step":
        return 0 if count >= 1 else None
    return 1 if count >= 2 else None


def _positional_count(fn: Callable[..., Any]) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 0
    return sum(
        1
        for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    )


def step_args(fn: Callable[..., Any], kind: str, ctx: Any, result: Any) -> tuple[Any, ...]:
    """The arguments a step (``ctx``) or rollback (``result, ctx``) function takes."""
    count = _positional_count(fn)
    if kind == "step":
        return (ctx,) if count >= 1 else ()
    return (result, ctx)[: min(count, 2)]


def connector_shaped(fn: Callable[..., Any], ctx: Any, ctx_position: int | None) -> bool:
    """True when ``fn``'s body is exactly one ``ctx.<connector>.<method>(...)`` call
    (returned, awaited or both) — then running it at define time only records that call."""
    node = function_node(fn)
    if node is None:
        return False
    expr: ast.expr | None
    if isinstance(node, ast.Lambda):
        expr = node.body
    elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        body = list(node.body)
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            body = body[1:]
        if len(body) != 1:
            return False
        stmt = body[0]
        if isinstance(stmt, ast.Return) and stmt.value is not None:
            expr = stmt.value
        elif isinstance(stmt, ast.Expr):
            expr = stmt.value
        else:
            return False
    else:
        return False
    if isinstance(expr, ast.Await):
        expr = expr.value
    if not isinstance(expr, ast.Call):
        return False
    func = expr.func
    if not (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Attribute)
        and isinstance(func.value.value, ast.Name)
        and func.value.attr in CONNECTOR_NAMESPACES
    ):
        return False
    return _name_is_ctx(fn, func.value.value.id, ctx, ctx_position)


def _name_is_ctx(fn: Callable[..., Any], name: str, ctx: Any, ctx_position: int | None) -> bool:
    code = fn.__code__
    params = code.co_varnames[: code.co_argcount]
    if name in params:
        return ctx_position is not None and params.index(name) == ctx_position
    if name in code.co_freevars:
        closure = fn.__closure__ or ()
        cell = closure[code.co_freevars.index(name)]
        try:
            return cell.cell_contents is ctx
        except ValueError:
            return False
    return getattr(fn, "__globals__", {}).get(name) is ctx


_NOT_JSON_CALLS = frozenset({"set", "frozenset", "object", "bytes", "bytearray", "iter", "open"})


def check_returns_json(fn: Callable[..., Any], tag: str, site: Site | None) -> None:
    """Refuse at define time a step function that visibly returns something that is not
    JSON (a set, a generator, a function...): its result could never be stored."""
    node = function_node(fn)
    if node is None:
        return
    returned: list[ast.expr] = []
    if isinstance(node, ast.Lambda):
        returned.append(node.body)
    else:
        stack: list[ast.AST] = list(getattr(node, "body", []))
        while stack:
            item = stack.pop()
            if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
                continue
            if isinstance(item, ast.Return) and item.value is not None:
                returned.append(item.value)
            stack.extend(ast.iter_child_nodes(item))
    for expr in returned:
        what = None
        if isinstance(expr, ast.Set | ast.SetComp):
            what = "a set"
        elif isinstance(expr, ast.GeneratorExp):
            what = "a generator"
        elif isinstance(expr, ast.Lambda):
            what = "a function"
        elif (
            isinstance(expr, ast.Call)
            and isinstance(expr.func, ast.Name)
            and expr.func.id in _NOT_JSON_CALLS
        ):
            what = f"a {expr.func.id}"
        if what:
            code = fn.__code__
            where = Site(code.co_filename, expr.lineno, code.co_name)
            raise RecordingError(
                f"step {tag!r} returns {what}, which is not JSON-serialisable: a step result "
                "is stored in the journal and must be a dict, list, string, number, boolean "
                "or None",
                site=where,
            )


# What a code step's function reads from ctx decides what its CODE event carries as
# references ("ctx" in its input): the engine resolves them, the live ctx serves them.
_LIVE_INPUT = frozenset({"input"})
_LIVE_STEPS = frozenset({"steps"})
_LIVE_STATE = frozenset({"state", "get_state", "getState"})
_LIVE_RUN = frozenset({"completed_steps", "current_step", "workflow_id", "run_id"})
ALL_STEPS = "*"  # placeholder, filled with the step's ancestors once the DAG is known


def live_needs(fn: Callable[..., Any]) -> dict[str, Any]:
    """What a code step's function reads from ctx, as the references its CODE event carries."""
    node = function_node(fn)
    if node is None:
        names: set[str] = set(_LIVE_INPUT | _LIVE_STEPS | _LIVE_STATE | _LIVE_RUN)
    else:
        names = {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
    needs: dict[str, Any] = {}
    if names & _LIVE_INPUT:
        needs["input"] = "$Input"
    if names & _LIVE_STEPS:
        needs["steps"] = ALL_STEPS
    if names & _LIVE_STATE:
        needs["state"] = ALL_STEPS
    if names & _LIVE_RUN:
        needs["run"] = {
            "id": "$Run{id}",
            "completed_steps": "$Run{completed_steps}",
            "current_step": "$Run{current_step}",
        }
    # ctx.variable('app', 'key') / ctx.constant(...) with literal names: resolved by the
    # engine like any $Variable, so the step function never queries configuration itself.
    for call in ast.walk(node) if node is not None else ():
        if (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr in {"variable", "constant"}
            and len(call.args) == 2
            and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in call.args)
        ):
            app, key = (a.value for a in call.args)  # type: ignore[attr-defined]
            kind = "Variable" if call.func.attr == "variable" else "Constant"
            table = needs.setdefault(f"{call.func.attr}s", {}).setdefault(app, {})
            table[key] = ref_text(kind, (app,), key)
    return needs


def closure_refs(fn: Callable[..., Any], ctx: Any, site: Site | None) -> dict[str, Any]:
    """Recorded values a code step captured (closure cells, default arguments), as
    expressions the engine resolves; the worker puts the real values back in their place."""
    refs: dict[str, Any] = {}
    _collect_refs(fn, ctx, site, "", refs, set())
    return refs


def _collect_refs(
    fn: Any, ctx: Any, site: Site | None, prefix: str, refs: dict[str, Any], seen: set[int]
) -> None:
    if id(fn) in seen or not isinstance(fn, types.FunctionType):
        return
    seen.add(id(fn))
    rec: Recording = ctx._rec
    code = fn.__code__
    for name, cell in zip(code.co_freevars, fn.__closure__ or (), strict=False):
        try:
            value = cell.cell_contents
        except ValueError:
            continue
        if value is ctx:
            continue
        if isinstance(value, types.FunctionType):
            _collect_refs(value, ctx, site, f"{prefix}{name}.", refs, seen)
        elif contains_recorded(value):
            refs[prefix + name] = rec.to_spec(value, site, f"captured variable {name!r}")
    for index, value in enumerate(fn.__defaults__ or ()):
        if contains_recorded(value):
            refs[f"{prefix}#{index}"] = rec.to_spec(value, site, "default argument")
    for key, value in (fn.__kwdefaults__ or {}).items():
        if contains_recorded(value):
            refs[f"{prefix}#{key}"] = rec.to_spec(value, site, f"default argument {key!r}")
