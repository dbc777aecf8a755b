"""QUOTA: named quotas of N calls per fixed window, per key, counted atomically.

A quota component declares its quotas (``Component.events``)::

    {"api-rate-limit": {"limit": 100, "window": "1m", "on_exceeded": "report"}}

and each environment may override limits and pick the counter store (``Component.config``)::

    {"backend": "database"}                                  # default
    {"backend": "redis", "url": "redis://127.0.0.1:6379/0", "key_prefix": "trellis"}
    {"limits": {"api-rate-limit": {"limit": 1000, "window": "1m"}}}
    {"limit": 10, "window": "1s"}      # the quota when the event is the component itself

``event`` is the quota's name (or ``quota_tag:name``; the seed's
``ctx.quota.execute({quota: 'api-rate-limit', input: {key}})`` names only the component,
whose config/first declared quota then applies). Input ``{key, cost?}``.

Result ``{allowed, remaining, reset, limit, used}`` (``reset`` = ISO time the window ends).
A refused call does not count. With ``"on_exceeded": "fail"`` a refusal fails the step
(not retryable) instead of returning ``allowed: false``.

Windows are fixed and aligned to the epoch (a 1-minute window resets on the minute).
Counting is atomic: a conditional ``UPDATE … SET count = count + cost WHERE count + cost
<= limit`` in the database, a Lua script in Redis.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F

from runtime.component_configs import QuotaConfig, config_of
from runtime.connectors.call import Component, ConnectorCall
from runtime.errors import StepError
from runtime.http import host_check
from runtime.models import QuotaCounter, QuotaUse
from runtime.spec import duration_ms

# KEYS[1] the window's counter, KEYS[2] (optional) what this step was answered before: a
# step re-run after a crash or retried after an error is not counted twice.
_LUA = """
if KEYS[2] then
  local seen = redis.call('GET', KEYS[2])
  if seen then
    local allowed, used = string.match(seen, '(%d+):(%d+)')
    return {tonumber(allowed), tonumber(used)}
  end
end
local used = redis.call('INCRBY', KEYS[1], ARGV[1])
if used == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
local allowed = 1
if used > tonumber(ARGV[2]) then
  used = redis.call('DECRBY', KEYS[1], ARGV[1])
  allowed = 0
