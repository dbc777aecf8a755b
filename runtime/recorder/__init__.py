"""Record a code-first workflow handler into the one spec (pure: no Django imports).

The handler runs once per recording with a *recording* ctx: ``ctx.input.x`` and step
results are :class:`Recorded` proxies that turn into ``$Input{x}`` / ``$Step{tag}{field}``
references wherever they end up (event inputs, conditions, the output mapping; an f-string
interpolates them). Every ``ctx.step`` / ``ctx.sleep`` / connector call becomes a node of a
DAG whose edges follow the code: straight-line awaits chain, ``asyncio.gather`` (or any
task) forks, and the next step after the tasks finished joins them. The DAG is then cut
into sequences (one per straight run of steps) with ``parents``.

A step function whose body is one connector call (``ctx.action.run(...)``...) is run at
define time (only that call is recorded, as the step's event); any other function is not
run: it becomes a CODE event (:data:`CODE_STEP_EVENT`) whose input names the workflow and
step, the recorded values the function captured (``refs``) and the run data it reads
(``ctx``), so the worker can rebuild it with real values (runtime.context).

What the recorder cannot know (a step's real result, the real input) it only learns from
the recording options: ``branch_overrides`` (what a step "returns" so an ``if`` takes the
path you want; steps in that branch get ``$Step{tag}{field} == value`` — and so do the
steps after the ``if`` when the other branch returns early; the handler is recorded once
more per other arm that matters, so a path's early ``return`` becomes a RETURN step and
its ``raise`` a FAIL step, conditioned on that path's branches), ``record_input`` (sample
input so loops unroll; items stay positional references ``$Input{items.0.id}``, only step
tags use the sample values) and ``record_scenarios`` (one recording per input scenario;
steps get ``$Input{key} == 'value'``, merged with ``||``). Anything else that needs a real
value (arithmetic, truthiness, comparisons, loops) fails with a :class:`RecordingError`
naming the file and line.

The package is split along its concerns; this module is its façade (the names other
modules use). Private modules, each importing only those above it:

- ``_text``: expression text (``$Step{tag}{x}``, literals) and the CODE targets' names;
- ``_sites``: where in the user's code (``Site``, ``RecordingError``);
- ``_values``: recorded values (``Recorded``, ``RecordedCondition``);
- ``_source``: the AST of a user function; ``_scope``: the frontier, forked tasks and the
  branch conditions in force;
- ``_recording``: ``Recording`` (one run of a handler) and its pending connector calls;
- ``_calls``: how connector calls map onto events (shared with the live ctx);
- ``_step_fns``: a step function is a connector call or code; what the code reads;
- ``_ctx_members``, ``_ctx``: the recording ``ctx``;
- ``_run``: running a handler (or query) once; ``_sequences``: nodes → spec sequences;
- ``_definitions``, ``_define``: ``define()``/``@workflow`` and the registry of definitions.
"""

from __future__ import annotations

from runtime.recorder._calls import CallNamespace, split_call
from runtime.recorder._ctx import RecordingContext
from runtime.recorder._ctx_members import LogLevels
from runtime.recorder._define import define, workflow
from runtime.recorder._definitions import (
    WorkflowDefinition,
    WorkflowRegistry,
    find,
    registry,
    using,
)
from runtime.recorder._sites import RecordingError, Site
from runtime.recorder._text import CODE_STEP_EVENT, LOG_EVENT, MISSING, TRANSFORM_EVENT
from runtime.recorder._values import contains_recorded

__all__ = [
    "CODE_STEP_EVENT",
    "LOG_EVENT",
    "MISSING",
    "TRANSFORM_EVENT",
    "CallNamespace",
    "LogLevels",
    "RecordingContext",
    "RecordingError",
    "Site",
    "WorkflowDefinition",
    "WorkflowRegistry",
    "contains_recorded",
    "define",
    "find",
    "registry",
    "split_call",
    "using",
    "workflow",
]
