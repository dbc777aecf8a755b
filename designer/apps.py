from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.apps import AppConfig


class DesignerConfig(AppConfig):
    name = "designer"
    verbose_name = "Designer"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.backends.signals import connection_created
        from django.db.models.signals import post_init, post_save

        from designer import accounts  # why here: it imports models (registry not ready before)

        # A new password revokes the user's API tokens (designer/accounts.py).
        user_model = get_user_model()
        post_init.connect(accounts.password_remember, sender=user_model)
        post_save.connect(accounts.tokens_revoke_on_password_change, sender=user_model)
        # The SQLite file holds tokens and sessions: private to the Trellis account.
        connection_created.connect(sqlite_files_private, dispatch_uid="trellis-sqlite-0600")


def sqlite_files_private(sender: Any, connection: Any, **kwargs: Any) -> None:
    """The embedded SQLite database holds API tokens, sessions and encrypted secrets:
    only the account running Trellis may read it. sqlite3 creates the file with the
    process's umask (usually 0644, world-readable); it is made 0600 as soon as a
    connection opens it, which also fixes files of installs made before this rule
    (its -wal/-shm files follow the main file's mode, and are fixed here too)."""
    if connection.vendor != "sqlite":
        return
    name = str(connection.settings_dict.get("NAME") or "")
    if not name or name == ":memory:" or name.startswith("file:"):
        return
    for path in (Path(name), Path(name + "-wal"), Path(name + "-shm")):
        try:
            stat = path.stat()
        except OSError:
            continue
        if stat.st_mode & 0o077 and stat.st_uid == os.getuid():
            path.chmod(0o600)
