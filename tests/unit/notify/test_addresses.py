"""The SSRF rule: only public addresses, checked again at send time after resolving."""

from __future__ import annotations

import ipaddress

import pytest

from calsync.notify.addresses import (
    AddressGuard,
    UnsafeAddress,
    check_url_syntax,
    is_public_address,
)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),  # noqa: S104
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
    ],
)
def test_only_globally_routable_unicast_is_public(address: str, public: bool) -> None:
    assert is_public_address(ipaddress.ip_address(address)) is public


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/",
        "ftp://hooks.example.com/",
        "https://localhost/x",
        "https://app.localhost/x",
        "https://10.0.0.8/x",
        "https://[fe80::1]/x",
        "https://u:p@hooks.example.com/",
        "https:///path",
        "https://hooks.example.com:notaport/",
        "",
    ],
)
def test_urls_refused_when_stored(url: str) -> None:
    with pytest.raises(UnsafeAddress):
        check_url_syntax(url)


def test_a_public_https_url_is_accepted() -> None:
    assert check_url_syntax("https://hooks.example.com:8443/a?b=c") == (
        "https://hooks.example.com:8443/a?b=c"
    )


def test_a_name_resolving_to_a_private_address_is_refused_at_send_time() -> None:
    guard = AddressGuard(resolver=lambda host, port: ["93.184.216.34", "10.0.0.5"])
    with pytest.raises(UnsafeAddress, match="non-public"):
        guard.resolve("https://rebind.example.com/hook")


def test_the_checked_address_is_the_one_to_connect_to() -> None:
    seen: list[tuple[str, int]] = []

    def resolver(host: str, port: int) -> list[str]:
        seen.append((host, port))
        return ["93.184.216.34"]

    assert AddressGuard(resolver=resolver).resolve("https://ok.example.com/h") == "93.184.216.34"
    assert seen == [("ok.example.com", 443)]


def test_a_name_that_does_not_resolve_is_refused() -> None:
    def resolver(host: str, port: int) -> list[str]:
        raise OSError("no such host")

    with pytest.raises(UnsafeAddress, match="does not resolve"):
        AddressGuard(resolver=resolver).resolve("https://nowhere.example.com/")


def test_tests_may_allow_private_addresses_explicitly() -> None:
    guard = AddressGuard(allow_private=True)
    assert guard.resolve("http://127.0.0.1:9999/hook") == "127.0.0.1"
    with pytest.raises(UnsafeAddress):
        AddressGuard().resolve("http://127.0.0.1:9999/hook")
