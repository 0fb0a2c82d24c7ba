"""Which address a request came from, given the proxies the studio trusts.

``X-Forwarded-For`` is a header any client can write, so it is read only when the
connection comes from a proxy listed in ``PROMPTLAB_STUDIO_TRUSTED_PROXIES``
(addresses or networks, e.g. ``127.0.0.1,10.0.0.0/8``). The login slow-down counts
per address; it must be the client's, not one an attacker picked.
"""

from __future__ import annotations

import ipaddress
from typing import Iterable, Optional, Tuple, Union

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


def parse_networks(items: Iterable[str]) -> Tuple[Network, ...]:
    """Networks from addresses or CIDRs; ValueError naming a bad one."""
    out = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        try:
            out.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or network") from None
    return tuple(out)


def _ip(text: str) -> Optional[Union[ipaddress.IPv4Address, ipaddress.IPv6Address]]:
    try:
        return ipaddress.ip_address(text.strip().split("%", 1)[0])
    except ValueError:
        return None


def _trusted(address: str, proxies: Tuple[Network, ...]) -> bool:
    ip = _ip(address)
    return ip is not None and any(ip in net for net in proxies)


def client_address(peer: str, forwarded_for: str, proxies: Tuple[Network, ...]
                   ) -> Tuple[str, bool]:
    """The client's address and whether it is *shared* (it may stand for many people:
    a loopback address, or a trusted proxy that named no client).

    From a trusted proxy, the client is the rightmost ``X-Forwarded-For`` entry that
    is not itself a trusted proxy (entries to its left were written by the client)."""
    address = peer
    if forwarded_for and _trusted(peer, proxies):
        for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
            if _ip(hop) is None:
                break  # garbage: keep the last address we can vouch for
            address = hop
            if not _trusted(hop, proxies):
                break
    ip = _ip(address)
    shared = ip is None or ip.is_loopback or _trusted(address, proxies)
    return address, shared
