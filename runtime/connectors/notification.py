"""NOTIFICATION: email through Django's email backends, SMS and push through provider
HTTP APIs, and the multi-channel ``send``.

A notification component declares its messages (``Component.events``); templates use
Django's template language (``{{ orderId }}``, ``{% for item in items %}``), rendered with
the step input — HTML bodies autoescaped, never evaluated as code::

    {"order-confirmation": {"channel": "email", "subject": "Order {{ orderId }}",
                            "body": "Thanks! Total: {{ total }}", "html": "<p>{{ total }}</p>"},
     "verification-code":  {"channel": "sms", "message": "Your code is {{ code }}"},
     "order-shipped":      {"channel": "push", "title": "{{ status }}",
                            "body": "Tracking {{ trackingNumber }}"},
     "urgent-alert":       {"channel": "send",
                            "email": {"subject": "...", "body": "..."},
                            "sms": {"message": "..."}, "push": {"title": "...", "body": "..."}}}

Per-environment config (``Component.config``)::

    {"email": {"host": "smtp.example.com", "port": 587, "username": "apikey",
               "password_secret": "smtp_password", "use_tls": true, "use_ssl": false,
               "from": "Shop <shop@example.com>", "timeout": 10000},
     "sms":  {"url": "https://sms.example.com/send", "auth": {...as ACTION...},
              "from": "+15550001", "batch": false},
     "push": {"url": "https://push.example.com/send", "auth": {...}, "batch": false}}

An ``email`` config without ``host`` uses Django's configured backend (``EMAIL_*``
settings); ``"backend": "console" | "locmem" | "smtp"`` picks one explicitly.

Step input, as in the seed: email ``{recipients, subject: {vars}, template: {vars}, cc?,
bcc?, reply_to?}`` (the seed's sequencing example gives ``{email: "$Input{email}"}``: an
``email`` address or list stands for ``recipients`` when those are not given); sms
``{phones, message: {vars}}``; push ``{tokens, title: {vars}, body: {vars}, data}``; send
``{email: {...}, sms: {...}, push: {...}}``. Variables given as ``data`` at the top level
are shared by every template.

SMS and push POST JSON to the configured URL: one request per recipient
(``{"to", "from", "message"}`` / ``{"token", "title", "body", "data"}``), or one for all
with ``"batch": true`` (``"to"``/``"tokens"`` then being lists).

Results: ``{"channel": "email", "sent": n, "recipients": [...]}``, ``{"channel": "sms",
"sent": n, "responses": [...]}``; ``send`` → ``{"email": {...}, "sms": {...}, "failed":
{channel: message}}``, failing only when every channel failed.
"""

from __future__ import annotations

import json
import re
import smtplib
from typing import Any

from django.core.mail import BadHeaderError, EmailMultiAlternatives, get_connection
from django.template import Context, Engine, TemplateSyntaxError

from runtime.component_configs import (
    EmailChannelConfig,
    HttpChannelConfig,
    NotifierConfig,
    config_of,
)
from runtime.connectors.action import apply_auth
from runtime.connectors.call import Component, ConnectorCall
from runtime.errors import StepError
from runtime.http import host_check, http_request, where
from runtime.spec import duration_ms

CHANNELS = ("email", "sms", "push")
_EMAIL_RE = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
_BACKENDS = {
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
    "console": "django.core.mail.backends.console.EmailBackend",
    "locmem": "django.core.mail.backends.locmem.EmailBackend",
    "dummy": "django.core.mail.backends.dummy.EmailBackend",
}
# Standalone template engines: no loaders (so no {% include %} of files), no app libraries.
_TEXT = Engine(dirs=[], app_dirs=False, loaders=[], autoescape=False, libraries={})
_HTML = Engine(dirs=[], app_dirs=False, loaders=[], autoescape=True, libraries={})


