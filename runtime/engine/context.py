"""What one task knows about a run: loaded once, kept in step with its own commits."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from django.utils import timezone

from runtime.compiler import Plan, is_iteration, iteration_key
from runtime.connectors import Component
from runtime.connectors.loader import component_for
from runtime.engine import config
from runtime.engine.plans import plan_for_version
from runtime.engine.state import StepRow, StepState
from runtime.engine.store import store
from runtime.errors import StepError
from runtime.expressions import (
    DictScope,
    Ref,
    evaluate_condition,
    resolve_masked,
    resolve_redacted,
    value_budget,
)
from runtime.models import Run
from runtime.spec import SECRET_OUTGOING, is_log_event


class RunScope:
    """Expression scope of a run: plain dicts, plus lazily loaded component data."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.base = DictScope(
            input=ctx.input,
            steps=ctx.outputs,
            sequences=ctx.seq_outputs,
            state=ctx.state,
            run=ctx.run_info,
            now=timezone.now,
        )
        self.app: str | None = None  # the app of the step being resolved ($Secret)
        # Inside a loop iteration: its index and the body's tags ($Step{b} is b[index]).
        self.iteration: int | None = None
        self.body: frozenset[str] = frozenset()

    def lookup(self, ref: Ref) -> Any:
        if ref.kind == "Step" and self.iteration is not None and ref.args[0] in self.body:
            ref = dataclasses.replace(ref, args=(f"{ref.args[0]}[{self.iteration}]",))
        if ref.kind in ("Variable", "Constant"):
            component = self.ctx.component(ref.args[0])
            if component is None:
                return None
            data = component.variables if ref.kind == "Variable" else component.constants
            scope = DictScope(variables={ref.args[0]: data}, constants={ref.args[0]: data})
            return scope.lookup(ref)
        if ref.kind == "Secret":
            component = self.ctx.component(self.app) if self.app else None
            return component.secrets.get(ref.args[0]) if component else None
        return self.base.lookup(ref)


class RunContext:
    """What one task knows about a run: loaded once, kept in step with its own commits."""

    def __init__(self, run: Run, plan: Plan, steps: Iterable[StepRow]) -> None:
        self.run = run
        self.plan = plan
        self.input = run.input if isinstance(run.input, dict) else {}
        self.state: dict[str, Any] = dict(run.state or {})
        self.stop_reason = run.stop_reason
        self.steps: dict[str, StepState] = {}
        self.outputs: dict[str, Any] = {}
        self.seq_outputs: dict[str, dict[str, Any]] = {}
        self.run_info: dict[str, Any] = {"id": run.pk, "status": run.status}
        # Recorded log lines are journaled but are not steps of the run's logic.
        self.log_steps = {s.tag for s in plan.steps if is_log_event(s.type, s.event)}
        self.refresh_steps(steps)
        self.scope = RunScope(self)
        self._components: dict[str, Component | None] = {}
        self._loop_items: dict[str, Any] = {}

    @classmethod
    def load(cls, run_id: int) -> RunContext | None:
        """The context of a run as committed, or None when it does not exist."""
        run = store().run_row(run_id)
        return None if run is None else cls.of(run)

    @classmethod
    def of(cls, run: Run) -> RunContext:
        """The context of ``run`` (its plan and steps read)."""
        return cls(run, plan_for_version(run.version_id), store().step_rows(run.pk))

    def refresh_steps(self, rows: Iterable[StepRow]) -> None:
        for row in rows:
            st = StepState(**row)
            self.steps[st.tag] = st
            self._remember(st)
        self.run_info["completed_steps"] = [
            t for t, s in self.steps.items() if s.status == "completed" and t not in self.log_steps
        ]

    def _remember(self, st: StepState) -> None:
        if st.status in ("completed", "rolled_back"):
            self.outputs[st.tag] = st.output
            self.seq_outputs.setdefault(st.sequence, {})[st.tag] = st.output

    def record_output(self, st: StepState) -> None:
        self._remember(st)
        if st.status == "completed" and st.tag not in self.log_steps:
            self.run_info["completed_steps"].append(st.tag)

    def enter(self, tag: str | None) -> None:
        """Resolve what follows as in sequence (or step) ``tag``: in a loop iteration
        (``loop[3]``, ``charge[3]``) ``$Item``, ``$Index`` and the body's ``$Step`` are that
        iteration's; anywhere else they are not set."""
        scope = self.scope
        scope.iteration = None
        scope.body = frozenset()
        scope.base.item = None
        scope.base.index = None
        if not tag or not is_iteration(tag):
            return
        name, index = iteration_key(tag)
        try:
            loop = self.plan.loop(name)
        except KeyError:
            loop = self.plan.loop(self.plan.step(tag).loop or "")
        items = self.loop_items(loop.tag)
        scope.iteration = index
        scope.body = frozenset(b.tag for b in loop.body)
        scope.base.item = items[index] if isinstance(items, list) and index < len(items) else None
        scope.base.index = index

    def loop_items(self, tag: str) -> Any:
        """The items FOREACH step ``tag`` loops over: its input as stored when it started
        (read once per task)."""
        if tag not in self._loop_items:
            stored = store().step_input(self.run.pk, tag)
            self._loop_items[tag] = stored.get("items") if isinstance(stored, dict) else None
        return self._loop_items[tag]

    def component(self, tag: str | None) -> Component | None:
        if not tag:
            return None
        if tag not in self._components:
            env = self.run.environment
            try:
                self._components[tag] = component_for(
                    product_id=env.product_id, environment_id=env.pk, tag=tag
                )
            except StepError:
                self._components[tag] = None
        return self._components[tag]

    def condition_holds(self, text: str | None) -> bool:
        if not text:
            return True
        return evaluate_condition(text, self.scope)

    def resolve_input(self, value: Any, app: str | None, type_: str) -> tuple[Any, Any]:
        """``(resolved, redacted)`` input of a step (or rollback) of type ``type_``.

        Only an event that sends its input out in its own component's call
        (``SECRET_OUTGOING``) may see its component's secrets; any other step gets every
        expression involving a secret as ``•••`` (the compiler refuses such specs: this is
        the run-time guard for plans that were not compiled by it)."""
        with value_budget(config.RESOLVE_BUDGET):
            if type_ not in SECRET_OUTGOING:
                masked = resolve_masked(value, self.scope)
                return masked, masked
            self.scope.app = app
            try:
                return resolve_redacted(value, self.scope)
            finally:
                self.scope.app = None
