"""Outbound HTTP for notices: one POST to a URL a user gave, under the SSRF rule.

Webhooks and Web Push both send through :class:`OutboundHttp`, an httpcore2 connection pool
(the transport under httpx2) whose network backend is the only way it opens a socket:
:class:`GuardedBackend` resolves the host once (:meth:`AddressGuard.addresses`), refuses
the name unless every address is public, and connects to one of exactly those addresses.
The URL keeps its host name, so ``Host``, TLS SNI and certificate verification are for the
name, while the socket goes to the checked address, whatever DNS answers next.

httpcore2 has no redirect logic and reads no proxy settings from the environment, so a
3xx is an answer like any other (never followed) and nothing goes through a proxy. The
response body is never read: only the status matters to a sender.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import httpcore2

from calsync.notify.addresses import AddressGuard

__all__ = ["GuardedBackend", "OutboundHttp", "Poster", "Unreachable"]

_TRANSPORT_ERRORS = (
    httpcore2.TimeoutException,
    httpcore2.NetworkError,
    httpcore2.ProtocolError,
    httpcore2.UnsupportedProtocol,
)


class Unreachable(Exception):
    """The request could not be made or got no HTTP answer (connection refused, TLS
    failure, timeout, a broken response). Its message is safe to show to the URL's owner:
    only checked public addresses are ever connected to."""


class GuardedBackend(httpcore2.NetworkBackend):
    """Opens TCP connections only to addresses the guard allows: the host is resolved
    once, every address is checked, then each is tried in the resolver's order."""

    def __init__(self, guard: AddressGuard) -> None:
        self._guard = guard
        self._sockets = httpcore2.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.NetworkStream:
        """Raises:
        UnsafeAddress: the host or one of its addresses is refused (nothing is opened).
        httpcore2.ConnectError, httpcore2.ConnectTimeout: no checked address answered.
        """
        failure: Exception | None = None
        for address in self._guard.addresses(host, port):
            try:
                return self._sockets.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as err:
                failure = err
        assert failure is not None  # addresses() returns at least one address
        raise failure

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.NetworkStream:
        raise httpcore2.ConnectError("outbound requests never use a Unix socket")


class Poster(Protocol):
    """What a sender needs of :class:`OutboundHttp`: one POST, its status back."""

    def post(self, url: str, *, body: bytes, headers: Mapping[str, str]) -> int: ...


@dataclass(frozen=True)
class OutboundHttp:
    """POSTs to user-given URLs under the SSRF rule.

    ``ssl_context`` says which certificate authorities to trust (the system's by default;
    tests pass one that trusts their own). It is never a way to turn verification off:
    the context must require certificates and check host names.
    """

    guard: AddressGuard
    timeout: float = 10.0
    ssl_context: ssl.SSLContext = field(default_factory=ssl.create_default_context)

    def __post_init__(self) -> None:
        if self.ssl_context.verify_mode != ssl.CERT_REQUIRED or not self.ssl_context.check_hostname:
            raise ValueError("outbound TLS must verify certificates and host names")

    def post(self, url: str, *, body: bytes, headers: Mapping[str, str]) -> int:
        """POST ``body`` to ``url`` once and return the answer's status code.

        Never follows a redirect (a 3xx is returned like any status), never uses a
        proxy, never reads the response body.

        Raises:
            UnsafeAddress: the URL, or an address its host resolves to, is refused by the
                SSRF rule; nothing was sent.
            Unreachable: no connection, a TLS failure, a timeout or a broken answer.
        """
        target = self.guard.check_url(url)
        request_url = httpcore2.URL(
            scheme=target.scheme, host=target.host, port=target.port, target=target.path
        )
        limits = {"connect": self.timeout, "read": self.timeout, "write": self.timeout}
        with httpcore2.ConnectionPool(
            ssl_context=self.ssl_context, network_backend=GuardedBackend(self.guard)
        ) as pool:
            try:
                with pool.stream(
                    "POST",
                    request_url,
                    headers=[("Host", target.authority), *headers.items()],
                    content=body,
                    extensions={"timeout": {**limits, "pool": self.timeout}},
                ) as response:
                    return response.status
            except _TRANSPORT_ERRORS as err:
                raise Unreachable(str(err) or type(err).__name__) from None
