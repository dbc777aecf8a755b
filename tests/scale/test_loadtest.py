"""The load test, small: 300 runs of 10 steps with injected failures and retries, on two
qcluster processes of which one is SIGKILLed and replaced every half second (the runs take
about two seconds when nothing is killed). The full
size is ``python manage.py loadtest --runs 10000 --steps 10 --fail-rate 0.01``."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from designer.models import Environment
from tests.bench.management.commands.loadtest import LoadConfig, LoadTest, format_report
from tests.runtime.conftest import Worker

pytestmark = [pytest.mark.worker, pytest.mark.scale, pytest.mark.django_db(transaction=True)]

# The clusters call the load test's step function: registered for them by an admin's setting.
STEP_FUNCTIONS = "tests.bench.management.commands.loadtest:step"


def test_a_small_load_test_with_killed_workers_keeps_every_invariant(
    env_dev: Environment, cluster: Callable[..., Worker]
) -> None:
    config = LoadConfig(
        runs=300,
        steps=10,
        fail_rate=0.1,  # high, so that a small test sees retries and failed runs
        retries=1,
        clusters=2,
        workers=1,
        kill_every=0.5,
        min_kills=2,
        in_flight=150,
        timeout=240,
    )
    test = LoadTest(
        config,
        environment=env_dev,
        start_cluster=lambda: cluster(workers=1, env={"TRELLIS_STEP_FUNCTIONS": STEP_FUNCTIONS}),
    )
    report = test.run()
    print(format_report(report))
    assert report.violations == []
    assert report.kills >= 2
    assert report.completed_runs + report.failed_runs == 300
    assert report.failed_runs == report.expected_failed_runs > 0
    assert report.retried_steps > 0
