"""``python manage.py prune [--dry-run]``: apply every environment's retention now (the
workers also do it every hour) and say what went — or, with ``--dry-run``, what would go."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from runtime.retention import prune


class Command(BaseCommand):
    help = "Prune finished runs, audit entries and task results past their retention."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Only say what would be deleted."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        dry = bool(options["dry_run"])
        report = prune(dry_run=dry)
        verb = "would delete" if dry else "deleted"
        for key, count in sorted(report.runs.items()):
            self.stdout.write(f"{verb} {count} run(s) of {key}")
        self.stdout.write(
            f"{verb} {report.run_count} run(s) in all, {report.audit_entries} audit "
            f"entr(y/ies), {report.task_results} task result(s)"
        )
        if not dry:
            self.stdout.write(
                f"journal rows deleted: {report.journal_rows}; write-ahead log "
                f"{report.wal_before // 1024} KB -> {report.wal_after // 1024} KB"
            )
