"""Run a workflow in-process in your tests, with fake connector results (pure: no Django).

The spec is compiled by the real compiler, expressions and conditions are evaluated by the
real expression language, and what happens next (which sequences start, retries,
``allow_fail``, compensation order, how the run ends) is decided by the engine's own pure
rules (:mod:`runtime.engine`). Code steps run for real. Only the outside world is faked::

    from runtime.testing import Fail, WorkflowTestEnvironment
    from myapp.workflows import order_fulfillment

    def test_an_unavailable_order_returns_early():
        env = WorkflowTestEnvironment(fakes={"validate": {"available": False}})
        run = env.run(order_fulfillment, input={"orderId": "o-1", "amount": 42})
        assert run.output == {"success": False, "reason": "items_unavailable"}
        assert run.steps["payment"].status == "not_run"  # the run returned before it

A fake is keyed by step tag (``"payment"``), by ``"<tag>:rollback"`` for a rollback, or —
for connector calls made inside a code step — by ``"<app>:<event>"`` or ``"<event>"``. Its
value is the result, a function of the step's resolved input, a :class:`Fail`, or a list
(one item per attempt). Sleeps are instant, step timeouts are not enforced, and a
``wait_for_signal`` takes the next matching signal from ``signals=`` (without one the run
ends ``waiting``). RETURN, FAIL and ROLLBACK steps end and roll back runs as the engine
does; steps a run never reached are ``not_run``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from runtime import engine
from runtime.compiler import Plan, PlanStep, compile_spec, is_iteration, iteration_key
from runtime.connectors import code as _code  # noqa: F401 - registers the built-in step functions
from runtime.context import BareRuntime
from runtime.errors import HandlerRaised, StepError, TrellisError
from runtime.expressions import DictScope, evaluate_condition, resolve
from runtime.recorder import registry, using
from runtime.spec import EventType, WorkflowSpec, is_log_event
from runtime.step_functions import step_function_get

__all__ = ["Fail", "StepResult", "TestRun", "WorkflowTestEnvironment"]


@dataclass(frozen=True)
class Fail:
    """A fake result that fails the step (``retryable`` decides whether retries apply)."""

    message: str = "failed (fake)"
    retryable: bool = False


@dataclass
class StepResult:
    tag: str
    status: str = "pending"
    input: Any = None
    output: Any = None
    error: dict[str, Any] | None = None
    attempts: int = 0
    rollback_status: str = ""


@dataclass
class TestRun:
    """The outcome of :meth:`WorkflowTestEnvironment.run`."""

    __test__ = False  # not a pytest test class

    status: str
    output: Any
    error: dict[str, Any] | None
    steps: dict[str, StepResult]
    journal: list[dict[str, Any]]
    state: dict[str, Any]
    waiting_for: list[str] = field(default_factory=list)
    plan: Plan | None = field(default=None, repr=False)
    scope: DictScope | None = field(default=None, repr=False)

    @property
    def completed(self) -> list[str]:
        """Tags of the completed steps, in the order they completed."""
        return [e["step"] for e in self.journal if e["kind"] == "step_completed"]

    @property
    def logs(self) -> list[dict[str, Any]]:
        return [e["data"] for e in self.journal if e["kind"] == "log"]

    def kinds(self) -> list[tuple[str, str]]:
        return [(e["kind"], e["step"]) for e in self.journal]

    def query(self, name: str) -> Any:
        """Evaluate a declared query over the run, as the API would."""
        if self.plan is None or self.scope is None or name not in self.plan.queries:
            raise KeyError(f"no query {name!r}")
        return resolve(self.plan.queries[name], self.scope)


class _Stop(Exception):
    """The run winds down: a failure, a RETURN step, or a wait nobody answers."""

    def __init__(
        self, reason: str, error: dict[str, Any] | None = None, output: Any = None
    ) -> None:
        self.reason = reason
        self.error = error
        self.output = output


class _IterationOutputs(Mapping[str, Any]):
    """Step outputs as a loop iteration reads them: a body step's tag is that step in the
    same iteration (``charge`` → ``charge[3]``)."""

    def __init__(self, outputs: Mapping[str, Any], index: int, body: frozenset[str]) -> None:
        self.outputs = outputs
        self.index = index
        self.body = body

    def _key(self, tag: str) -> str:
        return f"{tag}[{self.index}]" if tag in self.body else tag

    def __getitem__(self, tag: str) -> Any:
        return self.outputs[self._key(tag)]

    def __iter__(self) -> Iterator[str]:
        return iter(self.outputs)

    def __len__(self) -> int:
        return len(self.outputs)


class _Run:
    def __init__(
        self,
        env: WorkflowTestEnvironment,
        plan: Plan,
        input: dict[str, Any],
        fakes: Mapping[str, Any],
        signals: list[tuple[str, Any]],
        state: dict[str, Any],
        product: str | None,
    ) -> None:
        self.env = env
        self.plan = plan
        self.fakes = dict(fakes)
        self.signals = signals
        self.product = product
        self.attempt_counts: dict[str, int] = {}
        self.steps = {s.tag: StepResult(s.tag) for s in plan.steps}
        self.journal: list[dict[str, Any]] = []
        self.outputs: dict[str, Any] = {}
        self.seq_outputs: dict[str, dict[str, Any]] = {}
        self.run_info: dict[str, Any] = {"id": 1, "status": "running", "completed_steps": []}
        self.scope = DictScope(
            input=input,
            steps=self.outputs,
            sequences=self.seq_outputs,
            state=state,
            variables=env.variables,
            constants=env.constants,
            secrets=env.secrets,
            run=self.run_info,
            now=env.now,
        )
        self.state = state
        self.finished: dict[str, datetime] = {}
        self.clock = datetime(2000, 1, 1, tzinfo=UTC)
        self.waiting_for: list[str] = []
        self.manual_rollback = False  # a ROLLBACK step compensated

    def note(self, kind: str, step: str = "", data: Any = None) -> None:
        self.journal.append(
            {"seq": len(self.journal) + 1, "kind": kind, "step": step, "data": data or {}}
        )

    # --- the run -----------------------------------------------------------------------------
    def go(self) -> TestRun:
        self.note("run_started")
        statuses = {s.tag: "pending" for s in self.plan.sequences}
        stop: _Stop | None = None
        try:
            while True:
                decision = engine.schedule(
                    self.plan.sequences,
                    statuses,
                    should_skip=lambda tag: evaluate_condition(
                        self.plan.sequence(tag).skip_if or "false", self.scope
                    ),
                )
                for tag in decision.skipped:
                    statuses[tag] = "skipped"
                    self.note("sequence_skipped", tag)
                    for step in self.plan.sequence(tag).events:
                        self.steps[step.tag].status = "skipped"
                if not decision.start:
                    break
                for tag in decision.start:
                    statuses[tag] = "running"
                    self.note("sequence_started", tag)
                    for step in self.plan.sequence(tag).events:
                        self.run_step(step)
                    statuses[tag] = "completed"
                    self.note("sequence_completed", tag)
        except _Stop as exc:
            stop = exc
        if stop is None or stop.reason != "waiting":
            for result in self.steps.values():
                if result.status == "pending":  # the run ended before it (as in the engine)
                    result.status = "not_run"
        if stop is None or stop.reason == "returned":
            status = engine.returned_status(manual_rollback=self.manual_rollback)
            self.run_info["status"] = status
            output = resolve(self.plan.output, self.scope) if stop is None else stop.output
            self.note(f"run_{status}", data={"output": output})
            return self.result(status, output, None)
        if stop.reason == "waiting":
            self.run_info["status"] = "waiting"
            self.note("run_waiting", data={"signals": self.waiting_for})
            return self.result("waiting", None, None)
        rolled_back, rollback_failed = self.compensate()
        end = engine.run_end_status(
            stop_reason=stop.reason,
            rolled_back=rolled_back,
            rollback_failed=rollback_failed,
            manual_rollback=self.manual_rollback,
        )
        self.run_info["status"] = end
        self.note(f"run_{end}", data={"error": stop.error})
        return self.result(end, None, stop.error)

    def result(self, status: str, output: Any, error: dict[str, Any] | None) -> TestRun:
        return TestRun(
            status=status,
            output=output,
            error=error,
            steps=self.steps,
            journal=self.journal,
            state=self.state,
            waiting_for=self.waiting_for,
            plan=self.plan,
            scope=self.scope,
        )

    def run_step(self, step: PlanStep) -> None:
        result = self.steps[step.tag]
        self.run_info["current_step"] = step.tag
        if step.condition and not evaluate_condition(step.condition, self.scope):
            result.status = "skipped"
            self.note("step_skipped", step.tag, {"condition": step.condition})
            return
        result.input = resolve(step.input, self.scope)
        if step.type is EventType.FOREACH:
            result.attempts = 1
            self.note("step_started", step.tag, {"attempt": 1})
            self.complete(step, self.foreach(step, result.input))
            return
        while True:
            result.attempts += 1
            self.note("step_started", step.tag, {"attempt": result.attempts})
            try:
                output = self.execute(step, result.input)
            except StepError as exc:
                decision = engine.on_step_failure(
                    step, attempt=result.attempts, retryable=exc.retryable
                )
                error = exc.as_json()
                if isinstance(decision, engine.Retry):
                    self.note("step_retrying", step.tag, {"error": error})
                    continue
                result.error = error
                if isinstance(decision, engine.FailAllowed):
                    result.status = "failed_allowed"
                    self.note("step_failed", step.tag, {"error": error, "allowed": True})
                    return
                result.status = "failed"
                self.note("step_failed", step.tag, {"error": error})
                raise _Stop("failed", {"step": step.tag, **error}) from None
            self.complete(step, output)
            return

    def complete(self, step: PlanStep, output: Any) -> None:
        result = self.steps[step.tag]
        result.status, result.output = "completed", output
        self.outputs[step.tag] = output
        self.seq_outputs.setdefault(step.sequence, {})[step.tag] = output
        if not is_log_event(step.type, step.event):  # a log line, not a step of the logic
            self.run_info["completed_steps"] = [*self.run_info["completed_steps"], step.tag]
        self.clock += timedelta(microseconds=1)
        self.finished[step.tag] = self.clock
        self.note("step_completed", step.tag, {"output": output})

    def foreach(self, step: PlanStep, data: Any) -> list[Any]:
        """A FOREACH step: its body once per item, one after the other (journaled like
        the engine's iterations, ``<loop>[i]`` and ``<body step>[i]``)."""
        items = data.get("items") if isinstance(data, dict) else None
        if not isinstance(items, list):
            error = StepError("FOREACH items must be a list", retryable=False).as_json()
            self.steps[step.tag].status = "failed"
            self.note("step_failed", step.tag, {"error": error})
            raise _Stop("failed", {"step": step.tag, **error})
        base = self.scope
        body = frozenset(b.tag for b in step.body)
        results = []
        try:
            for i, item in enumerate(items):
                seq = f"{step.tag}[{i}]"
                outputs = _IterationOutputs(self.outputs, i, body)
                self.scope = replace(base, steps=outputs, item=item, index=i)
                self.note("sequence_started", seq)
                for body_step in self.plan.sequence(seq).events:
                    self.steps.setdefault(body_step.tag, StepResult(body_step.tag))
                    self.run_step(body_step)
                self.note("sequence_completed", seq)
                results.append(self.outputs.get(f"{step.body[-1].tag}[{i}]"))
        finally:
            self.scope = base
        return results

    # --- one step ------------------------------------------------------------------------------
    def execute(self, step: PlanStep, data: Any) -> Any:
        key = step.tag
        if key not in self.fakes and is_iteration(key):
            key = iteration_key(key)[0]  # a loop body step's fake serves every iteration
        fake_key = key if key in self.fakes else None
        if step.type is EventType.CODE and fake_key is None:
            return self.code(step.event, data, step.tag)
        if fake_key is not None:
            return self.fake(fake_key, data)
        data = data if isinstance(data, dict) else {}
        if step.type is EventType.SLEEP:
            return {"slept_ms": 0}
        if step.type is EventType.SET_STATE:
            self.state.update(data)
            self.note("state_set", step.tag, {"values": data})
            return data
        if step.type is EventType.CHECKPOINT:
            name = str(data.get("name") or step.event)
            payload = data.get("data", data)
            self.state.setdefault("_checkpoints", {})[name] = {"data": payload, "step": step.tag}
            self.note("checkpoint", step.tag, {"name": name, "data": payload})
            return payload
        if step.type is EventType.WAIT_SIGNAL:
            return self.wait(step, data)
        if step.type is EventType.FEATURE:
            return self.child(step, data)
        if step.type is EventType.ROLLBACK:
            self.manual_rollback = True
            _, failed = self.compensate()
            if failed:
                raise StepError("a rollback failed", retryable=False)
            return {"rolled_back_steps": self.rolled_now, **data}
        if step.type is EventType.RETURN:
            self.complete(step, data.get("output"))
            raise _Stop("returned", output=data.get("output"))
        if step.type is EventType.FAIL:
            raise HandlerRaised(str(data.get("message") or "failed"))
        if self.env.strict:
            raise StepError(
                f"no fake for step {step.tag!r} ({step.type.value} {step.app or ''}"
                f"{':' if step.app else ''}{step.event}): pass fakes={{{step.tag!r}: ...}}",
                retryable=False,
            )
        return {}

    def fake(self, key: str, data: Any) -> Any:
        value = self.fakes[key]
        if isinstance(value, list):
            count = self.attempt_counts.get(key, 0)
            self.attempt_counts[key] = count + 1
            if not value:
                return None
            value = value[min(count, len(value) - 1)]
        if isinstance(value, Fail):
            raise StepError(value.message, retryable=value.retryable)
        if callable(value):
            value = value(data)
            if isinstance(value, Fail):
                raise StepError(value.message, retryable=value.retryable)
        return value

    def code(self, path: str, data: Any, tag: str) -> Any:
        # The same rule as the worker: registered step functions only, nothing imported
        # because a spec named it (the built-ins register with their module; the
        # recorder's CODE targets with runtime.context, both imported above).
        entry = step_function_get(path)
        fn = entry.fn
        live = data.get("ctx") if isinstance(data, dict) else None
        runtime = _TestRuntime(self, tag, live if isinstance(live, Mapping) else None)
        try:
            return fn(data, runtime) if entry.wants_ctx else fn(data)
        except StepError:
            raise
        except TrellisError as exc:
            raise StepError(str(exc), retryable=False) from exc
        except Exception as exc:
            raise StepError(f"{type(exc).__name__}: {exc}", retryable=True) from exc

    def wait(self, step: PlanStep, data: dict[str, Any]) -> Any:
        names = data.get("signals", data.get("signal")) or [step.event]
        names = [names] if isinstance(names, str) else [str(n) for n in names]
        for i, (name, payload) in enumerate(self.signals):
            if name in names:
                del self.signals[i]
                self.note("signal_received", step.tag, {"name": name})
                body = payload if isinstance(payload, dict) else {"value": payload}
                return {**body, "_signal": name}
        self.steps[step.tag].status = "waiting"
        self.waiting_for = names
        self.note("step_waiting", step.tag, {"signals": names})
        raise _Stop("waiting")

    def child(self, step: PlanStep, data: dict[str, Any]) -> Any:
        target = self.env.children.get(step.event)
        if target is None and self.product is not None:
            target = registry.get(self.product, step.event)
        if target is None:
            raise StepError(
                f"no child workflow {step.event!r}: pass children={{{step.event!r}: ...}} "
                f"or fakes={{{step.tag!r}: ...}}",
                retryable=False,
            )
        child_input = data["input"] if isinstance(data.get("input"), dict) else data
        child = self.env.run(target, input=child_input)
        self.note("child_finished", step.tag, {"status": child.status})
        if child.status != "completed":
            raise StepError(f"child run ended {child.status}", retryable=False)
        return child.output

    # --- compensation --------------------------------------------------------------------------
    def compensate(self) -> tuple[int, bool]:
        views = [
            engine.StepView(
                tag=s.tag,
                status=self.steps[s.tag].status,
                finished_at=self.finished.get(s.tag),
                order=i,
                has_rollback=s.rollback is not None,
                critical=s.critical,
                is_checkpoint=s.type is EventType.CHECKPOINT,
            )
            for i, s in enumerate(self.plan.steps)
        ]
        targets = engine.compensation_targets(views, self.plan.options.rollback_strategy)
        rolled_back = 0
        self.rolled_now: list[str] = []  # newest first, as the engine undoes them
        for tag in targets:
            step = self.plan.step(tag)
            spec = step.rollback or {}
            self.note("rollback_started", tag)
            data = resolve(spec.get("input") or {}, self.scope)
            attempts = int(spec.get("retries", 2)) + 1
            for attempt in range(1, attempts + 1):
                try:
                    key = f"{tag}:rollback"
                    if key in self.fakes:
                        self.fake(key, data)
                    elif spec.get("type") == EventType.CODE.value:
                        self.code(str(spec.get("event")), data, tag)
                    elif self.env.strict:
                        raise StepError(
                            f"no fake for the rollback of {tag!r}: pass fakes={{{key!r}: ...}}",
                            retryable=False,
                        )
                except StepError as exc:
                    if attempt < attempts:
                        continue
                    self.steps[tag].rollback_status = "failed"
                    self.note("rollback_failed", tag, {"error": exc.as_json()})
                    return rolled_back, True
                break
            self.steps[tag].rollback_status = "rolled_back"
            self.steps[tag].status = "rolled_back"
            self.note("step_rolled_back", tag)
            self.rolled_now.append(tag)
            rolled_back += 1
        return rolled_back, False


class _TestRuntime(BareRuntime):
    """What a code step sees in tests: the run's data, fakes for connector calls, logs
    into the test run's journal."""

    def __init__(self, run: _Run, tag: str, data: Mapping[str, Any] | None) -> None:
        super().__init__(data)
        self._run = run
        self._tag = tag

    def call(
        self,
        type: EventType,
        event: str,
        app: str | None,
        input: dict[str, Any],
        options: Mapping[str, Any],
    ) -> Any:
        for key in (f"{app}:{event}", event):
            if key in self._run.fakes:
                return self._run.fake(key, input)
        raise StepError(
            f"no fake for {type.value} {app}:{event} called in step {self._tag!r}: "
            f"pass fakes={{'{app}:{event}': ...}}",
            retryable=False,
        )

    def log(self, level: str, message: str, data: Any) -> None:
        self._run.note("log", self._tag, {"level": level, "message": message, "data": data})

    def lookup(self, kind: str, app: str | None, key: str) -> Any:
        table = {"variable": self._run.env.variables, "constant": self._run.env.constants}
        if kind == "secret":
            return self._run.env.secrets.get(key)
        return (table[kind].get(str(app)) or {}).get(key)


class WorkflowTestEnvironment:
    """Runs workflows in-process. ``fakes`` apply to every run (``run(fakes=...)`` adds to
    them); ``children`` maps a workflow tag to what a child step runs (a code workflow of
    the same product is found by itself); ``variables``/``constants`` are
    ``{app: {key: value}}``; ``strict=False`` lets unfaked connector steps return ``{}``."""

    def __init__(
        self,
        *,
        fakes: Mapping[str, Any] | None = None,
        children: Mapping[str, Any] | None = None,
        variables: Mapping[str, Mapping[str, Any]] | None = None,
        constants: Mapping[str, Mapping[str, Any]] | None = None,
        secrets: Mapping[str, Any] | None = None,
        now: Callable[[], Any] | None = None,
        strict: bool = True,
    ) -> None:
        self.fakes = dict(fakes or {})
        self.children = dict(children or {})
        self.variables = dict(variables or {})
        self.constants = dict(constants or {})
        self.secrets = dict(secrets or {})
        self.now = now or (lambda: datetime.now(UTC).isoformat())
        self.strict = strict

    def run(
        self,
        workflow: Any,
        input: Mapping[str, Any] | None = None,
        *,
        fakes: Mapping[str, Any] | None = None,
        signals: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
        state: Mapping[str, Any] | None = None,
    ) -> TestRun:
        """Run ``workflow`` (a code-first definition, a WorkflowSpec or its JSON) to its
        end — completed, failed, rolled back — or until it waits for a signal."""
        spec, product = _spec_of(workflow)
        plan = compile_spec(spec)
        if isinstance(signals, Mapping):
            queue = list(signals.items())
        else:
            queue = list(signals or [])
        run = _Run(
            self,
            plan,
            dict(input or {}),
            {**self.fakes, **(fakes or {})},
            queue,
            dict(state or {}),
            product,
        )
        if isinstance(getattr(workflow, "spec", None), WorkflowSpec):
            with using(workflow):
                return run.go()
        return run.go()


def _spec_of(workflow: Any) -> tuple[WorkflowSpec | dict[str, Any], str | None]:
    spec = getattr(workflow, "spec", None)
    if isinstance(spec, WorkflowSpec):
        return spec, getattr(workflow, "product", None)
    if isinstance(workflow, WorkflowSpec | dict):
        return workflow, None
    raise TypeError(
        "run() takes a code-first workflow (workflows.define(...)), a WorkflowSpec or its JSON"
    )
