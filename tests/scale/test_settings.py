"""Scale-out settings read from the environment, loudly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

pytestmark = pytest.mark.scale

ROOT = Path(__file__).resolve().parents[2]


def settings_of(**env: str) -> str:
    """Import the settings in a fresh interpreter with ``env``; returns its output."""
    base = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    code = (
        "import django, json; from django.conf import settings; django.setup(); "
        "d = settings.DATABASES['default']; "
        "print(json.dumps([d['ENGINE'], d.get('CONN_HEALTH_CHECKS'), d.get('OPTIONS'), "
        "settings.TRELLIS_MODE, settings.Q_CLUSTER.get('broker_class'), "
        "settings.CHANNEL_LAYERS['default']['BACKEND']]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=base | {"DJANGO_SETTINGS_MODULE": "designer.settings"} | env,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout + done.stderr


def test_database_url_and_redis_url_switch_every_part_to_scale_out() -> None:
    out = settings_of(
        DATABASE_URL="postgresql://u@db.example:5432/trellis",
        REDIS_URL="redis://cache.example:6379/1",
        TRELLIS_PG_SYNCHRONOUS_COMMIT="off",
    )
    assert '"django.db.backends.postgresql", true' in out
    assert '"options": "-c synchronous_commit=off"' in out
    assert '"scale", "runtime.brokers.DelayedRedis", "channels_redis.core.RedisChannelLayer"' in out


def test_a_bad_synchronous_commit_value_is_a_named_startup_error() -> None:
    out = settings_of(DATABASE_URL="postgresql://u@db/t", TRELLIS_PG_SYNCHRONOUS_COMMIT="maybe")
    assert "ImproperlyConfigured: TRELLIS_PG_SYNCHRONOUS_COMMIT must be" in out


def test_vite_bundles_are_cached_forever_and_other_static_files_are_not() -> None:
    immutable = settings.WHITENOISE_IMMUTABLE_FILE_TEST
    assert immutable("", "/static/assets/main-DzT6zcdF.js")
    assert immutable("", "/static/assets/main-BbtSLSCu.css")
    assert not immutable("", "/static/admin/css/base.css")
    assert not immutable("", "/static/assets/main.js")


def test_a_bad_worker_synchronous_commit_value_is_a_named_startup_error() -> None:
    out = settings_of(
        DATABASE_URL="postgresql://u@db/t", TRELLIS_PG_WORKER_SYNCHRONOUS_COMMIT="sometimes"
    )
    assert "ImproperlyConfigured: TRELLIS_PG_WORKER_SYNCHRONOUS_COMMIT must be" in out
