"""The address rule every outgoing connection passes (runtime/netguard.py), table-driven:
no database, no network (host names are resolved only where the test says so)."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from runtime.errors import StepError
from runtime.netguard import HostPolicy, HostRefused, entries_check, own_addresses_clear

# Addresses no step may reach unless an admin lists the address itself.
SPECIAL = [
    ("127.0.0.1", "loopback"),
    ("127.1.2.3", "loopback"),
    ("::1", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("100.64.0.1", "shared address space (CGNAT)"),
    ("169.254.169.254", "link-local"),
    ("fe80::1", "link-local"),
    ("fd00::1", "unique local (ULA)"),
    ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", ""),
    ("::ffff:127.0.0.1", "loopback, as IPv6"),
    ("::ffff:169.254.169.254", "link-local"),
    ("2002:7f00:1::", "loopback, as IPv6"),  # 6to4 of 127.0.0.1
    ("64:ff9b::a00:1", "private, as IPv6"),  # NAT64 of 10.0.0.1
    ("198.18.0.1", ""),
]


@pytest.mark.parametrize(("address", "reason"), SPECIAL)
def test_a_special_address_is_refused_even_with_a_wildcard(address: str, reason: str) -> None:
    for allowed in [(), ("*",), ("*.example.com", "*")]:
        with pytest.raises(HostRefused) as err:
            HostPolicy(allowed_hosts=allowed, environment="dev").check(address, 80)
        assert err.value.retryable is False
        assert reason in err.value.message
        assert "refused unless an admin lists" in err.value.message


@pytest.mark.parametrize(("address", "_reason"), SPECIAL)
def test_an_entry_naming_the_address_allows_it(address: str, _reason: str) -> None:
    shown = f"[{address}]" if ":" in address else address
    same = [str(ipaddress.ip_address(address))]
    assert HostPolicy(allowed_hosts=(shown,)).check(address, 80) == same
    assert HostPolicy(allowed_hosts=(f"{shown}:80",)).check(address, 80) == same
    with pytest.raises(HostRefused):
        HostPolicy(allowed_hosts=(f"{shown}:81",)).check(address, 80)


def test_a_network_entry_allows_its_addresses_only() -> None:
    policy = HostPolicy(allowed_hosts=("10.0.0.0/8",))
    assert policy.check("10.9.8.7", 5432) == ["10.9.8.7"]
    with pytest.raises(HostRefused, match="private"):
        policy.check("192.168.0.1", 5432)


def test_a_public_address_follows_the_names_on_the_list() -> None:
    assert HostPolicy().check("93.184.216.34", 443) == ["93.184.216.34"]
    assert HostPolicy(allowed_hosts=("*",)).check("93.184.216.34", 443) == ["93.184.216.34"]
    with pytest.raises(HostRefused, match="not on the allow-list"):
        HostPolicy(allowed_hosts=("api.stripe.com",)).check("93.184.216.34", 443)


def test_a_production_environment_with_an_empty_list_reaches_nothing() -> None:
    with pytest.raises(HostRefused, match="production and its allowed hosts are empty"):
        HostPolicy(production=True, environment="prd").check("93.184.216.34", 443)
    assert HostPolicy(allowed_hosts=("*",), production=True).check("93.184.216.34", 443)


def resolving(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> list[str]:
    """Make ``socket.getaddrinfo`` answer ``answers`` for those names; returns the names
    looked up."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in answers:
            asked.append(host)
            return [
                (
                    socket.AF_INET6 if ":" in a else socket.AF_INET,
                    socket.SOCK_STREAM,
                    6,
                    "",
                    (a, port),
                )
                for a in answers[host]
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return asked


def test_a_name_resolving_to_a_special_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    resolving(monkeypatch, {"internal.example.com": ["93.184.216.34", "10.0.0.5"]})
    # Every address counts: one private answer among public ones is enough to refuse.
    for allowed in [(), ("internal.example.com",), ("*.example.com",)]:
        with pytest.raises(HostRefused, match=r"resolves to 10\.0\.0\.5, which is a private"):
            HostPolicy(allowed_hosts=allowed).check("internal.example.com", 443)
    policy = HostPolicy(allowed_hosts=("internal.example.com", "10.0.0.5"))
    assert policy.check("internal.example.com", 443) == ["93.184.216.34", "10.0.0.5"]


def test_localhost_and_odd_spellings_of_loopback_are_refused() -> None:
    for host in ["localhost", "2130706433", "127.1", "0x7f000001"]:
        with pytest.raises(HostRefused, match="loopback"):
            HostPolicy().check(host, 80)


def test_a_name_off_the_list_is_refused_before_any_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = resolving(monkeypatch, {"evil.test": ["93.184.216.34"]})
    with pytest.raises(HostRefused, match=r"host 'evil\.test' is not on the allow-list"):
        HostPolicy(allowed_hosts=("api.stripe.com",)).check("evil.test", 443)
    assert asked == []


def test_an_address_of_this_server_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.conf import settings

    monkeypatch.setattr(settings, "TRELLIS_SELF_ADDRESSES", ["93.184.216.34"], raising=False)
    own_addresses_clear()
    try:
        with pytest.raises(HostRefused, match="an address of this Trellis server"):
            HostPolicy(allowed_hosts=("*",)).check("93.184.216.34", 443)
        assert HostPolicy(allowed_hosts=("93.184.216.34",)).check("93.184.216.34", 443)
    finally:
        monkeypatch.undo()
        own_addresses_clear()


def test_an_unresolvable_listed_name_is_a_retryable_error() -> None:
    with pytest.raises(StepError) as err:
        HostPolicy(allowed_hosts=("nowhere.invalid",)).check("nowhere.invalid", 443)
    assert err.value.retryable is True and not isinstance(err.value, HostRefused)


def test_bad_entries_are_named() -> None:
    assert entries_check(["api.stripe.com", "*.x.io:8443", "10.0.0.0/8", "[::1]:80"]) == []
    problems = entries_check(["ok.com", "http://x.com/", "host:99999", "[::1]x"])
    assert [p.split(":")[0] for p in problems] == ["[1]", "[2]", "[3]"]
