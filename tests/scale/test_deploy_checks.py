"""``manage.py check --deploy`` says what a scale-out install across machines needs."""

from __future__ import annotations

import pytest

from runtime.deploy_checks import scale_out_check

pytestmark = pytest.mark.scale


def ids(monkeypatch: pytest.MonkeyPatch, **env: str) -> list[str]:
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return [message.id or "" for message in scale_out_check()]


def test_the_embedded_default_needs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ids(monkeypatch) == []


def test_scale_out_with_every_variable_set_is_clean(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (
        ids(monkeypatch, DATABASE_URL="postgresql://db/t", REDIS_URL="redis://r", SECRET_KEY="k")
        == []
    )


def test_a_key_generated_per_machine_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ids(monkeypatch, DATABASE_URL="postgresql://db/t", REDIS_URL="redis://r") == [
        "trellis.W901"
    ]


def test_half_configured_scale_out_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ids(monkeypatch, DATABASE_URL="postgresql://db/t", SECRET_KEY="k") == ["trellis.W902"]
    assert ids(monkeypatch, REDIS_URL="redis://r") == ["trellis.W903"]


def test_the_checks_run_with_check_deploy() -> None:
    from django.core import checks

    registered = checks.registry.registry.get_checks(include_deployment_checks=True)
    assert scale_out_check in registered
