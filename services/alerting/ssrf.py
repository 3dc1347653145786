"""SSRF guard: webhook URLs and every address they resolve to must be public unicast.

`check_url` runs at registration and before each delivery; `check_address` runs at connect time
on the address actually dialled, so a name that re-resolves to a private address (DNS rebinding)
is still refused. Numeric host spellings that resolvers accept (`2130706433`, `0x7f000001`,
`0177.0.0.1`, `127.1`) are decoded here with inet_aton rules, so they are judged as the address
they mean whatever resolver is injected. Addresses embedding IPv4 (mapped, NAT64, 6to4) are judged
by the IPv4 address inside.

Tests that deliver to a receiver on 127.0.0.1 build `Policy(allow_loopback_for_tests=True)` in
test code. That is the only way to get it: the allowance is a keyword-only constructor argument
that accepts the bool `True` and nothing else (a string "true" from an environment variable or a
YAML file raises TypeError), no settings field or config key maps to it, and the alerting config
loader rejects the key as unknown.

>>> check_address("10.0.0.7")
Traceback (most recent call last):
...
services.alerting.ssrf.UnsafeDestination: private: 10.0.0.7
"""

from __future__ import annotations

import ipaddress
import re
import socket
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

from services.common.errors import RetryableError, StreamopsError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Iterable[tuple[Any, ...]]]

ALLOWED_SCHEMES = {"http": 80, "https": 443}

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# Ordered: the first network containing an address names why it is blocked.
_BLOCKED_V4: tuple[tuple[_V4, str], ...] = tuple(
    (ipaddress.IPv4Network(net), why)
    for net, why in (
        ("0.0.0.0/8", "unspecified"),
        ("127.0.0.0/8", "loopback"),
        ("10.0.0.0/8", "private"),
        ("172.16.0.0/12", "private"),
        ("192.168.0.0/16", "private"),
        ("100.64.0.0/10", "cgnat"),
        ("169.254.0.0/16", "link_local"),
        ("192.0.0.0/24", "reserved"),
        ("192.0.2.0/24", "reserved"),
        ("192.88.99.0/24", "reserved"),
        ("198.18.0.0/15", "reserved"),
        ("198.51.100.0/24", "reserved"),
        ("203.0.113.0/24", "reserved"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),  # includes 255.255.255.255
    )
)
_BLOCKED_V6: tuple[tuple[_V6, str], ...] = tuple(
    (ipaddress.IPv6Network(net), why)
    for net, why in (
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::/96", "ipv4_compatible"),  # deprecated form, no legitimate use for a webhook
        ("64:ff9b:1::/48", "private"),  # local-use NAT64
        ("100::/64", "reserved"),
        ("2001::/23", "reserved"),  # IETF protocol assignments, incl. Teredo and ORCHID
        ("2001:db8::/32", "reserved"),
        ("fc00::/7", "private"),
        ("fe80::/10", "link_local"),
        ("fec0::/10", "link_local"),  # deprecated site-local
        ("ff00::/8", "multicast"),
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# One part of an inet_aton spelling: hex, octal or decimal, ASCII only.
_NUMERIC_PART = re.compile(r"0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*")


class UnsafeDestination(StreamopsError):
    """A webhook URL or address that must not be contacted; `reason` is a bounded word."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Policy:
    """What the guard lets through; production is `Policy()`, which allows no loopback."""

    __slots__ = ("_allow_loopback",)

    def __init__(self, *, allow_loopback_for_tests: bool = False) -> None:
        if allow_loopback_for_tests is not True and allow_loopback_for_tests is not False:
            # Refuses "true", 1 and the like: nothing parsed from text can switch this on.
            raise TypeError("allow_loopback_for_tests takes the bool True or False only")
        object.__setattr__(self, "_allow_loopback", allow_loopback_for_tests)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Policy is immutable")

    @property
    def allow_loopback_for_tests(self) -> bool:
        """True only in tests that deliver to a receiver on 127.0.0.1 or ::1."""
        return self._allow_loopback

    def __repr__(self) -> str:
        return f"Policy(allow_loopback_for_tests={self._allow_loopback})"


PRODUCTION = Policy()


def blocked_reason(ip: IPAddress) -> str | None:
    """Why `ip` must not be contacted, or None for a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_v4(ip)
        if embedded is not None:
            return blocked_reason(embedded)
        table: Iterable[tuple[_V4 | _V6, str]] = _BLOCKED_V6
    else:
        table = _BLOCKED_V4
    for net, why in table:
        if ip in net:
            return why
    # Anything the standard library still does not call global (new IANA entries) stays out.
    return None if ip.is_global else "reserved"


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, NAT64, 6to4), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def check_address(address: str | IPAddress, policy: Policy = PRODUCTION) -> IPAddress:
    """Return the parsed address if it may be contacted; raise UnsafeDestination otherwise."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise UnsafeDestination("not_an_address", str(address)) from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        raise UnsafeDestination("link_local", str(ip))
    why = blocked_reason(ip)
    if why == "loopback" and policy.allow_loopback_for_tests:
        return ip
    if why is not None:
        raise UnsafeDestination(why, str(ip))
    return ip


def numeric_host(host: str) -> IPAddress | None:
    """The address a numeric host spelling means (inet_aton forms and IPv6), else None."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_NUMERIC_PART.fullmatch(p) for p in parts):
        return None
    values = [
        int(p, 16) if p[:2].lower() == "0x" else int(p, 8 if p[0] == "0" else 10) for p in parts
    ]
    # inet_aton: every part but the last is one byte; the last fills the remaining bytes.
    head, last = values[:-1], values[-1]
    if any(v > 255 for v in head) or last >= 1 << (8 * (4 - len(head))):
        raise UnsafeDestination("bad_numeric_host", host)
    number = 0
    for v in head:
        number = number << 8 | v
    number = number << (8 * (4 - len(head))) | last
    return ipaddress.IPv4Address(number)


def parse_url(url: str) -> tuple[str, str, int]:
    """Syntax check of a webhook URL: (scheme, host, port); no resolution happens here."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeDestination("bad_url", str(exc)) from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise UnsafeDestination("bad_scheme", scheme or "(none)")
    if "@" in parts.netloc:
        raise UnsafeDestination("userinfo", "credentials in a webhook URL are not allowed")
    host = parts.hostname or ""
    if not host:
        raise UnsafeDestination("no_host", url)
    if any(c.isspace() or c == "\\" for c in host) or ("%" in host and ":" not in host):
        # Percent-encoded or odd hosts may be decoded differently by the HTTP client.
        raise UnsafeDestination("bad_url", host)
    return scheme, host.rstrip("."), port or ALLOWED_SCHEMES[scheme]


def check_url(
    url: str, resolver: Resolver = socket.getaddrinfo, policy: Policy = PRODUCTION
) -> list[IPAddress]:
    """Every address `url` resolves to, each checked; raise UnsafeDestination if any is unsafe.

    A resolver failure is a RetryableError: DNS outages are transient. Deliveries connect to one
    of the returned addresses (and check it again with `check_address`) instead of resolving twice.
    """
    _, host, port = parse_url(url)
    literal = numeric_host(host)
    if literal is not None:
        return [check_address(literal, policy)]
    try:
        infos = list(resolver(host, port))
    except OSError as exc:
        raise RetryableError(f"could not resolve {host!r}: {exc}") from exc
    addresses: list[IPAddress] = []
    for info in infos:
        # getaddrinfo gives (family, type, proto, canonname, sockaddr); sockaddr[0] is the address.
        ip = check_address(str(info[4][0]), policy)
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise UnsafeDestination("no_address", host)
    return addresses
