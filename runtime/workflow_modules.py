"""Loading the modules that define code-first workflows (Django side: it reads the
installed apps and settings).

runtime.apps loads them when the process starts (their ``@step_function`` functions join
the step-function registry); ``manage.py sync_workflows`` loads them to publish what
changed.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Iterable

from django.apps import apps
from django.conf import settings

from runtime.recorder import WorkflowDefinition, registry

# The runtime app's own workflows module is the public surface, not a module of workflows.
_PUBLIC_SURFACE = "runtime.workflows"


def discover(
    modules: Iterable[str] | None = None, *, errors: list[tuple[str, Exception]] | None = None
) -> list[WorkflowDefinition]:
    """Import every module that defines workflows and return the registry's contents.

    With ``modules`` given, imports exactly those (a package imports all its modules).
    Otherwise: the ``workflows`` module of every installed Django app plus the modules
    listed in the ``TRELLIS_WORKFLOW_MODULES`` setting. With ``errors``, a module that
    fails (a RecordingError, an ImportError) is reported there and the others still load;
    without it, the first failure raises.
    """
    if modules is None:
        modules = _configured_modules()
    for name in modules:
        try:
            _import_tree(name)
        except Exception as exc:
            if errors is None:
                raise
            errors.append((name, exc))
    return registry.all()


def _configured_modules() -> list[str]:
    names: list[str] = []
    for config in apps.get_app_configs():
        candidate = f"{config.name}.workflows"
        if candidate == _PUBLIC_SURFACE:
            continue
        if importlib.util.find_spec(candidate) is not None:
            names.append(candidate)
    names.extend(getattr(settings, "TRELLIS_WORKFLOW_MODULES", []))
    return names


def _import_tree(name: str) -> None:
    module = importlib.import_module(name)
    path = getattr(module, "__path__", None)
    if path is None:
        return
    for info in pkgutil.walk_packages(path, prefix=f"{name}."):
        if not info.name.rsplit(".", 1)[-1].startswith("_"):
            importlib.import_module(info.name)
