"""The SSRF rule as a table: which addresses are public, which URLs may be stored, and what
the guard does with what a name resolves to. No DNS: the resolver is a seam."""

from __future__ import annotations

import ipaddress
import ssl

import pytest

from calsync.notify.addresses import (
    NOT_PUBLIC,
    AddressGuard,
    UnsafeAddress,
    check_url_syntax,
    is_public_address,
    parse_url,
)
from calsync.notify.outbound import OutboundHttp

PUBLIC = [
    "93.184.216.34",
    "8.8.8.8",
    "1.1.1.1",
    "2606:2800:220:1:248:1893:25c8:1946",
    "2a00:1450:4001:81d::200e",
    "::ffff:8.8.8.8",  # IPv4-mapped, judged as 8.8.8.8
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8 (DNS64 networks)
    "2002:808:808::1",  # 6to4 embedding 8.8.8.8
]

NOT_PUBLIC_ADDRESSES = [
    # IPv4 special ranges
    "0.0.0.0",  # noqa: S104
    "0.1.2.3",
    "10.1.2.3",
    "100.64.0.1",  # carrier-grade NAT
    "100.127.255.254",
    "127.0.0.1",
    "127.255.255.254",
    "169.254.169.254",  # cloud metadata
    "172.16.0.1",
    "172.31.255.255",
    "192.0.0.8",
    "192.0.0.9",  # global for Python 3.13, refused here: all of 192.0.0.0/24
    "192.0.0.170",
    "192.0.2.1",
    "192.88.99.1",
    "192.168.1.1",
    "198.18.0.1",
    "198.19.255.255",
    "198.51.100.7",
    "203.0.113.9",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    # IPv6 that is not global unicast
    "::",
    "::1",
    "fe80::1",
    "fe80::1%1",
    "fc00::1",
    "fd12:3456:789a::1",
    "fec0::1",  # site-local
    "ff02::1",
    "100::1",
    "2001:db8::1",
    "3fff::1",
    # IPv6 that maps to IPv4 inside
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::127.0.0.1",  # IPv4-compatible
    "::8.8.8.8",  # IPv4-compatible: deprecated, never public
    "::ffff:0:7f00:1",  # SIIT, IPv4-translated
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b:1::808:808",  # local-use NAT64: refused whatever it embeds
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a00:1::",  # 6to4 of 10.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
    "2001:0:4136:e378:8000:63bf:f7f7:f7f7",  # Teredo, client 8.8.8.8: refused too
]


@pytest.mark.parametrize("address", PUBLIC)
def test_globally_routable_unicast_is_public(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address)) is True


@pytest.mark.parametrize("address", NOT_PUBLIC_ADDRESSES)
def test_every_other_address_is_not_public(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address)) is False


REFUSED_URLS = [
    "http://hooks.example.com/",
    "ftp://hooks.example.com/",
    "https://localhost/x",
    "https://LOCALHOST./x",
    "https://app.localhost/x",
    "https://10.0.0.8/x",
    "https://127.0.0.1./x",
    "https://[fe80::1]/x",
    "https://[::1]/x",
    "https://[::ffff:127.0.0.1]/x",
    "https://[::127.0.0.1]/x",
    "https://[64:ff9b::7f00:1]/x",
    "https://[2002:7f00:1::1]/x",
    "https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/x",
    "https://[fec0::1]/x",
    # IPv4 written as one number, in octal, in hex, or shortened: resolvers read them all
    "https://2130706433/x",
    "https://0x7f.1/x",
    "https://0x7f000001/x",
    "https://017700000001/x",
    "https://0177.0.0.1/x",
    "https://127.1/x",
    "https://0x08.0x08.0x08.0x08/x",  # 8.8.8.8, but not written as an address
    "https://010.8.8.8/x",
    # credentials, and a host hidden behind them
    "https://u:p@hooks.example.com/",
    "https://public.example@127.0.0.1/",
    "https://public.example%40127.0.0.1@hooks.example.com/",
    "https://hooks.example.com\\@127.0.0.1/",
    # malformed
    "https:///path",
    "https://hooks.example.com:notaport/",
    "https://hooks.example.com:99999/",
    "https://hooks.exam ple.com/",
    "https://hooks.example.com/\n",
    "https://hööks.example.com/",
    "https://hooks_example.com%2e/",
    "",
]


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_urls_refused_when_stored(url: str) -> None:
    with pytest.raises(UnsafeAddress):
        check_url_syntax(url)


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_the_same_urls_are_refused_when_used(url: str) -> None:
    with pytest.raises(UnsafeAddress):
        AddressGuard(resolver=lambda host, port: ["93.184.216.34"]).check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com:8443/a?b=c",
        "https://fcm.googleapis.com/fcm/send/abc:def",
        "https://93.184.216.34/hook",
        "https://[2606:2800:220:1:248:1893:25c8:1946]/hook",
        "https://1e100.net/x",
        "https://hooks.example.com./x",
    ],
)
def test_a_public_https_url_is_accepted(url: str) -> None:
    assert check_url_syntax(url) == url


