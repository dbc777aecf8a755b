import logging
from collections.abc import Iterable

from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from runtime import netguard
from runtime.step_functions import step_functions_import


class RuntimeConfig(AppConfig):
    name = "runtime"
    verbose_name = "Runtime"

    def ready(self) -> None:
        # Registers the channel-layer system check (a broken CHANNEL_LAYERS is silent)
        # and the scale-out deploy checks (manage.py check --deploy).
        # why here: these import models, which need the app registry ready() gives.
        from runtime import code_checks, connectors, deploy_checks, live  # noqa: F401

        # An importable MEDIA_ROOT lets an uploaded .py be imported: refuse to start (daphne
        # and qcluster do not run system checks; trellis.E010 says the same in `check`).
        issue = code_checks.media_root_issue()
        if issue is not None:
            raise ImproperlyConfigured(issue)
        netguard.own_names_source(_own_names)
        _step_functions_load()
        _engine_signals_connect()
        from runtime import tracing

        tracing.configure()  # OpenTelemetry, only when TRELLIS_OTLP_ENDPOINT is set
        from runtime import graceful

        graceful.install()  # a qcluster stops in order on SIGTERM to its process group


def _step_functions_load() -> None:
    """Fill the step-function registry once, at startup, from what an admin deployed.

    CODE steps call only registered functions (runtime.step_functions): the built-ins,
    the recorder's targets, ``@step_function`` in installed apps' ``workflows`` modules and
    in ``TRELLIS_WORKFLOW_MODULES``, and ``TRELLIS_STEP_FUNCTIONS``. Nothing is imported
    later because a spec or a step's input named it.
    """
    if hasattr(settings, "TRELLIS_CODE_PACKAGES"):
        # It let CODE steps import any module of whole packages (tests included).
        raise ImproperlyConfigured(
            "TRELLIS_CODE_PACKAGES is no longer supported: CODE steps call only registered "
            "step functions. Name them in TRELLIS_STEP_FUNCTIONS ('package.module:function', "
            "comma-separated) or decorate them with @workflows.step_function in an installed "
            "app's workflows.py."
        )
    # why here: apps.py is loaded before the app registry is ready (models, connectors).
    from runtime import (
        context,  # registers the recorder's CODE targets (runtime.workflows:…)
        scheduling,
    )
    from runtime.code_runtime import EngineRuntime
    from runtime.connectors import code  # noqa: F401 - registers the built-ins
    from runtime.connectors.upcalls import Upcalls, upcalls_install
    from runtime.engine.creation import run_start
    from runtime.workflow_modules import discover

    context.engine_runtime_install(EngineRuntime)
    # PUBLISH starts subscribed runs and JOB creates schedules: both are above the
    # connectors, which the engine calls (runtime/connectors/upcalls.py).
    upcalls_install(
        Upcalls(
            run_start=run_start,
            event_schedule=scheduling.event_schedule,
            run_schedule=scheduling.run_schedule,
            schedule_describe=scheduling.schedule_describe,
            schedule_name=scheduling.schedule_name,
        )
    )

    try:
        step_functions_import(getattr(settings, "TRELLIS_STEP_FUNCTIONS", []))
    except ValueError as exc:
        raise ImproperlyConfigured(f"TRELLIS_STEP_FUNCTIONS: {exc}") from exc
    # Code-first workflows and their @step_function: a module that fails to load is logged
    # here and reported by `manage.py sync_workflows`; the others still load.
    errors: list[tuple[str, Exception]] = []
    discover(errors=errors)
    for module, error in errors:
        logging.getLogger("trellis.workflows").error(
            "cannot load workflow module %s: %s", module, error
        )


def _engine_signals_connect() -> None:
    """Engine: every qcluster worker that starts kicks the sweep chain (timers, expired
    leases, interrupted compensation) and makes sure its minute Schedule exists."""
    from django_q.signals import post_spawn  # why here: django_q's signals import its models

    post_spawn.connect(_engine_worker_started, dispatch_uid="trellis-engine-sweep")


def _engine_worker_started(sender: object, **kwargs: object) -> None:
    from runtime import graceful

    graceful.worker_started()
    _worker_commit_mode()
    try:
        # why: a signal handler of the app config; the engine needs the apps loaded
        from runtime.engine.sweep import sweep_kick, sweep_schedule_ensure

        sweep_schedule_ensure()
        sweep_kick(force=True)
        from runtime.retention import prune_schedule_ensure

        prune_schedule_ensure()
    except Exception:  # a worker must start even when the database is briefly unavailable
        logging.getLogger("trellis.executor").exception("could not start the sweep")


def _worker_commit_mode() -> None:
    """PostgreSQL: this worker process's commits use TRELLIS_PG_WORKER_SYNCHRONOUS_COMMIT
    (see designer/settings.py): set on its connection parameters, so every (re)connection
    of this process has it at no extra round trip."""
    mode = getattr(settings, "TRELLIS_PG_WORKER_SYNCHRONOUS_COMMIT", "")
    if connection.vendor != "postgresql" or not mode:
        return
    options = dict(connection.settings_dict.get("OPTIONS") or {})
    options["options"] = f"-c synchronous_commit={mode}"
    connection.settings_dict["OPTIONS"] = options
    connection.close()  # the next query reconnects with it


def _own_names() -> Iterable[str]:
    """The names this server answers on, for the outgoing-connection check (netguard)."""
    names = [str(h).lstrip(".") for h in getattr(settings, "ALLOWED_HOSTS", []) if "*" not in h]
    names.extend(str(h) for h in getattr(settings, "TRELLIS_SELF_ADDRESSES", []))
    return names
