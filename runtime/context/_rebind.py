"""Putting the real values back into a recorded step function, and running it."""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable, Mapping
from typing import Any

from runtime.context._live import LiveCall, LiveContext, to_json
from runtime.context._runtimes import StepRuntime
from runtime.context._values import wrap
from runtime.errors import StepError
from runtime.recorder import RecordingContext, RecordingError, contains_recorded


def rebind(fn: Callable[..., Any], refs: Mapping[str, Any], ctx: LiveContext) -> Callable[..., Any]:
    """``fn`` with its recorded captures replaced by real values and ctx by ``ctx``."""
    return _rebind(fn, refs, ctx, "", set())


def _needs_rebind(fn: types.FunctionType, depth: int = 0) -> bool:
    if depth > 10:
        return False
    for cell in fn.__closure__ or ():
        try:
            value = cell.cell_contents
        except ValueError:
            continue
        if isinstance(value, RecordingContext) or contains_recorded(value):
            return True
        if isinstance(value, types.FunctionType) and _needs_rebind(value, depth + 1):
            return True
    return any(contains_recorded(d) for d in fn.__defaults__ or ())


def _rebind(
    fn: Callable[..., Any], refs: Mapping[str, Any], ctx: LiveContext, prefix: str, seen: set[int]
) -> Callable[..., Any]:
    if not isinstance(fn, types.FunctionType) or id(fn) in seen:
        return fn
    seen.add(id(fn))
    code = fn.__code__
    cells: list[types.CellType] = []
    for name, cell in zip(code.co_freevars, fn.__closure__ or (), strict=False):
        key = prefix + name
        if key in refs:
            cells.append(types.CellType(wrap(refs[key])))
            continue
        try:
            value = cell.cell_contents
        except ValueError:
            cells.append(cell)
            continue
        if isinstance(value, RecordingContext):
            cells.append(types.CellType(ctx))
        elif isinstance(value, types.FunctionType) and _needs_rebind(value):
            cells.append(types.CellType(_rebind(value, refs, ctx, f"{key}.", seen)))
        else:
            cells.append(cell)
    defaults = tuple(
        wrap(refs[f"{prefix}#{i}"]) if f"{prefix}#{i}" in refs else value
        for i, value in enumerate(fn.__defaults__ or ())
    )
    rebuilt = types.FunctionType(
        code, fn.__globals__, fn.__name__, defaults or None, tuple(cells) or None
    )
    if fn.__kwdefaults__:
        rebuilt.__kwdefaults__ = {
            k: wrap(refs[f"{prefix}#{k}"]) if f"{prefix}#{k}" in refs else v
            for k, v in fn.__kwdefaults__.items()
        }
    rebuilt.__qualname__ = fn.__qualname__
    rebuilt.__module__ = fn.__module__
    return rebuilt


def _positional(fn: Callable[..., Any]) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 0
    return sum(
        1
        for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    )


def run_step_function(
    fn: Callable[..., Any],
    *,
    refs: Mapping[str, Any],
    runtime: StepRuntime,
    rollback: bool = False,
    result: Any = None,
) -> Any:
    """Run a recorded step (or rollback) function with real values; return JSON."""
    live = LiveContext(runtime)
    bound = rebind(fn, refs, live)
    count = _positional(bound)
    if rollback:
        args: tuple[Any, ...] = (wrap(result), live)[: min(count, 2)]
    else:
        args = (live,) if count >= 1 else ()
    what = f"the {'rollback' if rollback else 'step'} function {getattr(fn, '__qualname__', fn)}"
    try:
        out = bound(*args)
        if isinstance(out, LiveCall):
            out = out.result()
        elif inspect.isawaitable(out):
            out = _drive(out)
        if live._pending:
            raise StepError(
                f"ctx.{live._pending[0]._label}(...) was not awaited in {what}", retryable=False
            )
    except RecordingError as exc:
        # A recorded value hidden where the worker cannot put the real one back (inside
        # an object, a list of functions...): retrying cannot help.
        raise StepError(
            f"{what} used a value recorded at define time: {exc.message}. Capture run-time "
            "values directly (a variable or default argument of the step function, or ctx)",
            retryable=False,
        ) from None
    finally:
        for level, message, data in live.log.lines:
            runtime.log(level, message, data)
    return to_json(out, what)


def _drive(awaitable: Any) -> Any:
    """Await a step function's coroutine from sync code (the worker thread)."""
    from asgiref.sync import async_to_sync

    async def main() -> Any:
        value = awaitable
        while inspect.isawaitable(value):
            value = await value
        return value

    return async_to_sync(main)()
