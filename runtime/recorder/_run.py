"""Running a handler (or a query) once under the recorder, in a private event loop."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import linecache
import threading
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from runtime.recorder._ctx import RecordingContext
from runtime.recorder._recording import STEP_FRAME, CodeStep, DecisionPath, Node, Recording
from runtime.recorder._scope import CLAUSES, FRONTIER, TaskInfo
from runtime.recorder._sites import RecordingError, Site, traceback_site

# The recording the running handler belongs to (what the task factory tracks forks for).
_REC: contextvars.ContextVar[Recording | None] = contextvars.ContextVar("trellis_rec", default=None)


@dataclass
class Ending:
    """How one recording of the handler ended: ``return`` (the output is the result's) or
    ``raise`` (with its message), after the steps in ``deps``."""

    kind: str  # "return" | "raise"
    deps: set[str]
    site: Site | None
    message: str = ""


@dataclass
class RecordingResult:
    """What one recording of a handler produced."""

    nodes: dict[str, Node]
    output: Any
    code_steps: dict[str, CodeStep]
    input_paths: set[str]
    used_overrides: set[str]
    state_keys: list[str] = field(default_factory=list)
    path: DecisionPath = field(default_factory=DecisionPath)
    ending: Ending | None = None
    auto_tags: set[str] = field(default_factory=set)


class _Raised(Exception):
    """The handler ran a ``raise`` statement on a path chosen by branch_overrides or a
    scenario: that path ends the run failed (a FAIL step), it is not a recording error."""

    def __init__(self, ending: Ending) -> None:
        super().__init__(ending.message)
        self.ending = ending


def _task_factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
    """Track which task forked which, so the step after ``gather`` joins every branch."""
    rec = _REC.get()
    if rec is None:
        return asyncio.Task(coro, loop=loop, **kwargs)
    parent = asyncio.current_task(loop)
    info = TaskInfo()
    rec.children.setdefault(parent, []).append(info)

    async def tracked() -> Any:
        try:
            return await coro
        finally:
            final = set(FRONTIER.get())
            me = asyncio.current_task()
            for child in rec.children.pop(me, []):
                if child.done:
                    final |= child.final
            info.final = frozenset(final)
            info.done = True

    return asyncio.Task(tracked(), loop=loop, **kwargs)


def run_coroutine(factory: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run a recording in a private event loop (in a thread when one is already running)."""

    def go() -> Any:
        loop = asyncio.new_event_loop()
        loop.set_task_factory(_task_factory)
        try:
            result = loop.run_until_complete(factory())
            left = [t for t in asyncio.all_tasks(loop) if not t.done()]
            if left:
                for task in left:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
                raise RecordingError(
                    "the handler returned while a task it started was still running; await "
                    "it (e.g. with asyncio.gather) so its steps are part of the workflow"
                )
            return result
        finally:
            loop.close()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return go()
    box: dict[str, Any] = {}
    context = contextvars.copy_context()

    def in_thread() -> None:
        try:
            box["value"] = context.run(go)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=in_thread, name="trellis-recorder")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


def record_handler(
    handler: Callable[..., Any],
    *,
    workflow: str,
    module: str,
    overrides: Mapping[str, Any],
    sample_input: Mapping[str, Any],
    scenario: Mapping[str, Any] | None,
    signals: frozenset[str] | None,
    site: Site | None,
    forced: tuple[bool, ...] = (),
) -> RecordingResult:
    """Run ``handler(ctx)`` once under the recorder, taking the ``forced`` outcomes at
    its first branches on branch_overrides values."""
    rec = Recording(
        workflow=workflow,
        module=module,
        overrides=overrides,
        sample_input=sample_input,
        scenario=scenario,
        signals=signals,
        forced=forced,
    )
    ctx = RecordingContext(rec)
    ending: list[Ending] = []

    async def main() -> Any:
        _REC.set(rec)
        FRONTIER.set(frozenset())
        CLAUSES.set(())
        STEP_FRAME.set(None)
        try:
            out = handler(ctx)
            while inspect.isawaitable(out):
                out = await out
        except Exception as exc:
            raised = _raised_on_a_path(exc, rec)
            if raised is None:
                raise
            raise _Raised(Ending("raise", rec.frontier(), raised, str(exc)[:2000])) from exc
        ending.append(Ending("return", rec.frontier(), None))
        return out

    try:
        output = run_coroutine(main)
    except _Raised as exc:
        output, ending[:] = None, [exc.ending]
    except RecordingError:
        raise
    except Exception as exc:
        raise RecordingError(
            f"the handler raised {type(exc).__name__} while recording: {exc}",
            site=traceback_site(exc.__traceback__) or site,
        ) from exc
    if rec.loop_error is not None:
        raise rec.loop_error
    for pending in rec.unawaited.values():
        raise RecordingError(f"{pending.describe()} was never awaited", site=pending._site)
    for label, where, coro, _ in list(rec.unstarted.values()):
        coro.close()
        raise RecordingError(f"{label} was never awaited (missing `await`?)", site=where)
    spec_output = rec.to_spec(output, _handler_site(handler) or site, "the handler's return value")
    if ending and ending[0].kind == "raise":
        ending[0].message = rec.to_spec(ending[0].message, ending[0].site, "the raised message")
    return RecordingResult(
        nodes=rec.nodes,
        output=spec_output,
        code_steps=rec.code_steps,
        input_paths=rec.input_paths,
        used_overrides=rec.used_overrides,
        state_keys=list(rec.state_keys),
        path=rec.path,
        ending=ending[0] if ending else None,
        auto_tags=rec.auto_tags,
    )


def _raised_on_a_path(exc: Exception, rec: Recording) -> Site | None:
    """Where the user's ``raise`` statement is, when ``exc`` comes from one on a path that
    only some runs take (a branch on an override, a scenario); None otherwise (a bug, or
    a raise on every path: reported as a recording error)."""
    if isinstance(exc, RecordingError) or not (rec.path.clauses or rec.scenario):
        return None
    where = traceback_site(exc.__traceback__)
    if where is None:
        return None
    line = linecache.getline(where.filename, where.lineno).strip()
    return where if line.startswith("raise") else None


def record_query(
    handler: Callable[..., Any], *, name: str, workflow: str, module: str, site: Site | None
) -> Any:
    """Record a query handler (read-only) into its output mapping."""
    rec = Recording(
        workflow=workflow,
        module=module,
        overrides={},
        sample_input={},
        scenario=None,
        signals=None,
        read_only=f"query {name!r} is read-only and",
    )
    ctx = RecordingContext(rec)
    token = _REC.set(rec)
    try:
        out = handler(ctx)
        if inspect.isawaitable(out):
            if inspect.iscoroutine(out):
                out.close()
            raise RecordingError(f"query {name!r}: the handler must be a plain function", site=site)
    except RecordingError:
        raise
    except Exception as exc:
        raise RecordingError(
            f"query {name!r} raised {type(exc).__name__}: {exc}",
            site=traceback_site(exc.__traceback__) or site,
        ) from exc
    finally:
        _REC.reset(token)
    return rec.to_spec(out, _handler_site(handler) or site, f"query {name!r}")


def _handler_site(handler: Callable[..., Any]) -> Site | None:
    code = getattr(handler, "__code__", None)
    if code is None:
        return None
    return Site(code.co_filename, code.co_firstlineno, code.co_name)
