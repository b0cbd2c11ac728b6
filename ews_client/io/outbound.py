"""Where the Exchange clients may connect: every address a connection would go to is checked
against denied ranges after DNS resolution, on every connection, for both HTTP stacks (aiohttp
for EWS and Graph, requests for msal's token requests).

Always refused: unspecified, link-local (cloud metadata at 169.254.169.254), multicast and
reserved addresses. With `deny_private`, also loopback, private (RFC 1918, fc00::/7) and the
shared CGNAT range. IPv4-mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) addresses are
judged by the IPv4 address they carry. A hostname is refused when any of its addresses is, so
that a name cannot mix a denied address in among allowed ones. Literal addresses in a URL are
checked too, in the legacy numeric forms (2852039166, 127.1, 0x7f.1) that getaddrinfo accepts.

Redirects are refused by the transports themselves (ews_client/PROTOCOL_NOTES.md, "Outbound").
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import allowed_gai_family, create_connection

from ews_client.errors import OutboundRefusedError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _nets(*rows: tuple[str, str]) -> tuple[tuple[Network, str], ...]:
    return tuple((ipaddress.ip_network(net), label) for net, label in rows)


# Tried in order: ::1 and :: come before the reserved ::/8 that holds them.
_ALWAYS = _nets(
    ("0.0.0.0/8", "unspecified"),  # "this network": 0.0.0.0 reaches the local host on Linux
    ("169.254.0.0/16", "link-local"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),  # includes the broadcast 255.255.255.255
    ("::/128", "unspecified"),
    ("fe80::/10", "link-local"),
    ("ff00::/8", "multicast"),
)
_PRIVATE = _nets(
    ("127.0.0.0/8", "loopback"),
    ("10.0.0.0/8", "private"),
    ("172.16.0.0/12", "private"),
    ("192.168.0.0/16", "private"),
    ("100.64.0.0/10", "shared (CGNAT)"),
    ("::1/128", "loopback"),
    ("fc00::/7", "private (unique local)"),
    ("fec0::/10", "private (site-local)"),
)
_RESERVED_V6 = _nets(("::/8", "reserved"))  # after ::1 (loopback) and :: (unspecified)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _carried_v4(addr: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped or NAT64 well-known prefix)."""
    if not isinstance(addr, ipaddress.IPv6Address):
        return None
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr in _NAT64:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def _match(addr: Address, table: tuple[tuple[Network, str], ...]) -> str | None:
    for net, label in table:
        if addr.version == net.version and addr in net:
            return f"{label} ({net})"
    return None


def literal_address(host: str) -> Address | None:
    """`host` as an IP address when it is one, in any form getaddrinfo would read as one."""
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if not bare or not bare[0].isdigit():
        return None
    try:  # the legacy IPv4 forms: 2852039166, 127.1, 0x7f.0.0.1, 0251.0376.0251.0376
        return ipaddress.IPv4Address(socket.inet_aton(bare))
    except OSError:
        return None


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """Which addresses the clients may connect to (see the module docstring)."""

    deny_private: bool = False

    def refusal(self, address: str) -> str | None:
        """Why `address` (an IP address as text) is refused, or None when it is allowed."""
        addr = ipaddress.ip_address(address)
        carried = _carried_v4(addr)
        if carried is not None:
            why = self.refusal(str(carried))
            return f"IPv4-mapped {carried}: {why}" if why else None
        tables = (_ALWAYS, _PRIVATE) if self.deny_private else (_ALWAYS,)
        for table in tables:
            if why := _match(addr, table):
                return why
        return _match(addr, _RESERVED_V6) if not addr.is_loopback else None

    def check(self, host: str, address: str) -> None:
        """Raise OutboundRefusedError (code DeniedAddress) when `address` of `host` is denied."""
        why = self.refusal(address)
        if why is None:
            return
        if host.strip("[]") == address:
            shown = f"{host} is"
        elif literal_address(host) == ipaddress.ip_address(address):
            shown = f"{host} (that is {address}) is"  # 2852039166 and the like
        else:
            shown = f"{host} resolves to {address}, which is"
        raise OutboundRefusedError(
            f"refused by the outbound policy: {shown} {why}", code="DeniedAddress"
        )

    def check_url(self, url: str) -> None:
        """Check a URL whose host is a literal address (aiohttp connects to those without
        asking a resolver); a hostname is checked by the resolver when it is looked up."""
        host = urlsplit(url).hostname or ""
        addr = literal_address(host)
        if addr is not None:
            self.check(host, str(addr))

    def resolver(self) -> PolicyResolver:
        """An aiohttp resolver that checks every address it returns (aiohttp's default inside)."""
        return PolicyResolver(self, aiohttp.DefaultResolver())

    def requests_adapter(self) -> PolicyAdapter:
        """A requests transport adapter whose connections check their addresses."""
        return PolicyAdapter(self)


class PolicyResolver(AbstractResolver):
    """Resolves through `inner`, then refuses the host if any address found is denied."""

    def __init__(self, policy: OutboundPolicy, inner: AbstractResolver) -> None:
        self._policy = policy
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        for result in found:
            self._policy.check(host, result["host"])
        return found

    async def close(self) -> None:
        await self._inner.close()


# -- requests / urllib3 (msal's token requests) --------------------------------------------------
class _CheckedConnection(HTTPConnection):
    """Resolves its host once, checks every address, then connects to a checked address (never
    to the result of a second lookup, which a rebinding DNS server could change)."""

    outbound: ClassVar[OutboundPolicy]

    def _new_conn(self) -> socket.socket:
        host = self.host
        try:
            infos = socket.getaddrinfo(host, self.port, allowed_gai_family(), socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise NameResolutionError(host, self, exc) from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        for address in addresses:
            self.outbound.check(host, address)
        return self._connect_first(addresses)

    def _connect_first(self, addresses: list[str]) -> socket.socket:
        failure: OSError | None = None
        for address in addresses:
            try:
                return create_connection(
                    (address, self.port or 0),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except TimeoutError as exc:
                raise ConnectTimeoutError(self, f"connection to {self.host} timed out") from exc
            except OSError as exc:
                failure = exc
        raise NewConnectionError(self, f"cannot connect to {self.host}: {failure}")


class _CheckedHTTPSConnection(_CheckedConnection, HTTPSConnection):
    """TLS on top: the certificate is still verified against the hostname (`self.host`)."""


@functools.cache
def _pool_classes(policy: OutboundPolicy) -> dict[str, type[HTTPConnectionPool]]:
    # urllib3 passes no per-pool argument through to its connections, so the policy rides on
    # a class made for it (there are only two policies: cached).
    plain = type("CheckedHTTPConnection", (_CheckedConnection,), {"outbound": policy})
    tls = type("CheckedHTTPSConnection", (_CheckedHTTPSConnection,), {"outbound": policy})
    return {
        "http": type("CheckedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": plain}),
        "https": type("CheckedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": tls}),
    }


class PolicyAdapter(HTTPAdapter):
    """requests' adapter with connections that check their addresses (mount on http(s)://)."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self._policy = policy  # before super().__init__, which builds the pool manager
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _pool_classes(self._policy)
