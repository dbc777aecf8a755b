"""The engine's pure decisions: no Django, no database (milliseconds)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from runtime import engine


@dataclass(frozen=True)
class Seq:
    tag: str
    parents: list[str] = field(default_factory=list)
    skip_if: str | None = None
    group: str | None = None
    level: int = 0
    level_given: bool = False


@dataclass(frozen=True)
class Step:
    retries: int = 0
    retry_delay_ms: int = 0
    backoff: str = "fixed"
    allow_fail: bool = False


DIAMOND = [Seq("root"), Seq("a", ["root"]), Seq("b", ["root"]), Seq("join", ["a", "b"])]


def test_only_roots_start_first() -> None:
    decision = engine.schedule(DIAMOND, {})
    assert decision.start == ["root"] and not decision.all_done


def test_children_start_when_all_parents_are_done() -> None:
    decision = engine.schedule(DIAMOND, {"root": "completed"})
    assert decision.start == ["a", "b"]
    decision = engine.schedule(DIAMOND, {"root": "completed", "a": "completed", "b": "running"})
    assert decision.start == []
    decision = engine.schedule(DIAMOND, {"root": "completed", "a": "completed", "b": "completed"})
    assert decision.start == ["join"]


def test_skipped_parents_count_as_finished_and_skips_cascade_decisions() -> None:
    seqs = [Seq("root"), Seq("opt", ["root"], skip_if="x"), Seq("after", ["opt"])]
    decision = engine.schedule(seqs, {"root": "completed"}, should_skip=lambda t: t == "opt")
    assert decision.skipped == ["opt"]
    assert decision.start == ["after"]


def test_a_given_level_waits_for_every_lower_level() -> None:
    # Two roots the spec puts at levels 1 and 2, and an unordered root beside them.
    seqs = [
        Seq("free"),
        Seq("first", level=1, level_given=True),
        Seq("second", level=2, level_given=True),
        Seq("after", ["second"], level=3),
    ]
    assert engine.schedule(seqs, {}).start == ["free"]
    assert engine.schedule(seqs, {"free": "running"}).start == []
    assert engine.schedule(seqs, {"free": "completed"}).start == ["first"]
    done = {"free": "completed", "first": "running"}
    assert engine.schedule(seqs, done).start == []
    done["first"] = "skipped"  # skipped counts as finished, as for parents
    assert engine.schedule(seqs, done).start == ["second"]


def test_max_concurrency_bounds_what_starts() -> None:
    seqs = [Seq("root")] + [Seq(f"p{i}", ["root"]) for i in range(5)]
    decision = engine.schedule(seqs, {"root": "completed"}, max_concurrency=2)
    assert decision.start == ["p0", "p1"]
    decision = engine.schedule(
        seqs, {"root": "completed", "p0": "completed", "p1": "running"}, max_concurrency=2
    )
    assert decision.start == ["p2"]


def test_a_group_bounds_its_own_sequences_only() -> None:
    seqs = [Seq("root")] + [Seq(f"g{i}", ["root"], group="g") for i in range(4)]
    seqs += [Seq("free", ["root"])]
    decision = engine.schedule(seqs, {"root": "completed"}, groups={"g": 2})
    assert decision.start == ["g0", "g1", "free"]
    running = {"root": "completed", "g0": "completed", "g1": "waiting", "free": "running"}
    assert engine.schedule(seqs, running, groups={"g": 2}).start == ["g2"]
    # The workflow-wide bound still applies on top.
    decision = engine.schedule(seqs, {"root": "completed"}, max_concurrency=1, groups={"g": 2})
    assert decision.start == ["g0"]


def test_all_done_when_every_sequence_completed_or_skipped() -> None:
    statuses = {"root": "completed", "a": "skipped", "b": "completed", "join": "completed"}
    assert engine.schedule(DIAMOND, statuses).all_done


def test_waiting_sequences_hold_their_slot_and_make_the_run_wait() -> None:
    assert engine.run_activity(["waiting", "completed"]) == "waiting"
    assert engine.run_activity(["waiting", "running"]) == "running"
    assert engine.run_activity(["completed"]) == "idle"


@given(
    parents=st.lists(st.lists(st.integers(0, 9), max_size=3), min_size=1, max_size=10),
    done=st.sets(st.integers(0, 9)),
    limit=st.one_of(st.none(), st.integers(1, 4)),
)
def test_schedule_never_starts_an_unready_sequence_or_exceeds_the_limit(
    parents: list[list[int]], done: set[int], limit: int | None
) -> None:
    seqs = [Seq(f"s{i}", [f"s{p}" for p in ps if p < i]) for i, ps in enumerate(parents)]
    statuses = {s.tag: "completed" for i, s in enumerate(seqs) if i in done}
    decision = engine.schedule(seqs, statuses, max_concurrency=limit)
    by_tag = {s.tag: s for s in seqs}
    for tag in decision.start:
        assert statuses.get(tag) is None
        assert all(statuses.get(p) == "completed" for p in by_tag[tag].parents)
    if limit is not None:
        assert len(decision.start) <= limit


def test_retries_then_allow_fail_then_fail_run() -> None:
    step = Step(retries=2, retry_delay_ms=100)
    assert engine.on_step_failure(step, attempt=1, retryable=True) == engine.Retry(100)
    assert engine.on_step_failure(step, attempt=2, retryable=True) == engine.Retry(100)
    assert isinstance(engine.on_step_failure(step, attempt=3, retryable=True), engine.FailRun)
    assert isinstance(engine.on_step_failure(step, attempt=1, retryable=False), engine.FailRun)
    allowed = Step(allow_fail=True)
    assert isinstance(
        engine.on_step_failure(allowed, attempt=1, retryable=True), engine.FailAllowed
    )


def test_exponential_backoff_and_inline_threshold() -> None:
    step = Step(retries=5, retry_delay_ms=300, backoff="exponential")
    assert [engine.retry_delay_ms(step, n) for n in (1, 2, 3, 4)] == [300, 600, 1200, 2400]
    assert engine.Retry(999).inline and not engine.Retry(1000).inline


T0 = datetime(2026, 1, 1, tzinfo=UTC)


def view(tag: str, n: int, **kw: object) -> engine.StepView:
    defaults: dict[str, object] = {
        "status": "completed",
        "finished_at": T0 + timedelta(seconds=n),
        "order": n,
        "has_rollback": True,
    }
    defaults.update(kw)
    return engine.StepView(tag=tag, **defaults)  # type: ignore[arg-type]


STEPS = [
    view("pay", 1, critical=True),
    view("note", 2, has_rollback=False),
    view("cp", 3, has_rollback=False, is_checkpoint=True),
    view("reserve", 4),
    view("ship", 5, status="failed"),
]


def test_reverse_all_rolls_back_completed_steps_newest_first() -> None:
    assert engine.compensation_targets(STEPS, "reverse_all") == ["reserve", "pay"]


def test_critical_only_and_to_checkpoint_and_none() -> None:
    assert engine.compensation_targets(STEPS, "critical_only") == ["pay"]
    assert engine.compensation_targets(STEPS, "to_checkpoint") == ["reserve"]
    assert engine.compensation_targets(STEPS, "none") == []


def test_already_rolled_back_steps_are_not_compensated_again() -> None:
    steps = [view("pay", 1), view("reserve", 2, rollback_status="rolled_back")]
    assert engine.compensation_targets(steps, "reverse_all") == ["pay"]


def test_how_a_run_ends() -> None:
    end = engine.run_end_status
    assert end(stop_reason="failed", rolled_back=2, rollback_failed=False) == "rolled_back"
    assert end(stop_reason="failed", rolled_back=0, rollback_failed=False) == "failed"
    assert end(stop_reason="failed", rolled_back=1, rollback_failed=True) == "failed"
    assert end(stop_reason="cancelled", rolled_back=1, rollback_failed=False) == "cancelled"
    assert end(stop_reason="returned", rolled_back=0, rollback_failed=False) == "completed"
    returned_after_rollback = end(
        stop_reason="returned", rolled_back=1, rollback_failed=False, manual_rollback=True
    )
    assert returned_after_rollback == "rolled_back"
    assert engine.returned_status(manual_rollback=False) == "completed"
    assert end(stop_reason="timeout", rolled_back=0, rollback_failed=False) == "failed"


def test_idempotency_keys_are_stable_per_attempt() -> None:
    assert engine.idempotency_key(7, "pay", 2) == "7:pay:2"
