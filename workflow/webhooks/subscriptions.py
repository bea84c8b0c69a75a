"""Webhook subscriptions: add one (its secret shown once), list them, remove one."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from casework.storage.port import Store
from casework.storage.records import WebhookRecord
from casework.workflow import validation
from casework.workflow.errors import InvalidInput, WebhookNotFound
from casework.workflow.storage_boundary import at_storage_boundary
from casework.workflow.webhooks import targets
from casework.workflow.webhooks.settings import WebhookSettings
from casework.workflow.webhooks.signing import new_secret

MAX_URL_CHARS = 2000


@dataclass(frozen=True)
class Added:
    """A subscription just made and its secret, shown this once."""

    record: WebhookRecord
    secret: str

    def to_json(self) -> dict[str, object]:
        """The subscription with its secret."""
        return {**self.record.to_json(), "secret": self.secret}


def checked_url(url: object, settings: WebhookSettings) -> str:
    """An ``http``/``https`` URL without credentials whose host the settings allow: a
    public address, or one ``allowed_hosts`` names (:mod:`.targets`)."""
    text = validation.text(url, "url", max_chars=MAX_URL_CHARS)
    try:
        parts = urlsplit(text)
        host = parts.hostname
        parts.port  # noqa: B018 - a port out of range raises here
    except ValueError as err:
        raise InvalidInput(f"url: {err}", field="url") from None
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidInput("url must be http:// or https:// with a host", field="url")
    if parts.username or parts.password:
        raise InvalidInput("url must not carry a user name or password", field="url")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = [] if settings.names(host) else targets.resolve(host, port)
    except (OSError, UnicodeError):
        addresses = []  # unknown today: checked again at every delivery
    refused = targets.refusal(host, addresses, settings)
    if refused is not None:
        raise InvalidInput(refused, field="url")
    return text


def checked_events(events: Sequence[str] | str | None) -> tuple[str, ...]:
    """Event names (``case.`` prefix optional) or ``*``; none given means every event."""
    if events is None:
        return ("*",)
    names = events.split(",") if isinstance(events, str) else list(events)
    if not isinstance(names, list) or not names:
        raise InvalidInput("events: give event names or *", field="events")
    cleaned = []
    for name in names:
        value = validation.text(name, "events", max_chars=70).strip().removeprefix("case.")
        if value != "*" and not value.replace("_", "").isalnum():
            raise InvalidInput(f"events: {name!r} is not an event name", field="events")
        cleaned.append(value)
    return ("*",) if "*" in cleaned else tuple(dict.fromkeys(cleaned))


def add(
    store: Store,
    url: object,
    events: Sequence[str] | str | None,
    settings: WebhookSettings,
    now: datetime,
    branch: str | None = None,
) -> Added:
    """Subscribe ``url`` to ``events`` (of ``branch``'s cases only, if given); the secret
    is in the result and in the database."""
    record = WebhookRecord(
        id=secrets.token_hex(4),
        url=checked_url(url, settings),
        events=checked_events(events),
        secret=new_secret(),
        created_at=now,
        branch=None if branch is None else validation.text(branch, "branch", max_chars=200),
    )
    store.webhooks.add(record)
    return Added(record, record.secret)


def remove(store: Store, hook_id: str, now: datetime) -> WebhookRecord:
    """End a subscription: nothing more is queued for it, nor sent."""
    record = store.webhooks.remove(validation.text(hook_id, "id", max_chars=16), now)
    if record is None:
        raise WebhookNotFound(hook_id)
    return record


@at_storage_boundary
def by_id(store: Store, *, removed: bool = False) -> dict[str, WebhookRecord]:
    """The subscriptions by id, the removed ones too if asked."""
    return {h.id: h for h in store.webhooks.subscriptions(removed=removed)}
