"""WebSocket routes: live runs (see runtime/consumers.py for the protocol)."""

from typing import Any

from django.urls import path

from runtime.consumers import RunConsumer, WorkflowConsumer

websocket_urlpatterns: list[Any] = [
    path("ws/runs/<int:run_id>/", RunConsumer.as_asgi()),
    path("ws/workflows/<slug:product>/<slug:workflow>/", WorkflowConsumer.as_asgi()),
]
