"""The SSRF rule: calsync only calls out to public internet addresses.

Webhook URLs and Web Push endpoints are given by users, so a request to them must never
reach the loopback interface, a private network, a link-local address (cloud metadata
services live at 169.254.169.254) or any other address that is not globally routable,
however the address is written.

Two checks, both here:

- :func:`check_url_syntax` when a URL is stored (and :meth:`AddressGuard.check_url` again
  when it is used): https, no credentials, and a host that is an ASCII host name or a
  public IP address in its canonical form. A numeric host in any other form
  (``2130706433``, ``0x7f.1``, ``017700000001``, ``127.1``) is refused, because resolvers
  read such names as IPv4 addresses. No I/O.
- :meth:`AddressGuard.addresses` when a connection is opened: the host is resolved once and
  every address it resolves to must be public. The caller connects to one of exactly those
  addresses (:mod:`calsync.notify.outbound` does), so a DNS answer that changes between the
  check and the connection (DNS rebinding) gains nothing.

What counts as public is :func:`is_public_address`. Refusals never say what a name
resolved to (the reason is shown to users on ``GET /me/notices``); the log has it.

Tests receive webhooks and pushes on 127.0.0.1: ``AddressGuard(test_listeners=...)`` names
the exact loopback (address, port) pairs that count as public, and nothing else about the
rule changes. Only loopback addresses can be named (anything else is a ``ValueError``), and
no setting or environment variable fills it in, so a deployment cannot be configured into
calling its own network.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

__all__ = [
    "AddressGuard",
    "Target",
    "UnsafeAddress",
    "check_url_syntax",
    "host_address",
    "is_public_address",
    "parse_url",
    "system_resolver",
]

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]
MAX_URL_LENGTH: Final = 2048
NOT_PUBLIC: Final = "not a public address"
_LOCAL_NAMES: Final = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
_HOST_NAME: Final = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")
# The last label of a host that a resolver (inet_aton) or a browser (WHATWG URL) reads as
# an IPv4 address: decimal, octal or hex numbers.
_NUMERIC_LABEL: Final = re.compile(r"0x[0-9a-f]*|[0-9]+")

# Never called, whatever the running Python's ipaddress tables say: they differ between
# versions (3.12.4 and 3.13 changed is_global), and this list is the rule as documented.
_REFUSED_V4: Final = tuple(
    ipaddress.IPv4Network(network)
    for network in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # shared address space (carrier-grade NAT)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local: cloud metadata services
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # 6to4 relay anycast (deprecated)
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast address 255.255.255.255
    )
)
_GLOBAL_UNICAST_V6: Final = ipaddress.IPv6Network("2000::/3")
_REFUSED_V6: Final = tuple(
    ipaddress.IPv6Network(network)
    for network in (
        "2001::/23",  # IETF protocol assignments, Teredo (2001::/32) among them
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
    )
)
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")


class UnsafeAddress(ValueError):
    """A URL or the address it resolves to is not allowed (the SSRF rule). The message is
    safe to show to the URL's owner: it never names an address the host resolved to."""


def is_public_address(address: IPAddress) -> bool:
    """Whether calsync may connect to ``address``: globally routable unicast.

    IPv4: Python's ``is_global`` and none of ``_REFUSED_V4`` (loopback, private, CGNAT,
    link-local, 192.0.0/24, documentation, benchmarking, multicast, 240/4, broadcast).

    IPv6: an IPv4-mapped address (``::ffff:a.b.c.d``) or a NAT64 one (``64:ff9b::a.b.c.d``)
    is judged as the IPv4 address it reaches. Anything else must be global unicast
    (``2000::/3``, which leaves out ``::``, ``::1``, the IPv4-compatible ``::a.b.c.d``,
    the local-use NAT64 ``64:ff9b:1::/48``, unique-local ``fc00::/7``, link-local
    ``fe80::/10``, site-local ``fec0::/10`` and multicast), ``is_global``, outside
    ``_REFUSED_V6`` (Teredo, whatever client it embeds, and documentation), and a 6to4
    address (``2002::/16``) must embed a public IPv4 address.
    """
    if isinstance(address, ipaddress.IPv4Address):
        return address.is_global and not any(address in network for network in _REFUSED_V4)
    embedded = address.ipv4_mapped
    if embedded is None and address in _NAT64:
        embedded = ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    if embedded is not None:
        return is_public_address(embedded)
    if address not in _GLOBAL_UNICAST_V6 or not address.is_global:
        return False
    if any(address in network for network in _REFUSED_V6):
        return False
    sixtofour = address.sixtofour
    return sixtofour is None or is_public_address(sixtofour)


@dataclass(frozen=True, slots=True)
class Target:
    """A URL as calsync requests it, parsed once so the request goes where the checks
    looked: ``host`` lower-case without brackets or a trailing dot, ``port`` explicit,
    ``path`` the request target (path and query), ``authority`` the ``Host`` header."""

    scheme: str
    host: str
    port: int
    path: str
    authority: str


