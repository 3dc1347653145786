"""R15: the SSRF guard, table-driven, with an injected resolver and no network at all."""

import dataclasses
import ipaddress
import socket

import pytest

from services.alerting.ssrf import (
    PRODUCTION,
    Policy,
    UnsafeDestination,
    check_address,
    check_url,
    numeric_host,
)
from services.common.errors import ConfigError, RetryableError
from services.common.settings import CommonSettings, load_settings

pytestmark = pytest.mark.unit

TEST_POLICY = Policy(allow_loopback_for_tests=True)


class FakeResolver:
    """Answers from a table in getaddrinfo's shape and records every question."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[tuple]:
        self.asked.append((host, port))
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in self.table[host]
        ]


RESOLVER = FakeResolver(
    {
        "hooks.example.com": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
        "localhost": ["127.0.0.1", "::1"],
        "rebind.example.com": ["93.184.215.14", "10.1.2.3"],
        "internal.example.com": ["192.168.1.10"],
        "metadata.example.com": ["169.254.169.254"],
        "mapped.example.com": ["::ffff:127.0.0.1"],
        "empty.example.com": [],
    }
)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("::1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("10.0.0.1", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.0.1", "private"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("100.64.0.1", "cgnat"),
        ("100.127.255.254", "cgnat"),
        ("169.254.169.254", "link_local"),
        ("fe80::1", "link_local"),
        ("fe80::1%eth0", "link_local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.1", "reserved"),
        ("198.18.0.1", "reserved"),
        ("2001:db8::1", "reserved"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "link_local"),
        ("::127.0.0.1", "ipv4_compatible"),
        ("::10.0.0.1", "ipv4_compatible"),
        ("64:ff9b::7f00:1", "loopback"),
        ("64:ff9b::10.0.0.1", "private"),
        ("64:ff9b::a9fe:a9fe", "link_local"),
        ("64:ff9b:1::1", "private"),
        ("2002:7f00:1::1", "loopback"),  # 6to4 wrapping 127.0.0.1
        ("2002:c0a8:101::1", "private"),  # 6to4 wrapping 192.168.1.1
        ("2001::1", "reserved"),  # Teredo
        ("not-an-ip", "not_an_address"),
    ],
)
def test_blocked_addresses(address: str, reason: str) -> None:
    with pytest.raises(UnsafeDestination) as info:
        check_address(address)
    assert info.value.reason == reason


@pytest.mark.parametrize(
    "address",
    [
        "93.184.215.14",
        "8.8.8.8",
        "1.1.1.1",
        "2606:4700:4700::1111",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
    ],
)
def test_public_addresses_pass(address: str) -> None:
    assert check_address(address) == ipaddress.ip_address(address)


@pytest.mark.parametrize(
    ("host", "meaning"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0X7F000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("10.0x10.1", "10.16.0.1"),
        ("3232235777", "192.168.1.1"),
        ("017700000001", "127.0.0.1"),
    ],
)
def test_numeric_host_spellings_decode_like_inet_aton(host: str, meaning: str) -> None:
    assert numeric_host(host) == ipaddress.ip_address(meaning)


@pytest.mark.parametrize("host", ["example.com", "1.2.3.4.5", "08.0.0.1", "1..2", "٣.1.1.1"])
def test_names_are_not_numeric(host: str) -> None:
    assert numeric_host(host) is None


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/hook", "loopback"),
        ("http://2130706433/hook", "loopback"),
        ("http://0x7f000001/hook", "loopback"),
        ("http://0177.0.0.1/hook", "loopback"),
        ("http://127.1/hook", "loopback"),
        ("http://127.0.0.1./hook", "loopback"),
        ("http://[::1]:8080/hook", "loopback"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),
        ("http://[::ffff:7f00:1]/hook", "loopback"),
        ("http://[64:ff9b::10.0.0.1]/hook", "private"),
        ("http://[fe80::1%25eth0]/hook", "link_local"),
        ("http://169.254.169.254/latest/meta-data/", "link_local"),
        ("http://localhost:9000/hook", "loopback"),
        ("http://LOCALHOST./hook", "loopback"),
        ("https://internal.example.com/hook", "private"),
        ("https://metadata.example.com/hook", "link_local"),
        ("https://mapped.example.com/hook", "loopback"),
        ("https://rebind.example.com/hook", "private"),  # one bad address among good ones
        ("https://empty.example.com/hook", "no_address"),
        ("ftp://hooks.example.com/hook", "bad_scheme"),
        ("file:///etc/passwd", "bad_scheme"),
        ("gopher://hooks.example.com/", "bad_scheme"),
        ("hooks.example.com/hook", "bad_scheme"),
        ("https://user:pw@hooks.example.com/hook", "userinfo"),
        ("https://hooks.example.com@127.0.0.1/hook", "userinfo"),
        ("https:///hook", "no_host"),
        ("https://hooks.example.com:99999/", "bad_url"),
        ("http://127.0.0.%31/hook", "bad_url"),
        ("http://1.256.1/hook", "bad_numeric_host"),
    ],
)
def test_check_url_blocks(url: str, reason: str) -> None:
    resolver = FakeResolver(RESOLVER.table | {"localhost": ["127.0.0.1", "::1"]})
    with pytest.raises(UnsafeDestination) as info:
        check_url(url, resolver)
    assert info.value.reason == reason


def test_check_url_returns_every_resolved_address() -> None:
    resolver = FakeResolver(RESOLVER.table)
    got = check_url("https://hooks.example.com/x", resolver)
    assert [str(a) for a in got] == ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]
    assert resolver.asked == [("hooks.example.com", 443)]
    check_url("http://hooks.example.com:8080/x", resolver)
    assert resolver.asked[-1] == ("hooks.example.com", 8080)


def test_numeric_hosts_never_reach_the_resolver() -> None:
    resolver = FakeResolver({})
    with pytest.raises(UnsafeDestination):
        check_url("http://0x7f000001/", resolver)
    assert resolver.asked == []


def test_resolver_failure_is_retryable_not_a_pass() -> None:
    with pytest.raises(RetryableError):
        check_url("https://nxdomain.example.com/", FakeResolver({}))


def test_test_policy_allows_loopback_and_nothing_else() -> None:
    resolver = FakeResolver(RESOLVER.table)
    assert [str(a) for a in check_url("http://localhost:9000/", resolver, TEST_POLICY)] == [
        "127.0.0.1",
        "::1",
    ]
    assert check_address("::ffff:127.0.0.1", TEST_POLICY) == ipaddress.ip_address(
        "::ffff:127.0.0.1"
    )
    for other in ("10.0.0.1", "169.254.169.254", "0.0.0.0", "192.168.1.1", "fc00::1"):
        with pytest.raises(UnsafeDestination):
            check_address(other, TEST_POLICY)


@pytest.mark.parametrize("value", ["true", "1", 1, "yes", None, [True]])
def test_policy_allowance_accepts_only_the_bool_true(value: object) -> None:
    with pytest.raises(TypeError):
        Policy(allow_loopback_for_tests=value)  # type: ignore[arg-type]


def test_policy_cannot_be_switched_on_after_construction() -> None:
    policy = Policy()
    with pytest.raises(AttributeError):
        policy._allow_loopback = True  # type: ignore[misc]
    with pytest.raises(AttributeError):
        policy.allow_loopback_for_tests = True  # type: ignore[misc]
    with pytest.raises(TypeError):
        Policy(True)  # type: ignore[misc]  # keyword-only: no positional smuggling
    assert not PRODUCTION.allow_loopback_for_tests
    assert not dataclasses.is_dataclass(Policy)


@pytest.mark.parametrize(
    "key",
    [
        "STREAMOPS_ALLOW_LOOPBACK_FOR_TESTS",
        "STREAMOPS_ALERTING_ALLOW_LOOPBACK_FOR_TESTS",
        "STREAMOPS_ALERTING_SSRF_ALLOW_LOOPBACK",
    ],
)
def test_settings_layer_refuses_the_allowance(key: str) -> None:
    with pytest.raises(ConfigError):
        load_settings(CommonSettings, "alerting", {key: "true"})
