"""A small client of the Trellis REST API (``/api/v1/…``) with token authentication.

Every error body of the API has ``code`` and ``message`` and, for bad content, ``errors:
[{path, message}]``: :class:`ApiError` keeps them so the commands can print them as is.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

#: Tests run the CLI against the Django app in process (``httpx.WSGITransport``).
TRANSPORT: httpx.BaseTransport | None = None
TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class ApiError(Exception):
    def __init__(self, status: int, body: Any, what: str) -> None:
        self.status = status
        self.body = body if isinstance(body, dict) else {"message": str(body)[:500]}
        self.code = str(self.body.get("code", ""))
        super().__init__(f"{what}: {status} {self.describe()}")

    def describe(self) -> str:
        message = str(self.body.get("message") or self.body.get("detail") or "")
        errors = self.body.get("errors")
        if isinstance(errors, list) and errors:
            details = "; ".join(
                f"{e.get('path', '')}: {e.get('message', '')}"
                for e in errors
                if isinstance(e, dict)
            )
            return f"{message} ({details})" if message else details
        return message


def seg(value: str | int) -> str:
    """One URL path segment (tags and slugs are URL-safe already; this keeps it so)."""
    return quote(str(value), safe="")


class Client:
    def __init__(self, url: str, token: str | None = None) -> None:
        headers = {"Accept": "application/json", "User-Agent": "trellis-cli"}
        if token:
            headers["Authorization"] = f"Token {token}"
        self.url = url.rstrip("/")
        self.token = token
        self.http = httpx.Client(
            base_url=self.url + "/api/v1/",
            headers=headers,
            timeout=TIMEOUT,
            transport=TRANSPORT,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        ok_missing: bool = False,
    ) -> Any:
        """The response's JSON (None for 204, or for a 404 when ``ok_missing``)."""
        response = self.http.request(method, path, json=json, params=params)
        if ok_missing and response.status_code == 404:
            return None
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = response.text
            raise ApiError(response.status_code, body, f"{method} {path}")
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.request("POST", path, json=json, **kwargs)

    def put(self, path: str, json: Any = None) -> Any:
        return self.request("PUT", path, json=json)

    def patch(self, path: str, json: Any = None) -> Any:
        return self.request("PATCH", path, json=json)

    def token_create(self, username: str, password: str) -> dict[str, Any]:
        return dict(self.post("auth/token", {"username": username, "password": password}))

    def pages(self, path: str, params: dict[str, Any] | None = None, limit: int = 0) -> list[Any]:
        """Every result of a paginated list (``{count, next, results}``), up to ``limit``."""
        params = dict(params or {})
        params.setdefault("limit", 200)
        params["offset"] = 0
        out: list[Any] = []
        while True:
            page = self.get(path, params=params)
            results = list(page.get("results") or [])
            out.extend(results)
            if (limit and len(out) >= limit) or not page.get("next") or not results:
                return out[:limit] if limit else out
            params["offset"] += len(results)
