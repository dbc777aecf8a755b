"""Trellis settings: one module, every knob read from the environment.

Embedded default (no variables set): SQLite in WAL mode, the django-q2 ORM broker and a
journal-tailing channel layer — no extra servers. Scale-out: set DATABASE_URL and REDIS_URL.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return [part.strip() for part in raw.split(",") if part.strip()]


DEBUG = env_bool("DEBUG", False)
VAR_DIR = Path(env_str("TRELLIS_VAR_DIR", str(BASE_DIR / "var")))
# var/ holds the generated secret key, the demo password, the SQLite database (tokens,
# sessions, encrypted secrets), uploaded files and the live wake-up sockets: only the
# account running Trellis may enter it (0700), whatever the umask made of it.
VAR_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
if VAR_DIR.stat().st_uid == os.getuid() and VAR_DIR.stat().st_mode & 0o077:
    VAR_DIR.chmod(0o700)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    # Embedded mode: a key generated once and kept in var/ so sessions survive restarts.
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        from django.core.management.utils import get_random_secret_key

        key_file.write_text(get_random_secret_key())
        key_file.chmod(0o600)
    SECRET_KEY = key_file.read_text().strip()

# Key for secrets at rest (Fernet, urlsafe base64 of 32 bytes). Derived from SECRET_KEY
# when not given so the embedded mode works out of the box.
TRELLIS_SECRETS_KEY = env_str("TRELLIS_SECRETS_KEY")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served offline
    "channels",
    "django_q",
    "designer",
    "runtime",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "designer.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "designer.urls"
ASGI_APPLICATION = "designer.asgi.application"
WSGI_APPLICATION = "designer.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    # Scale-out: PostgreSQL. Connections are kept (workers commit every step) and
    # checked before reuse, so a restarted database costs one failed ping, not a task.
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL,
            conn_max_age=env_int("TRELLIS_DB_CONN_MAX_AGE", 60),
            conn_health_checks=True,
        )
    }
    _pg_options: dict[str, object] = DATABASES["default"].setdefault("OPTIONS", {})
    _pg_options.setdefault("connect_timeout", env_int("TRELLIS_DB_CONNECT_TIMEOUT", 10))
    # synchronous_commit: "off" trades the last fraction of a second of commits on a crash of
    # the database host (never consistency: a crash keeps a prefix of the commits, and a
    # step's result, its journal entries and the run's last_seq commit together) for a
    # commit without waiting for an fsync — the embedded mode's SQLite (WAL,
    # synchronous=NORMAL) makes the same trade. TRELLIS_PG_SYNCHRONOUS_COMMIT applies to
    # every process; TRELLIS_PG_WORKER_SYNCHRONOUS_COMMIT (default "off") only to qcluster
    # worker processes, whose commits are the engine's steps: a lost step commit only
    # re-runs that step (same idempotency key), while what the API acknowledges (a started
    # run, a signal) stays fsynced.
    _commit_modes = {"on", "off", "local", "remote_write", "remote_apply"}
    _sync_commit = env_str("TRELLIS_PG_SYNCHRONOUS_COMMIT")
    TRELLIS_PG_WORKER_SYNCHRONOUS_COMMIT = env_str(
        "TRELLIS_PG_WORKER_SYNCHRONOUS_COMMIT", _sync_commit or "off"
    )
    for _name, _mode in (
        ("TRELLIS_PG_SYNCHRONOUS_COMMIT", _sync_commit),
        ("TRELLIS_PG_WORKER_SYNCHRONOUS_COMMIT", TRELLIS_PG_WORKER_SYNCHRONOUS_COMMIT),
    ):
        if _mode and _mode not in _commit_modes:
            raise ImproperlyConfigured(
                f"{_name} must be on, off, local, remote_write or remote_apply, got {_mode!r}"
            )
    if _sync_commit:
        _pg_options["options"] = f"-c synchronous_commit={_sync_commit}"
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env_str("SQLITE_PATH", str(VAR_DIR / "trellis.sqlite3")),
            "OPTIONS": {
                # IMMEDIATE: writers take the lock up front, so two processes never
                # deadlock upgrading read locks; WAL lets readers run beside a writer.
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                # wal_autocheckpoint: checkpoint (and fsync) every ~40 MB of WAL rather than
                # every 4 MB: with one short commit per step, frequent checkpoints were a
                # third of the commit time.
                "init_command": (
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;"
                    " PRAGMA wal_autocheckpoint=10000;"
                ),
            },
            "TEST": {"NAME": env_str("SQLITE_TEST_PATH", str(VAR_DIR / "test.sqlite3"))},
            # Keep connections: django-q2 closes "old" connections before every dequeue,
            # task and ack, and reopening SQLite (PRAGMAs, schema parse) costs more than
            # the engine's work for a short task.
            "CONN_MAX_AGE": env_int("TRELLIS_SQLITE_CONN_MAX_AGE", 600),
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
TRELLIS_MODE = "scale" if DATABASE_URL and env_str("REDIS_URL") else "embedded"

# --- Queue (django-q2) ----------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
Q_CLUSTER: dict[str, object] = {
    "name": env_str("TRELLIS_QUEUE_NAME", "trellis"),
    "workers": env_int("TRELLIS_WORKERS", 2),
    "timeout": env_int("TRELLIS_TASK_TIMEOUT", 600),
    "retry": env_int("TRELLIS_TASK_RETRY", 660),
    "max_attempts": 1,
    "catch_up": False,
    # -1: successful task results are not stored (a run's journal already says everything;
    # a positive limit makes django-q2 re-read that many stored results per task). Failed
    # tasks are always stored.
    "save_limit": env_int("TRELLIS_TASK_SAVE_LIMIT", -1),
    "ack_failures": True,
    "label": "Task queue",
    "sync": env_bool("TRELLIS_QUEUE_SYNC", False),
    "poll": env_float("TRELLIS_QUEUE_POLL", 0.05),
    "bulk": 1,
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
    Q_CLUSTER["broker_class"] = "runtime.brokers.DelayedRedis"
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["broker_class"] = "runtime.brokers.DelayedORM"

# --- Engine ---------------------------------------------------------------------------
# CODE steps may only call functions from these packages (plus runtime.connectors.code's
# built-ins): a spec author must never be able to name os:system.
TRELLIS_CODE_PACKAGES = env_list("TRELLIS_CODE_PACKAGES", ["workflows", "tests"])
# A worker that stops renewing its lease on a run's sequence (crashed) loses it after this
# many seconds; another worker then continues the run.
TRELLIS_LEASE_S = env_float("TRELLIS_LEASE_S", 10.0)
# PUBLISH: runs started by messages from runs started by messages… stop after this many
# generations (a workflow publishing to a topic it subscribes to would loop forever).
TRELLIS_PUBLISH_CHAIN_MAX = env_int("TRELLIS_PUBLISH_CHAIN_MAX", 10)
# Code-first workflows: their CODE steps call runtime.workflows, which only runs functions
# registered by workflows.define() for the run's own workflow.
TRELLIS_CODE_PACKAGES.append("runtime.workflows")
# Modules defining code-first workflows, besides every installed app's `workflows` module
# (`manage.py sync_workflows` imports them), e.g. TRELLIS_WORKFLOW_MODULES=examples.
TRELLIS_WORKFLOW_MODULES = env_list("TRELLIS_WORKFLOW_MODULES", [])

# --- Channels -------------------------------------------------------------------------
# Live run updates cross processes (worker -> web). Scale-out: channels-redis. Embedded:
# runtime.channel_layer.JournalChannelLayer tails the journal, woken by a datagram on a
# UNIX socket in VAR_DIR/live after each commit (no extra server; polls only as a safety
# net, every TRELLIS_LIVE_POLL seconds, and only while someone is watching).
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                # Several Trellis installs (or test runs) may share one Redis.
                "prefix": env_str("TRELLIS_CHANNELS_PREFIX", "asgi"),
                "capacity": env_int("TRELLIS_LIVE_CAPACITY", 1000),
            },
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "runtime.channel_layer.JournalChannelLayer",
            "CONFIG": {
                "path": str(VAR_DIR / "live"),
                "poll": env_float("TRELLIS_LIVE_POLL", 0.5),
            },
        }
    }

# --- Auth, API ------------------------------------------------------------------------
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header makes anonymous requests a 401, not a 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # drf-spectacular's, plus the error responses and additionalProperties: false of
    # strict request bodies: the schema says what the API does (designer/api/schema.py).
    "DEFAULT_SCHEMA_CLASS": "designer.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "designer.api.errors.exception_handler",
    # JSON only, with caps on size and nesting that turn would-be 500s into 400s naming
    # the field (designer/api/parsers.py).
    "DEFAULT_PARSER_CLASSES": ["designer.api.parsers.JSONBodyParser"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Trellis API",
    "DESCRIPTION": "Author, publish, activate and run workflows.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "PREPROCESSING_HOOKS": ["designer.api.schema.drop_slash_aliases"],
    "COMPONENT_SPLIT_REQUEST": True,
}
# Hard caps on request bodies: a 1 MB string is allowed, a 10 MB body is not.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("TRELLIS_MAX_BODY_BYTES", 5 * 1024 * 1024)

# --- i18n, static ---------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every start otherwise
STATICFILES_DIRS = [p for p in [BASE_DIR / "frontend" / "dist"] if p.exists()]
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "/media/"
WHITENOISE_USE_FINDERS = True


def _vite_hashed(path: str, url: str) -> bool:
    """Vite's bundles carry a content hash (assets/main-DzT6zcdF.js): cache them forever."""
    import re

    return re.search(r"/assets/[^/]+-[A-Za-z0-9_-]{8}\.[a-z0-9]+$", url) is not None


