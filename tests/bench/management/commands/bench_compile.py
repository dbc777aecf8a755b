"""Benchmark the compiler: ``python manage.py bench_compile [--sequences 1000 --events 5]``."""

from __future__ import annotations

import random
import statistics
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from runtime.compiler import ComponentInfo, compile_spec, spec_checksum


def bench_spec(sequences: int, events: int, *, seed: int = 7) -> dict[str, Any]:
    """A workflow of ``sequences`` x ``events`` with parents, conditions and $Step references
    (to the previous step of the same sequence and to a step of a parent sequence)."""
    rng = random.Random(seed)  # reproducible test data, not security
    seqs = []
    for i in range(sequences):
        parents = []
        if i:
            parents.append(i - 1 if rng.random() < 0.5 else rng.randrange(i))
            if i > 2 and rng.random() < 0.5:
                other = rng.randrange(i)
                if other not in parents:
                    parents.append(other)
        evts = []
        for j in range(events):
            body: dict[str, Any] = {
                "order": "$Input{order.id}",
                "note": "seq $Input{items[0].sku} at $Dateformat($Now, 'YYYY-MM-DD')",
            }
            if j:
                body["prev"] = f"$Step{{s{i}-e{j - 1}}}{{result.id}}"
            if parents:
                p = rng.choice(parents)
                body["parent"] = f"$Concat('p-', $Step{{s{p}-e{rng.randrange(events)}}}{{id}})"
            evts.append(
                {
                    "type": "ACTION",
                    "event": f"call-{j}",
                    "tag": f"s{i}-e{j}",
                    "input": {"body": body, "headers": {"X-Run": "$Run{id}"}},
                    "retries": 2,
                    "retry_delay": "1s",
                    "timeout": "30s",
                    "condition": "$Input{amount} > 10 && $Input{kind} != 'test'" if j else None,
                }
            )
        seqs.append({"tag": f"s{i}", "parents": [f"s{p}" for p in parents], "events": evts})
    return {"sequences": seqs, "options": {"timeout": "1h"}}


class Command(BaseCommand):
    help = "Compile a generated workflow (default 1,000 sequences × 5 events) and print the time."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--sequences", type=int, default=1000)
        parser.add_argument("--events", type=int, default=5)
        parser.add_argument("--repeat", type=int, default=5)

    def handle(self, *args: Any, **options: Any) -> None:
        spec = bench_spec(options["sequences"], options["events"])
        components = {
            "api": ComponentInfo("app", frozenset(f"call-{j}" for j in range(options["events"])))
        }
        times = []
        cpu = []
        plan = None
        for _ in range(options["repeat"]):
            start, start_cpu = time.perf_counter(), time.process_time()
            plan = compile_spec(spec, components=components)
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        assert plan is not None
        start = time.perf_counter()
        spec_checksum(spec)
        checksum_s = time.perf_counter() - start
        steps = sum(len(s.events) for s in plan.sequences)
        self.stdout.write(
            f"compiled {len(plan.sequences)} sequences × {options['events']} events"
            f" ({steps} steps, {len(plan.levels())} levels)\n"
            f"compile (validate + checks + plan): best {min(times) * 1000:.1f} ms,"
            f" median {statistics.median(times) * 1000:.1f} ms over {len(times)} runs"
            f" (first, cold parse cache: {times[0] * 1000:.1f} ms);"
            f" CPU best {min(cpu) * 1000:.1f} ms, cold {cpu[0] * 1000:.1f} ms\n"
            f"checksum: {checksum_s * 1000:.1f} ms"
        )