def notification_run(call: ConnectorCall) -> Any:
    """Send one declared notification (email, sms, push or several) in the environment."""
    component = call.component
    if component is None:
        raise StepError(
            f"NOTIFICATION '{call.event}' needs a notification component", retryable=False
        )
    name = call.event.split(":", 1)[1] if ":" in call.event else call.event
    message = component.events.get(name)
    if not isinstance(message, dict):
        raise StepError(f"notifier '{component.tag}' has no message '{name}'", retryable=False)
    data = call.input if isinstance(call.input, dict) else {}
    channel = str(message.get("channel") or _infer_channel(data))
    if channel in CHANNELS:
        return _send_one(call, component, channel, message, data)
    if channel not in {"send", "multi"}:
        raise StepError(
            f"message '{name}' has channel {channel!r}; use email, sms, push or send",
            retryable=False,
        )
    results: dict[str, Any] = {}
    failed: dict[str, str] = {}
    errors: list[StepError] = []
    for ch in CHANNELS:
        if not isinstance(data.get(ch), dict):
            continue
        sub = {"data": data.get("data"), **data[ch]}
        template = _obj(message.get(ch)) or message
        try:
            results[ch] = _send_one(call, component, ch, template, sub)
        except StepError as exc:
            failed[ch] = exc.message
            errors.append(exc)
    if not results and not errors:
        raise StepError(
            f"'{name}' sends nothing: give input.email, input.sms and/or input.push",
            retryable=False,
        )
    if not results:
        raise StepError(
            "every channel failed: " + "; ".join(f"{c}: {m}" for c, m in failed.items()),
            retryable=any(e.retryable for e in errors),
            details={"failed": failed},
        )
    return {**results, **({"failed": failed} if failed else {})}


def _infer_channel(data: dict[str, Any]) -> str:
    if any(isinstance(data.get(c), dict) for c in CHANNELS):
        return "send"
    for channel, key in (("email", "recipients"), ("sms", "phones"), ("push", "tokens")):
        if key in data:
            return channel
    return "email"


def _send_one(
    call: ConnectorCall,
    component: Component,
    channel: str,
    message: dict[str, Any],
    data: dict[str, Any],
) -> dict[str, Any]:
    config = config_of(NotifierConfig, component.config)
    if channel == "email":
        return _email(call, component, config.email, message, data)
    http_config = config.sms if channel == "sms" else config.push
    return _http_channel(call, component, channel, http_config, message, data)


def render(template: Any, variables: dict[str, Any], *, html: bool = False) -> str:
    """Render a Django template string with ``variables`` (autoescaped when ``html``)."""
    if template is None:
        return ""
    try:
        compiled = (_HTML if html else _TEXT).from_string(str(template))
        return compiled.render(Context(variables, autoescape=html))
    except TemplateSyntaxError as exc:
        raise StepError(f"template error: {exc}", retryable=False) from exc


def _vars(data: dict[str, Any], key: str) -> dict[str, Any]:
    shared = _obj(data.get("data"))
    own = _obj(data.get(key))
    top = {k: v for k, v in data.items() if not isinstance(v, dict | list)}
    return {**top, **shared, **own}


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value if v is not None and str(v).strip()]
    return [str(value)]


# --- Email -----------------------------------------------------------------------------


def _email(
    call: ConnectorCall,
    component: Component,
    config: EmailChannelConfig,
    message: dict[str, Any],
    data: dict[str, Any],
) -> dict[str, Any]:
    to = _list(data.get("recipients", data.get("to", _seed_email(data))))
    cc, bcc = _list(data.get("cc")), _list(data.get("bcc"))
    reply_to = _list(data.get("reply_to"))
    if not to:
        raise StepError("an email needs input.recipients (or input.email)", retryable=False)
    sender = str(data.get("from") or config.from_ or message.get("from") or "") or None
    for address in [*to, *cc, *bcc, *reply_to, *([sender] if sender else [])]:
        if not _EMAIL_RE.match(address.rsplit("<", 1)[-1].rstrip(">")):
            raise StepError(f"not an email address: {address!r}", retryable=False)
    subject_vars = _vars(data, "subject")
    body_vars = _vars(data, "template")
    subject = " ".join(render(message.get("subject", ""), subject_vars).split())
    text = render(message.get("body", message.get("text", "")), body_vars)
    html = render(message["html"], body_vars, html=True) if message.get("html") else None
    connection = _connection(call, component, config)
    email = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=sender,
        to=to,
        cc=cc,
        bcc=bcc,
        reply_to=reply_to,
        connection=connection,
    )
    if html:
        email.attach_alternative(html, "text/html")
    try:
        sent = email.send(fail_silently=False)
    except (BadHeaderError, ValueError) as exc:
        raise StepError(f"email header refused: {exc}", retryable=False) from exc
    except smtplib.SMTPAuthenticationError as exc:
        raise StepError(f"SMTP login refused ({exc.smtp_code})", retryable=False) from exc
    except smtplib.SMTPRecipientsRefused as exc:
        raise StepError(
            f"SMTP refused recipients: {', '.join(exc.recipients)}", retryable=False
        ) from exc
    except smtplib.SMTPResponseException as exc:
        raise StepError(
            f"SMTP error {exc.smtp_code}", retryable=exc.smtp_code >= 400 and exc.smtp_code < 500
        ) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise StepError(f"cannot send email: {type(exc).__name__}: {exc}", retryable=True) from exc
    return {"channel": "email", "sent": sent, "recipients": to, "subject": subject}


