"""Who is at the other end of a request: the client's address and scheme, honouring
`settings.trusted_proxy`.

Headers that name the client (`Fly-Client-IP`, `X-Forwarded-For`, `X-Forwarded-Proto`) are
written by whoever sends the request, so they are believed only when a proxy that overwrites
them is configured: with `trusted_proxy="fly"`, Fly's proxy sets `Fly-Client-IP` and
`X-Forwarded-Proto` (https://fly.io/docs/networking/request-headers/). Without it, the address
is the socket's peer and the scheme the connection's own. `X-Forwarded-For` is never read:
Fly appends to whatever the client sent, so only its last entry would be Fly's, and
`Fly-Client-IP` already is that entry.
"""

from __future__ import annotations

import ipaddress
from typing import Final

from aiohttp import web

from bot.appkeys import settings_key

FLY_CLIENT_IP: Final = "Fly-Client-IP"
UNKNOWN: Final = "unknown"
# An IPv6 subscriber is usually handed a whole /64 (or more): a limit keyed on single IPv6
# addresses would give one attacker 2**64 budgets.
IPV6_PREFIX: Final = 64


def _behind_fly(request: web.Request) -> bool:
    return request.app[settings_key].trusted_proxy == "fly"


def _address(value: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """`value` as an IP address (an IPv4-mapped IPv6 one as IPv4); None when it is not one."""
    if not value:
        return None
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_ip(request: web.Request) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The client's IP address (see `client_address`); None when the transport has none."""
    if _behind_fly(request):
        # A missing or malformed header (a request that did not come through Fly's edge, such
        # as its own health checks) falls back to the peer, which is then Fly's proxy.
        forwarded = _address(request.headers.get(FLY_CLIENT_IP))
        if forwarded is not None:
            return forwarded
    return _address(request.remote)


def client_address(request: web.Request) -> str:
    """The client's IP address as text: `Fly-Client-IP` when `trusted_proxy="fly"`, else the
    socket's peer (`request.remote`); "unknown" when neither names an IP address."""
    address = client_ip(request)
    return str(address) if address is not None else UNKNOWN


def client_network(request: web.Request) -> str:
    """What a per-client limit is keyed on: the IPv4 address, or the /64 of an IPv6 one."""
    address = client_ip(request)
    if address is None:
        return UNKNOWN
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False))
    return str(address)


def is_https(request: web.Request) -> bool:
    """HTTPS, directly or, with `trusted_proxy="fly"`, at Fly's TLS-terminating edge (it sets
    `X-Forwarded-Proto`). Without a trusted proxy the header is ignored."""
    if request.secure:
        return True
    if not _behind_fly(request):
        return False
    # The last entry is the one the nearest proxy (Fly's) wrote, should it append.
    forwarded = request.headers.get("X-Forwarded-Proto", "")
    return forwarded.split(",")[-1].strip().lower() == "https"


def from_loopback(request: web.Request) -> bool:
    """The client is this machine: a loopback address (never true behind Fly, whose
    `Fly-Client-IP` is the remote client's)."""
    address = client_ip(request)
    return address is not None and address.is_loopback
