"""The live ctx: real input, step results and state, and connector calls that really run."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Generator, Mapping
from datetime import UTC, datetime
from typing import Any

from runtime.context._runtimes import StepRuntime
from runtime.context._values import wrap
from runtime.errors import StepError
from runtime.recorder import CallNamespace, LogLevels, contains_recorded, split_call


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


class _LiveNamespace(CallNamespace["LiveContext"]):
    """At run time: each method makes a call that runs when awaited (or used)."""

    def _make(self, label: str, spec: Any, kwargs: Mapping[str, Any]) -> LiveCall:
        return LiveCall(self._owner, label, spec, kwargs)


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