def _seed_email(data: dict[str, Any]) -> Any:
    """The seed's own form, ``{"email": "$Input{email}"}``: an address (or a list of them)
    given as ``email`` is the recipient when no ``recipients`` are given. A dict there is
    the multi-channel ``send`` form, never an address; anything else is refused as one."""
    value = data.get("email")
    if value is None or isinstance(value, dict):
        return None
    if isinstance(value, str | list | tuple):
        return value
    raise StepError("input.email must be an address or a list of addresses", retryable=False)


def _connection(call: ConnectorCall, component: Component, config: EmailChannelConfig) -> Any:
    backend = config.backend
    if not backend and not config.host:
        return get_connection(fail_silently=False)
    path = _BACKENDS.get(str(backend or "smtp"), None)
    if path is None:
        raise StepError(f"unknown email backend {backend!r}", retryable=False)
    if path != _BACKENDS["smtp"]:
        return get_connection(backend=path, fail_silently=False)
    password = ""
    if config.password_secret:
        password = component.secrets.get(str(config.password_secret), "")
        if not password:
            raise StepError(
                f"secret '{config.password_secret}' of notifier '{component.tag}' is not set",
                retryable=False,
            )
    if config.host is None:
        raise StepError(
            f"notifier '{component.tag}': the smtp backend needs a host", retryable=False
        )
    # The SMTP host comes from admin-held config; it is still held to the environment's
    # rule (checked, not pinned: smtplib resolves the name itself).
    host_check(f"smtp://{config.host}:{int(config.port)}", call.policy, schemes=("smtp",))
    timeout = call.timeout_s or ((duration_ms(config.timeout) or 30_000) / 1000)
    return get_connection(
        backend=path,
        fail_silently=False,
        host=str(config.host),
        port=int(config.port),
        username=str(config.username),
        password=password,
        use_tls=bool(config.use_tls),
        use_ssl=bool(config.use_ssl),
        timeout=timeout,
    )


# --- SMS and push over HTTP ------------------------------------------------------------


def _http_channel(
    call: ConnectorCall,
    component: Component,
    channel: str,
    config: HttpChannelConfig,
    message: dict[str, Any],
    data: dict[str, Any],
) -> dict[str, Any]:
    url = config.url
    if not url:
        raise StepError(
            f"notifier '{component.tag}' has no {channel} url configured for this environment",
            retryable=False,
        )
    if channel == "sms":
        targets = _list(data.get("phones", data.get("to")))
        text = render(message.get("message", message.get("body", "")), _vars(data, "message"))
        payloads = [
            {"to": t, "message": text, **({"from": config.from_} if config.from_ else {})}
            for t in targets
        ]
        batch: dict[str, Any] = {"to": targets, "message": text}
        if config.from_:
            batch["from"] = config.from_
    else:
        targets = _list(data.get("tokens"))
        title = render(message.get("title", ""), _vars(data, "title"))
        body = render(message.get("body", ""), _vars(data, "body"))
        extra = _obj(data.get("data"))
        payloads = [{"token": t, "title": title, "body": body, "data": extra} for t in targets]
        batch = {"tokens": targets, "title": title, "body": body, "data": extra}
    if not targets:
        key = "phones" if channel == "sms" else "tokens"
        raise StepError(f"{channel} needs input.{key}", retryable=False)
    auth = config.auth
    responses: list[Any] = []
    for payload in [batch] if config.batch else payloads:
        headers: dict[str, str] = {"Accept": "application/json"}
        query: dict[str, Any] = {}
        if call.idempotency_key:
            headers["Idempotency-Key"] = f"{call.idempotency_key}:{len(responses)}"
        apply_auth(call, component, auth, headers, query, call.timeout_s)
        response = http_request(
            "POST",
            url,
            headers=headers,
            params=query,
            json=payload,
            timeout_s=call.timeout_s,
            policy=call.policy,
        )
        if response.status >= 400:
            raise StepError(
                f"{channel} provider {where(url)} answered {response.status}",
                retryable=response.status >= 500 or response.status in {408, 429},
                details={"status": response.status, "sent": len(responses)},
            )
        try:
            responses.append(json.loads(response.content) if response.content else None)
        except ValueError:
            responses.append(response.text()[:500])
    return {"channel": channel, "sent": len(targets), "responses": responses}
