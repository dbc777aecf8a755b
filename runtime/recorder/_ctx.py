"""The ``ctx`` a handler gets at define time: every call records a node."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from runtime.recorder._calls import CAMEL, STEP_OPTION_KEYS, check_option
from runtime.recorder._ctx_members import (
    RecordingLog,
    RecordingNamespace,
    RecordingTransform,
    StepResults,
)
from runtime.recorder._loops import check_options as check_loop_options
from runtime.recorder._recording import STEP_FRAME, CodeStep, Recording, StepFrame
from runtime.recorder._sites import RecordingError, Site, traceback_site, user_site
from runtime.recorder._step_fns import (
    check_returns_json,
    closure_refs,
    connector_shaped,
    ctx_param_position,
    live_needs,
    step_args,
)
from runtime.recorder._text import CODE_STEP_EVENT, MISSING, literal, ref_text
from runtime.recorder._values import Recorded
from runtime.spec import TAG_RE, EventType, duration_ms


class RecordingContext:
    """The ``ctx`` a handler gets at define time. Same surface as the run-time ctx."""

    def __init__(self, rec: Recording) -> None:
        self._rec = rec
        self.input: Any = rec.input_root()
        self.action = RecordingNamespace(rec, "action")
        self.database = RecordingNamespace(rec, "database")
        self.graph = RecordingNamespace(rec, "graph")
        self.notification = RecordingNamespace(rec, "notification")
        self.storage = RecordingNamespace(rec, "storage")
        self.messaging = RecordingNamespace(rec, "messaging")
        self.quota = RecordingNamespace(rec, "quota")
        self.fallback = RecordingNamespace(rec, "fallback")
        self.transform = RecordingTransform(rec)
        self.log = RecordingLog(rec)
        self.steps = StepResults(rec)

    # run info -------------------------------------------------------------------------------
    @property
    def workflow_id(self) -> Any:
        return self._rec.ref("Run", (), "id")

    run_id = workflow_id

    @property
    def completed_steps(self) -> Any:
        return self._rec.ref("Run", (), "completed_steps")

    @property
    def current_step(self) -> Any:
        return self._rec.ref("Run", (), "current_step")

    @property
    def state(self) -> Any:
        """The run state as known so far: ``{key: $State{key}}`` for every key set before
        this line (the language has no whole-state reference)."""
        return {key: self._rec.ref("State", (), key) for key in self._rec.state_keys}

    def get_state(self, key: str, default: Any = MISSING) -> Any:
        value = self._rec.ref("State", (), key)
        return value if default is MISSING else self.default(value, default)

    def variable(self, app: str, key: str) -> Any:
        return self._rec.ref("Variable", (app,), key)

    def constant(self, app: str, key: str) -> Any:
        return self._rec.ref("Constant", (app,), key)

    def secret(self, key: str) -> Any:
        return self._rec.ref("Secret", (), key)

    def default(self, value: Any, fallback: Any) -> Any:
        """``$Default(value, fallback)``: the fallback when the value is missing or null."""
        if not isinstance(value, Recorded):
            return fallback if value is None else value
        site = user_site(2)
        if isinstance(fallback, Recorded):
            fb = fallback._r_text
        else:
            try:
                fb = literal(fallback)
            except ValueError:
                raise RecordingError(
                    f"ctx.default: the fallback must be a scalar or a recorded value, not "
                    f"{type(fallback).__name__}",
                    site=site,
                ) from None
        sample = value._r_sample if value._r_sample is not MISSING else MISSING
        return Recorded(
            self._rec,
            f"$Default({value._r_text}, {fb})",
            sample=sample,
            origin=value._r_origin if sample is not MISSING else None,
        )

    # steps ------------------------------------------------------------------------------------
    def step(
        self,
        tag: Any,
        fn: Callable[..., Any],
        rollback: Callable[..., Any] | None = None,
        options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Coroutine[Any, Any, Any]:
        """Record a step. ``fn`` is one connector call (the step becomes that event) or
        any Python (a CODE event that runs ``fn`` for real in the worker)."""
        site = user_site(2)
        return self._deferred(
            f"ctx.step({tag!r}, ...)",
            site,
            lambda: self._step(tag, fn, rollback, options, kwargs, site),
        )

    def _deferred(
        self, label: str, site: Site | None, make: Callable[[], Coroutine[Any, Any, Any]]
    ) -> Coroutine[Any, Any, Any]:
        """A coroutine that records when awaited; one never awaited is reported."""
        rec = self._rec
        key = object()

        async def run() -> Any:
            rec.unstarted.pop(id(key), None)
            return await make()

        coro = run()
        rec.unstarted[id(key)] = (label, site, coro, key)
        return coro

    async def _step(
        self,
        tag: Any,
        fn: Callable[..., Any],
        rollback: Callable[..., Any] | None,
        options: Mapping[str, Any] | None,
        kwargs: Mapping[str, Any],
        site: Site | None,
    ) -> Any:
        rec = self._rec
        rec.check_writable("run a step", site)
        tag = rec.concrete_text(tag, site, "step tag")
        if not callable(fn):
            raise RecordingError(f"ctx.step({tag!r}, fn): fn must be a function", site=site)
        if rollback is not None and not callable(rollback):
            raise RecordingError(f"ctx.step({tag!r}): rollback must be a function", site=site)
        opts = _step_options(options, kwargs, site, tag)
        condition = opts.pop("condition", None)
        description = opts.pop("description", None)
        rec.check_tag(tag, site)
        event = await self._step_event(tag, fn, site, kind="step")
        if rollback is not None:
            event["rollback"] = await self._step_event(tag, rollback, site, kind="rollback")
        event.update(opts)
        if description:
            event["description"] = description
        rec.record(tag, event, site=site, condition=condition)
        return rec.step_result(tag)

    async def _step_event(
        self, tag: str, fn: Callable[..., Any], site: Site | None, *, kind: str
    ) -> dict[str, Any]:
        rec = self._rec
        ctx_position = ctx_param_position(fn, kind)
        if connector_shaped(fn, self, ctx_position):
            frame = StepFrame(tag, kind)
            token = STEP_FRAME.set(frame)
            try:
                args = step_args(fn, kind, self, rec.step_result(tag))
                out = fn(*args)
                while inspect.isawaitable(out):
                    out = await out
            except RecordingError:
                raise
            except Exception as exc:
                raise RecordingError(
                    f"the {kind} function of step {tag!r} raised {type(exc).__name__}: {exc}",
                    site=traceback_site(exc.__traceback__) or site,
                ) from exc
            finally:
                STEP_FRAME.reset(token)
            if len(frame.calls) == 1:
                call = frame.calls[0]
                if not call._done:
                    raise RecordingError(f"{call.describe()} was not awaited", site=call._site)
                event = call._call.as_event()
                if kind == "rollback":
                    event.pop("backoff", None)  # a rollback retries at a fixed pace
                return event
            # fall through: not exactly one call after all → run it as code
        check_returns_json(fn, tag, site)
        code = rec.code_steps.setdefault(tag, CodeStep())
        if kind == "rollback":
            code.rollback = fn
        else:
            code.fn = fn
        payload: dict[str, Any] = {"workflow": rec.workflow, "module": rec.module, "step": tag}
        refs = closure_refs(fn, self, site)
        if refs:
            payload["refs"] = refs
        live = live_needs(fn)
        if live:
            payload["ctx"] = live
        if kind == "rollback":
            payload["rollback"] = True
            payload["result"] = ref_text("Step", (tag,), "")
        return {"type": EventType.CODE.value, "event": CODE_STEP_EVENT, "input": payload}

    # control flow ---------------------------------------------------------------------------
    def _control(
        self, tag: str, event: dict[str, Any], site: Site | None, what: str
    ) -> Coroutine[Any, Any, Any]:
        async def control() -> Recorded:
            self._rec.check_writable(what, site)
            self._rec.record(tag, event, site=site)
            return self._rec.step_result(tag)

        label = {
            "sleep": "ctx.sleep(...)",
            "wait for a signal": "ctx.wait_for_signal(...)",
            "save a checkpoint": "ctx.checkpoint(...)",
            "trigger a rollback": "ctx.trigger_rollback(...)",
            "start a child workflow": "ctx.workflow(...)",
        }.get(what, what)
        return self._deferred(label, site, control)

    def sleep(self, duration: int | str, *, tag: str | None = None) -> Coroutine[Any, Any, Any]:
        """Park the run for ``duration`` (ms, or '5s', '5m', '1h', '1d')."""
        site = user_site(2)
        if isinstance(duration, Recorded) or isinstance(duration, bool):
            raise RecordingError("ctx.sleep needs a fixed duration", site=site)
        try:
            duration_ms(duration)
        except (ValueError, TypeError) as exc:
            raise RecordingError(f"ctx.sleep: {exc}", site=site) from None
        step_tag = self._rec.concrete_text(tag, site, "tag") if tag else self._rec.auto_tag("sleep")
        event = {"type": EventType.SLEEP.value, "event": "sleep", "input": {"duration": duration}}
        return self._control(step_tag, event, site, "sleep")

    def wait_for_signal(
        self,
        name: str | list[str],
        options: Mapping[str, Any] | None = None,
        *,
        timeout: int | str | None = None,
        tag: str | None = None,
    ) -> Coroutine[Any, Any, Any]:
        """Park the run until one of the named signals arrives; its payload is the result."""
        site = user_site(2)
        rec = self._rec
        opts = dict(options or {})
        unknown = set(opts) - {"timeout", "tag"}
        if unknown:
            raise RecordingError(
                f"ctx.wait_for_signal: unknown option {sorted(unknown)[0]!r}", site=site
            )
        timeout = opts.get("timeout", timeout)
        tag = opts.get("tag", tag)
        names = [name] if isinstance(name, str) else list(name)
        if not names or not all(isinstance(n, str) for n in names):
            raise RecordingError(
                "ctx.wait_for_signal needs a signal name or a list of names", site=site
            )
        for signal in names:
            if rec.signals is not None and signal not in rec.signals:
                declared = ", ".join(sorted(rec.signals)) or "none"
                raise RecordingError(
                    f"signal {signal!r} is not declared; add it to signals={{'{signal}': "
                    f"{{'input': {{...}}}}}} (declared: {declared})",
                    site=site,
                )
        if timeout is not None:
            try:
                duration_ms(timeout)
            except (ValueError, TypeError) as exc:
                raise RecordingError(f"ctx.wait_for_signal: timeout: {exc}", site=site) from None
        step_tag = (
            rec.concrete_text(tag, site, "tag") if tag else rec.auto_tag("wait-" + "-".join(names))
        )
        payload: dict[str, Any] = {"signals": names}
        if timeout is not None:
            payload["timeout"] = timeout
        event = {"type": EventType.WAIT_SIGNAL.value, "event": ",".join(names), "input": payload}
        return self._control(step_tag, event, site, "wait for a signal")

    def checkpoint(self, name: str, data: Any = None) -> Coroutine[Any, Any, Any]:
        """Save a named recovery point (``to_checkpoint`` rollbacks stop here)."""
        site = user_site(2)
        rec = self._rec
        name = rec.concrete_text(name, site, "checkpoint name")
        payload: dict[str, Any] = {"name": name}
        if data is not None:
            payload["data"] = rec.to_spec(data, site, "checkpoint data")
        event = {"type": EventType.CHECKPOINT.value, "event": name, "input": payload}
        return self._control(name, event, site, "save a checkpoint")

    def trigger_rollback(self, reason: Any = "") -> Coroutine[Any, Any, Any]:
        """Compensate the completed steps now (per the rollback strategy) and fail the run."""
        site = user_site(2)
        rec = self._rec
        payload = {"reason": rec.to_spec(reason, site, "rollback reason")}
        event = {"type": EventType.ROLLBACK.value, "event": "rollback", "input": payload}
        return self._control(rec.auto_tag("rollback"), event, site, "trigger a rollback")

    def workflow(
        self,
        child_id: Any,
        tag: str,
        input: Any = None,
        options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Coroutine[Any, Any, Any]:
        """Run workflow ``tag`` of this product as a child run; its output is the result."""
        site = user_site(2)
        rec = self._rec
        opts = {CAMEL.get(k, k): v for k, v in {**(options or {}), **kwargs}.items()}
        unknown = set(opts) - {"timeout", "retries", "retry_delay", "parent_close_policy", "tag"}
        if unknown:
            raise RecordingError(f"ctx.workflow: unknown option {sorted(unknown)[0]!r}", site=site)
        if not isinstance(tag, str) or not TAG_RE.match(tag):
            raise RecordingError(f"ctx.workflow: invalid workflow tag {tag!r}", site=site)
        policy = opts.pop("parent_close_policy", None)
        if policy is not None and policy not in {"terminate", "abandon", "request_cancel"}:
            raise RecordingError(
                "ctx.workflow: parent_close_policy must be terminate, abandon or request_cancel",
                site=site,
            )
        step_tag = opts.pop("tag", None)
        if step_tag is None:
            concrete = isinstance(child_id, str) and "$" not in child_id and TAG_RE.match(child_id)
            step_tag = child_id if concrete else rec.auto_tag(f"child-{tag}")
        else:
            step_tag = rec.concrete_text(step_tag, site, "tag")
        payload: dict[str, Any] = {
            "child_id": rec.to_spec(child_id, site, "child id"),
            "input": rec.to_spec(input if input is not None else {}, site, "child input"),
        }
        if policy:
            payload["parent_close_policy"] = policy
        event: dict[str, Any] = {"type": EventType.FEATURE.value, "event": tag, "input": payload}
        for key, value in opts.items():
            event[key] = check_option(key, value, site, "ctx.workflow")
        return self._control(step_tag, event, site, "start a child workflow")

    def set_state(self, key: str, value: Any) -> None:
        """Set run state ``key`` (a SET_STATE event); read it back with ``get_state``."""
        site = user_site(2)
        rec = self._rec
        rec.check_writable("set state", site)
        if not isinstance(key, str) or not key:
            raise RecordingError("ctx.set_state needs a string key", site=site)
        payload = {key: rec.to_spec(value, site, f"state {key!r}")}
        event = {"type": EventType.SET_STATE.value, "event": "set_state", "input": payload}
        rec.record(rec.auto_tag(f"set-{key}"), event, site=site)
        rec.state_keys.setdefault(key, None)

    def foreach(
        self, items: Any, *, tag: str | None = None, max_concurrency: int | None = None
    ) -> Any:
        """``for item in ctx.foreach(ctx.input.items, max_concurrency=5):`` records one
        FOREACH step over a list known at run time (the workflow's input or a step's
        result); ``tag`` names the step, ``max_concurrency`` runs that many items at once.
        A plain ``for item in ctx.input.items:`` does the same with the defaults."""
        site = user_site(2)
        check_loop_options(tag, max_concurrency, site)
        if not isinstance(items, Recorded) or items._r_ref is None:
            raise RecordingError(
                "ctx.foreach loops over a list known at run time: ctx.input.<key> or a"
                " step's result (a plain Python list is looped over by Python)",
                site=site,
            )
        if tag is not None:
            tag = self._rec.concrete_text(tag, site, "loop tag")
        return self._rec.loop_over(items, tag=tag, max_concurrency=max_concurrency, site=site)

    # The seed's camelCase names, for pasted code.
    waitForSignal = wait_for_signal
    triggerRollback = trigger_rollback
    setState = set_state
    getState = get_state


def _step_options(
    options: Mapping[str, Any] | None, kwargs: Mapping[str, Any], site: Site | None, tag: str
) -> dict[str, Any]:
    if options is not None and not isinstance(options, Mapping):
        raise RecordingError(f"ctx.step({tag!r}): options must be a dict", site=site)
    merged = {CAMEL.get(k, k): v for k, v in {**(options or {}), **kwargs}.items()}
    out: dict[str, Any] = {}
    for key, value in merged.items():
        if key in STEP_OPTION_KEYS:
            out[key] = check_option(key, value, site, f"ctx.step({tag!r})")
        elif key in {"condition", "description"}:
            if value is not None and not isinstance(value, str):
                raise RecordingError(f"ctx.step({tag!r}): {key} must be a string", site=site)
            out[key] = value
        else:
            allowed = ", ".join((*STEP_OPTION_KEYS, "condition", "description"))
            raise RecordingError(
                f"ctx.step({tag!r}): unknown option {key!r} (allowed: {allowed})", site=site
            )
    return out
