"""The live ctx a code step's function gets in the worker (pure: no Django imports).

A CODE event recorded from ``ctx.step(tag, fn)`` runs ``fn`` for real. The function was
written against the recording ctx and closes over recorded values; here it is rebuilt with
the same code and its captured recorded values replaced by the real ones (resolved by the
engine from the event's ``refs``), and ``ctx`` replaced by a :class:`LiveContext` over the
run. Everything else it captured is kept as is.

The engine hands ``run_code_step(input, info)`` its StepInfo (run id, step, attempt,
idempotency key, ``log``); the run's data comes from the event's ``ctx`` references, which
the engine resolved. :func:`runtime_for` puts both behind the small :class:`StepRuntime`
protocol, so the same live ctx serves the engine and ``runtime.testing``.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import types
from collections.abc import Callable, Generator, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from runtime.errors import StepError
from runtime.recorder import (
    MISSING,
    CallNamespace,
    LogLevels,
    RecordingContext,
    RecordingError,
    contains_recorded,
    split_call,
)
from runtime.spec import EventType

logger = logging.getLogger("trellis.code")


@runtime_checkable
class StepRuntime(Protocol):
    """What a live ctx needs from whoever runs the step (the engine, or the test harness)."""

    def run_info(self) -> Mapping[str, Any]:
        """``input``, ``steps`` (tag → output), ``state``, ``id``, ``completed_steps``,
        ``current_step``."""
        ...

    def call(
        self,
        type: EventType,
        event: str,
        app: str | None,
        input: dict[str, Any],
        options: Mapping[str, Any],
    ) -> Any:
        """Run one connector event now and return its result."""
        ...

    def log(self, level: str, message: str, data: Any) -> None: ...

    def set_state(self, key: str, value: Any) -> None: ...

    def lookup(self, kind: str, app: str | None, key: str) -> Any:
        """``kind`` is ``variable``, ``constant`` or ``secret``."""
        ...


# --- values with attribute access (JS-like), still plain JSON -----------------------------


class AttrDict(dict[str, Any]):
    """A dict whose keys read as attributes too (``result.id``), as in the seed's JS.

    A key wins over a dict method of the same name (``ctx.input.items`` is the field);
    the methods stay reachable through ``dict.items(value)``."""

    def __getattribute__(self, name: str) -> Any:
        if not name.startswith("__") and dict.__contains__(self, name):
            return dict.__getitem__(self, name)
        return super().__getattribute__(name)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"no field {name!r} (fields: {', '.join(map(str, self)) or 'none'})")


def wrap(value: Any) -> Any:
    """Plain JSON → the same data with attribute access on every object."""
    if isinstance(value, Mapping):
        return AttrDict({str(k): wrap(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return [wrap(v) for v in value]
    return value


def _unwrap(value: Any) -> Any:
    if isinstance(value, LiveCall):
        return value.result()
    if isinstance(value, Mapping):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_unwrap(v) for v in value]
    return value


def to_json(value: Any, what: str) -> Any:
    """A step function's result as JSON, or a non-retryable StepError saying why not."""
    value = _unwrap(value)
    if contains_recorded(value):
        raise StepError(f"{what} returned a recorded value outside recording", retryable=False)
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise StepError(
            f"{what} returned a value that is not JSON-serialisable ({exc}); return a dict, "
            "list, string, number, boolean or None",
            retryable=False,
        ) from None


# --- the live ctx ------------------------------------------------------------------------


