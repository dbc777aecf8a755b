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

    try:
        from runtime.executor import sweep_kick, sweep_schedule_ensure

        sweep_schedule_ensure()
        sweep_kick(force=True)
    except Exception:  # a worker must start even when the database is briefly unavailable
        logging.getLogger("trellis.executor").exception("could not start the sweep")
