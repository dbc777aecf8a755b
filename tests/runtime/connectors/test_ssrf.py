"""Issue 13, item 3: the HTTP client connects to the address it checked (DNS rebinding),
keeps the name for Host, and refuses before connecting."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from runtime.http import http_request
from runtime.netguard import HostPolicy, HostRefused
from tests.runtime.connectors.peers import HttpPeer


def rebinding(monkeypatch: pytest.MonkeyPatch, name: str, answers: list[str]) -> list[str]:
    """``name`` resolves to ``answers[0]`` first, then to each next answer (a rebinding
    DNS server); returns the answers given."""
    real = socket.getaddrinfo
    given: list[str] = []

    def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != name:
            return real(host, port, *args, **kwargs)
        address = answers[min(len(given), len(answers) - 1)]
        given.append(address)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return given


def test_it_connects_to_the_checked_address_and_keeps_the_host_name(
    monkeypatch: pytest.MonkeyPatch, http_peer: HttpPeer
) -> None:
    port = int(http_peer.url.rsplit(":", 1)[1])
    # The first answer (listed by the admin) is checked; a second lookup would say 10.9.9.9.
    given = rebinding(monkeypatch, "rebind.test", ["127.0.0.1", "10.9.9.9"])
    response = http_request(
        "POST",
        f"http://rebind.test:{port}/echo",
        json={"a": 1},
        policy=HostPolicy(allowed_hosts=(f"127.0.0.1:{port}",)),
    )
    assert response.status == 200
    assert json.loads(response.content)["headers"]["host"] == f"rebind.test:{port}"
    assert given == ["127.0.0.1"]  # one lookup: the connection used the checked address


def test_a_name_rebound_to_loopback_is_refused_without_a_connection(
    monkeypatch: pytest.MonkeyPatch, http_peer: HttpPeer
) -> None:
    port = int(http_peer.url.rsplit(":", 1)[1])
    rebinding(monkeypatch, "rebind.test", ["127.0.0.1"])
    with pytest.raises(HostRefused, match=r"resolves to 127\.0\.0\.1, which is a loopback"):
        http_request(
            "GET", f"http://rebind.test:{port}/echo", policy=HostPolicy(allowed_hosts=("*",))
        )
    assert sum(http_peer.state.hits.values()) == 0


def test_the_default_policy_reaches_public_addresses_only(http_peer: HttpPeer) -> None:
    with pytest.raises(HostRefused, match="loopback"):
        http_request("GET", http_peer.url + "/echo")
    assert sum(http_peer.state.hits.values()) == 0
