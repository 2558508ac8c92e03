"""The SSRF rule: calsync only calls out to public internet addresses.

Webhook URLs and Web Push endpoints are given by users, so a request to them must never
reach the loopback interface, a private network, a link-local address (cloud metadata
services live at 169.254.169.254) or any other address that is not globally routable.

Two checks, both here:

- :func:`check_url_syntax` when a URL is stored: scheme, no credentials, and a host that is
  not ``localhost`` or a literal non-public IP. It does no I/O.
- :meth:`AddressGuard.resolve` when a request is made: the host is resolved and every
  address must be public; the caller then connects to the checked address itself (see
  :mod:`calsync.notify.webhooks`), so a DNS answer that changes between check and connect
  (DNS rebinding) gains nothing.

``AddressGuard(allow_private=True)`` switches the address rule off. It exists for tests,
which receive webhooks and pushes on 127.0.0.1; no setting turns it on in a deployment.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

__all__ = ["AddressGuard", "UnsafeAddress", "check_url_syntax", "is_public_address"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]
MAX_URL_LENGTH = 2048
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


class UnsafeAddress(ValueError):
    """A URL or the address it resolves to is not allowed (the SSRF rule)."""


def is_public_address(address: IPAddress) -> bool:
    """Whether ``address`` is globally routable unicast (not loopback, private, link-local,
    shared, reserved, documentation or multicast). IPv4-mapped IPv6 is judged as IPv4."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def check_url_syntax(url: str, *, schemes: Sequence[str] = ("https",)) -> str:
    """Return ``url`` if it may be stored as a callback address.

    Raises:
        UnsafeAddress: wrong scheme, credentials in the URL, no host, a local host name or
            a literal IP address that is not public. Host names are not resolved here.
    """
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise UnsafeAddress(f"must be a URL of at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise UnsafeAddress(f"is not a valid URL ({err})") from None
    del port
    if parts.scheme not in schemes:
        raise UnsafeAddress(f"must use {' or '.join(schemes)}")
    if parts.username is not None or parts.password is not None:
        raise UnsafeAddress("must not carry a user name or password")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise UnsafeAddress("must name a host")
    if host in _LOCAL_NAMES or host.endswith(".localhost"):
        raise UnsafeAddress("must not point at this machine")
    literal = _literal_address(host)
    if literal is not None and not is_public_address(literal):
        raise UnsafeAddress("must not point at a loopback, private or link-local address")
    return url


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True)
class AddressGuard:
    """Resolves a URL's host and applies the SSRF rule to every address it resolves to.

    ``allow_private`` is for tests only (see the module docstring). ``resolver`` can be
    replaced to test the rule without DNS.
    """

    allow_private: bool = False
    resolver: Resolver = field(default=_system_resolver)

    def resolve(self, url: str) -> str:
        """The address to connect to for ``url``: the first that the rule allows.

        Raises:
            UnsafeAddress: the URL is malformed, does not resolve, or resolves to any
                address that is not public (one bad address is enough: a name that points
                both outside and inside is refused).
        """
        if not self.allow_private:
            check_url_syntax(url)
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http"):
            raise UnsafeAddress("must use https")
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        literal = _literal_address(host)
        if literal is not None:
            addresses = [str(literal)]
        else:
            try:
                addresses = list(self.resolver(host, port))
            except OSError as err:
                raise UnsafeAddress(f"the host {host!r} does not resolve ({err})") from None
        if not addresses:
            raise UnsafeAddress(f"the host {host!r} does not resolve")
        if not self.allow_private:
            for address in addresses:
                if not is_public_address(ipaddress.ip_address(address.split("%")[0])):
                    raise UnsafeAddress(
                        f"the host {host!r} resolves to a non-public address ({address})"
                    )
        return addresses[0]
