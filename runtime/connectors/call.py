"""What a connector is given: the resolved call and the component it uses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.netguard import HostPolicy
from runtime.spec import EventType


@dataclass(frozen=True)
class Component:
    """A product component as configured for the run's environment (secrets decrypted)."""

    kind: str
    tag: str
    events: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)
    constants: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ConnectorCall:
    """One event to run: its type, name and resolved input, with the component it uses
    (if any) and the environment's rules."""

    type: EventType
    event: str
    input: Any
    app: str | None = None
    component: Component | None = None
    environment: str = ""
    allowed_hosts: tuple[str, ...] = ()
    production: bool = False
    idempotency_key: str = ""
    timeout_s: float | None = None
    run_id: int | None = None
    step: str = ""
    product_id: int | None = None
    environment_id: int | None = None

    @property
    def policy(self) -> HostPolicy:
        """Where this call may connect: the environment's admin-held allow-list."""
        return HostPolicy(
            allowed_hosts=tuple(self.allowed_hosts),
            production=self.production,
            environment=self.environment,
        )

    @property
    def once_key(self) -> str:
        """This step of this run, whatever the attempt (``<run>:<step>``): for effects
        that must happen once per step even when an attempt fails after them (a message,
        a quota unit). ``idempotency_key`` when the call is not a run's step."""
        if self.run_id is not None and self.step:
            return f"{self.run_id}:{self.step}"
        return self.idempotency_key


Executor = Callable[[ConnectorCall], Any]
