"""`manage.py serve` (what `make run` runs): a real daphne + qcluster pair on a free port,
with its own TRELLIS_VAR_DIR; stopped by SIGINT, or brought down when a child dies."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def children_of(pid: int) -> dict[str, int]:
    """{'daphne': pid, 'qcluster': pid}: the direct children of ``pid``, by command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid != pid:
            continue
        for name in ("daphne", "qcluster"):
            if name in cmdline:
                found[name] = int(entry.name)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    var_dir: Path
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


EMBEDDED = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A var dir with a migrated database, copied by each server: serve's own migrate then
    has nothing to do, which keeps these tests from migrating from scratch twice."""
    var_dir = tmp_path_factory.mktemp("migrated")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"],
        cwd=ROOT,
        env={**EMBEDDED, "TRELLIS_VAR_DIR": str(var_dir)},
        check=True,
        timeout=300,
    )
    return var_dir


@pytest.fixture
def server(tmp_path: Path, migrated: Path) -> Iterator[Server]:
    port = free_port()
    shutil.copytree(migrated, tmp_path / "var")
    env = {**EMBEDDED, "TRELLIS_VAR_DIR": str(tmp_path / "var"), "PORT": str(port)}
    env["PYTHONUNBUFFERED"] = "1"
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "serve"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    served = Server(process, f"http://127.0.0.1:{port}", tmp_path / "var", log)
    try:
        deadline = time.monotonic() + 90
        while "Press Ctrl-C to stop." not in served.output():
            assert process.poll() is None, served.output()
            assert time.monotonic() < deadline, served.output()
            time.sleep(0.2)
        yield served
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pid in children_of(process.pid).values():
            os.kill(pid, signal.SIGKILL)


def wait_gone(pids: list[int], timeout: float) -> float:
    started = time.monotonic()
    while any(alive(pid) for pid in pids):
        assert time.monotonic() - started < timeout, [p for p in pids if alive(p)]
        time.sleep(0.1)
    return time.monotonic() - started


def test_it_serves_the_api_with_the_demo_and_stops_cleanly_on_sigint(server: Server) -> None:
    password = (server.var_dir / "demo_password").read_text().strip()
    assert f"Demo login: demo / {password}" in server.output()
    assert f"Trellis is running at {server.url}/" in server.output()

    anonymous = httpx.get(server.url + "/api/v1/products/")
    assert anonymous.status_code in (401, 403)
    token = httpx.post(
        server.url + "/api/v1/auth/token", json={"username": "demo", "password": password}
    ).json()["token"]
    products = httpx.get(
        server.url + "/api/v1/products/", headers={"Authorization": f"Token {token}"}
    )
    assert products.status_code == 200
    assert [p["slug"] for p in products.json()] == ["acme"]
    assert httpx.get(server.url + "/api/docs/").status_code == 200
    assert httpx.get(server.url + "/static/admin/css/base.css").status_code == 200

    children = children_of(server.process.pid)
    assert set(children) == {"daphne", "qcluster"}

    server.process.send_signal(signal.SIGINT)
    assert server.process.wait(timeout=20) == 0, server.output()
    took = wait_gone(list(children.values()), timeout=1)
    assert took < 1
    assert "Stopped." in server.output()


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (what systemd's control group holds)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found = [pid]
    for candidate in found:
        found.extend(child for child, parent in parents.items() if parent == candidate)
    return found


def test_sigterm_to_every_process_at_once_stops_it_within_seconds(server: Server) -> None:
    """systemd's KillMode=control-group: serve, daphne, the qcluster leader, its sentinel
    and workers all get SIGTERM together."""
    deadline = time.monotonic() + 60
    while len(everyone := descendants(server.process.pid)) < 5:  # + sentinel, workers
        assert time.monotonic() < deadline, everyone
        time.sleep(0.2)
    time.sleep(1)  # the workers' own start-up (post_spawn) done
    everyone = descendants(server.process.pid)
    started = time.monotonic()
    for pid in everyone:
        os.kill(pid, signal.SIGTERM)
    assert server.process.wait(timeout=10) == 0, server.output()
    wait_gone(everyone, timeout=10 - (time.monotonic() - started))
    assert "Stopped." in server.output()
    assert "killed" not in server.output()


def test_it_exits_non_zero_when_a_child_dies(server: Server) -> None:
    children = children_of(server.process.pid)
    os.kill(children["daphne"], signal.SIGKILL)
    assert server.process.wait(timeout=20) != 0
    wait_gone([children["qcluster"]], timeout=1)
    assert "daphne exited with code -9" in server.output()
