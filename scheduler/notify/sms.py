"""Text messages through an SMS provider: the adapter interface and the HTTP adapter.

An adapter is a :class:`SmsProvider`: one method, :meth:`SmsProvider.send`, which hands
one message to the provider and returns the provider's id for it, or raises
:class:`SmsFailure` (``permanent`` when trying again cannot help). The
:class:`HttpSmsProvider` posts ``{"id", "to", "text"}`` as JSON to ``[notify.sms] url``,
signed like the webhooks (``webhook-id``, ``webhook-timestamp`` and ``webhook-signature:
v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``, keyed with the shared secret's
UTF-8 bytes). ``id`` is the same on every attempt of one notification: a provider
that keeps the ids it accepted sends each message once, however often it is posted.

An adapter for another provider (Aliyun's or Tencent Cloud's SMS API) subclasses
:class:`HttpSmsProvider` and overrides :meth:`~HttpSmsProvider.payload` and
:meth:`~HttpSmsProvider.signed` (and :meth:`~HttpSmsProvider.accepted` for its
answer), or implements :meth:`SmsProvider.send` outright.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import orjson

from casework.scheduler.webhooks.delivery import WebhookFailure, post
from casework.workflow.errors import ConfigError
from casework.workflow.notify.settings import SmsSettings
from casework.workflow.webhooks.settings import WebhookSettings
from casework.workflow.webhooks.signing import sign, signed_headers, verify_key

_STATUS = re.compile(r"HTTP (\d{3})")


class SmsFailure(Exception):
    """The provider did not take a message; ``permanent`` if another try cannot help."""

    def __init__(self, text: str, *, permanent: bool = False) -> None:
        super().__init__(text)
        self.text = text
        self.permanent = permanent


class SmsProvider:
    """A text-message provider: subclass it and implement :meth:`send`."""

    def send(self, to: str, text: str, message_id: str, now: datetime) -> str:
        """Give the provider ``text`` for the number ``to``; its id for the message.

        ``message_id`` is the same on every attempt of one notification (let the
        provider drop a repeat); ``now`` is the engine's clock. Raises
        :class:`SmsFailure`."""
        raise NotImplementedError


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value of one request: ``v1,<base64 HMAC-SHA256>``."""
    return sign(secret.encode("utf-8"), msg_id, timestamp, body)


def verify(secret: str, given: Mapping[str, str], body: bytes, now: int) -> bool:
    """Whether ``given`` headers sign ``body`` with ``secret`` within the tolerance (what
    a provider's receiving end checks)."""
    return verify_key(secret.encode("utf-8"), given, body, now)


class HttpSmsProvider(SmsProvider):
    """The HTTP adapter: a signed JSON ``POST`` to the configured URL (2xx: taken)."""

    def __init__(self, settings: SmsSettings) -> None:
        if settings.url is None or settings.secret is None:
            raise ConfigError("text messages need [notify.sms] url and secret (or secret_env)")
        self.url = settings.url
        self.secret = settings.secret
        self.timeout_s = settings.timeout_s
        host = urlsplit(self.url).hostname or ""
        # the operator named this address: a loopback or private one is meant
        self._targets = WebhookSettings(allowed_hosts=(host,), timeout_s=self.timeout_s)

    def payload(self, to: str, text: str, message_id: str) -> dict[str, Any]:
        """The JSON body of one message."""
        return {"id": message_id, "to": to, "text": text}

    def signed(self, body: bytes, message_id: str, now: datetime) -> dict[str, str]:
        """The headers that authenticate ``body``."""
        return signed_headers(self.secret.encode("utf-8"), message_id, int(now.timestamp()), body)

    def accepted(self, status: int, message_id: str) -> str:
        """The provider's id of a message it took with ``status``."""
        return message_id

    def send(self, to: str, text: str, message_id: str, now: datetime) -> str:
        """Post one message (see the module)."""
        body = orjson.dumps(self.payload(to, text, message_id))
        try:
            status = post(
                self.url, body, self.signed(body, message_id, now), self.timeout_s, self._targets
            )
        except WebhookFailure as err:
            found = _STATUS.match(err.text)
            code = int(found.group(1)) if found else 0
            permanent = 400 <= code < 500 and code not in (408, 425, 429)
            raise SmsFailure(err.text, permanent=permanent or err.permanent) from None
        return self.accepted(status, message_id)
