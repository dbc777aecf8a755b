"""The compiler: a workflow spec in, an executable :class:`Plan` out (pure: no Django imports).

It checks everything that can be known before a run and reports ALL problems at once, each
with the JSON path of the field (``sequences[2].events[0].input.body.id: unknown step 'pay'``):

- the spec validates (pydantic errors mapped to paths by :func:`validation_issues`);
- sequence tags and step tags (``tag``, else ``event``) are unique in the workflow;
- parents exist, are not the sequence itself; the parent graph has no cycle (named:
  ``a -> b -> a``); levels are the longest path from a root and a given ``level`` agrees;
- every ``$Step``/``$Sequence`` reference points at a step that has run before on every
  path: earlier in the same sequence or in an ancestor sequence (through ``parents``);
- conditions, ``skip_if`` and every expression string parse; durations are valid;
- a ``$Secret`` (directly, inside any operator at any depth, or interpolated in text) appears
  only in the input of an event that sends it out in its own component's call
  (``SECRET_OUTGOING``): never in state, checkpoints, outputs, queries, conditions, CODE or
  any other input that is stored or shown below admin; and there only whole (no
  ``$Substring``, ``$Split``, ``$Size``, no comparison: an echoed answer would show it);
- event types get their own checks (WAIT_SIGNAL names declared signals, SLEEP has a
  duration, FEATURE names a workflow tag, CODE a dotted path) and, when ``components`` is
  given, component events name a component of the right kind that declares the event.

Cost is linear in the size of the spec: ancestor sets are integers used as bitsets, built
once in topological order, so checking a reference is one shift and mask.

This package is the façade: importers use ``runtime.compiler``. Its private modules:
``_plan`` (the Plan), ``_paths`` (issue paths), ``_state`` (what the checks share),
``_graph`` (tags, graph, levels, cycles), ``_references`` (expressions, references,
secrets), ``_events`` (events, components, workflow-level fields), ``_loops`` (FOREACH
steps and their bodies) and ``_compile``.
"""

from __future__ import annotations

from runtime.compiler._compile import _Compiler as _Compiler  # tests patch its checks
from runtime.compiler._compile import compile_spec, spec_checksum
from runtime.compiler._paths import MAX_DEPTH, validation_issues
from runtime.compiler._plan import (
    ComponentInfo,
    Plan,
    PlanOptions,
    PlanSequence,
    PlanStep,
    is_iteration,
    iteration_key,
)
from runtime.errors import SpecError

__all__ = [
    "MAX_DEPTH",
    "ComponentInfo",
    "Plan",
    "PlanOptions",
    "PlanSequence",
    "PlanStep",
    "SpecError",
    "compile_spec",
    "is_iteration",
    "iteration_key",
    "spec_checksum",
    "validation_issues",
]
