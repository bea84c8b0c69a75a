"""Delivering the customers' notifications: claim due ones, write each in the
customer's language, send it by mail or text message, record the outcome at once.

The contact is read from the case as it is when the message goes: a customer erased
since (whose pending messages erasure deleted anyway) is never written to. Each
outcome is stored as soon as the server or provider answered, so a worker killed in
between sends at most the one message again, with the same id (``Message-ID`` for
mail, the JSON ``id`` for a provider that keeps the ids it took). A run gives back
what is left when half of its lease has passed.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from typing import Any

from casework.machines.definition import ERASED_FACT
from casework.scheduler.engine_api import EngineApi
from casework.scheduler.mail.smtp_transport import SmtpFailure, SmtpSession, SmtpTransport
from casework.scheduler.notify.sms import HttpSmsProvider, SmsFailure, SmsProvider
from casework.scheduler.reports import RunReport
from casework.workflow.errors import CaseworkError
from casework.workflow.logs import library_logger
from casework.workflow.notify.messages import Message, render
from casework.workflow.notify.queue import reachable
from casework.workflow.outbox.mail import CaseRecord, OutboxMail
from casework.workflow.outbox.notify import NotifyOutbox


@dataclass
class NotifyReport(RunReport):
    """What one run did: notifications sent, retried, dead, held for quiet hours."""

    sent: int = 0
    retried: int = 0
    dead: int = 0
    held: int = 0
    released: int = 0
    errors: list[str] = field(default_factory=list)


def message_id(row: OutboxMail) -> str:
    """The id of a notification: the same on every attempt."""
    return "ntf_" + hashlib.sha256(row.dedupe_key.encode("utf-8")).hexdigest()[:32]


class Undeliverable(Exception):
    """A notification that can never go: no contact the channel reaches any more."""


class NotifyDeliverer:
    """Sends the notifications of one engine (``sms``: the provider adapter; by default
    the HTTP adapter of ``[notify.sms]``, if configured)."""

    def __init__(
        self,
        engine: EngineApi,
        *,
        sms: SmsProvider | None = None,
        transport: SmtpTransport | None = None,
        batch: int = 50,
        logger: Any = None,
    ) -> None:
        self.engine = engine
        self.outbox = NotifyOutbox(engine.context)
        settings = engine.settings.notify.sms
        if sms is None and settings.url is not None and settings.secret is not None:
            sms = HttpSmsProvider(settings)
        self.sms = sms
        self.transport = transport or SmtpTransport(engine.settings.mail)
        self.batch = batch
        self._log = logger if logger is not None else library_logger()

    def deliver_due(self) -> NotifyReport:
        """Try every notification due now once; what happened."""
        due_by = self.engine.clock.now()
        token = secrets.token_hex(16)
        report = NotifyReport()
        while True:
            claim = self.outbox.claim(token, limit=self.batch, due_by=due_by)
            report.held += claim.held
            if not claim.rows:
                if claim.held:
                    continue
                return report
            if not self._send_all(list(claim.rows), token, report):
                return report

    def _send_all(self, rows: list[OutboxMail], token: str, report: NotifyReport) -> bool:
        budget = time.monotonic() + self.outbox.settings.lease_s / 2
        session: SmtpSession | None = None
        try:
            for index, row in enumerate(rows):
                if time.monotonic() > budget:  # give the rest back before the lease lapses
                    report.released += self.outbox.release(rows[index:], token)
                    return False
                session = self._send(row, token, report, session)
        finally:
            if session is not None:
                session.close()
        return True

    def _send(
        self, row: OutboxMail, token: str, report: NotifyReport, session: SmtpSession | None
    ) -> SmtpSession | None:
        msg_id = message_id(row)
        channel = str(row.body.get("channel"))
        try:
            if row.case_id is None:  # a notification is always about one case
                raise Undeliverable("the notification names no case")
            case = self.outbox.case(row.case_id)
            to = self._recipient(case, channel)
            message = self._message(row, row.case_id)
            if channel == "email":
                session = session or self.transport.open()
                session.send(self._mail(message, to, msg_id, str(row.body.get("lang"))), (to,))
                note = None
            else:
                if self.sms is None:
                    raise SmsFailure("no SMS provider: set [notify.sms] url and secret")
                note = self.sms.send(to, message.text, msg_id, self.engine.clock.now())
        except (Undeliverable, SmsFailure, SmtpFailure, CaseworkError) as err:
            permanent = isinstance(err, Undeliverable) or bool(getattr(err, "permanent", False))
            if isinstance(err, SmtpFailure) and err.broken and session is not None:
                session.close()
                session = None
            self._failed(row, token, str(err), permanent, report)
            return session
        report.sent += self.outbox.sent(row, token, msg_id, note if note != msg_id else None)
        self._log.info("notification_sent", notification=row.id, channel=channel, id=msg_id)
        return session

    def _recipient(self, case: CaseRecord | None, channel: str) -> str:
        if case is None or case.facts.get(ERASED_FACT):
            raise Undeliverable("the customer's data was erased")
        if not reachable(case.contact, channel) or case.contact is None:
            raise Undeliverable(f"the case has no contact a {channel} message reaches")
        return case.contact.strip()

    def _message(self, row: OutboxMail, case_id: str) -> Message:
        body = row.body
        template = str(body.get("template"))
        lang = str(body.get("lang"))
        branch = body.get("branch")
        zone = self.engine.settings.notify.zone(branch if isinstance(branch, str) else None)
        link = None
        if template == "resolved" and self._links():
            from casework.workflow.survey.service import link as survey_link

            link = survey_link(self.engine.context, case_id)
        values = body.get("values")
        return render(
            template, lang, case_id, values if isinstance(values, dict) else {}, zone, link
        )

    def _links(self) -> bool:
        settings = self.engine.settings
        return settings.console_base_url is not None and bool(settings.notify.survey_secrets)

    def _mail(self, message: Message, to: str, msg_id: str, lang: str) -> bytes:
        mail = EmailMessage(policy=SMTP)
        mail["From"] = self.engine.settings.mail.sender
        mail["To"] = to
        mail["Subject"] = message.subject
        domain = self.engine.settings.mail.message_id_domain or "casework.invalid"
        mail["Message-ID"] = f"<{msg_id}@{domain}>"
        mail["Date"] = format_datetime(self.engine.clock.now())
        mail["Auto-Submitted"] = "auto-generated"
        mail["Content-Language"] = lang
        mail.set_content(message.text)
        return mail.as_bytes()

    def _failed(
        self, row: OutboxMail, token: str, error: str, permanent: bool, report: NotifyReport
    ) -> None:
        retried, dead = self.outbox.failed(row, token, error, permanent=permanent)
        report.retried += retried
        report.dead += dead
        report.errors.append(error)
        self._log.warning(
            "notification_failed", notification=row.id, error=error, dead=dead, retried=retried
        )
