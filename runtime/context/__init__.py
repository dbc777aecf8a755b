"""The live ctx a code step's function gets in the worker (pure: no Django imports).

A CODE event recorded from ``ctx.step(tag, fn)`` runs ``fn`` for real. The function was
written against the recording ctx and closes over recorded values; here it is rebuilt with
the same code and its captured recorded values replaced by the real ones (resolved by the
engine from the event's ``refs``), and ``ctx`` replaced by a :class:`LiveContext` over the
run. Everything else it captured is kept as is.

The engine hands ``run_code_step(input, info)`` its StepInfo (run id, step, attempt,
idempotency key, ``log``); the run's data comes from the event's ``ctx`` references, which
the engine resolved. :func:`runtime_for` puts both behind the small :class:`StepRuntime`
protocol, so the same live ctx serves the engine and ``runtime.testing``. The engine's
runtime needs the ORM: it lives on the Django side (runtime.code_runtime), which installs
it at startup (:func:`engine_runtime_install`).

This module is the package's façade. Private modules: ``_values`` (run data with attribute
access), ``_runtimes`` (who runs the step), ``_live`` (the live ctx), ``_rebind`` (the real
values back into a recorded function), ``_targets`` (the CODE targets the recorder emits,
registered as step functions when this package is imported).
"""

from __future__ import annotations

from runtime.context._live import LiveContext
from runtime.context._rebind import rebind, run_step_function
from runtime.context._runtimes import (
    BareRuntime,
    StepRuntime,
    WorkflowBound,
    engine_runtime_install,
    log_to,
    runtime_for,
)
from runtime.context._targets import log_step, run_code_step, transform_step
from runtime.context._values import AttrDict, wrap

__all__ = [
    "AttrDict",
    "BareRuntime",
    "LiveContext",
    "StepRuntime",
    "WorkflowBound",
    "engine_runtime_install",
    "log_step",
    "log_to",
    "rebind",
    "run_code_step",
    "run_step_function",
    "runtime_for",
    "transform_step",
    "wrap",
]