def parse_url(url: str, *, schemes: Sequence[str] = ("https",)) -> Target:
    """Parse a callback URL, applying the syntax part of the rule.

    Does not judge a literal IP address (see :func:`check_url_syntax`).

    Raises:
        UnsafeAddress: not an ASCII URL of at most ``MAX_URL_LENGTH`` characters, a scheme
            not in ``schemes``, credentials, no host, a local host name, characters a host
            name cannot have, or a numeric host that is not a canonical IP address.
    """
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise UnsafeAddress(f"must be a URL of at most {MAX_URL_LENGTH} characters")
    if not url.isascii() or not url.isprintable() or " " in url:
        raise UnsafeAddress("must be written in ASCII without spaces")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise UnsafeAddress(f"is not a valid URL ({err})") from None
    if parts.scheme not in schemes:
        raise UnsafeAddress(f"must use {' or '.join(schemes)}")
    if "@" in parts.netloc:
        raise UnsafeAddress("must not carry a user name or password")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeAddress("must name a host")
    if host in _LOCAL_NAMES or host.endswith(".localhost"):
        raise UnsafeAddress("must not point at this machine")
    literal = host_address(host)
    default = 443 if parts.scheme == "https" else 80
    port = default if port is None else port
    named = f"[{literal}]" if isinstance(literal, ipaddress.IPv6Address) else host
    return Target(
        scheme=parts.scheme,
        host=host,
        port=port,
        path=(parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
        authority=named if port == default else f"{named}:{port}",
    )


def check_url_syntax(url: str, *, schemes: Sequence[str] = ("https",)) -> str:
    """Return ``url`` if it may be stored as a callback address.

    Raises:
        UnsafeAddress: as :func:`parse_url`, or a literal IP address that is not public.
            Host names are not resolved here.
    """
    literal = host_address(parse_url(url, schemes=schemes).host)
    if literal is not None and not is_public_address(literal):
        raise UnsafeAddress("must not point at a loopback, private or link-local address")
    return url


def host_address(host: str) -> IPAddress | None:
    """The IP address ``host`` is written as, or None for a host name.

    Raises:
        UnsafeAddress: a numeric host that is not a canonical address (``2130706433``,
            ``0x7f.1``, ``017700000001``, ``127.1``), or a name with characters other than
            ASCII letters, digits, ``-``, ``_`` and ``.``.
    """
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    if _NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1].lower()):
        raise UnsafeAddress("must write an IP address in its usual form (four decimal numbers)")
    if not _HOST_NAME.fullmatch(host.lower()):
        raise UnsafeAddress("must name a host with letters, digits, '-' and '.' only")
    return None


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses ``socket.getaddrinfo`` gives for a TCP connection to ``host``."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _loopback_listeners(
    listeners: frozenset[tuple[IPAddress, int]],
) -> frozenset[tuple[IPAddress, int]]:
    for address, port in listeners:
        if not address.is_loopback or not 0 < port < 65536:
            raise ValueError(f"a test listener must be a loopback address and port: {address}")
    return listeners


@dataclass(frozen=True)
class AddressGuard:
    """Applies the SSRF rule to a URL and to every address its host resolves to.

    ``resolver`` maps ``(host, port)`` to address strings (``socket.getaddrinfo`` by
    default); tests replace it to exercise the rule without DNS. ``test_listeners`` are
    exact loopback ``(address, port)`` pairs treated as public, for tests only (see the
    module docstring); it is empty unless code passes it.
    """

    resolver: Resolver = field(default=system_resolver)
    test_listeners: frozenset[tuple[IPAddress, int]] = frozenset()

    def __post_init__(self) -> None:
        _loopback_listeners(self.test_listeners)

    def allows(self, address: IPAddress, port: int) -> bool:
        """Whether a connection to ``address`` on ``port`` is allowed."""
        return is_public_address(address) or (address, port) in self.test_listeners

    def check_url(self, url: str) -> Target:
        """The rule's syntax part when ``url`` is about to be used (it was checked when
        stored, but rows outlive rules).

        Raises:
            UnsafeAddress: as :func:`check_url_syntax`.
        """
        target = parse_url(url)
        literal = host_address(target.host)
        if literal is not None and not self.allows(literal, target.port):
            raise UnsafeAddress(NOT_PUBLIC)
        return target

    def addresses(self, host: str, port: int) -> list[IPAddress]:
        """Resolve ``host`` once and return its addresses, in the resolver's order, once
        every one of them is allowed; connect only to these.

        Raises:
            UnsafeAddress: the host is malformed or local, does not resolve, or resolves to
                any address that is not public (one is enough: a name that points both
                outside and inside is refused). The message does not name the address.
        """
        literal = host_address(host)
        if literal is not None:
            found = [literal]
        elif host.rstrip(".").lower() in _LOCAL_NAMES or host.endswith(".localhost"):
            raise UnsafeAddress("must not point at this machine")
        else:
            try:
                answers = list(self.resolver(host, port))
            except (OSError, UnicodeError) as err:
                log.info("outbound host %r does not resolve: %s", host, err)
                raise UnsafeAddress("the host does not resolve") from None
            found = [_answer(host, answer) for answer in answers]
        if not found:
            raise UnsafeAddress("the host does not resolve")
        for address in found:
            if not self.allows(address, port):
                log.warning("outbound host %r refused: it resolves to %s", host, address)
                raise UnsafeAddress(NOT_PUBLIC)
        return list(dict.fromkeys(found))


def _answer(host: str, answer: str) -> IPAddress:
    try:
        return ipaddress.ip_address(answer)
    except ValueError:
        log.warning("outbound host %r refused: it resolves to %r", host, answer)
        raise UnsafeAddress(NOT_PUBLIC) from None
