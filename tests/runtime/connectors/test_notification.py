"""NOTIFICATION: a real SMTP server (aiosmtpd) and a real HTTP provider on 127.0.0.1."""

from __future__ import annotations

import email
from collections.abc import Iterator
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from runtime.connectors import Component, ConnectorCall, execute
from runtime.errors import StepError
from runtime.spec import EventType
from tests.runtime.connectors.peers import PORT_RANGE, HttpPeer


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            (list(envelope.rcpt_tos), email.message_from_bytes(envelope.original_content))
        )
        return "250 OK"


def _auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"mailer", b"s3cret!")
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    for port in reversed(PORT_RANGE):
        controller = Controller(
            inbox,
            hostname="127.0.0.1",
            port=port,
            authenticator=_auth,
            auth_require_tls=False,
            auth_required=False,
        )
        try:
            controller.start()
        except Exception:  # port taken: try the next one
            continue
        break
    else:
        raise RuntimeError("no free SMTP port")
    yield inbox, port
    controller.stop()


EVENTS: dict[str, Any] = {
    "order-confirmation": {
        "channel": "email",
        "subject": "Order {{ orderId }} confirmed",
        "body": "Items:{% for i in items %} {{ i.name }}{% endfor %}. Total {{ total }}",
        "html": "<p>Total {{ total }} for {{ name }}</p>",
    },
    "verification-code": {"channel": "sms", "message": "Your code is {{ code }}"},
    "order-shipped": {"channel": "push", "title": "{{ status }}", "body": "Track {{ n }}"},
    "urgent-alert": {
        "channel": "send",
        "email": {"subject": "Alert {{ level }}", "body": "Something broke"},
        "sms": {"message": "Alert {{ level }}"},
        "push": {"title": "Alert", "body": "{{ level }}"},
    },
}


def notifier(smtp_port: int, http_url: str, **email_config: Any) -> Component:
    return Component(
        kind="notification",
        tag="transactional",
        events=EVENTS,
        config={
            "email": {
                "host": "127.0.0.1",
                "port": smtp_port,
                "from": "shop@acme.test",
                **email_config,
            },
            "sms": {
                "url": http_url + "/sms",
                "from": "+1555",
                "auth": {"type": "bearer", "token_secret": "sms_key"},
            },
            "push": {"url": http_url + "/push", "batch": True},
        },
        secrets={"smtp_pw": "s3cret!", "sms_key": "sms-key-1"},
    )


def send(component: Component, event: str, input: Any, **kw: Any) -> Any:
    kw.setdefault("allowed_hosts", ("127.0.0.1",))  # real peers listen on loopback
    return execute(
        ConnectorCall(
            type=EventType.NOTIFICATION,
            event=event,
            input=input,
            app=component.tag,
            component=component,
            **kw,
        )
    )


def test_an_email_reaches_a_real_smtp_server(smtp: tuple[Inbox, int], http_peer: HttpPeer) -> None:
    inbox, port = smtp
    result = send(
        notifier(port, http_peer.url),
        "order-confirmation",
        {
            "recipients": ["ann@example.com"],
            "subject": {"orderId": "A-1"},
            "template": {
                "items": [{"name": "cup"}, {"name": "pot"}],
                "total": 12,
                "name": "<script>x</script>",
            },
        },
    )
    assert result == {
        "channel": "email",
        "sent": 1,
        "recipients": ["ann@example.com"],
        "subject": "Order A-1 confirmed",
    }
    ((rcpts, msg),) = inbox.messages
    assert rcpts == ["ann@example.com"]
    assert msg["Subject"] == "Order A-1 confirmed"
    assert msg["From"] == "shop@acme.test"
    parts = {
        p.get_content_type(): p.get_payload(decode=True).decode()
        for p in msg.walk()
        if not p.is_multipart()
    }
    assert parts["text/plain"] == "Items: cup pot. Total 12"
    assert "&lt;script&gt;x&lt;/script&gt;" in parts["text/html"]


