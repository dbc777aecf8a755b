"""One error tree. Each error knows whether a retry can help and how it reads in JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class TrellisError(Exception):
    """Base of every error Trellis raises on purpose."""

    code = "error"

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": str(self)}


@dataclass(frozen=True)
class Issue:
    """A problem at a JSON path of a spec: ``sequences[2].events[0].input.body.id``."""

    path: str
    message: str

    def as_json(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


class SpecError(TrellisError):
    """A spec that does not validate or compile; carries every issue found."""

    code = "invalid_spec"

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues
        super().__init__("; ".join(f"{i.path}: {i.message}" for i in issues) or "invalid spec")

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, "errors": [i.as_json() for i in self.issues]}


class ExpressionError(TrellisError):
    """An expression that does not parse or cannot be evaluated; ``position`` is 0-based."""

    code = "invalid_expression"

    def __init__(self, message: str, *, text: str = "", position: int | None = None) -> None:
        self.message = message
        self.text = text
        self.position = position
        where = f" at position {position}" if position is not None else ""
        super().__init__(f"{message}{where}")


class StepError(TrellisError):
    """A step failed. ``retryable`` says whether trying again can help."""

    code = "step_failed"

    def __init__(
        self, message: str, *, retryable: bool = True, details: dict[str, Any] | None = None
    ) -> None:
        self.message = message
        self.retryable = retryable
        self.details = details or {}
        super().__init__(message)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "retryable": self.retryable,
        }
        if self.details:
            out["details"] = self.details
        return out


class HandlerRaised(StepError):
    """A FAIL step: the workflow's handler raised on this path (never retried)."""

    code = "raised"

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class StepTimeout(StepError):
    code = "step_timeout"


class ChildTimeout(StepError):
    """A FEATURE step's child run did not end within the step's ``timeout``."""

    code = "child_timeout"


class RunRefused(TrellisError):
    """A run cannot be started or acted on (inactive workflow, bad input, wrong state)."""

    code = "refused"

    def __init__(self, message: str, *, field: str | None = None, status: int = 400) -> None:
        self.field = field
        self.status = status
        super().__init__(message)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": str(self)}
        if self.field:
            out["field"] = self.field
        return out
