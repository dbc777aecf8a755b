"""The run store of the current database (see :mod:`runtime.engine.store.base`)."""

from __future__ import annotations

from runtime.engine.store.base import RunStore, Statement, run_from, run_select, sql_value
from runtime.engine.store.postgres import PostgresStore
from runtime.engine.store.sqlite import SqliteStore
from runtime.journal import vendor

_STORES: dict[str, RunStore] = {"postgresql": PostgresStore(), "sqlite": SqliteStore()}


def store() -> RunStore:
    """The store for this process's database (looked up per call: it is a dict read)."""
    return _STORES[vendor()]


__all__ = [
    "PostgresStore",
    "RunStore",
    "SqliteStore",
    "Statement",
    "run_from",
    "run_select",
    "sql_value",
    "store",
]
