from django.apps import AppConfig


class RuntimeConfig(AppConfig):
    name = "runtime"
    verbose_name = "Runtime"

    def ready(self) -> None:
        # Registers the channel-layer system check (a broken CHANNEL_LAYERS is silent)
        # and the scale-out deploy checks (manage.py check --deploy).
        from runtime import code_checks, deploy_checks, live  # noqa: F401

        # An importable MEDIA_ROOT lets an uploaded .py be imported: refuse to start (daphne
        # and qcluster do not run system checks; trellis.E010 says the same in `check`).
        issue = code_checks.media_root_issue()
        if issue is not None:
            from django.core.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured(issue)
        _step_functions_load()
        _engine_signals_connect()


def _step_functions_load() -> None:
    """Fill the step-function registry once, at startup, from what an admin deployed.

    CODE steps call only registered functions (runtime.step_functions): the built-ins,
    the recorder's targets, ``@step_function`` in installed apps' ``workflows`` modules and
    in ``TRELLIS_WORKFLOW_MODULES``, and ``TRELLIS_STEP_FUNCTIONS``. Nothing is imported
    later because a spec or a step's input named it.
    """
    import logging

    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    if hasattr(settings, "TRELLIS_CODE_PACKAGES"):
        # It let CODE steps import any module of whole packages (tests included).
        raise ImproperlyConfigured(
            "TRELLIS_CODE_PACKAGES is no longer supported: CODE steps call only registered "
            "step functions. Name them in TRELLIS_STEP_FUNCTIONS ('package.module:function', "
            "comma-separated) or decorate them with @workflows.step_function in an installed "
            "app's workflows.py."
        )
    from runtime import workflows
    from runtime.connectors import code  # noqa: F401 - registers the built-ins
    from runtime.step_functions import step_functions_import

    try:
        step_functions_import(getattr(settings, "TRELLIS_STEP_FUNCTIONS", []))
    except ValueError as exc:
        raise ImproperlyConfigured(f"TRELLIS_STEP_FUNCTIONS: {exc}") from exc
    # Code-first workflows and their @step_function: a module that fails to load is logged
    # here and reported by `manage.py sync_workflows`; the others still load.
    errors: list[tuple[str, Exception]] = []
    workflows.discover(errors=errors)
    for module, error in errors:
        logging.getLogger("trellis.workflows").error(
            "cannot load workflow module %s: %s", module, error
        )


def _engine_signals_connect() -> None:
    """Engine: every qcluster worker that starts kicks the sweep chain (timers, expired
    leases, interrupted compensation) and makes sure its minute Schedule exists."""
    from django_q.signals import post_spawn

    post_spawn.connect(_engine_worker_started, dispatch_uid="trellis-engine-sweep")


def _engine_worker_started(sender: object, **kwargs: object) -> None:
    import logging

    _worker_commit_mode()
    try:
        # why: a signal handler of the app config; the engine needs the apps loaded
        from runtime.engine.sweep import sweep_kick, sweep_schedule_ensure

        sweep_schedule_ensure()
        sweep_kick(force=True)
    except Exception:  # a worker must start even when the database is briefly unavailable
        logging.getLogger("trellis.executor").exception("could not start the sweep")


def _worker_commit_mode() -> None:
    """PostgreSQL: this worker process's commits use TRELLIS_PG_WORKER_SYNCHRONOUS_COMMIT
    (see designer/settings.py): set on its connection parameters, so every (re)connection
    of this process has it at no extra round trip."""
    from django.conf import settings
    from django.db import connection

    mode = getattr(settings, "TRELLIS_PG_WORKER_SYNCHRONOUS_COMMIT", "")
    if connection.vendor != "postgresql" or not mode:
        return
    options = dict(connection.settings_dict.get("OPTIONS") or {})
    options["options"] = f"-c synchronous_commit={mode}"
    connection.settings_dict["OPTIONS"] = options
    connection.close()  # the next query reconnects with it