end
if KEYS[2] then redis.call('SET', KEYS[2], allowed .. ':' .. used, 'PX', ARGV[4]) end
return {allowed, used}
"""
ONCE_TTL_MS = 24 * 3600 * 1000  # how long a step's answer is remembered


def quota_run(call: ConnectorCall) -> Any:
    """Count one call against a quota; say whether it is allowed."""
    component = call.component
    if component is None:
        raise StepError(f"QUOTA '{call.event}' needs a quota component", retryable=False)
    if call.environment_id is None:
        raise StepError("QUOTA needs the run's environment", retryable=False)
    name = call.event.split(":", 1)[1] if ":" in call.event else call.event
    config = config_of(QuotaConfig, component.config)
    rule, name = _rule(component, config, name)
    limit = int(rule.get("limit", 0))
    try:
        window_ms = duration_ms(rule.get("window", "1m")) or 0
    except ValueError as exc:
        raise StepError(f"quota '{name}': {exc}", retryable=False) from exc
    if limit < 0 or window_ms <= 0:
        raise StepError(f"quota '{name}' needs a limit ≥ 0 and a window > 0", retryable=False)
    data = call.input if isinstance(call.input, dict) else {}
    key = str(data.get("key", "") if data.get("key") is not None else "")[:300]
    cost = data.get("cost", 1)
    if not isinstance(cost, int) or isinstance(cost, bool) or cost < 1:
        raise StepError("input.cost must be a positive integer", retryable=False)

    now_ms = int(time.time() * 1000)
    start_ms = now_ms - now_ms % window_ms
    window_start = dt.datetime.fromtimestamp(start_ms / 1000, tz=dt.UTC)
    reset = dt.datetime.fromtimestamp((start_ms + window_ms) / 1000, tz=dt.UTC)
    backend = config.backend or "database"
    if backend == "redis":
        allowed, used = _redis_take(
            call, component, config, name, key, start_ms, window_ms, limit, cost
        )
    elif backend == "database":
        allowed, used = _db_take_once(
            call.once_key, call.environment_id, component.tag, name, key, window_start, limit, cost
        )
    else:
        raise StepError(f"quota '{component.tag}': unknown backend {backend!r}", retryable=False)
    result = {
        "allowed": allowed,
        "remaining": max(limit - used, 0),
        "reset": reset.isoformat().replace("+00:00", "Z"),
        "limit": limit,
        "used": used,
    }
    if not allowed and rule.get("on_exceeded") == "fail":
        raise StepError(
            f"quota '{name}' exceeded for key {key!r}: {limit} per {rule.get('window', '1m')}",
            retryable=False,
            details=result,
        )
    return result


def _rule(component: Component, config: QuotaConfig, name: str) -> tuple[dict[str, Any], str]:
    limits = config.limits
    declared = component.events.get(name)
    base = declared if isinstance(declared, dict) else {}
    if isinstance(limits.get(name), dict):
        return {**base, **limits[name]}, name
    if base:
        return base, name
    own = config.own_rule()
    if own is not None:
        return own, name
    if name == component.tag and component.events:
        first = next(iter(component.events))
        value = component.events[first]
        if isinstance(value, dict):
            over = limits.get(first)
            return {**value, **(over if isinstance(over, dict) else {})}, first
    raise StepError(f"quota component '{component.tag}' has no quota '{name}'", retryable=False)


def _db_take_once(
    step_key: str,
    environment_id: int,
    tag: str,
    name: str,
    key: str,
    window_start: dt.datetime,
    limit: int,
    cost: int,
) -> tuple[bool, int]:
    """``_db_take``, once per step: the answer is kept with the count, in one transaction."""
    if not step_key:
        return _db_take(environment_id, tag, name, key, window_start, limit, cost)
    uses = QuotaUse.objects.filter(
        environment_id=environment_id, quota=tag, name=name, step_key=step_key
    )
    for _ in range(2):
        seen = uses.values_list("allowed", "used").first()
        if seen is not None:
            return bool(seen[0]), int(seen[1])
        try:
            with transaction.atomic():
                allowed, used = _db_take(environment_id, tag, name, key, window_start, limit, cost)
                QuotaUse.objects.create(
                    environment_id=environment_id, quota=tag, name=name, step_key=step_key,
                    allowed=allowed, used=used,
                )  # fmt: skip
                return allowed, used
        except IntegrityError:
            continue  # the same step, concurrently (a re-run beside a slow original)
    raise StepError("quota counter is busy", retryable=True)


def _db_take(
    environment_id: int,
    tag: str,
    name: str,
    key: str,
    window_start: dt.datetime,
    limit: int,
    cost: int,
) -> tuple[bool, int]:
    rows = QuotaCounter.objects.filter(
        environment_id=environment_id, quota=tag, name=name, key=key, window_start=window_start
    )
    for _ in range(3):
        # The check and the increment are one statement, so concurrent callers can never
        # both take the last unit.
        if rows.filter(count__lte=limit - cost).update(count=F("count") + cost):
            return True, int(rows.values_list("count", flat=True).first() or 0)
        current = rows.values_list("count", flat=True).first()
        if current is not None:
            return False, int(current)
        if cost > limit:
            return False, 0
        try:
            with transaction.atomic():
                QuotaCounter.objects.create(
                    environment_id=environment_id,
                    quota=tag,
                    name=name,
                    key=key,
                    window_start=window_start,
                    count=cost,
                )
            _prune(environment_id, tag, name, window_start)
            return True, cost
        except IntegrityError:
            continue  # another caller opened the window first: count against its row
    raise StepError("quota counter is busy", retryable=True)


def _prune(environment_id: int, tag: str, name: str, window_start: dt.datetime) -> None:
    QuotaCounter.objects.filter(
        environment_id=environment_id, quota=tag, name=name, window_start__lt=window_start
    ).delete()
    QuotaUse.objects.filter(at__lt=window_start - dt.timedelta(days=1)).delete()


_scripts: dict[str, Any] = {}
_scripts_lock = threading.Lock()


def _redis_take(
    call: ConnectorCall,
    component: Component,
    config: QuotaConfig,
    name: str,
    key: str,
    start_ms: int,
    window_ms: int,
    limit: int,
    cost: int,
) -> tuple[bool, int]:
    import redis

    url = config.url
    if not url:
        raise StepError(f"quota '{component.tag}' has no redis url configured", retryable=False)
    # Admin-held config names the server; it is still held to the environment's rule
    # (empty list: public addresses only; production: nothing unless listed).
    host_check(url, call.policy, schemes=("redis", "rediss"))
    prefix = config.key_prefix or "trellis"
    counter = ":".join(
        [prefix, "quota", str(call.environment_id), component.tag, name, key, str(start_ms)]
    )
    keys = [counter]
    if call.once_key:
        keys.append(":".join([prefix, "quota-once", str(call.environment_id), component.tag,
                              name, call.once_key]))  # fmt: skip
    try:
        with _scripts_lock:
            script = _scripts.get(url)
            if script is None:
                timeout = call.timeout_s or 5.0
                client = redis.Redis.from_url(
                    url, socket_timeout=timeout, socket_connect_timeout=timeout
                )
                script = client.register_script(_LUA)
                _scripts[url] = script
        allowed, used = script(keys=keys, args=[cost, limit, window_ms + 1000, ONCE_TTL_MS])
    except redis.RedisError as exc:
        raise StepError(f"quota '{component.tag}': redis: {exc}", retryable=True) from exc
    return bool(allowed), int(used)
