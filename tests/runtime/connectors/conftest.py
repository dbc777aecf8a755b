from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.runtime.connectors.peers import HttpPeer


@pytest.fixture
def http_peer() -> Iterator[HttpPeer]:
    peer = HttpPeer("one")
    yield peer
    peer.close()


@pytest.fixture
def http_peer2() -> Iterator[HttpPeer]:
    peer = HttpPeer("two")
    yield peer
    peer.close()
