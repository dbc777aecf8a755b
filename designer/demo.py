"""The demo's stand-in for a real "accounts" service, so the demo workflow's ACTION step
has something to call on a fresh machine. It only echoes: no data, no side effects."""

from __future__ import annotations

import json

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST


@csrf_exempt  # called by the engine's HTTP client, not by a browser
@require_POST
def validate_user(request: HttpRequest) -> JsonResponse:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return JsonResponse({"valid": False, "reason": "body is not JSON"}, status=400)
    user_id = body.get("userId") if isinstance(body, dict) else None
    if user_id in (None, ""):
        return JsonResponse({"valid": False, "reason": "userId is missing"})
    return JsonResponse({"valid": True, "id": user_id})


urlpatterns = [path("accounts/users/validate", validate_user, name="demo-validate-user")]
