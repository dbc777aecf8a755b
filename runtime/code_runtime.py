"""The engine's runtime behind a code step's live ctx (runtime.context): the run, its
connector calls and its components, through the ORM.

runtime.context is pure (no Django); this is its Django side, installed when the runtime
app starts (runtime.apps calls :func:`runtime.context.engine_runtime_install`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runtime.connectors import execute
from runtime.connectors.loader import component_for, connector_call
from runtime.context import BareRuntime
from runtime.errors import StepError
from runtime.models import Run
from runtime.spec import EventType, duration_ms


class EngineRuntime(BareRuntime):
    """A code step run by the engine: ``info`` is its StepInfo (run id, step, attempt,
    idempotency key, ``log``); connector calls go through the same connectors as steps,
    in the run's environment."""

    def __init__(self, info: Any, data: Mapping[str, Any] | None = None) -> None:
        super().__init__(data)
        self.info = info
        self._calls = 0
        self._run: Run | None = None

    def run(self) -> Run:
        """The step's run (with its environment and workflow), read once."""
        if self._run is None:
            self._run = Run.objects.select_related("environment", "workflow__product").get(
                pk=self.info.run_id
            )
        return self._run

    def workflow_key(self) -> str:
        """``product/tag`` of the run's workflow."""
        run = self.run()
        return f"{run.workflow.product.slug}/{run.workflow.tag}"

    def call(
        self,
        type: EventType,
        event: str,
        app: str | None,
        input: dict[str, Any],
        options: Mapping[str, Any],
    ) -> Any:
        self._calls += 1
        timeout = duration_ms(options.get("timeout")) if options.get("timeout") else None
        call = connector_call(
            type=type,
            event=event,
            input=input,
            environment=self.run().environment,
            app=app,
            # One key per call of this attempt, stable when the attempt runs again.
            idempotency_key=f"{self.info.idempotency_key}:{self._calls}",
            timeout_s=timeout / 1000 if timeout else None,
            run_id=self.info.run_id,
            step=self.info.step,
        )
        return execute(call)

    def log(self, level: str, message: str, data: Any) -> None:
        if isinstance(data, Mapping):
            fields = {str(k): v for k, v in data.items() if str(k) != "level"}
        else:
            fields = {} if data is None else {"data": data}
        self.info.log(message, level, **fields)

    def lookup(self, kind: str, app: str | None, key: str) -> Any:
        if kind == "secret":
            raise StepError(
                "secrets are not handed to code: use $Secret{...} in a component's config",
                retryable=False,
            )
        env = self.run().environment
        component = component_for(product_id=env.product_id, environment_id=env.pk, tag=str(app))
        table = component.variables if kind == "variable" else component.constants
        return table.get(key)
