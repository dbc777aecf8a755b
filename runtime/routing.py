"""WebSocket routes (filled by the live-runs consumers)."""

from typing import Any

websocket_urlpatterns: list[Any] = []
