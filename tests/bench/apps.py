"""The dev-only app that holds the bench and load-test commands (see the package docstring)."""

from __future__ import annotations

from django.apps import AppConfig


class BenchConfig(AppConfig):
    """Registers ``tests/bench/management/commands`` with ``manage.py``."""

    name = "tests.bench"
    label = "trellis_bench"
    verbose_name = "Trellis benchmarks and load test (dev only)"
