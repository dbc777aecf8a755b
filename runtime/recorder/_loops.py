"""Loops in a handler: ``for item in ctx.input.items:`` records ONE FOREACH step.

The rule (README, "Loops"): a ``for`` loop over a list from the workflow's input
(``ctx.input.items``, ``ctx.input["orders"]``, ``ctx.input.order.lines``) that
``record_input`` gives a sample for, or over anything wrapped in ``ctx.foreach(...)``
(also a step's result, ``ctx.foreach(rows.items, max_concurrency=5)``), runs its body ONCE
while recording. ``item`` is then a recorded ``$Item`` (``item.id`` is ``$Item{id}``), and
the steps the body makes become the FOREACH step's body; at run time the list is resolved
and the body runs once per real item. In a body step's tag, the item's parts are dropped
(``f"process-{item.id}"`` is the step ``process``; its iterations are ``process[0]``,
``process[1]``...). What a loop body cannot do while recording: branch on the item (use
a step's ``condition=`` or a step function), nest another loop, or leave the loop early
(``break``, ``return``): each is a :class:`RecordingError` naming the line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from runtime.recorder._sites import RecordingError, Site
from runtime.spec import LOOP_TAG_MAX

_ITEM_PARTS = re.compile(r"\$(?:Item(?:\{[^{}]*\})?|Index)")


@dataclass
class LoopCapture:
    """A loop being recorded: its list, its options and the body's events so far."""

    items: str
    tag: str
    max_concurrency: int | None
    site: Site | None
    body: list[dict[str, Any]] = field(default_factory=list)
    tags: set[str] = field(default_factory=set)

    def add(
        self, tag: str, event: dict[str, Any], condition: str | None, site: Site | None
    ) -> None:
        if tag in self.tags:
            raise RecordingError(f"duplicate step tag {tag!r} in the loop body", site=site)
        if len(tag) > LOOP_TAG_MAX:
            raise RecordingError(
                f"step tag {tag!r} in a loop body is longer than {LOOP_TAG_MAX} characters",
                site=site,
            )
        out = {"tag": tag, **event}
        if condition:
            out["condition"] = condition
        self.body.append(out)
        self.tags.add(tag)

    def event(self) -> dict[str, Any]:
        """The FOREACH event of the finished loop."""
        loop: dict[str, Any] = {"items": self.items, "body": self.body}
        if self.max_concurrency is not None:
            loop["max_concurrency"] = self.max_concurrency
        return {"type": "FOREACH", "event": f"for each item of {self.items}"[:200], "loop": loop}


class RecordedLoop:
    """What ``ctx.foreach`` returns: iterate it once (``for item in loop:``); after the
    loop, ``loop.results`` is the list of each iteration's last step result
    (``$Step{<loop tag>}``)."""

    def __init__(self, iterator: Iterator[Any], results: Any) -> None:
        self._iterator = iterator
        self.results = results

    def __iter__(self) -> Iterator[Any]:
        return self._iterator


def loop_tag_base(items: str) -> str:
    """``$Input{order.lines}`` → ``each-lines`` (the FOREACH step's tag when none is given)."""
    inner = re.findall(r"\{([^{}]*)\}", items)
    last = (inner[-1].split(".")[-1] if inner else "") or "item"
    return f"each-{last}"


def drop_item_parts(text: str) -> str:
    """A body step's tag without the item's parts: ``process-$Item{id}`` → ``process``."""
    if "$" not in text:
        return text
    out = _ITEM_PARTS.sub("", text)
    return re.sub(r"([-_.])[-_.]+", r"\1", out).strip("-_.") or "step"


def check_options(tag: Any, max_concurrency: Any, site: Site | None) -> None:
    if tag is not None and not isinstance(tag, str):
        raise RecordingError("ctx.foreach(tag=...) must be a string", site=site)
    if max_concurrency is not None and (
        not isinstance(max_concurrency, int)
        or isinstance(max_concurrency, bool)
        or not 1 <= max_concurrency <= 10_000
    ):
        raise RecordingError(
            "ctx.foreach(max_concurrency=...) must be a whole number from 1 to 10000", site=site
        )
