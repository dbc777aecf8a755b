"""The recording ctx's members: connector namespaces, ``ctx.transform``, ``ctx.log`` and
``ctx.steps``."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from runtime.recorder._calls import CallNamespace, check_option, split_call
from runtime.recorder._recording import STEP_FRAME, PendingCall, RecordedCall, Recording
from runtime.recorder._sites import RecordingError, user_site
from runtime.recorder._text import LOG_EVENT, TRANSFORM_EVENT, literal
from runtime.recorder._values import Recorded, RecordedCondition, contains_recorded
from runtime.spec import EventType


class RecordingNamespace(CallNamespace[Recording]):
    """Recording: each method records one connector call."""

    def _make(self, label: str, spec: Any, kwargs: Mapping[str, Any]) -> PendingCall:
        site = user_site(3)
        rec = self._owner
        try:
            split = split_call(label, spec, kwargs)
        except ValueError as exc:
            raise RecordingError(str(exc), site=site) from None
        component = split.shape.component
        app = rec.concrete_text(split.app, site, f"ctx.{label} {component}")
        event = rec.concrete_text(split.event, site, f"ctx.{label} event")
        options = {k: check_option(k, v, site, f"ctx.{label}") for k, v in split.options.items()}
        call = RecordedCall(
            type=split.shape.type,
            event=event,
            app=app,
            input=rec.to_spec(split.payload, site, f"ctx.{label} input"),
            options=options,
            tag=split.tag,
            # Direct calls are named after what they do: the event, or for components
            # with one fixed operation (quota, fallback, graph nodes) the component.
            auto_base=(
                event.replace(":", "-")
                if split.shape.event_key
                else f"{app}-{event}".replace("_", "-")
                if split.shape.type is EventType.GRAPH
                else app
            ),
            label=label,
        )
        return PendingCall(rec, call, site)


_EXPRESSION_IN_TEXT = re.compile(r"\$[A-Z][A-Za-z]*[{(]")


class RecordingTransform:
    """Data transformations as expression operators (``$Uppercase(...)``), so they run on the
    real values; with plain Python values they are computed at once."""

    def __init__(self, rec: Recording) -> None:
        self._rec = rec

    def _op(self, name: str, *args: Any) -> Recorded:
        site = user_site(3)
        parts = []
        for arg in args:
            if isinstance(arg, Recorded):
                parts.append(arg._r_text)
            else:
                try:
                    parts.append(literal(arg))
                except ValueError:
                    raise RecordingError(
                        f"ctx.transform: cannot pass a {type(arg).__name__} to ${name}", site=site
                    ) from None
        return self._rec.expression(f"${name}({', '.join(parts)})")

    @staticmethod
    def _plain(*args: Any) -> bool:
        for arg in args:
            if isinstance(arg, Recorded | RecordedCondition):
                return False
            if isinstance(arg, str) and _EXPRESSION_IN_TEXT.search(arg):
                raise RecordingError(
                    f"ctx.transform got text holding a recorded value ({arg!r}); pass the "
                    "recorded value itself, or use ctx.transform.concat(...)",
                    site=user_site(3),
                )
        return True

    def upper(self, value: Any) -> Any:
        return value.upper() if self._plain(value) else self._op("Uppercase", value)

    def lower(self, value: Any) -> Any:
        return value.lower() if self._plain(value) else self._op("Lowercase", value)

    def trim(self, value: Any) -> Any:
        return value.strip() if self._plain(value) else self._op("Trim", value)

    def _json_step(self, op: str, value: Any) -> Recorded:
        # The expression language has no JSON operators: a tiny CODE step does the work
        # at run time (tagged parse-json, stringify, ...), and its result is the value.
        site = user_site(3)
        rec = self._rec
        rec.check_writable(f"ctx.transform.{op}", site)
        payload = {"op": op, "value": rec.to_spec(value, site, f"ctx.transform.{op}")}
        event = {"type": EventType.CODE.value, "event": TRANSFORM_EVENT, "input": payload}
        tag = rec.auto_tag(op.replace("_", "-"))
        rec.record(tag, event, site=site)
        return rec.ref("Step", (tag,), "value")

    def parse_json(self, value: Any) -> Any:
        return json.loads(value) if self._plain(value) else self._json_step("parse_json", value)

    def stringify(self, value: Any) -> Any:
        if not contains_recorded(value):
            return json.dumps(value)
        return self._json_step("stringify", value)

    def now(self) -> Recorded:
        return self._rec.expression("$Now")

    def format_date(self, value: Any, fmt: str) -> Recorded:
        return self._op("Dateformat", value, fmt)

    def length(self, value: Any) -> Any:
        return len(value) if self._plain(value) else self._op("Length", value)

    def size(self, value: Any) -> Any:
        return len(value) if self._plain(value) else self._op("Size", value)

    def split(self, value: Any, separator: str) -> Any:
        return value.split(separator) if self._plain(value) else self._op("Split", value, separator)

    def join(self, value: Any, separator: str) -> Any:
        return separator.join(value) if self._plain(value) else self._op("Join", value, separator)

    def concat(self, *values: Any) -> Any:
        if self._plain(*values):
            return "".join(str(v) for v in values)
        return self._op("Concat", *values)

    def add(self, a: Any, b: Any) -> Any:
        return a + b if self._plain(a, b) else self._op("Add", a, b)

    def subtract(self, a: Any, b: Any) -> Any:
        return a - b if self._plain(a, b) else self._op("Subtract", a, b)

    def substring(self, value: Any, start: int, length: int | None = None) -> Any:
        """``$Substring(text, start, length?)``: ``length`` characters from ``start``."""
        if self._plain(value):
            return value[start:] if length is None else value[start : start + max(length, 0)]
        return self._op("Substring", value, start, *(() if length is None else (length,)))

    parseJson = parse_json
    formatDate = format_date


class LogLevels:
    """``ctx.log``'s levels, for recording and for live code steps alike: a subclass says
    what ``_log`` does with a line."""

    def _log(self, level: str, message: Any, data: Any = None) -> None:
        raise NotImplementedError

    def debug(self, message: Any, data: Any = None) -> None:
        self._log("debug", message, data)

    def info(self, message: Any, data: Any = None) -> None:
        self._log("info", message, data)

    def warn(self, message: Any, data: Any = None) -> None:
        self._log("warning", message, data)

    warning = warn

    def error(self, message: Any, data: Any = None) -> None:
        self._log("error", message, data)


class RecordingLog(LogLevels):
    """``ctx.log.info(message, data)``: journaled at run time as a ``log`` entry (a small
    CODE event ``log``, ``log-2``… in the spec)."""

    def __init__(self, rec: Recording) -> None:
        self._rec = rec

    def _log(self, level: str, message: Any, data: Any = None) -> None:
        site = user_site(3)
        rec = self._rec
        if STEP_FRAME.get() is not None:
            return  # inside a connector step function: logged by the step itself at run time
        rec.check_writable("log", site)
        payload: dict[str, Any] = {"level": level, "message": rec.to_spec(message, site, "log")}
        if data is not None:
            payload["data"] = rec.to_spec(data, site, "log data")
        event = {"type": EventType.CODE.value, "event": LOG_EVENT, "input": payload}
        rec.record(rec.auto_tag("log"), event, site=site)


class StepResults:
    """``ctx.steps.pay`` / ``ctx.steps["pay"]``: a step's result as a reference."""

    def __init__(self, rec: Recording) -> None:
        self._rec = rec

    def __getitem__(self, tag: str) -> Recorded:
        return self._rec.step_result(tag)

    def __getattr__(self, tag: str) -> Recorded:
        if tag.startswith("__"):
            raise AttributeError(tag)
        return self[tag]
