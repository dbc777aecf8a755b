"""Where the server may connect: the check every outgoing connection passes.

Only admins decide what the server may reach (issue 13, item 3). An environment's
``allowed_hosts`` (admin-held) is the whole rule:

* Entries are host names (``api.stripe.com``), wildcards (``*.stripe.com``, ``*``),
  either of them with a port (``api.stripe.com:8443``), IP addresses (``10.0.0.5``,
  ``[::1]``), IP addresses with a port (``127.0.0.1:8000``, ``[::1]:8000``) or networks
  (``10.0.0.0/8``).
* A host name is resolved and **every** address it resolves to is checked; the
  connection then goes to one of those checked addresses (never a second lookup, so a
  DNS answer that changes between check and connect cannot move it: DNS rebinding).
* A loopback, private (RFC 1918), shared (CGNAT), link-local (cloud metadata), unique
  local, multicast, unspecified or reserved address, an IPv4 address hidden in an IPv6
  one, or an address of Trellis itself is reachable only through an entry naming that
  address (or its network). A host-name entry, a wildcard or ``*`` never opens one: a
  name's DNS is not the admin's word for where it points.
* A public address is reachable when the host name matches an entry; an empty list
  allows public addresses in a non-production environment and nothing in a production
  environment.

Every refusal is a non-retryable :class:`HostRefused` naming the host, the address and
what an admin would have to list.
"""

from __future__ import annotations

import fnmatch
import functools
import ipaddress
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from runtime.errors import StepError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAME_RE = re.compile(r"^[a-z0-9_*][a-z0-9_.*-]*$")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_ULA = ipaddress.ip_network("fc00::/7")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class HostRefused(StepError):
    """A connection the environment's allow-list does not permit (never retryable: the
    list will not change between two attempts)."""

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, retryable=False, details=details)