def test_smtp_login_uses_the_password_secret(smtp: tuple[Inbox, int], http_peer: HttpPeer) -> None:
    inbox, port = smtp
    component = notifier(port, http_peer.url, username="mailer", password_secret="smtp_pw")
    send(component, "order-confirmation", {"recipients": "a@b.io"})
    assert len(inbox.messages) == 1
    wrong = Component(**{**component.__dict__, "secrets": {"smtp_pw": "nope"}})
    with pytest.raises(StepError, match="SMTP login refused") as err:
        send(wrong, "order-confirmation", {"recipients": "a@b.io"})
    assert err.value.retryable is False


def test_a_down_smtp_server_is_retryable(http_peer: HttpPeer) -> None:
    with pytest.raises(StepError, match="cannot send email") as err:
        send(notifier(1, http_peer.url), "order-confirmation", {"recipients": ["a@b.io"]})
    assert err.value.retryable is True


def test_header_injection_and_bad_addresses_are_refused(
    smtp: tuple[Inbox, int], http_peer: HttpPeer
) -> None:
    inbox, port = smtp
    component = notifier(port, http_peer.url)
    with pytest.raises(StepError, match="not an email address") as err:
        send(component, "order-confirmation", {"recipients": ["a@b.io\nBcc: victim@x.io"]})
    assert err.value.retryable is False
    with pytest.raises(StepError, match="not an email address"):
        send(
            component,
            "order-confirmation",
            {"recipients": ["a@b.io"], "from": "x@y.io\nBcc: victim@x.io"},
        )
    # A newline in a subject variable is folded away, never a new header.
    send(
        component,
        "order-confirmation",
        {"recipients": ["a@b.io"], "subject": {"orderId": "1\nBcc: victim@x.io"}},
    )
    ((rcpts, msg),) = inbox.messages
    assert rcpts == ["a@b.io"]
    assert msg["Bcc"] is None


def test_templates_cannot_run_code(smtp: tuple[Inbox, int], http_peer: HttpPeer) -> None:
    _, port = smtp
    component = Component(
        kind="notification",
        tag="n",
        events={
            "e": {"channel": "email", "subject": "s", "body": "{{ v.__class__ }}{% load static %}"}
        },
        config={"email": {"host": "127.0.0.1", "port": port}},
    )
    with pytest.raises(StepError, match="template error"):
        send(component, "e", {"recipients": ["a@b.io"], "template": {"v": "x"}})


def test_sms_posts_to_the_provider_once_per_phone(
    smtp: tuple[Inbox, int], http_peer: HttpPeer
) -> None:
    _, port = smtp
    result = send(
        notifier(port, http_peer.url),
        "verification-code",
        {"phones": ["+111", "+222"], "message": {"code": "9876"}},
        idempotency_key="r1:sms:1",
    )
    assert result["sent"] == 2
    sms = [r for r in http_peer.state.requests if r["path"] == "/sms"]
    assert [r["body"] for r in sms] == [
        {"to": "+111", "message": "Your code is 9876", "from": "+1555"},
        {"to": "+222", "message": "Your code is 9876", "from": "+1555"},
    ]
    assert sms[0]["headers"]["authorization"] == "Bearer sms-key-1"
    assert sms[1]["headers"]["idempotency-key"] == "r1:sms:1:1"
    assert "sms-key-1" not in str(result)


def test_push_batches_tokens(smtp: tuple[Inbox, int], http_peer: HttpPeer) -> None:
    _, port = smtp
    send(
        notifier(port, http_peer.url),
        "order-shipped",
        {
            "tokens": ["t1", "t2"],
            "title": {"status": "Shipped"},
            "body": {"n": "Z9"},
            "data": {"orderId": 7},
        },
    )
    (push,) = [r for r in http_peer.state.requests if r["path"] == "/push"]
    assert push["body"] == {
        "tokens": ["t1", "t2"],
        "title": "Shipped",
        "body": "Track Z9",
        "data": {"orderId": 7},
    }


