"""When the server itself fails, the API still answers JSON: a full disk is a 503 with
nothing of the request kept, a bug is a 500 with a code and no traceback."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django_q.models import OrmQ
from rest_framework.test import APIClient

from designer.models import AuditEntry, Product
from runtime.models import JournalEntry, Run
from tests.runtime.conftest import make_workflow

pytestmark = pytest.mark.django_db

SPEC = {
    "sequences": [
        {"tag": "m", "events": [{"type": "CHECKPOINT", "event": "mid", "input": {"data": {}}}]}
    ],
    "input": {"note": "string"},
}


def pragma(name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA {name}")
        return int(cursor.fetchone()[0])


def counts() -> tuple[int, ...]:
    return (
        Run.objects.count(),
        JournalEntry.objects.count(),
        AuditEntry.objects.count(),
        OrmQ.objects.count(),
    )


def start(api: APIClient, note: str) -> Any:
    body = {"workflow": "acme/flow", "env": "dev", "input": {"note": note}}
    return api.post("/api/v1/runs", body, format="json")


def test_a_full_disk_is_a_json_503_and_the_run_is_not_half_created(
    api: APIClient, product: Product
) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("the full disk is simulated with SQLite's PRAGMA max_page_count")
    make_workflow(product, SPEC, tag="flow")
    before = counts()
    # The database may not grow by one page: the next write that needs a new page fails
    # with SQLite's own SQLITE_FULL, "database or disk is full", as on a full disk.
    note = "x" * ((pragma("freelist_count") + 8) * pragma("page_size"))
    assert len(note) < 1_000_000
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA max_page_count = {pragma('page_count')}")
    try:
        response = start(api, note)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA max_page_count = 4294967294")
    assert response.status_code == 503, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "code": "storage_full",
        "message": "The server's storage is full; nothing was changed. Try again later.",
    }
    assert counts() == before  # no run, no journal entry, no audit row, no queued task

    again = start(api, note)  # with room again, the same request works
    assert again.status_code == 202, again.content
    assert Run.objects.count() == before[0] + 1


def test_an_unexpected_error_is_a_json_500_without_a_traceback(
    api: APIClient, product: Product, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    from runtime import selectors

    def broken(**kwargs: Any) -> Any:
        raise RuntimeError("internal detail /srv/secret/path")

    monkeypatch.setattr(selectors, "runs_list", broken)
    response = api.get("/api/v1/runs")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == "server_error"
    assert "secret" not in response.content.decode()
    assert "Traceback" not in response.content.decode()
    assert any("RunListApi" in record.getMessage() for record in caplog.records)  # logged


def test_a_database_error_that_is_not_a_full_disk_is_a_503_unavailable(
    api: APIClient, product: Product, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import OperationalError

    from runtime import selectors

    def locked(**kwargs: Any) -> Any:
        raise OperationalError("database is locked")

    monkeypatch.setattr(selectors, "runs_list", locked)
    response = api.get("/api/v1/runs")
    assert response.status_code == 503
    assert response.json()["code"] == "unavailable"


def test_an_api_url_that_matches_no_route_is_a_json_404(api: APIClient) -> None:
    for url in ["/api/v1/nope", "/api/v1/products/%13%C3%9F/", "/api/v1/runs/1/nope"]:
        response = api.get(url)
        assert response.status_code == 404, url
        assert response.json() == {"code": "not_found", "message": "No such API endpoint."}
    page = api.get("/no-such-page/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")
