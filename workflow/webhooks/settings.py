"""Webhook settings: the ``[webhooks]`` table of the configuration.

::

    [webhooks]
    allowed_hosts = ["erp.example.com"]   # only these hosts may be subscribed (default: any)
    timeout_s = 10                        # an answer slower than this is a failure
    max_attempts = 8                      # then the delivery is a dead letter
    backoff_s = 30                        # doubled each attempt, with jitter ...
    max_backoff_s = 3600                  # ... up to this
    lease_s = 120                         # a claim older than this is taken over
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from casework.workflow.errors import ConfigError
from casework.workflow.mail.settings import positive_number, positive_whole


@dataclass(frozen=True)
class WebhookSettings:
    """How webhook deliveries are sent and retried. Immutable."""

    allowed_hosts: tuple[str, ...] = ()
    timeout_s: float = 10.0
    max_attempts: int = 8
    backoff_s: float = 30.0
    max_backoff_s: float = 3600.0
    lease_s: float = 120.0

    def allows(self, host: str) -> bool:
        """Whether a subscription may send to ``host``."""
        return not self.allowed_hosts or host.lower() in self.allowed_hosts


def _hosts(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(h, str) and h for h in value):
        raise ConfigError(f"{where} must be a list of host names, got {value!r}")
    return tuple(h.lower() for h in value)


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