def test_a_url_is_parsed_once_into_what_is_requested() -> None:
    target = parse_url("https://Hooks.Example.com.:8443/a/b?c=d#frag")
    assert (target.scheme, target.host, target.port) == ("https", "hooks.example.com", 8443)
    assert (target.path, target.authority) == ("/a/b?c=d", "hooks.example.com:8443")
    assert parse_url("https://[2606:2800:220::1]/").authority == "[2606:2800:220::1]"
    assert parse_url("https://h.example.com:443").path == "/"


@pytest.mark.parametrize("address", NOT_PUBLIC_ADDRESSES)
def test_a_name_resolving_to_any_non_public_address_is_refused_without_naming_it(
    address: str,
) -> None:
    # A public answer first does not help: one bad address refuses the name
    guard = AddressGuard(resolver=lambda host, port: ["93.184.216.34", address])

    with pytest.raises(UnsafeAddress) as caught:
        guard.addresses("rebind.example.com", 443)

    assert str(caught.value) == NOT_PUBLIC


def test_the_addresses_to_connect_to_are_the_ones_checked_from_one_resolution() -> None:
    seen: list[tuple[str, int]] = []

    def resolver(host: str, port: int) -> list[str]:
        seen.append((host, port))
        return ["2606:2800:220:1:248:1893:25c8:1946", "93.184.216.34", "93.184.216.34"]

    found = AddressGuard(resolver=resolver).addresses("ok.example.com", 443)

    assert [str(a) for a in found] == ["2606:2800:220:1:248:1893:25c8:1946", "93.184.216.34"]
    assert seen == [("ok.example.com", 443)]


@pytest.mark.parametrize(
    "host", ["2130706433", "0x7f.1", "017700000001", "127.1", "localhost", "a.localhost"]
)
def test_a_host_in_a_numeric_form_or_local_is_refused_at_connect_time_without_resolving(
    host: str,
) -> None:
    def resolver(host: str, port: int) -> list[str]:
        raise AssertionError("must not be resolved")

    with pytest.raises(UnsafeAddress):
        AddressGuard(resolver=resolver).addresses(host, 443)


@pytest.mark.parametrize("answer", [[], "error", ["not-an-address"]])
def test_a_name_that_does_not_resolve_is_refused(answer: list[str] | str) -> None:
    def resolver(host: str, port: int) -> list[str]:
        if answer == "error":
            raise OSError("no such host")
        return list(answer)

    with pytest.raises(UnsafeAddress):
        AddressGuard(resolver=resolver).addresses("nowhere.example.com", 443)


def test_a_test_listener_is_one_loopback_address_and_port_and_nothing_else() -> None:
    loopback = ipaddress.ip_address("127.0.0.1")
    guard = AddressGuard(test_listeners=frozenset({(loopback, 9999)}))

    assert guard.addresses("127.0.0.1", 9999) == [loopback]
    assert guard.check_url("https://127.0.0.1:9999/hook").port == 9999
    for host, port in [("127.0.0.1", 9998), ("127.0.0.2", 9999), ("::1", 9999)]:
        with pytest.raises(UnsafeAddress):
            guard.addresses(host, port)
    with pytest.raises(UnsafeAddress):
        guard.check_url("http://127.0.0.1:9999/hook")  # still https only
    with pytest.raises(UnsafeAddress):
        AddressGuard().addresses("127.0.0.1", 9999)


@pytest.mark.parametrize("address", ["10.0.0.1", "169.254.169.254", "93.184.216.34", "::"])
def test_only_loopback_can_be_named_a_test_listener(address: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        AddressGuard(test_listeners=frozenset({(ipaddress.ip_address(address), 443)}))


def test_the_outbound_client_refuses_a_tls_context_that_does_not_verify() -> None:
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE

    with pytest.raises(ValueError, match="verify"):
        OutboundHttp(AddressGuard(), ssl_context=unverified)
