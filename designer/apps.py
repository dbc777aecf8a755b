from django.apps import AppConfig


class DesignerConfig(AppConfig):
    name = "designer"
    verbose_name = "Designer"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_init, post_save

        from designer import accounts  # why here: it imports models (registry not ready before)

        # A new password revokes the user's API tokens (designer/accounts.py).
        user_model = get_user_model()
        post_init.connect(accounts.password_remember, sender=user_model)
        post_save.connect(accounts.tokens_revoke_on_password_change, sender=user_model)
