"""Code-first workflows: ``from runtime import workflows``.

``workflows.define(...)`` (or the ``@workflows.workflow(...)`` decorator) runs the handler
under the recorder (runtime.recorder) and keeps the result — a :class:`WorkflowDefinition`
holding the same spec the canvas edits — in the process's registry; ``python manage.py
sync_workflows`` publishes what changed. Steps whose function is arbitrary Python become
CODE events the worker runs for real with a live ctx (runtime.context). A function CODE
steps may call by name is registered with ``@workflows.step_function``.

This module lists only what a workflow module uses; the recorder, the registry of
definitions and the worker's side live in runtime.recorder and runtime.context. The CODE
targets keep the names specs store (``runtime.workflows:run_code_step``, ``log_step``,
``transform_step``): runtime.context registers them under those names.

Importing this module never imports Django.
"""

from __future__ import annotations

from runtime.errors import StepError
from runtime.recorder import RecordingError, WorkflowDefinition, define, workflow
from runtime.step_functions import register_step_function, step_function

__all__ = [
    "RecordingError",
    "StepError",
    "WorkflowDefinition",
    "define",
    "register_step_function",
    "step_function",
    "workflow",
]
