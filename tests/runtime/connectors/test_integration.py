"""Connectors inside real runs (the engine's executor, tasks drained in-process):
per-environment base URLs, allow-lists, secrets that appear nowhere, topic triggers."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from designer.models import Component, ComponentConfig, Environment, Product
from designer.secrets import secrets_encrypt
from runtime.connectors.loader import component_cache_clear
from runtime.models import JournalEntry, Run, StepRun
from runtime.services import run_start
from tests.runtime.conftest import make_workflow, run_until_done
from tests.runtime.connectors.peers import HttpPeer

pytestmark = pytest.mark.django_db
SECRET = "sk-live-Zq8w-never-show-me"


@pytest.fixture(autouse=True)
def _clear() -> None:
    component_cache_clear()


def stripe(product: Product, urls: dict[str, str], **env_extra: Any) -> Component:
    comp = Component.objects.create(
        product=product,
        kind="app",
        tag="stripe",
        events={"charge": {"method": "POST", "path": "/charges"}},
    )
    for slug, url in urls.items():
        ComponentConfig.objects.create(
            component=comp,
            environment=product.environments.get(slug=slug),
            config={"base_url": url, "auth": {"type": "bearer", "token_secret": "stripe_key"}},
            secrets_encrypted=secrets_encrypt({"stripe_key": SECRET}),
        )
    return comp


PAY = {
    "sequences": [
        {
            "tag": "main",
            "events": [
                {
                    "type": "ACTION",
                    "app": "stripe",
                    "event": "charge",
                    "tag": "pay",
                    "input": {"body": {"amount": "$Input{amount}", "memo": "$Secret{stripe_key}"}},
                }
            ],
        }
    ],
    "output": {"server": "$Step{pay}{server}", "seen": "$Step{pay}{headers}"},
}


def run_in(product: Product, slug: str, wf: Any, **input: Any) -> Run:
    env = Environment.objects.get(product=product, slug=slug)
    return run_until_done(run_start(workflow=wf, environment=env, input=input))


def test_the_same_workflow_reaches_each_environments_base_url(
    product: Product, http_peer: HttpPeer, http_peer2: HttpPeer
) -> None:
    stripe(product, {"dev": http_peer.url, "prd": http_peer2.url})
    wf = make_workflow(product, PAY, envs=("dev", "prd"))
    dev, prd = run_in(product, "dev", wf, amount=5), run_in(product, "prd", wf, amount=7)
    assert (dev.status, prd.status) == ("completed", "completed"), (dev.error, prd.error)
    assert (dev.output["server"], prd.output["server"]) == ("one", "two")
    assert [r["body"]["amount"] for r in http_peer.state.requests] == [5]
    assert [r["body"]["amount"] for r in http_peer2.state.requests] == [7]


def test_a_host_off_the_prd_allow_list_fails_the_step_clearly(
    product: Product, http_peer: HttpPeer
) -> None:
    stripe(product, {"prd": http_peer.url})
    Environment.objects.filter(product=product, slug="prd").update(allowed_hosts=["api.stripe.com"])
    wf = make_workflow(product, PAY, envs=("prd",))
    run = run_in(product, "prd", wf, amount=1)
    assert run.status in {"failed", "rolled_back"}
    step = StepRun.objects.get(run=run, tag="pay")
    assert step.status == "failed"
    text = json.dumps(step.error)
    # A loopback address is refused whatever names the list holds (it names no address).
    assert "host '127.0.0.1' is a loopback address: refused unless an admin lists" in text
    assert "allowed hosts of environment 'prd'" in text
    assert http_peer.state.requests == []


def test_an_api_key_in_the_query_string_is_not_logged(
    product: Product, http_peer: HttpPeer, caplog: pytest.LogCaptureFixture
) -> None:
    from runtime.connectors import Component as Loaded
    from runtime.connectors import ConnectorCall, execute
    from runtime.spec import EventType

    caplog.set_level(logging.DEBUG)
    component = Loaded(
        kind="app",
        tag="k",
        events={"get": {"method": "GET", "path": "/apikey"}},
        config={
            "base_url": http_peer.url,
            "auth": {"type": "api_key", "key_secret": "k", "in": "query", "name": "key"},
        },
        secrets={"k": "k-42"},
    )
    assert execute(
        ConnectorCall(
            type=EventType.ACTION,
            event="get",
            input={},
            component=component,
            allowed_hosts=("127.0.0.1",),
        )
    ) == {"ok": True}
    assert "k-42" not in caplog.text
    assert "/apikey" in caplog.text


def test_a_secret_used_by_a_run_appears_nowhere(
    product: Product, http_peer: HttpPeer, admin_user: User, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    stripe(product, {"dev": http_peer.url})
    wf = make_workflow(product, PAY)
    run = run_in(product, "dev", wf, amount=3)
    assert run.status == "completed", run.error
    # The peer really got the secret, through auth and through $Secret{...}.
    (seen,) = http_peer.state.requests
    assert seen["headers"]["authorization"] == f"Bearer {SECRET}"
    assert seen["body"]["memo"] == SECRET
    # ...and Trellis kept it nowhere: run, steps, journal, logs, API answers, the run page.
    stored = [
        json.dumps([run.input, run.output, run.error, run.state]),
        json.dumps(list(StepRun.objects.filter(run=run).values()), default=str),
        json.dumps(list(JournalEntry.objects.filter(run=run).values()), default=str),
        caplog.text,
    ]
    client = Client()
    client.force_login(admin_user)
    pages = [
        client.get(f"/p/acme/runs/{run.pk}/"),
        client.get(f"/api/v1/runs/{run.pk}"),
        client.get("/api/v1/products/acme/components/stripe/config/dev"),
        client.get("/api/v1/products/acme/components/stripe/"),
        client.get("/api/v1/products/acme/audit/"),
    ]
    assert [p.status_code for p in pages] == [200, 200, 200, 200, 200]
    for text in stored + [p.content.decode() for p in pages]:
        assert SECRET not in text
    assert run.output["seen"]["authorization"] == "Bearer •••"  # echoed back, redacted


def test_a_published_message_runs_the_subscribed_workflow(product: Product) -> None:
    Component.objects.create(product=product, kind="broker", tag="order-events")
    publisher = make_workflow(
        product,
        {
            "sequences": [
                {
                    "tag": "main",
                    "events": [
                        {
                            "type": "PUBLISH",
                            "app": "order-events",
                            "event": "order-events:order-created",
                            "tag": "announce",
                            "input": {"message": {"orderId": "$Input{orderId}"}},
                        }
                    ],
                }
            ],
        },
        tag="checkout",
    )
    subscriber = make_workflow(
        product,
        {
            "sequences": [
                {
                    "tag": "main",
                    "events": [
                        {
                            "type": "CODE",
                            "event": "tests.runtime.steps:record",
                            "tag": "got",
                            "input": {"order": "$Input{orderId}"},
                        }
                    ],
                }
            ],
            "triggers": [{"type": "topic", "event": "order-events:order-created"}],
            "output": {"order": "$Step{got}{input.order}"},
        },
        tag="on-order",
    )
    run = run_in(product, "dev", publisher, orderId="A-9")
    assert run.status == "completed", run.error
    triggered = Run.objects.get(workflow=subscriber)
    assert run_until_done(triggered).output == {"order": "A-9"}
