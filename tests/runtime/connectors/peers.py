"""Real local peers for connector tests: a threaded HTTP server on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PORT_RANGE = range(8400, 8500)  # the connectors engineer's ports


def bind_in_range(make: Any) -> Any:
    """Bind a server on the first free port of our range (no check-then-bind race)."""
    for port in PORT_RANGE:
        try:
            return make(port)
        except OSError:
            continue
    raise RuntimeError("no free port in 8400-8499")


def free_port() -> int:
    for port in PORT_RANGE:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 8400-8499")


class PeerState:
    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.requests: list[dict[str, Any]] = []
        self.token_requests = 0
        self.tokens_issued: list[str] = []
        self.revoked: set[str] = set()
        self.lock = threading.Lock()


BIG = 50 * 1024 * 1024
CHUNK = b"x" * 65536


def _handler(state: PeerState, name: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _reply(
            self, status: int, body: Any = None, ctype: str = "application/json", **headers: str
        ) -> None:
            raw = (
                body
                if isinstance(body, bytes)
                else (json.dumps(body).encode() if body is not None else b"")
            )
            self.send_response(status)
            if raw or ctype:
                self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(raw)))
            for k, v in headers.items():
                self.send_header(k.replace("_", "-"), v)
            self.end_headers()
            self.wfile.write(raw)

        def _handle(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body: Any = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            seen = {
                "server": name,
                "method": self.command,
                "path": parts.path,
                "query": {k: v[0] if len(v) == 1 else v for k, v in parse_qs(parts.query).items()},
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
            }
            with state.lock:
                state.hits[parts.path] += 1
                state.requests.append(seen)
                hit = state.hits[parts.path]
            path = parts.path
            auth = self.headers.get("Authorization", "")
            if path == "/oauth/token":
                with state.lock:
                    state.token_requests += 1
                    token = f"tok-{state.token_requests}"
                    state.tokens_issued.append(token)
                expected = "Basic " + base64.b64encode(b"client-1:client-pw").decode()
                if auth != expected or "grant_type=client_credentials" not in str(body):
                    self._reply(401, {"error": "invalid_client"})
                    return
                self._reply(
                    200, {"access_token": token, "token_type": "bearer", "expires_in": 3600}
                )
            elif path == "/oauth/resource":
                if not auth.startswith("Bearer tok-") or auth[7:] in state.revoked:
                    self._reply(401, {"error": "bad token"})
                    return
                self._reply(200, {"ok": True, "token": auth[7:]})
            elif path == "/bearer":
                if auth != "Bearer sk-test-123":
                    self._reply(401, {"error": "unauthorized"})
                    return
                self._reply(200, {"ok": True})
            elif path == "/basic":
                if auth != "Basic " + base64.b64encode(b"joe:pa55").decode():
                    self._reply(401, {"error": "unauthorized"})
                    return
                self._reply(200, {"ok": True})
            elif path == "/apikey":
                if self.headers.get("X-API-Key") != "k-42" and seen["query"].get("key") != "k-42":
                    self._reply(403, {"error": "forbidden"})
                    return
                self._reply(200, {"ok": True})
            elif path.startswith("/flaky"):
                # 503 twice, then 200.
                if hit <= 2:
                    self._reply(503, {"error": "try later"})
                else:
                    self._reply(200, {"ok": True, "attempt": hit})
            elif path == "/conflict":
                self._reply(409, {"error": "conflict"})
            elif path == "/missing":
                self._reply(404, {"error": "not found"})
            elif path == "/boom":
                self._reply(500, {"error": "boom"})
            elif path == "/slow":
                time.sleep(3)
                self._reply(200, {"ok": True})
            elif path == "/big":
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(BIG))
                self.end_headers()
                try:
                    for _ in range(BIG // len(CHUNK)):
                        self.wfile.write(CHUNK)
                except OSError:
                    pass
            elif path == "/big-chunked":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for _ in range(BIG // len(CHUNK)):
                        self.wfile.write(b"%x\r\n" % len(CHUNK) + CHUNK + b"\r\n")
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    pass
            elif path == "/text":
                self._reply(200, b"hello, world", ctype="text/plain; charset=utf-8")
            elif path == "/empty":
                self._reply(204, None, ctype="")
            elif path == "/list":
                self._reply(200, [1, 2, 3])
            else:
                self._reply(200, seen)

        do_GET = _handle
        do_POST = _handle
        do_PUT = _handle
        do_PATCH = _handle
        do_DELETE = _handle

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that aborts a 50 MB download on purpose is not an error here.
        pass


class HttpPeer:
    """A threaded HTTP server on 127.0.0.1 recording what it receives."""

    def __init__(self, name: str = "peer") -> None:
        self.state = PeerState()
        self.server = bind_in_range(
            lambda port: _Server(("127.0.0.1", port), _handler(self.state, name))
        )
        self.port = self.server.server_address[1]
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
