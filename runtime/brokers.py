"""django-q2 brokers that can hold a task back until a time (timers, retry delays).

No worker ever sleeps for a timer: a delayed task is invisible to workers until due.
ORM: a row whose ``lock`` is in the future is not dequeued until then.
Redis: delayed tasks wait in a sorted set and are moved onto the list by whichever
worker polls next (the Redis broker polls at least once a second).
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.brokers.redis_broker import Redis


class DelayedORM(ORM):  # type: ignore[misc]  # django_q has no type hints
    def enqueue_delayed(self, task: str, delay_s: float) -> int:
        package = self.get_connection().create(
            key=self.list_key, payload=task, lock=timezone.now() + timedelta(seconds=delay_s)
        )
        return int(package.pk)


class DelayedRedis(Redis):  # type: ignore[misc]  # django_q has no type hints
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


# --- Enqueueing engine tasks ----------------------------------------------------------------

TaskCall = tuple[str, tuple[Any, ...]]  # (dotted function path, args)

_broker: Any = None


def broker() -> Any:
    """The configured django-q2 broker, created once per process."""
    global _broker
    if _broker is None:
        from django_q.brokers import get_broker

        _broker = get_broker()
    return _broker


def task_package(func: str, args: tuple[Any, ...]) -> str:
    """A signed django-q2 task package, as ``async_task`` builds it (success not saved)."""
    import uuid

    from django_q.signing import SignedPackage

    task_id = uuid.uuid4().hex  # humanhash names cost more than the engine's whole task
    task = {
        "id": task_id,
        "name": task_id,
        "func": func,
        "args": args,
        "kwargs": {},
        # Engine tasks leave their trace in the journal; storing every success as a
        # django-q Task row would double the writes per task.
        "save": False,
        "ack_failure": True,
        "started": timezone.now(),
    }
    return str(SignedPackage.dumps(task))


def is_orm_broker() -> bool:
    return isinstance(broker(), ORM)


def enqueue_now(calls: list[TaskCall], delay_s: float = 0.0) -> None:
    """Put tasks on the queue right away (``delay_s`` > 0: invisible until then).

    With the ORM broker inside a transaction the queue rows commit (or roll back) with
    the state they act on — a transactional outbox; the Redis broker must be called
    after commit (see ``runtime.executor.enqueue``).
    """
    if not calls:
        return
    from django_q.conf import Conf

    if Conf.SYNC:
        import pydoc

        for func, args in calls:
            pydoc.locate(func)(*args)  # type: ignore[operator]
        return
    b = broker()
    packages = [task_package(func, args) for func, args in calls]
    if isinstance(b, ORM):
        from django.db import connections
        from django_q.models import OrmQ

        db = connections[Conf.ORM]
        lock = db.ops.adapt_datetimefield_value(timezone.now() + timedelta(seconds=delay_s))
        with db.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {OrmQ._meta.db_table} (key, payload, lock) VALUES (%s, %s, %s)",  # noqa: S608
                [(b.list_key, p, lock) for p in packages],
            )
    elif delay_s > 0 and hasattr(b, "enqueue_delayed"):
        for p in packages:
            b.enqueue_delayed(p, delay_s)
    elif isinstance(b, Redis):
        b.connection.rpush(b.list_key, *packages)
    else:
        for p in packages:
            b.enqueue(p)
