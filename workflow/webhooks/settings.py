"""Webhook settings: the ``[webhooks]`` table of the configuration.

::

    [webhooks]
    allowed_hosts = ["erp.example.com", "10.8.0.0/16"]  # only these hosts or networks
                                          # (default: any public address)
    timeout_s = 10                        # an answer slower than this is a failure
    max_attempts = 8                      # then the delivery is a dead letter
    backoff_s = 30                        # doubled each attempt, with jitter ...
    max_backoff_s = 3600                  # ... up to this
    lease_s = 120                         # a claim older than this is taken over
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from casework.workflow.errors import ConfigError
from casework.workflow.setting_values import positive_number, positive_whole


@dataclass(frozen=True)
class WebhookSettings:
    """How webhook deliveries are sent and retried. Immutable."""

    allowed_hosts: tuple[str, ...] = ()
    timeout_s: float = 10.0
    max_attempts: int = 8
    backoff_s: float = 30.0
    max_backoff_s: float = 3600.0
    lease_s: float = 120.0

    def names(self, host: str) -> bool:
        """Whether ``allowed_hosts`` names ``host`` itself (a name or an address)."""
        return _host(host) in self.allowed_hosts

    def covers(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        """Whether an address or network of ``allowed_hosts`` holds ``address``."""
        return any(address in network for network in _networks(self.allowed_hosts))


def _host(text: str) -> str:
    return text.strip().strip("[]").lower()


def _networks(
    hosts: tuple[str, ...],
) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    networks = []
    for host in hosts:
        try:
            networks.append(ipaddress.ip_network(host, strict=False))
        except ValueError:
            continue  # a host name
    return networks


def _hosts(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(h, str) and h.strip() for h in value):
        raise ConfigError(
            f"{where} must be a list of host names, addresses or networks, got {value!r}"
        )
    return tuple(_host(h) for h in value)


_KEYS: dict[str, Any] = {
    "allowed_hosts": _hosts,
    "timeout_s": lambda v, w: positive_number(v, w, 300.0),
    "max_attempts": lambda v, w: positive_whole(v, w, 100),
    "backoff_s": lambda v, w: positive_number(v, w, 86_400.0),
    "max_backoff_s": lambda v, w: positive_number(v, w, 7 * 86_400.0),
    "lease_s": lambda v, w: positive_number(v, w, 86_400.0),
}


def webhook_settings(body: Any, where: str) -> WebhookSettings:
    """The ``[webhooks]`` table as settings; ``where`` prefixes every error."""
    if not isinstance(body, Mapping):
        raise ConfigError(f"{where}: [webhooks] must be a table")
    settings = WebhookSettings()
    for key, value in body.items():
        parse = _KEYS.get(key)
        if parse is None:
            raise ConfigError(f"{where}: unknown key webhooks.{key}; known: {', '.join(_KEYS)}")
        settings = replace(settings, **{key: parse(value, f"{where}: webhooks.{key}")})
    return settings