def test_send_goes_out_on_every_channel_given(smtp: tuple[Inbox, int], http_peer: HttpPeer) -> None:
    inbox, port = smtp
    result = send(
        notifier(port, http_peer.url),
        "urgent-alert",
        {
            "data": {"level": "P1"},
            "email": {"recipients": ["ops@acme.test"]},
            "sms": {"phones": ["+333"]},
            "push": {"tokens": ["t9"]},
        },
    )
    assert set(result) == {"email", "sms", "push"}
    assert inbox.messages[0][1]["Subject"] == "Alert P1"
    sms = [r for r in http_peer.state.requests if r["path"] == "/sms"]
    assert sms[0]["body"]["message"] == "Alert P1"


def test_send_reports_a_failed_channel_and_fails_only_if_all_fail(
    smtp: tuple[Inbox, int], http_peer: HttpPeer
) -> None:
    _, port = smtp
    component = notifier(port, http_peer.url)
    broken = Component(
        **{
            **component.__dict__,
            "config": {**component.config, "sms": {"url": "http://127.0.0.1:1/sms"}},
        }
    )
    result = send(
        broken, "urgent-alert", {"email": {"recipients": ["a@b.io"]}, "sms": {"phones": ["+1"]}}
    )
    assert result["email"]["sent"] == 1 and "sms" in result["failed"]
    with pytest.raises(StepError, match="every channel failed") as err:
        send(broken, "urgent-alert", {"sms": {"phones": ["+1"]}})
    assert err.value.retryable is True


def test_the_provider_host_must_be_on_the_allow_list(
    smtp: tuple[Inbox, int], http_peer: HttpPeer
) -> None:
    _, port = smtp
    with pytest.raises(StepError, match="loopback address: refused unless an admin lists"):
        send(
            notifier(port, http_peer.url),
            "verification-code",
            {"phones": ["+1"]},
            allowed_hosts=("sms.example.com",),
        )


def test_the_smtp_host_must_be_on_the_allow_list(
    smtp: tuple[Inbox, int], http_peer: HttpPeer
) -> None:
    inbox, port = smtp
    with pytest.raises(StepError, match=r"host '127\.0\.0\.1' is a loopback address"):
        send(
            notifier(port, http_peer.url),
            "order-confirmation",
            {"recipients": ["a@b.io"]},
            allowed_hosts=("smtp.example.com",),
        )
    assert inbox.messages == []


def test_the_seeds_email_input_is_the_recipient(
    smtp: tuple[Inbox, int], http_peer: HttpPeer
) -> None:
    # Sequencing Events: {type: NOTIFICATION, event: 'send_welcome_email',
    # input: {email: '$Input{email}'}} — no `recipients`, no declared channel.
    inbox, port = smtp
    component = Component(
        kind="notification",
        tag="n",
        events={"send_welcome_email": {"subject": "Welcome", "body": "Hello {{ email }}"}},
        config={"email": {"host": "127.0.0.1", "port": port}},
    )
    result = send(component, "send_welcome_email", {"email": "ann@example.com"})
    assert result["recipients"] == ["ann@example.com"]
    ((rcpts, msg),) = inbox.messages
    assert rcpts == ["ann@example.com"]
    assert "Hello ann@example.com" in msg.get_payload()
    # `recipients`, when given, still decide; `email` is then only a template variable.
    send(component, "send_welcome_email", {"recipients": ["bob@example.com"], "email": "x@y.io"})
    assert inbox.messages[-1][0] == ["bob@example.com"]
    # Strict otherwise: not an address, not a string, or nothing at all.
    with pytest.raises(StepError, match="not an email address") as bad:
        send(component, "send_welcome_email", {"email": "ann at example"})
    assert bad.value.retryable is False
    with pytest.raises(StepError, match=r"input\.email must be an address"):
        send(component, "send_welcome_email", {"email": 42})
    with pytest.raises(StepError, match=r"needs input\.recipients"):
        send(component, "send_welcome_email", {})
    assert len(inbox.messages) == 2
