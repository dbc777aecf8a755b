from django.apps import AppConfig


class RuntimeConfig(AppConfig):
    name = "runtime"
    verbose_name = "Runtime"

    def ready(self) -> None:
        # Registers the channel-layer system check (a broken CHANNEL_LAYERS is silent).
        from runtime import live  # noqa: F401
