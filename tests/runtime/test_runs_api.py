"""The runs REST API: start, read, list, act — and a clear 4xx for every bad request."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from designer.models import Product
from runtime.models import Run, StepRun
from tests.conftest import client_for
from tests.runtime.conftest import code, drain, make_workflow, run_until_done

pytestmark = pytest.mark.django_db

SIGNALED = {
    "sequences": [
        {
            "tag": "m",
            "events": [
                code("add", tag="first", input={"a": "$Input{n}", "b": 1}),
                {"type": "CHECKPOINT", "event": "mid", "input": {"data": {"x": 1}}},
                {"type": "WAIT_SIGNAL", "event": "approve", "tag": "wait"},
                code("add", tag="last", input={"a": "$Step{first}{sum}", "b": 1}),
            ],
        }
    ],
    "input": {"n": "integer"},
    "signals": {"approve": {"input": {"by": "string"}}},
    "queries": {"progress": {"output": {"done": "$Run{completed_steps}", "n": "$Input{n}"}}},
    "output": {"total": "$Step{last}{sum}"},
}


@pytest.fixture
def workflow(product: Product) -> Any:
    return make_workflow(product, SIGNALED, tag="flow")


def start(client: APIClient, **body: Any) -> Any:
    payload = {"workflow": "acme/flow", "env": "dev", "input": {"n": 1}, **body}
    return client.post("/api/v1/runs", payload, format="json")


def test_it_starts_a_run_and_returns_202(api: APIClient, workflow: Any) -> None:
    response = start(api)
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "pending"
    assert body["workflow"] == {"id": workflow.pk, "tag": "flow", "product": "acme"}
    assert Run.objects.filter(pk=body["id"]).exists()


def test_an_idempotency_key_returns_the_existing_run_with_200(
    api: APIClient, workflow: Any
) -> None:
    first = start(api, idempotency_key="order-1")
    again = start(api, idempotency_key="order-1")
    assert first.status_code == 202 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"workflow": "acme/nope"}, 404, "workflow"),
        ({"workflow": "nonsense"}, 400, "workflow"),
        ({"env": "moon"}, 404, "env"),
        ({"env": None}, 400, "env"),
        ({"input": {"n": "one"}}, 400, "input.n"),
        ({"input": {}}, 400, "input.n"),
        ({"input": [1]}, 400, "input"),
        ({"idempotency_key": 5}, 400, "idempotency_key"),
        ({"extra": 1}, 400, "extra"),
    ],
)
def test_bad_starts_get_a_4xx_naming_the_field(
    api: APIClient, workflow: Any, body: dict[str, Any], status: int, field: str
) -> None:
    response = start(api, **body)
    assert response.status_code == status, response.content
    assert response.json()["field"] == field


def test_an_inactive_workflow_is_refused_with_409_naming_the_env(
    api: APIClient, workflow: Any
) -> None:
    response = start(api, env="staging")
    assert response.status_code == 409
    assert "staging" in response.json()["message"]


def test_an_outsider_gets_404_and_a_viewer_cannot_start(
    workflow: Any, outsider: User, viewer_user: User
) -> None:
    assert start(client_for(outsider)).status_code == 404
    assert start(client_for(viewer_user)).status_code == 403


def test_production_needs_admin(product: Product, operator_user: User, api: APIClient) -> None:
    make_workflow(product, SIGNALED, tag="flow", envs=("prd",))
    assert start(client_for(operator_user), env="prd").status_code == 403
    assert start(api, env="prd").status_code == 202


def test_get_a_run_with_steps_journal_and_pages(api: APIClient, workflow: Any) -> None:
    run_id = start(api).json()["id"]
    drain()
    body = api.get(f"/api/v1/runs/{run_id}").json()
    assert body["status"] == "waiting"
    assert [s["tag"] for s in body["steps"]] == ["first", "mid", "wait", "last"]
    assert body["steps"][0]["output"] == {"sum": 2}
    seqs = [e["seq"] for e in body["journal"]]
    assert seqs == list(range(1, len(seqs) + 1))
    page = api.get(f"/api/v1/runs/{run_id}?after_seq=2&limit=2").json()
    assert [e["seq"] for e in page["journal"]] == [3, 4]
    assert page["journal_next"] == 4
    journal = api.get(f"/api/v1/runs/{run_id}/journal?after_seq=3").json()
    assert journal["entries"][0]["seq"] == 4
    assert api.get(f"/api/v1/runs/{run_id}?after_seq=x").status_code == 400


def test_list_filters_runs(api: APIClient, workflow: Any) -> None:
    start(api)
    start(api)
    assert api.get("/api/v1/runs?workflow=acme/flow&env=dev").json()["count"] == 2
    assert api.get("/api/v1/runs?status=completed").json()["count"] == 0
    assert api.get("/api/v1/runs?workflow=acme/flow&env=moon").status_code == 404
    start(api, input={"n": 77})
    assert api.get("/api/v1/runs?q=77").json()["count"] == 1
    assert api.get("/api/v1/runs?created_after=2000-01-01T00:00:00Z").json()["count"] == 3
    assert api.get("/api/v1/runs?created_before=2000-01-01").json()["count"] == 0
    bad = api.get("/api/v1/runs?created_after=yesterday")
    assert bad.status_code == 400 and bad.json()["field"] == "created_after"


def test_signal_completes_the_run(api: APIClient, workflow: Any) -> None:
    run_id = start(api).json()["id"]
    drain()
    response = api.post(f"/api/v1/runs/{run_id}/signals/approve", {"by": "ann"}, format="json")
    assert response.status_code == 202, response.content
    run = run_until_done(Run.objects.get(pk=run_id))
    assert run.status == "completed"
    assert run.output == {"total": 3}
    assert StepRun.objects.get(run=run, tag="wait").output == {"by": "ann", "_signal": "approve"}


@pytest.mark.parametrize(
    ("path", "payload", "status"),
    [
        ("/api/v1/runs/999999/signals/approve", {}, 404),
        ("/api/v1/runs/abc/signals/approve", {}, 404),
        ("/api/v1/runs/{id}/signals/nope", {}, 404),
        ("/api/v1/runs/{id}/signals/approve", {"by": 5}, 400),
        ("/api/v1/runs/{id}/signals/approve", [1, 2], 400),
        ("/api/v1/runs/{id}/query/nope", None, 404),
        ("/api/v1/runs/{id}/cancel", {"reason": 5}, 400),
        ("/api/v1/runs/{id}/restart", {"input": [1]}, 400),
        ("/api/v1/runs/{id}/restart", {"merge": "yes"}, 400),
        ("/api/v1/runs/{id}/resume", {}, 409),
        ("/api/v1/runs/{id}/fork", {}, 400),
        ("/api/v1/runs/{id}/fork", {"step": "nope"}, 400),
        ("/api/v1/runs/{id}/fork", {"step": "last", "outputs": {"x": 1}}, 400),
        ("/api/v1/runs/{id}/compare/999999", None, 404),
    ],
)
def test_bad_requests_on_a_run_get_a_4xx(
    api: APIClient, workflow: Any, path: str, payload: Any, status: int
) -> None:
    run_id = start(api).json()["id"]
    url = path.format(id=run_id)
    if payload is None:
        response = api.get(url)
    else:
        response = api.post(url, payload, format="json")
    assert response.status_code == status, (url, response.content)
    assert "message" in response.json() or "detail" in response.json()


def test_a_signal_or_cancel_on_a_finished_run_is_409(api: APIClient, workflow: Any) -> None:
    run_id = start(api).json()["id"]
    drain()
    assert api.post(f"/api/v1/runs/{run_id}/cancel", {}, format="json").status_code == 202
    run_until_done(Run.objects.get(pk=run_id))
    assert api.post(f"/api/v1/runs/{run_id}/cancel", {}, format="json").status_code == 409
    signal = api.post(f"/api/v1/runs/{run_id}/signals/approve", {"by": "x"}, format="json")
    assert signal.status_code == 409


def test_operator_actions_need_operator(workflow: Any, api: APIClient, viewer_user: User) -> None:
    run_id = start(api).json()["id"]
    viewer = client_for(viewer_user)
    assert viewer.get(f"/api/v1/runs/{run_id}").status_code == 200
    assert viewer.post(f"/api/v1/runs/{run_id}/cancel", {}, format="json").status_code == 403
    assert viewer.post(f"/api/v1/runs/{run_id}/replay", {}, format="json").status_code == 403


def test_outsiders_cannot_see_or_act(workflow: Any, api: APIClient, outsider: User) -> None:
    run_id = start(api).json()["id"]
    other = client_for(outsider)
    assert other.get(f"/api/v1/runs/{run_id}").status_code == 404
    assert other.post(f"/api/v1/runs/{run_id}/cancel", {}, format="json").status_code == 404
    assert other.get("/api/v1/runs").json()["count"] == 0


def test_query_evaluates_over_the_run(api: APIClient, workflow: Any) -> None:
    run_id = start(api).json()["id"]
    drain()
    result = api.get(f"/api/v1/runs/{run_id}/query/progress").json()["result"]
    assert result == {"done": ["first", "mid"], "n": 1}


def test_replay_restart_related_and_compare(api: APIClient, workflow: Any) -> None:
    run_id = start(api).json()["id"]
    replay = api.post(f"/api/v1/runs/{run_id}/replay", {}, format="json").json()
    assert replay["origin"] == run_id and replay["origin_kind"] == "replay"
    assert replay["input"] == {"n": 1}
    restart = api.post(f"/api/v1/runs/{run_id}/restart", {"input": {"n": 5}}, format="json")
    assert restart.status_code == 202 and restart.json()["input"] == {"n": 5}
    related = api.get(f"/api/v1/runs/{run_id}/related").json()
    assert {r["id"] for r in related["derived"]} == {replay["id"], restart.json()["id"]}
    drain()
    diff = api.get(f"/api/v1/runs/{run_id}/compare/{restart.json()['id']}").json()
    assert diff["input_diff"] == [{"path": "n", "a": 1, "b": 5, "change": "changed"}]
    first = next(s for s in diff["steps"] if s["tag"] == "first")
    assert not first["same_output"] and first["same_status"]


def test_resume_copies_completed_steps_and_fork_overrides_outputs(
    api: APIClient, workflow: Any
) -> None:
    run_id = start(api).json()["id"]
    drain()
    api.post(f"/api/v1/runs/{run_id}/cancel", {}, format="json")
    run_until_done(Run.objects.get(pk=run_id))
    resumed = api.post(f"/api/v1/runs/{run_id}/resume", {"skip": ["wait"]}, format="json")
    assert resumed.status_code == 202, resumed.content
    new = run_until_done(Run.objects.get(pk=resumed.json()["id"]))
    assert new.status == "completed"
    copied = new.journal.filter(kind="step_completed", step="first").first()
    assert copied is not None and copied.data["copied"] is True
    assert new.output == {"total": 3}
    fork = api.post(
        f"/api/v1/runs/{new.pk}/fork",
        {"step": "last", "outputs": {"first": {"sum": 10}}},
        format="json",
    )
    assert fork.status_code == 202, fork.content
    forked = run_until_done(Run.objects.get(pk=fork.json()["id"]))
    assert forked.output == {"total": 11}
    from_checkpoint = api.post(
        f"/api/v1/runs/{run_id}/resume", {"checkpoint": "nope"}, format="json"
    )
    assert from_checkpoint.status_code == 400
    assert from_checkpoint.json()["field"] == "checkpoint"


@pytest.mark.parametrize(
    "action",
    ["replay", "restart", "resume", "fork", "cancel", "signals/approve", "query/progress"],
)
def test_a_body_that_is_not_an_object_is_refused(
    api: APIClient, workflow: Any, action: str
) -> None:
    # The schema says each body is an object: `null` (once taken for "{}"), a list, a
    # string or a number is a 400 naming the body, and nothing is started.
    run_id = start(api).json()["id"]
    runs = Run.objects.count()
    for raw in ("null", "[]", '"x"', "1"):
        response = api.generic(
            "POST", f"/api/v1/runs/{run_id}/{action}", raw, content_type="application/json"
        )
        assert response.status_code == 400, (action, raw, response.content)
        assert response.json()["field"] == "$"
    assert Run.objects.count() == runs
    # No body at all is still an empty object.
    if action in ("replay", "restart"):
        assert api.post(f"/api/v1/runs/{run_id}/{action}").status_code == 202


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("replay", {"extra": 1}),
        ("restart", {"input": {"n": 2}, "extra": 1}),
        ("resume", {"skip": [], "extra": 1}),
        ("fork", {"step": "first", "extra": 1}),
        ("cancel", {"reason": "x", "extra": 1}),
        ("query/progress", {"extra": 1}),
    ],
)
def test_an_unknown_field_is_refused_as_the_schema_says(
    api: APIClient, workflow: Any, action: str, body: dict[str, Any]
) -> None:
    run_id = start(api).json()["id"]
    response = api.post(f"/api/v1/runs/{run_id}/{action}", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["field"] == "extra"