class LiveCall:
    """A connector call in a code step. In an ``async def`` it runs when awaited (on the
    engine's thread, where Django's connection is); in a plain ``def`` it runs at once
    and reads like its result (``ctx.action.run(...).id``)."""

    def __init__(self, ctx: LiveContext, label: str, spec: Any, kwargs: Mapping[str, Any]) -> None:
        self._ctx = ctx
        self._label = label
        self._done = False
        self._value: Any = None
        try:
            self._split = split_call(label, spec, kwargs)
        except ValueError as exc:
            raise StepError(str(exc), retryable=False) from None
        if _loop_running():
            ctx._pending.append(self)
        else:
            self.result()

    def __await__(self) -> Generator[Any, None, Any]:
        if self in self._ctx._pending:
            self._ctx._pending.remove(self)
        if self._done:
            return _ready(self._value).__await__()
        return self._ctx._run_sync(self.result).__await__()

    def result(self) -> Any:
        """The call's result (runs it the first time)."""
        if not self._done:
            split = self._split
            app = None if split.app is None else str(split.app)
            out = self._ctx._runtime.call(
                split.shape.type, str(split.event), app, dict(split.payload), dict(split.options)
            )
            self._value, self._done = wrap(out), True
        return self._value

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.result(), name)

    def __getitem__(self, key: Any) -> Any:
        return self.result()[key]


async def _ready(value: Any) -> Any:
    return value


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _LiveNamespace(CallNamespace):
    """At run time: each method makes a call that runs when awaited (or used)."""

    def _make(self, label: str, spec: Any, kwargs: Mapping[str, Any]) -> LiveCall:
        return LiveCall(self._ctx, label, spec, kwargs)


class _LiveTransform:
    """The same transforms as the recorder's, computed on real values."""

    @staticmethod
    def upper(value: Any) -> Any:
        return None if value is None else str(value).upper()

    @staticmethod
    def lower(value: Any) -> Any:
        return None if value is None else str(value).lower()

    @staticmethod
    def trim(value: Any) -> Any:
        return None if value is None else str(value).strip()

    @staticmethod
    def parse_json(value: Any) -> Any:
        return wrap(json.loads(value))

    @staticmethod
    def stringify(value: Any) -> str:
        return json.dumps(value)

    @staticmethod
    def now() -> str:
        return datetime.now(UTC).isoformat()

    @staticmethod
    def format_date(value: Any, fmt: str) -> str:
        if isinstance(value, int | float):
            moment = datetime.fromtimestamp(value / 1000, UTC)
        else:
            moment = datetime.fromisoformat(str(value))
        for token, code in (
            ("YYYY", "%Y"),
            ("MM", "%m"),
            ("DD", "%d"),
            ("HH", "%H"),
            ("mm", "%M"),
            ("ss", "%S"),
        ):
            fmt = fmt.replace(token, code)
        return moment.strftime(fmt)

    @staticmethod
    def length(value: Any) -> int:
        return len(value or [])

    size = length

    @staticmethod
    def split(value: Any, separator: str) -> list[str]:
        return str(value).split(separator)

    @staticmethod
    def join(value: Any, separator: str) -> str:
        return separator.join(str(v) for v in value)

    @staticmethod
    def concat(*values: Any) -> str:
        return "".join("" if v is None else str(v) for v in values)

    @staticmethod
    def add(a: Any, b: Any) -> Any:
        return a + b

    @staticmethod
    def subtract(a: Any, b: Any) -> Any:
        return a - b

    @staticmethod
    def substring(value: Any, start: int, length: int | None = None) -> str:
        text = str(value)
        return text[start:] if length is None else text[start : start + max(length, 0)]

    parseJson = parse_json
    formatDate = format_date


