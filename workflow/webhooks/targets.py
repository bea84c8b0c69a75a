"""Where a webhook may go: public addresses, or hosts ``[webhooks] allowed_hosts`` names.

A subscription to a loopback, private, link-local (169.254.169.254, the cloud metadata
service, among them), shared, reserved or multicast address, IPv4 or IPv6, is refused
unless ``allowed_hosts`` names its host or a network holding its addresses. Names are
resolved and every address they resolve to is checked: at subscription, and again at
each delivery, which then connects to the very address it checked (a name that later
resolves elsewhere, DNS rebinding, gains nothing).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence

from casework.workflow.webhooks.settings import WebhookSettings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


_EMBEDDING = tuple(
    ipaddress.IPv6Network(n) for n in ("::/96", "::ffff:0:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48")
)
"""IPv6 ranges whose last 32 bits are an IPv4 address (IPv4-compatible, IPv4-translated,
NAT64 and local-use NAT64)."""


def internal(address: Address) -> bool:
    """Whether ``address`` is no public unicast address (an IPv4 address inside an IPv6
    one, mapped, IPv4-compatible, translated, NAT64 or 6to4, judged as that IPv4 address
    too; IPv6 site-local addresses are internal)."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = address.ipv4_mapped or address.sixtofour
        if inner is None and any(address in network for network in _EMBEDDING):
            inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if inner is not None and internal(inner):
            return True
    site_local = isinstance(address, ipaddress.IPv6Address) and address.is_site_local
    return not address.is_global or address.is_multicast or site_local


def literal(host: str) -> Address | None:
    """``host`` as an IP address if it is one (brackets and a zone index allowed)."""
    try:
        return ipaddress.ip_address(host.strip("[]").partition("%")[0])
    except ValueError:
        return None


def resolve(host: str, port: int) -> list[Address]:
    """Every address ``host`` stands for now; ``OSError`` when it resolves to none."""
    found = literal(host)
    if found is not None:
        return [found]
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0])) for info in infos))
    if not addresses:
        raise OSError(f"{host} resolves to no address")
    return addresses


def refusal(host: str, addresses: Sequence[Address], settings: WebhookSettings) -> str | None:
    """Why ``host`` (resolving to ``addresses``) may not receive webhooks, or ``None``."""
    if settings.names(host):
        return None
    if settings.allowed_hosts:
        if addresses and all(settings.covers(a) for a in addresses):
            return None
        allowed = ", ".join(settings.allowed_hosts)
        return f"host {host} is not in webhooks.allowed_hosts ({allowed})"
    for address in addresses:
        if internal(address):
            return (
                f"host {host} is an internal address ({address}): loopback, private and "
                "link-local targets need webhooks.allowed_hosts to name them"
            )
    return None