@dataclass(frozen=True)
class NameEntry:
    pattern: str
    port: int | None = None

    def matches(self, host: str, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        return self.pattern in {"*", host} or (
            "*" in self.pattern and fnmatch.fnmatchcase(host, self.pattern)
        )


@dataclass(frozen=True)
class AddressEntry:
    network: IPNetwork
    port: int | None = None

    def matches(self, address: IPAddress, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        return address.version == self.network.version and address in self.network


Entry = NameEntry | AddressEntry


def entry_parse(text: str) -> Entry:
    """One allow-list entry, or ValueError saying what is wrong with it."""
    raw = str(text).strip().lower()
    if not raw:
        raise ValueError("an empty entry")
    if raw.startswith("["):  # [v6] or [v6]:port
        inside, _, rest = raw[1:].partition("]")
        port = _port(rest[1:]) if rest.startswith(":") else None
        if rest and port is None:
            raise ValueError(f"{text!r} is not [IPv6] or [IPv6]:port")
        return AddressEntry(_network(inside, text), port)
    try:
        return AddressEntry(ipaddress.ip_network(raw, strict=False))
    except ValueError:
        pass
    port = None
    if raw.count(":") == 1:
        raw, _, port_text = raw.partition(":")
        port = _port(port_text)
        if port is None:
            raise ValueError(f"{text!r}: the port must be a number from 1 to 65535")
        try:
            return AddressEntry(ipaddress.ip_network(raw, strict=False), port)
        except ValueError:
            pass
    raw = raw.rstrip(".")
    if len(raw) > 253 or not _NAME_RE.match(raw):
        raise ValueError(
            f"{text!r} is not a host name, *.domain, IP address, network or any of them :port"
        )
    return NameEntry(raw, port)


def _port(text: str) -> int | None:
    if not text.isdigit() or not 0 < int(text) < 65536:
        return None
    return int(text)


def _network(text: str, original: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise ValueError(f"{original!r} is not an IP address or network") from exc


def entries_check(entries: Iterable[Any]) -> list[str]:
    """Problems with an allow-list, one message per bad entry (``[i]: message``)."""
    problems = []
    for index, entry in enumerate(entries):
        try:
            entry_parse(str(entry))
        except ValueError as exc:
            problems.append(f"[{index}]: {exc}")
    return problems


@functools.lru_cache(maxsize=256)
def _parsed(entries: tuple[str, ...]) -> tuple[tuple[NameEntry, ...], tuple[AddressEntry, ...]]:
    names: list[NameEntry] = []
    addresses: list[AddressEntry] = []
    for text in entries:
        try:
            entry = entry_parse(text)
        except ValueError:
            continue  # the API refuses bad entries; an old bad one allows nothing
        (names if isinstance(entry, NameEntry) else addresses).append(entry)  # type: ignore[arg-type]
    return tuple(names), tuple(addresses)


def special_reason(address: IPAddress) -> str | None:
    """Why ``address`` is not an ordinary public Internet address (None if it is)."""
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv4 address carried inside an IPv6 one reaches that IPv4 address.
        inner = address.ipv4_mapped or address.sixtofour
        if inner is None and address in _NAT64:
            inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if inner is not None:
            reason = special_reason(inner)
            if reason:
                return f"{reason}, as IPv6"
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local (where cloud metadata answers)"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv4Address) and address in _CGNAT:
        return "shared address space (CGNAT)"
    if isinstance(address, ipaddress.IPv6Address) and address in _ULA:
        return "unique local (ULA)"
    if address.is_reserved:
        return "reserved"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "not globally routable"
    if address in own_addresses():
        return "an address of this Trellis server"
    return None


# --- Trellis's own addresses ------------------------------------------------------------

_OWN_TTL_S = 300.0
_own: tuple[float, frozenset[IPAddress]] | None = None
_own_lock = threading.Lock()


def own_addresses() -> frozenset[IPAddress]:
    """The addresses this server answers on (its host name, Django's ``ALLOWED_HOSTS``
    names and ``TRELLIS_SELF_ADDRESSES``), re-resolved every few minutes. A public
    address of the server itself is refused like a private one."""
    global _own
    now = time.monotonic()
    with _own_lock:
        if _own is not None and _own[0] > now:
            return _own[1]
    names = {socket.gethostname()}  # (not getfqdn: its reverse lookup can hang offline)
    names.update(_own_names())
    found: set[IPAddress] = set()
    for name in names:
        name = name.strip().strip("[]")
        if not name:
            continue
        try:
            found.add(ipaddress.ip_address(name))
            continue
        except ValueError:
            pass
        try:
            infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            continue
        for info in infos:
            found.add(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]))
    result = frozenset(found)
    with _own_lock:
        _own = (now + _OWN_TTL_S, result)
    return result


def own_addresses_clear() -> None:
    """Forget the cached own addresses (tests; after a settings change)."""
    global _own
    with _own_lock:
        _own = None


def _no_own_names() -> Iterable[str]:
    return ()


# The host names this server is known by beyond its own host name. The core knows no
# settings: the Django side installs a source reading them (runtime/apps.py).
_own_names: Callable[[], Iterable[str]] = _no_own_names


def own_names_source(source: Callable[[], Iterable[str]]) -> None:
    """Install what :func:`own_addresses` asks for the server's configured names (Django's
    ``ALLOWED_HOSTS`` without wildcards and ``TRELLIS_SELF_ADDRESSES``), read on every
    refresh so a settings change shows after :func:`own_addresses_clear`."""
    global _own_names
    _own_names = source
    own_addresses_clear()


# --- The policy -------------------------------------------------------------------------


@dataclass(frozen=True)
class HostPolicy:
    """An environment's rule for outgoing connections (see the module docstring)."""

    allowed_hosts: tuple[str, ...] = ()
    production: bool = False
    environment: str = ""

    def check(self, host: str, port: int) -> list[str]:
        """The addresses a connection to ``host:port`` may use, every one checked; raises
        :class:`HostRefused` when any address ``host`` resolves to is not allowed."""
        host = host.strip().strip("[]").lower().rstrip(".")
        names, addresses = _parsed(tuple(self.allowed_hosts))
        if self.production and not names and not addresses:
            raise HostRefused(
                f"environment{self._env} is production and its allowed hosts are empty: "
                f"nothing may be reached (an admin lists '{host}' to allow it)",
                details={"host": host, "allowed_hosts": []},
            )
        name_allowed = (not names and not addresses) or any(e.matches(host, port) for e in names)
        literal = _literal(host)
        if not name_allowed and not addresses and literal is None:
            # Not listed, and no address entry could allow it: refuse before any lookup.
            raise self._not_listed(host, port)
        try:
            resolved = [literal] if literal is not None else _resolve(host, port)
        except StepError:
            if not name_allowed:
                raise self._not_listed(host, port) from None
            raise
        for address in resolved:
            if any(e.matches(address, port) for e in addresses):
                continue  # an admin named this address (or its network)
            reason = special_reason(address)
            if reason:
                shown = f"[{address}]" if address.version == 6 else str(address)
                via = "" if literal is not None else f" resolves to {address}, which"
                raise HostRefused(
                    f"host '{host}'{via} is a {reason} address: refused unless an admin lists "
                    f"'{shown}' or '{shown}:{port}' in the allowed hosts of "
                    f"environment{self._env}",
                    details={"host": host, "address": str(address), "reason": reason},
                )
            if not name_allowed:
                raise self._not_listed(host, port)
        return [str(a) for a in resolved]

    @property
    def _env(self) -> str:
        return f" '{self.environment}'" if self.environment else ""

    def _not_listed(self, host: str, port: int) -> HostRefused:
        listed = ", ".join(self.allowed_hosts)
        return HostRefused(
            f"host '{host}' is not on the allow-list of environment{self._env} ({listed})",
            details={"host": host, "allowed_hosts": list(self.allowed_hosts)},
        )


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        # A name that does not resolve today may resolve on a later try.
        raise StepError(f"cannot resolve host '{host}': {exc}", retryable=True) from exc
    out: list[IPAddress] = []
    for info in infos:
        # getaddrinfo also reads odd IPv4 spellings ('2130706433', '127.1'): the address it
        # returns is what is checked and connected to.
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in out:
            out.append(address)
    if not out:
        raise StepError(f"host '{host}' resolves to no address", retryable=True)
    return out
