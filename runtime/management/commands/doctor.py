"""``python manage.py doctor``: the readiness checks of ``/readyz`` for a person — what
each found and, when one fails, what to do. Exits 1 when a check fails (scripts, cron)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from runtime import health


class Command(BaseCommand):
    help = "Check the database, the broker, the workers and the disk, and say what to do."

    def handle(self, *args: Any, **options: Any) -> None:
        results = health.checks()
        sizes = health.database_sizes()
        for check in results:
            mark = self.style.SUCCESS("ok  ") if check.ok else self.style.ERROR("FAIL")
            self.stdout.write(f"{mark} {check.name:<9} {check.detail}")
            if check.advice:
                self.stdout.write(f"     {'':<9} -> {check.advice}")
        self.stdout.write(
            f"     {'size':<9} database {sizes.database // 1024} KB, "
            f"write-ahead log {sizes.wal // 1024} KB (data in {health.data_dir()})"
        )
        failed = [c.name for c in results if not c.ok]
        if failed:
            raise CommandError(f"not ready: {', '.join(failed)}")
        self.stdout.write(self.style.SUCCESS("ready"))
