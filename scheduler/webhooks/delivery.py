"""Delivering webhooks: claim due deliveries, ``POST`` each signed, record the answer.

A delivery is marked sent only after its receiver answered 2xx; any other answer, a
timeout or a refused connection retries it with backoff until its attempts run out,
then it is a dead letter carrying the last answer. A crash between the answer and the
record leaves the delivery claimed; its lease runs out and a later run sends it again
with the same ``webhook-id``, so receivers that remember ids see each event once.
Redirects are not followed (a 3xx is a failure): a subscription names its final URL.
"""

from __future__ import annotations

import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from casework.storage.records import OutboxMail, WebhookRecord
from casework.workflow import Engine
from casework.workflow.logs import library_logger
from casework.workflow.mail.outbox import Accepted, Outbox
from casework.workflow.webhooks.signing import headers

USER_AGENT = "casework-webhooks/1"
ANSWER_CHARS = 300
"""How much of a receiver's answer a failed delivery keeps."""


@dataclass
class WebhookReport:
    """What one run did."""

    sent: int = 0
    retried: int = 0
    dead: int = 0
    errors: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return {
            "sent": self.sent,
            "retried": self.retried,
            "dead": self.dead,
            "errors": self.errors[:20],
        }


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_: Any, **__: Any) -> None:
        return None


class WebhookFailure(Exception):
    """A receiver did not take a delivery; ``permanent`` when retrying cannot help."""

    def __init__(self, text: str, *, permanent: bool = False) -> None:
        super().__init__(text)
        self.text = text
        self.permanent = permanent


def post(url: str, body: bytes, signed: dict[str, str], timeout_s: float) -> int:
    """``POST`` one delivery; the status of a 2xx answer, else :class:`WebhookFailure`."""
    request = urllib.request.Request(url, data=body, method="POST")  # noqa: S310 - http(s) only, checked at subscription
    request.add_header("Content-Type", "application/json")
    request.add_header("User-Agent", USER_AGENT)
    for name, value in signed.items():
        request.add_header(name, value)
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout_s) as answer:
            status = int(answer.status)
    except urllib.error.HTTPError as err:
        text = " ".join(err.read(ANSWER_CHARS).decode("utf-8", "replace").split())
        raise WebhookFailure(f"HTTP {err.code}" + (f": {text}" if text else "")) from None
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        raise WebhookFailure(f"{type(err).__name__}: {reason}") from None
    if not 200 <= status < 300:
        raise WebhookFailure(f"HTTP {status}")
    return status


class WebhookDeliverer:
    """Sends the webhook deliveries of one engine's outbox."""

    def __init__(self, engine: Engine, *, batch: int = 50, logger: Any = None) -> None:
        self.engine = engine
        self.outbox = Outbox(engine, kind="webhook")
        self.settings = engine.settings.webhooks
        self.batch = batch
        self._log = logger if logger is not None else library_logger()

    def deliver_due(self, due_by: datetime | None = None) -> WebhookReport:
        """Try every delivery due by ``due_by`` (default: now) once; what happened."""
        due_by = due_by or self.engine.clock.now()
        token = secrets.token_hex(16)
        report = WebhookReport()
        while True:
            claim = self.outbox.claim(token, limit=self.batch, due_by=due_by)
            if not claim.mails:
                return report
            hooks = {h.id: h for h in self.engine.store.webhooks(removed=True)}
            budget = time.monotonic() + self.settings.lease_s / 2
            for index, row in enumerate(claim.mails):
                if time.monotonic() > budget:  # give the rest back before the lease lapses
                    self.outbox.release(claim.mails[index:], token)
                    return report
                self._send(row, hooks.get(str(row.body.get("webhook"))), token, report)

    def _send(
        self, row: OutboxMail, hook: WebhookRecord | None, token: str, report: WebhookReport
    ) -> None:
        msg_id = str(row.body["message_id"])
        try:
            if hook is None or hook.removed_at is not None:
                raise WebhookFailure("the subscription was removed", permanent=True)
            body = orjson.dumps(row.body["payload"])
            stamp = int(self.engine.clock.now().timestamp())
            status = post(
                hook.url, body, headers(hook.secret, msg_id, stamp, body), self.settings.timeout_s
            )
        except WebhookFailure as err:
            retried, dead = self.outbox.failed([row], token, err.text, permanent=err.permanent)
            report.retried += retried
            report.dead += dead
            report.errors.append(err.text)
            self._log.warning(
                "webhook_failed", delivery=row.id, webhook_id=msg_id, error=err.text, dead=dead
            )
            return
        report.sent += self.outbox.sent([Accepted((row,), msg_id, f"HTTP {status}")], token)
        self._log.info("webhook_sent", delivery=row.id, webhook_id=msg_id, status=status)