WHITENOISE_IMMUTABLE_FILE_TEST = _vite_hashed

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "WARNING")},
    "loggers": {
        "trellis": {"level": env_str("TRELLIS_LOG_LEVEL", "INFO"), "propagate": True},
    },
}

SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("TRUST_X_FORWARDED_PROTO", False) else None
)
# Behind a TLS-terminating proxy (see README "Scale-out mode"): redirect plain HTTP and
# tell browsers to stay on HTTPS.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
# HSTS for every subdomain too (a cookie set for the parent domain cannot then be read or
# planted over plain HTTP on a sibling host), and the preload flag that lets the domain be
# listed in browsers (HTTPS from the very first visit). Only once every subdomain serves
# HTTPS: both are hard to take back. With the two, `check --deploy` is clean.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)

# Content-Security-Policy sent with every response (designer/csp.py): only this site's own
# scripts run (no inline script, no eval), so markup injected into a page cannot execute;
# the pages cannot be framed (clickjacking), nor post forms or open sockets elsewhere.
# The frontend's bundle, its styles (static files; React sets inline styles through the
# DOM, which CSP allows) and its WebSocket ('self' covers ws/wss on the same host) fit it.
TRELLIS_CSP: dict[str, list[str]] = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],  # data: for the inline SVG favicon
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
# Additions per path prefix. Django's admin and the Swagger UI page (third-party
# templates) carry small inline <style> blocks; inline styles cannot run script, so they
# are allowed there and nowhere else. Scripts stay 'self' everywhere.
TRELLIS_CSP_EXTRA: dict[str, dict[str, list[str]]] = {
    "/admin/": {"style-src": ["'unsafe-inline'"]},
    "/api/docs/": {"style-src": ["'unsafe-inline'"]},
}
