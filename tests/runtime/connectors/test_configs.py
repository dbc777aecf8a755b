"""The typed component configs: pure, and accepting whatever the connectors accepted."""

from __future__ import annotations

import subprocess
import sys

import pytest

from runtime.component_configs import (
    CONFIGS,
    AppConfig,
    BrokerConfig,
    DatabaseConfig,
    FallbackConfig,
    NotifierConfig,
    QuotaConfig,
    StorageConfig,
    config_of,
)


def test_configs_import_neither_django_nor_designer() -> None:
    code = (
        "import sys, runtime.component_configs; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'django', 'designer'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


ODD = [{}, {"x": 1}, {"url": None, "auth": "nope", "email": [], "limits": 3, "providers": 7}]


@pytest.mark.parametrize("config", ODD)
@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_every_kind_accepts_any_object(kind: str, config: dict[str, object]) -> None:
    assert config_of(CONFIGS[kind], config) is not None


def test_coercions_match_what_the_connectors_did() -> None:
    app = config_of(
        AppConfig, {"base_url": 0, "query": [1], "auth": {"type": "api_key", "in": "query"}}
    )
    assert (app.base_url, app.query, app.auth.type, app.auth.in_) == ("", {}, "api_key", "query")
    assert app.idempotency_header == "Idempotency-Key" and app.retry_on == []
    assert config_of(DatabaseConfig, {"url": "sqlite:///x"}).url == "sqlite:///x"
    notifier = config_of(NotifierConfig, {"email": {"host": "h", "from": "a@b.c"}, "sms": None})
    assert (notifier.email.host, notifier.email.port, notifier.email.from_) == ("h", 25, "a@b.c")
    assert notifier.sms.url == "" and notifier.push.auth.type is None
    storage = config_of(StorageConfig, {"backend": "s3", "bucket": "b"})
    assert (storage.backend, storage.signed_urls, storage.url_expiry) == ("s3", True, 3600)
    assert config_of(BrokerConfig, {}).maxlen == 100_000
    assert config_of(FallbackConfig, {"providers": [{"type": "ACTION"}]}).providers


def test_quota_own_rule_only_when_the_config_sets_a_limit() -> None:
    assert config_of(QuotaConfig, {"backend": "redis"}).own_rule() is None
    rule = config_of(QuotaConfig, {"limit": 10, "window": "1s", "note": "x"}).own_rule()
    assert rule == {"limit": 10, "window": "1s", "note": "x"}