class _LiveLog(LogLevels):
    """Log lines are kept and handed to the runner when the function returns (on the
    engine's thread, which journals them with the step)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, Any]] = []

    def _log(self, level: str, message: Any, data: Any = None) -> None:
        self.lines.append((level, str(message), _unwrap(data)))


class LiveContext:
    """``ctx`` inside a code step at run time: real input, step results and state, and
    connector calls that really run. Durable control flow (steps, sleeps, signals, child
    workflows) belongs in the handler, so it is refused here."""

    def __init__(self, runtime: StepRuntime) -> None:
        self._runtime = runtime
        info = runtime.run_info()
        self.input: Any = wrap(info.get("input") or {})
        self.steps: Any = wrap(info.get("steps") or {})
        self._state: dict[str, Any] = dict(info.get("state") or {})
        self.workflow_id = info.get("id")
        self.run_id = self.workflow_id
        self.completed_steps = list(info.get("completed_steps") or [])
        self.current_step = info.get("current_step")
        self.action = _LiveNamespace(self, "action")
        self.database = _LiveNamespace(self, "database")
        self.graph = _LiveNamespace(self, "graph")
        self.notification = _LiveNamespace(self, "notification")
        self.storage = _LiveNamespace(self, "storage")
        self.messaging = _LiveNamespace(self, "messaging")
        self.quota = _LiveNamespace(self, "quota")
        self.fallback = _LiveNamespace(self, "fallback")
        self.transform = _LiveTransform()
        self.log = _LiveLog()
        self._pending: list[LiveCall] = []

    @property
    def state(self) -> Any:
        return wrap(self._state)

    def get_state(self, key: str, default: Any = None) -> Any:
        value = self._state.get(key)
        return wrap(default if value is None else value)

    def set_state(self, key: str, value: Any) -> None:
        value = to_json(value, f"ctx.set_state({key!r})")
        self._runtime.set_state(key, value)
        self._state[key] = value

    def variable(self, app: str, key: str) -> Any:
        return wrap(self._lookup("variable", app, key))

    def constant(self, app: str, key: str) -> Any:
        return wrap(self._lookup("constant", app, key))

    def _lookup(self, kind: str, app: str, key: str) -> Any:
        # Literal names were declared by the recorder and resolved by the engine.
        table = self._runtime.run_info().get(f"{kind}s") or {}
        if app in table and key in table[app]:
            return table[app][key]
        if _loop_running():
            raise StepError(
                f"ctx.{kind}({app!r}, {key!r}) in an async step function needs literal names "
                "(so the recorder declares it) or a plain def",
                retryable=False,
            )
        return self._runtime.lookup(kind, app, key)

    def secret(self, key: str) -> Any:
        return self._runtime.lookup("secret", None, key)

    @staticmethod
    def default(value: Any, fallback: Any) -> Any:
        return fallback if value is None else value

    async def _run_sync(self, fn: Callable[[], Any]) -> Any:
        """Run blocking work (a connector, the ORM) off the event loop, in the thread that
        called the step (asgiref keeps Django's connection and transaction there)."""
        from asgiref.sync import sync_to_async

        return await sync_to_async(fn, thread_sensitive=True)()

    def _refuse(self, what: str) -> Any:
        raise StepError(
            f"{what} cannot run inside a step function: call it from the handler, where it is "
            "recorded as its own durable step",
            retryable=False,
        )

    def step(self, *args: Any, **kwargs: Any) -> Any:
        return self._refuse("ctx.step")

    def sleep(self, *args: Any, **kwargs: Any) -> Any:
        return self._refuse("ctx.sleep")

    def wait_for_signal(self, *args: Any, **kwargs: Any) -> Any:
        return self._refuse("ctx.wait_for_signal")

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        return self._refuse("ctx.checkpoint")

    def trigger_rollback(self, *args: Any, **kwargs: Any) -> Any:
        return self._refuse("ctx.trigger_rollback")

    def workflow(self, *args: Any, **kwargs: Any) -> Any:
        return self._refuse("ctx.workflow")

    waitForSignal = wait_for_signal
    triggerRollback = trigger_rollback
    setState = set_state
    getState = get_state


# --- putting the real values back into a recorded function ---------------------------------


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


# --- runtimes: the engine's, and a bare one ---------------------------------------------------


class BareRuntime:
    """Run data only (from the CODE event's ``ctx`` references); no connectors."""

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self.data = dict(data or {})

    def run_info(self) -> Mapping[str, Any]:
        run = self.data.get("run") or {}
        return {
            "input": self.data.get("input") or {},
            "steps": self.data.get("steps") or {},
            "state": self.data.get("state") or {},
            "id": run.get("id"),
            "completed_steps": run.get("completed_steps") or [],
            "current_step": run.get("current_step"),
            "variables": self.data.get("variables") or {},
            "constants": self.data.get("constants") or {},
        }

    def call(
        self,
        type: EventType,
        event: str,
        app: str | None,
        input: dict[str, Any],
        options: Mapping[str, Any],
    ) -> Any:
        raise StepError("no connectors are available to this code step", retryable=False)

    def log(self, level: str, message: str, data: Any) -> None:
        logger.log(logging.getLevelName(level.upper()), "%s %s", message, data or "")

    def set_state(self, key: str, value: Any) -> None:
        raise StepError(
            "ctx.set_state cannot run inside a step function: call it from the handler "
            "(a SET_STATE step)",
            retryable=False,
        )

    def lookup(self, kind: str, app: str | None, key: str) -> Any:
        return None


class EngineRuntime(BareRuntime):
    """A code step run by the engine: ``info`` is its StepInfo (run id, step, attempt,
    idempotency key, ``log``); connector calls go through the same connectors as steps,
    in the run's environment."""

    def __init__(self, info: Any, data: Mapping[str, Any] | None = None) -> None:
        super().__init__(data)
        self.info = info
        self._calls = 0
        self._run: Any = None

    def run(self) -> Any:
        if self._run is None:
            from runtime.models import Run

            self._run = Run.objects.select_related("environment", "workflow__product").get(
                pk=self.info.run_id
            )
        return self._run

    def workflow_key(self) -> str:
        run = self.run()
        return f"{run.workflow.product.slug}/{run.workflow.tag}"

    def call(
        self,
        type: EventType,
        event: str,
        app: str | None,
        input: dict[str, Any],
        options: Mapping[str, Any],
    ) -> Any:
        from runtime.connectors import execute
        from runtime.connectors.loader import connector_call
        from runtime.spec import duration_ms

        self._calls += 1
        timeout = duration_ms(options.get("timeout")) if options.get("timeout") else None
        call = connector_call(
            type=type,
            event=event,
            input=input,
            environment=self.run().environment,
            app=app,
            # One key per call of this attempt, stable when the attempt runs again.
            idempotency_key=f"{self.info.idempotency_key}:{self._calls}",
            timeout_s=timeout / 1000 if timeout else None,
            run_id=self.info.run_id,
            step=self.info.step,
        )
        return execute(call)

    def log(self, level: str, message: str, data: Any) -> None:
        if isinstance(data, Mapping):
            fields = {str(k): v for k, v in data.items() if str(k) != "level"}
        else:
            fields = {} if data is None else {"data": data}
        self.info.log(message, level, **fields)

    def lookup(self, kind: str, app: str | None, key: str) -> Any:
        from runtime.connectors.loader import component_for

        if kind == "secret":
            raise StepError(
                "secrets are not handed to code: use $Secret{...} in a component's config",
                retryable=False,
            )
        env = self.run().environment
        component = component_for(product_id=env.product_id, environment_id=env.pk, tag=str(app))
        table = component.variables if kind == "variable" else component.constants
        return table.get(key)


def runtime_for(ctx: Any, data: Mapping[str, Any] | None) -> StepRuntime:
    """The runtime behind a code step: a test harness's own, the engine's, or bare."""
    if isinstance(ctx, StepRuntime):
        return ctx
    if ctx is not None and getattr(ctx, "run_id", None) is not None:
        return EngineRuntime(ctx, data)
    return BareRuntime(data)


def log_to(ctx: Any, level: str, message: Any, data: Any) -> None:
    """Journal one log line through the runner's ctx (or Python logging without one)."""
    text = "" if message is None else str(message)
    runtime_for(ctx, None).log(level, text, None if data is MISSING else data)


__all__ = [
    "AttrDict",
    "BareRuntime",
    "EngineRuntime",
    "LiveContext",
    "StepRuntime",
    "log_to",
    "rebind",
    "run_step_function",
    "runtime_for",
    "wrap",
]
