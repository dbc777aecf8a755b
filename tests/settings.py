"""Settings for the test suite: production settings plus the tests' own step functions
and the dev-only bench app.

The test helpers below (``tests.runtime.steps:hang`` …) are callable by CODE steps only
under these settings (pyproject's DJANGO_SETTINGS_MODULE, and every qcluster or server
subprocess a test starts); designer.settings knows none of them. The same goes for the
``bench``, ``loadtest`` and ``bench_compile`` commands (the ``tests.bench`` app):
``DJANGO_SETTINGS_MODULE=tests.settings python manage.py bench`` (``make bench``).
"""

from __future__ import annotations

import os
from pathlib import Path

from designer.settings import *  # noqa: F403
from designer.settings import INSTALLED_APPS as _PRODUCTION_APPS
from designer.settings import TRELLIS_STEP_FUNCTIONS as _PRODUCTION_STEP_FUNCTIONS

INSTALLED_APPS = [*_PRODUCTION_APPS, "tests.bench.apps.BenchConfig"]

_TEST_STEP_FUNCTIONS = {
    "tests.runtime.steps": [
        "record",
        "slow",
        "add",
        "flaky",
        "boom",
        "logs",
        "not_json",
        "hang",
        "die",
        "pid",
        "span",
    ],
    "tests.scale.steps": ["mark", "fail_first", "gate", "file_gate", "commit_mode"],
}

TRELLIS_STEP_FUNCTIONS = [
    *_PRODUCTION_STEP_FUNCTIONS,
    *(f"{module}:{fn}" for module, fns in _TEST_STEP_FUNCTIONS.items() for fn in fns),
]

# A browser-test server may serve another build of the frontend: the canvas benchmark's is
# frontend/dist-bench (the production bundle plus the benchmark hook; tests/e2e/harness.py).
if os.environ.get("TRELLIS_FRONTEND_DIST"):
    TRELLIS_FRONTEND_DIST = Path(os.environ["TRELLIS_FRONTEND_DIST"])
    STATICFILES_DIRS = [TRELLIS_FRONTEND_DIST]
