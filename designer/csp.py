"""A Content-Security-Policy header on every response (Django 5.2 has no built-in CSP).

The policy is one setting (``TRELLIS_CSP``, directive → sources). Nothing Trellis serves
needs inline script or eval: the pages load the Vite bundle from /static/, hand it data
through a ``type="application/json"`` block (never executed), and keep their styles in
static files. So script injected into a page (a stored name rendered unescaped by a future
bug, a hostile link) does not run. A view that sets its own policy (the sandboxed
``/media/`` files) keeps it.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

HEADER = "Content-Security-Policy"


def policy_text(directives: dict[str, list[str]]) -> str:
    return "; ".join(" ".join([name, *sources]) for name, sources in directives.items())


def policy_for(path: str) -> str:
    directives = {name: list(sources) for name, sources in settings.TRELLIS_CSP.items()}
    for prefix, extra in settings.TRELLIS_CSP_EXTRA.items():
        if path.startswith(prefix):
            for name, sources in extra.items():
                directives.setdefault(name, []).extend(sources)
    return policy_text(directives)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if HEADER not in response:
            response[HEADER] = policy_for(request.path)
        return response
