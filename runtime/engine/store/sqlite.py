"""The run store on SQLite: the shared SQL as it is; the database's write lock (taken by
``BEGIN IMMEDIATE`` or the first write) serializes writers, so no row locks are needed."""

from __future__ import annotations

from runtime.engine.store.base import RunStore


class SqliteStore(RunStore):
    pass
