"""The login attacks replayed against a real daphne on 127.0.0.1 (the ASGI path, where
django-axes' middleware runs async and REMOTE_ADDR is the socket peer)."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.designer.test_serve import EMBEDDED, ROOT, free_port

APP = "designer.asgi:application"


@pytest.fixture(scope="module")
def daphne(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    var_dir = tmp_path_factory.mktemp("logins")
    env = {**EMBEDDED, "TRELLIS_VAR_DIR": str(var_dir), "PYTHONUNBUFFERED": "1"}
    env.pop("SQLITE_PATH", None)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=300
    )
    subprocess.run(
        [sys.executable, "manage.py", "createsuperuser", "--noinput", "--username", "root"],
        cwd=ROOT,
        env={**env, "DJANGO_SUPERUSER_PASSWORD": "pw-root", "DJANGO_SUPERUSER_EMAIL": "r@x.io"},
        check=True,
        timeout=120,
    )
    port = free_port()
    log = var_dir / "daphne.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), APP],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                httpx.get(url + "/login/", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


_claimed = itertools.count(1)


def form_login(url: str, path: str, username: str, password: str) -> httpx.Response:
    with httpx.Client(base_url=url) as browser:
        page = browser.get(path)
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert csrf is not None
        return browser.post(
            path,
            data={
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": csrf.group(1),
                "next": "/admin/",
            },
            # A new claimed address every time: ignored (no proxy is trusted).
            headers={"X-Forwarded-For": f"198.51.100.{next(_claimed)}"},
        )


def test_brute_force_on_the_admin_login_is_locked_out_on_a_real_server(daphne: str) -> None:
    codes = [form_login(daphne, "/admin/login/", "root", f"guess{n}").status_code for n in range(5)]
    assert codes == [200] * 4 + [429]
    right = form_login(daphne, "/admin/login/", "root", "pw-root")
    assert right.status_code == 429
    assert "Too many failed logins for this username" in right.text
    token = httpx.post(
        daphne + "/api/v1/auth/token", json={"username": "root", "password": "pw-root"}
    )
    assert token.status_code == 429
    assert token.json()["code"] == "locked_out"


def test_a_new_x_forwarded_for_per_attempt_is_throttled_on_a_real_server(daphne: str) -> None:
    codes = [
        httpx.post(
            daphne + "/api/v1/auth/token",
            json={"username": f"user{n}", "password": "guess"},
            headers={"X-Forwarded-For": f"198.51.100.{n}"},
        ).status_code
        for n in range(40)
    ]
    # 30 attempts per minute from this address (the other test may have spent some).
    allowed = codes.count(401)
    assert 0 < allowed <= 30
    assert codes == [401] * allowed + [429] * (40 - allowed)
