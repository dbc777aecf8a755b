"""Trellis settings: one module, every knob read from the environment.

Embedded default (no variables set): SQLite in WAL mode, the django-q2 ORM broker and a
journal-tailing channel layer — no extra servers. Scale-out: set DATABASE_URL and REDIS_URL.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
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
    "axes",  # login lockout (see "Logins" below)
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
    # Last, as axes' docs require: turns a lockout flagged during authenticate() into the
    # 429 answer of designer.accounts.login_locked_out.
    "axes.middleware.AxesMiddleware",
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
# CODE steps call only registered step functions, never a module a spec names: a designer
# must not be able to run code of their choosing in the worker (os:system, an uploaded
# file, a test helper). An admin names functions here ("package.module:function",
# comma-separated); they are imported once at startup. Functions decorated with
# @workflows.step_function in an installed app's workflows.py (or a module of
# TRELLIS_WORKFLOW_MODULES) and the built-ins runtime.connectors.code:noop|echo|fail are
# registered too.
TRELLIS_STEP_FUNCTIONS = env_list("TRELLIS_STEP_FUNCTIONS", [])
if "TRELLIS_CODE_PACKAGES" in os.environ:
    # It opened whole packages (tests included) to CODE steps: refuse to start with it.
    raise ImproperlyConfigured(
        "TRELLIS_CODE_PACKAGES is no longer supported: list the functions CODE steps may "
        "call in TRELLIS_STEP_FUNCTIONS ('package.module:function', comma-separated)."
    )
# A worker that stops renewing its lease on a run's sequence (crashed) loses it after this
# many seconds; another worker then continues the run.
TRELLIS_LEASE_S = env_float("TRELLIS_LEASE_S", 10.0)
# PUBLISH: runs started by messages from runs started by messages… stop after this many
# generations (a workflow publishing to a topic it subscribes to would loop forever).
TRELLIS_PUBLISH_CHAIN_MAX = env_int("TRELLIS_PUBLISH_CHAIN_MAX", 10)
# Bounds that keep one run from wedging or flooding the engine (issue 13, items 4-5).
# A run whose tasks crash this many times in a row (an engine bug, a worker killed while
# handling it) is failed with a journaled error instead of being re-leased forever.
TRELLIS_RUN_MAX_TASK_FAILURES = env_int("TRELLIS_RUN_MAX_TASK_FAILURES", 5)
# Bulk actions on runs (POST /api/v1/runs/bulk): at most this many runs per request, and a
# typed confirmation above TRELLIS_BULK_CONFIRM_OVER runs.
TRELLIS_BULK_MAX_RUNS = env_int("TRELLIS_BULK_MAX_RUNS", 100)
TRELLIS_BULK_CONFIRM_OVER = env_int("TRELLIS_BULK_CONFIRM_OVER", 10)
# Size caps, in bytes of stored JSON: a step whose input or output, or the run state after
# a SET_STATE/CHECKPOINT, would be larger fails (no retry) before anything is stored; a run
# output mapping larger than its cap ends the run with an error output instead. They stop
# a designer from filling the database/disk (doubling $Concat steps) or the worker's memory.
TRELLIS_MAX_STEP_INPUT_BYTES = env_int("TRELLIS_MAX_STEP_INPUT_BYTES", 1_000_000)
TRELLIS_MAX_STEP_OUTPUT_BYTES = env_int("TRELLIS_MAX_STEP_OUTPUT_BYTES", 1_000_000)
TRELLIS_MAX_STATE_BYTES = env_int("TRELLIS_MAX_STATE_BYTES", 2_000_000)
TRELLIS_MAX_RUN_OUTPUT_BYTES = env_int("TRELLIS_MAX_RUN_OUTPUT_BYTES", 1_000_000)
# The most items a FOREACH step loops over: each item is a journaled iteration (a sequence
# and its steps' rows), so a list resolved at run time cannot make a run unbounded. A
# longer list fails the FOREACH step (no retry) before any iteration starts.
TRELLIS_MAX_LOOP_ITERATIONS = env_int("TRELLIS_MAX_LOOP_ITERATIONS", 10_000)
# The longest string (characters) or list (items) one expression may produce ($Concat,
# $Join, interpolated text): past it the expression fails, so memory stays bounded. All the
# expressions of one step's input (or of the run output, or a query) may produce 4x this
# in all (a thousand copies of a large value in one input are refused while resolving).
TRELLIS_MAX_VALUE_LENGTH = env_int("TRELLIS_MAX_VALUE_LENGTH", 1_000_000)
# Modules defining code-first workflows, besides every installed app's `workflows` module
# (`manage.py sync_workflows` imports them), e.g. TRELLIS_WORKFLOW_MODULES=examples. Every
# process imports them at startup (their workflows and @step_function functions), never later
# because a step's input named a module.
TRELLIS_WORKFLOW_MODULES = env_list("TRELLIS_WORKFLOW_MODULES", [])
# Outgoing connections (SSRF, runtime/netguard.py): names or IP addresses of this Trellis
# server that are not loopback or private (its public address, a load balancer in front
# of it). Steps may not connect to them unless an environment's allowed hosts name the
# address; the host name and the names in ALLOWED_HOSTS are added on their own.
TRELLIS_SELF_ADDRESSES = env_list("TRELLIS_SELF_ADDRESSES", [])

# --- Operations (README "Operating Trellis") --------------------------------------------
# GET /metrics (Prometheus) answers a caller with this bearer token, or from one of these
# addresses/networks (client address as in "Logins" below); nobody when neither is set.
TRELLIS_METRICS_TOKEN = env_str("TRELLIS_METRICS_TOKEN")
TRELLIS_METRICS_ALLOW = env_list("TRELLIS_METRICS_ALLOW", [])
# /readyz and `manage.py doctor`: a worker heartbeat older than this means no worker runs;
# below this much free disk where the data lives (TRELLIS_DATA_DIR, default the SQLite
# file's folder), new runs are refused with a 503 before a full disk stalls the ones in
# flight.
TRELLIS_READY_HEARTBEAT_S = env_float("TRELLIS_READY_HEARTBEAT_S", 30.0)
TRELLIS_DATA_DIR = env_str("TRELLIS_DATA_DIR")
TRELLIS_DISK_MIN_FREE_MB = env_int("TRELLIS_DISK_MIN_FREE_MB", 200)
# SIGTERM to a qcluster: each worker finishes its step in flight for at most this long, then
# ends (runtime/graceful.py). Keep it below the supervisor's stop timeout.
TRELLIS_STOP_GRACE_S = env_float("TRELLIS_STOP_GRACE_S", 25.0)
# OpenTelemetry traces of runs and steps (runtime/tracing.py): off unless an OTLP endpoint
# is set (e.g. http://127.0.0.1:4318); then exported over OTLP/HTTP in batches.
TRELLIS_OTLP_ENDPOINT = env_str("TRELLIS_OTLP_ENDPOINT")
# Retention (runtime/retention.py), the product default; each environment may override it
# on the Environments page. Days after a run finished; 0 keeps forever.
TRELLIS_RETENTION_COMPLETED_DAYS = env_int("TRELLIS_RETENTION_COMPLETED_DAYS", 30)
TRELLIS_RETENTION_FAILED_DAYS = env_int("TRELLIS_RETENTION_FAILED_DAYS", 90)
TRELLIS_RETENTION_KEEP_LAST = env_int("TRELLIS_RETENTION_KEEP_LAST", 20)  # per workflow
TRELLIS_RETENTION_AUDIT_DAYS = env_int("TRELLIS_RETENTION_AUDIT_DAYS", 365)

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

# --- Logins -----------------------------------------------------------------------------
# How many reverse proxies (each appending to X-Forwarded-For) stand between the clients
# and Trellis. 0 (default): the socket peer (REMOTE_ADDR) is the client and X-Forwarded-For
# is ignored — a client writes whatever it likes there, so trusting it let one machine
# pose as a new address on every login attempt. N: the N-th address from the right of
# X-Forwarded-For, the one the outermost trusted proxy saw. One rule for everything that
# needs a client address (designer.accounts.client_ip): DRF throttles (NUM_PROXIES below)
# and the login lockout (AXES_CLIENT_IP_CALLABLE). Do not run daphne with --proxy-headers:
# it takes the left-most (client-written) address.
TRELLIS_TRUSTED_PROXIES = env_int("TRELLIS_TRUSTED_PROXIES", 0)
if TRELLIS_TRUSTED_PROXIES < 0:
    raise ImproperlyConfigured("TRELLIS_TRUSTED_PROXIES must be 0 or more")
# Password guessing on /login/, /admin/login/ and POST /api/v1/auth/token (django-axes):
# after TRELLIS_LOGIN_FAILURE_LIMIT failures for one username from one client address,
# that pair is refused (429, even with the right password) for TRELLIS_LOGIN_COOLOFF_MINUTES
# after its last failure. Username AND address: locking a username alone would let anyone
# lock any user out from everywhere by typing wrong passwords; an address alone would lock
# out everyone behind a shared NAT. Guessing across many usernames from one address is
# slowed by the per-address rate limit (TRELLIS_LOGIN_RATE). `manage.py axes_reset`
# (or axes_reset_username) lifts a lockout early.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out pair up front
    "django.contrib.auth.backends.ModelBackend",
]
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = env_int("TRELLIS_LOGIN_FAILURE_LIMIT", 5)
TRELLIS_LOGIN_COOLOFF_MINUTES = env_int("TRELLIS_LOGIN_COOLOFF_MINUTES", 15)
if AXES_FAILURE_LIMIT < 1 or TRELLIS_LOGIN_COOLOFF_MINUTES < 1:
    raise ImproperlyConfigured(
        "TRELLIS_LOGIN_FAILURE_LIMIT and TRELLIS_LOGIN_COOLOFF_MINUTES must be 1 or more"
    )
AXES_COOLOFF_TIME = timedelta(minutes=TRELLIS_LOGIN_COOLOFF_MINUTES)
AXES_RESET_ON_SUCCESS = True  # a successful login clears that pair's failures
AXES_CLIENT_IP_CALLABLE = "designer.accounts.client_ip"
AXES_LOCKOUT_CALLABLE = "designer.accounts.login_locked_out"
AXES_HTTP_RESPONSE_CODE = 429
# Attempts per minute from one client address on the login endpoints, whatever the
# usernames (password spraying across accounts; per web process: the default cache).
TRELLIS_LOGIN_RATE = env_str("TRELLIS_LOGIN_RATE", "30/minute")
if not re.fullmatch(r"[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)", TRELLIS_LOGIN_RATE):
    raise ImproperlyConfigured(
        f"TRELLIS_LOGIN_RATE must look like 30/minute (per second, minute, hour or day), "
        f"got {TRELLIS_LOGIN_RATE!r}"
    )
# API tokens expire this many hours after they were issued (0: never). A leaked token
# stops working on its own; POST /api/v1/auth/token issues a new one and says when it
# expires. Changing a user's password deletes their tokens (designer.accounts).
TRELLIS_TOKEN_TTL_HOURS = env_int("TRELLIS_TOKEN_TTL_HOURS", 720)
if TRELLIS_TOKEN_TTL_HOURS < 0:
    raise ImproperlyConfigured("TRELLIS_TOKEN_TTL_HOURS must be 0 (never) or more")

REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header makes anonymous requests a 401, not a 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "designer.api.authentication.ExpiringTokenAuthentication",
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
    # DRF throttles identify clients by the same trusted-proxy rule as everything else.
    "NUM_PROXIES": TRELLIS_TRUSTED_PROXIES,
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
# Files of file-system STORAGE steps (designer-chosen content). The default directory name
# holds a dot so no dotted module name can reach through it: an uploaded .py can never be
# imported, even though VAR_DIR sits in the project root (on sys.path). A MEDIA_ROOT that a
# module path can reach is refused at startup (system check trellis.E010).
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media.files")))
MEDIA_URL = "/media/"
# GRAPH steps (runtime/connectors/graph.py): each graph component's embedded LadybugDB
# database lives under this root (its per-environment config may name a relative `path`
# inside it, nothing outside). Results are capped in rows and bytes; the buffer pool
# bounds the memory one step's query may use (LadybugDB's default is 80% of RAM).
TRELLIS_GRAPH_ROOT = Path(env_str("TRELLIS_GRAPH_ROOT", str(VAR_DIR / "graphs")))
TRELLIS_GRAPH_MAX_ROWS = env_int("TRELLIS_GRAPH_MAX_ROWS", 10_000)
TRELLIS_GRAPH_MAX_RESULT_BYTES = env_int("TRELLIS_GRAPH_MAX_RESULT_BYTES", 1_000_000)
TRELLIS_GRAPH_BUFFER_POOL_MB = env_int("TRELLIS_GRAPH_BUFFER_POOL_MB", 256)
TRELLIS_GRAPH_TIMEOUT_S = env_float("TRELLIS_GRAPH_TIMEOUT_S", 30.0)
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
