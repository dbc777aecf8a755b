from django.apps import AppConfig


class RuntimeConfig(AppConfig):
    name = "runtime"
    verbose_name = "Runtime"

    def ready(self) -> None:
        # Registers the channel-layer system check (a broken CHANNEL_LAYERS is silent)
        # and the scale-out deploy checks (manage.py check --deploy).
        from runtime import deploy_checks, live  # noqa: F401

        _engine_signals_connect()


def _engine_signals_connect() -> None:
    """Engine: every qcluster worker that starts kicks the sweep chain (timers, expired
    leases, interrupted compensation) and makes sure its minute Schedule exists."""
    from django_q.signals import post_spawn

    post_spawn.connect(_engine_worker_started, dispatch_uid="trellis-engine-sweep")


def _engine_worker_started(sender: object, **kwargs: object) -> None:
    import logging

    _worker_commit_mode()
    try:
        from runtime.executor import sweep_kick, sweep_schedule_ensure

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
