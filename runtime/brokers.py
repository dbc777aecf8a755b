"""django-q2 brokers that can hold a task back until a time (timers, retry delays).

No worker ever sleeps for a timer: a delayed task is invisible to workers until due.
ORM: a row whose ``lock`` is in the future is not dequeued until then.
Redis: delayed tasks wait in a sorted set and are moved onto the list by whichever
worker polls next (the Redis broker polls at least once a second).
"""

from __future__ import annotations

import time
from datetime import timedelta

from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.brokers.redis_broker import Redis


class DelayedORM(ORM):
    def enqueue_delayed(self, task: str, delay_s: float) -> int:
        package = self.get_connection().create(
            key=self.list_key, payload=task, lock=timezone.now() + timedelta(seconds=delay_s)
        )
        return int(package.pk)


class DelayedRedis(Redis):
    @property
    def delayed_key(self) -> str:
        return f"{self.list_key}:delayed"

    def enqueue_delayed(self, task: str, delay_s: float) -> None:
        self.connection.zadd(self.delayed_key, {task: time.time() + delay_s})

    def _promote_due(self) -> None:
        now = time.time()
        due = self.connection.zrangebyscore(self.delayed_key, 0, now, start=0, num=100)
        for task in due:
            # ZREM decides which poller moves it: exactly one gets 1 back.
            if self.connection.zrem(self.delayed_key, task):
                self.connection.rpush(self.list_key, task)

    def dequeue(self):  # type: ignore[no-untyped-def]
        self._promote_due()
        return super().dequeue()
