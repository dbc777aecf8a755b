"""Settings for the test suite: production settings plus the tests' own step functions.

The test helpers below (``tests.runtime.steps:hang`` …) are callable by CODE steps only
under these settings (pyproject's DJANGO_SETTINGS_MODULE, and every qcluster or server
subprocess a test starts); designer.settings knows none of them.
"""

from __future__ import annotations

from designer.settings import *  # noqa: F403
from designer.settings import TRELLIS_STEP_FUNCTIONS as _PRODUCTION_STEP_FUNCTIONS

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
    ],
    "tests.scale.steps": ["mark", "fail_first", "gate", "file_gate", "commit_mode"],
}

TRELLIS_STEP_FUNCTIONS = [
    *_PRODUCTION_STEP_FUNCTIONS,
    *(f"{module}:{fn}" for module, fns in _TEST_STEP_FUNCTIONS.items() for fn in fns),
]
