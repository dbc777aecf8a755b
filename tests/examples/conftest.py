"""Fixtures for the examples: the shop peer, a real SMTP server, the examples' components,
and the engine helpers (real qcluster workers) shared with tests/runtime."""

from __future__ import annotations

import email
from collections.abc import Callable, Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from designer.models import Product
from tests.examples.shop import PORTS, Shop, components_ensure
from tests.runtime.conftest import (
    Worker,
    _fresh_plan_cache,  # noqa: F401 - fixture
)

WORKFLOW_MODULES = "examples,tests.examples.worker_samples"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            (list(envelope.rcpt_tos), email.message_from_bytes(envelope.original_content))
        )
        return "250 OK"


@pytest.fixture
def shop() -> Iterator[Shop]:
    peer = Shop()
    yield peer
    peer.close()


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    for port in reversed(PORTS):
        controller = Controller(inbox, hostname="127.0.0.1", port=port)
        try:
            controller.start()
        except Exception:  # port taken: try the next one
            continue
        break
    else:
        raise RuntimeError("no free SMTP port in 8500-8599")
    yield inbox, port
    controller.stop()


@pytest.fixture
def shop_components(product: Product, shop: Shop, smtp: tuple[Inbox, int], tmp_path: Path) -> Path:
    """The examples' components in acme/dev; returns the orders database file."""
    db_path = tmp_path / "orders.sqlite3"
    components_ensure(product, shop_url=shop.url, db_path=db_path, smtp_port=smtp[1])
    return db_path


@pytest.fixture
def worker(transactional_db: None) -> Iterator[Callable[..., Worker]]:
    """Real qcluster processes, killed after the test: every run is finished by then, and
    a graceful stop of qcluster takes ~15 s."""
    started: list[Worker] = []

    def start(**kwargs: Any) -> Worker:
        # The worker loads the code-first workflows at startup from the modules an admin
        # lists (it never imports the module a step's input names).
        env = {"TRELLIS_WORKFLOW_MODULES": WORKFLOW_MODULES, **kwargs.pop("env", {})}
        w = Worker(env=env, **kwargs).start()
        started.append(w)
        return w

    yield start
    for w in started:
        w.kill()
