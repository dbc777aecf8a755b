"""What connectors need from the layers above them, handed down once at startup.

The engine runs steps through the connectors, so a connector importing the engine — or
``runtime.scheduling``, which starts runs through it — would close an import cycle. PUBLISH
starts the runs subscribed to a topic and JOB creates schedules: ``runtime.apps`` installs
those functions here when the app is ready, and the connectors call what they were given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Upcalls:
    """Run creation and schedules, as the Django side above the connectors provides them."""

    run_start: Callable[..., Any]
    event_schedule: Callable[..., Any]
    run_schedule: Callable[..., Any]
    schedule_describe: Callable[..., dict[str, Any]]
    schedule_name: Callable[[str | None], str]


_installed: Upcalls | None = None


def upcalls_install(upcalls: Upcalls) -> None:
    """Give the connectors their upcalls (``runtime.apps.RuntimeConfig.ready``)."""
    global _installed
    _installed = upcalls


def upcalls() -> Upcalls:
    """The installed upcalls; a connector used before Django's apps are ready fails loudly."""
    if _installed is None:
        raise RuntimeError("the connectors' upcalls are installed by runtime.apps at startup")
    return _installed
