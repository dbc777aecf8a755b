"""``manage.py check --deploy``: what a scale-out install (several machines) needs.

The embedded defaults work on one machine because every process shares TRELLIS_VAR_DIR
(the generated secret key, the live wake-up sockets). Across machines they silently do
not: each machine would sign sessions and encrypt component secrets with a key of its
own, and a worker's pushes would never reach a web server on another machine.
"""

from __future__ import annotations

import os
from typing import Any

from django.core import checks


@checks.register(checks.Tags.security, deploy=True)
def scale_out_check(**kwargs: Any) -> list[checks.CheckMessage]:
    found: list[checks.CheckMessage] = []
    database = bool(os.environ.get("DATABASE_URL"))
    redis = bool(os.environ.get("REDIS_URL"))
    if database and not os.environ.get("SECRET_KEY"):
        found.append(
            checks.Warning(
                "DATABASE_URL is set but SECRET_KEY is not: each machine generates its own "
                "key in TRELLIS_VAR_DIR, so sessions (and secrets encrypted with a key "
                "derived from it) do not work across machines.",
                hint="Set the same SECRET_KEY (and TRELLIS_SECRETS_KEY) on every machine.",
                id="trellis.W901",
            )
        )
    if database and not redis:
        found.append(
            checks.Warning(
                "DATABASE_URL is set but REDIS_URL is not: the queue polls the database and "
                "live pushes only reach web servers on the same machine as the worker.",
                hint="Set REDIS_URL for the django-q2 Redis broker and channels-redis.",
                id="trellis.W902",
            )
        )
    if redis and not database:
        found.append(
            checks.Warning(
                "REDIS_URL is set but DATABASE_URL is not: SQLite serves one machine only.",
                hint="Set DATABASE_URL to a PostgreSQL database shared by every process.",
                id="trellis.W903",
            )
        )
    return found
