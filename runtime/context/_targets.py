"""The CODE targets the recorder emits, run in the worker: a code step's function, a
``ctx.log`` line, a JSON transform of a run-time value.

They are registered as step functions under the names recorded specs store
(``runtime.workflows:run_code_step``…, see runtime.recorder's ``CODE_STEP_EVENT``): the
names published versions carry stay valid although the functions live here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from runtime.context._rebind import run_step_function
from runtime.context._runtimes import WorkflowBound, log_to, runtime_for
from runtime.errors import StepError
from runtime.recorder import CODE_STEP_EVENT, LOG_EVENT, TRANSFORM_EVENT, find
from runtime.step_functions import step_function


@step_function(name=CODE_STEP_EVENT)
def run_code_step(input: Mapping[str, Any], ctx: Any = None) -> Any:
    """CODE event target: run a code step's (or its rollback's) function for real.

    ``input`` is ``{workflow, module, step, refs?, ctx?, rollback?, result?}``: ``refs`` are
    the recorded values the function captured and ``ctx`` the run data it reads
    (input, steps, state), both already resolved by the engine. Only the workflow that
    recorded the step may run it.
    """
    key = str(input.get("workflow", ""))
    step = str(input.get("step", ""))
    runtime = runtime_for(ctx, input.get("ctx") if isinstance(input.get("ctx"), Mapping) else None)
    if isinstance(runtime, WorkflowBound) and runtime.workflow_key() != key:
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


@step_function(name=LOG_EVENT)
def log_step(input: Mapping[str, Any], ctx: Any = None) -> Any:
    """CODE event target for ``ctx.log.*`` in a handler: one ``log`` journal entry."""
    log_to(ctx, str(input.get("level", "info")), input.get("message"), input.get("data"))
    return {}


@step_function(name=TRANSFORM_EVENT)
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
