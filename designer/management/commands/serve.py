"""`make run`: migrate, load the demo, sync code-first workflows, then run daphne (HTTP and
WebSockets) and one qcluster (the workers) until Ctrl-C or SIGTERM stops both.

The children run in their own sessions so a terminal's Ctrl-C reaches only this process,
which then stops each child exactly once, waits, and kills what is left after a timeout.
If a child dies on its own, the other is stopped and this command exits non-zero.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandError

from designer.management.commands.load_demo import default_base_url, demo_load, describe_password

STOP_TIMEOUT_S = 15.0
READY_TIMEOUT_S = 60.0


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if serve itself dies (even by SIGKILL)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: children then outlive a killed parent, as with most supervisors


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM to the child's whole group: qcluster's workers then hand their sequences
        back at the next step boundary instead of finishing them (runtime/graceful.py)."""
        if self.alive():
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        if self.alive():
            try:
                os.killpg(self.process.pid, signal.SIGKILL)  # with its worker processes
            except ProcessLookupError:
                pass


class Command(BaseCommand):
    help = "Run Trellis: migrate, load the demo, then daphne + one qcluster until Ctrl-C."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST") or "127.0.0.1")
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8000))
        parser.add_argument("--no-demo", action="store_true", help="Do not load the demo.")

    def handle(self, *args: Any, **options: Any) -> None:
        host, port = options["host"], options["port"]
        self._stopping = False
        self.say("Migrating the database…")
        call_command("migrate", interactive=False, verbosity=0)
        login = None
        if not options["no_demo"]:
            os.environ.setdefault("PORT", str(port))
            login = demo_load(base_url=default_base_url())
        if "sync_workflows" in get_commands():
            call_command("sync_workflows")

        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        children = self._start(host, port)
        try:
            failed = self._supervise(children, host, port, login)
        finally:
            self._shutdown(children)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if failed:
            raise CommandError(failed)
        self.say("Stopped.")

    def say(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def _start(self, host: str, port: int) -> list[Child]:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "designer.settings"}
        commands = {
            "daphne": [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                host,
                "-p",
                str(port),
                "designer.asgi:application",
            ],
            "qcluster": [sys.executable, "manage.py", "qcluster"],
        }
        return [
            Child(
                name,
                subprocess.Popen(
                    command,
                    cwd=settings.BASE_DIR,
                    env=env,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,  # safe: no threads started yet
                ),
            )
            for name, command in commands.items()
        ]

    def _supervise(self, children: list[Child], host: str, port: int, login: Any) -> str | None:
        """Run until a signal (None) or a child's death (its description)."""
        ready = False
        started = time.monotonic()
        while not self._stopping:
            for child in children:
                if not child.alive():
                    return f"{child.name} exited with code {child.process.returncode}"
            if not ready:
                ready = _listening(host, port)
                if ready:
                    self._announce(host, port, login)
                elif time.monotonic() - started > READY_TIMEOUT_S:
                    return f"daphne did not listen on {host}:{port} within {READY_TIMEOUT_S:.0f} s"
            time.sleep(0.2)
        return None

    def _announce(self, host: str, port: int, login: Any) -> None:
        self.say(
            f"Trellis is running at http://{host}:{port}/  (API docs: /api/docs/, admin: /admin/)"
        )
        if login is not None:
            self.say(f"Demo login: {login.username} / {describe_password(login)}")
        self.say("Press Ctrl-C to stop.")

    def _shutdown(self, children: list[Child]) -> None:
        if any(child.alive() for child in children):
            self.say("Stopping daphne and qcluster…")
        for child in children:
            child.stop()
        started = time.monotonic()
        deadline = started + STOP_TIMEOUT_S
        for child in children:
            try:
                child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stderr.write(f"{child.name} did not stop in {STOP_TIMEOUT_S:.0f} s: killed")
                child.kill()
                child.process.wait()
            else:
                # Whatever the child left behind in its session (qcluster's workers).
                child.kill()
        self.say(f"Children stopped in {time.monotonic() - started:.1f} s.")


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
