"""Delivering the outbox: claim due mails, send them over SMTP, record each outcome.

One run (:meth:`Deliverer.deliver_due`) claims batches of the mails due when it
started, so each mail is tried at most once per run. Mails are written and sent one
by one over a reused session (``per_connection`` at most); each outcome is stored
once the server has answered: failures at once, acceptances ``flush_every`` (10) at a
time in one transaction. A mail is marked sent only after the server accepted it: a
crash in between leaves it claimed, its lease runs out, and a later run sends it again
with the same ``Message-ID`` (at most ``flush_every`` mails are sent twice). A run
stops sending when half of its lease has passed and gives the rest back, so a slow
server can never let the lease lapse while a mail is still on its way.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from casework.scheduler.engine_api import EngineApi
from casework.scheduler.mail.smtp_transport import SmtpFailure, SmtpSession, SmtpTransport
from casework.scheduler.pauses import Pause
from casework.scheduler.reports import RunReport
from casework.workflow.logs import library_logger
from casework.workflow.mail.render import REPORT_KIND, RenderedMail, Undeliverable
from casework.workflow.outbox.mail import (
    Accepted,
    CaseRecord,
    Claim,
    EventRecord,
    Outbox,
    OutboxMail,
)


@dataclass
class DeliveryReport(RunReport):
    """What one run did: mails sent (in how many messages), retried, dead, held."""

    sent: int = 0
    messages: int = 0
    retried: int = 0
    dead: int = 0
    held: int = 0
    released: int = 0
    errors: list[str] = field(default_factory=list)


def _fell_due(mail: OutboxMail) -> datetime:
    """When the warning or escalation a mail tells of fell due."""
    due = mail.body.get("due_at")
    return datetime.fromisoformat(due) if isinstance(due, str) else mail.created_at


def _groups(
    mails: Sequence[OutboxMail], stale_before: datetime
) -> list[tuple[str, list[OutboxMail]]]:
    """The messages to write, each ``(reason, mails)``: each mail alone (``single``), but
    as one digest the mails released from quiet hours for one recipient list and branch
    (``quiet``), and those that fell due before ``stale_before``, news after downtime,
    for one recipient list (``late``; alone, such a mail is a ``single`` notice). A daily
    report is always ``single``."""
    groups: list[tuple[str, list[OutboxMail]]] = []
    digests: dict[tuple[str, tuple[str, ...], str], list[OutboxMail]] = {}
    for mail in mails:
        if mail.kind == REPORT_KIND:  # a daily report is a mail of its own
            groups.append(("single", [mail]))
            continue
        if mail.held_until is not None:
            key = ("quiet", mail.recipients, str(mail.body.get("branch")))
        elif _fell_due(mail) < stale_before:
            key = ("late", mail.recipients, "")
        else:
            groups.append(("single", [mail]))
            continue
        if key not in digests:
            digests[key] = []
            groups.append((key[0], digests[key]))
        digests[key].append(mail)
    return [("single" if r == "late" and len(g) == 1 else r, g) for r, g in groups]


def _described(err: BaseException) -> str:
    """An unexpected failure as one line: its type and message."""
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


class Deliverer:
    """Sends the outbox of one engine through one SMTP transport."""

    def __init__(
        self,
        engine: EngineApi,
        transport: SmtpTransport | None = None,
        *,
        batch: int = 100,
        flush_every: int = 10,
        outbox: Outbox | None = None,
        logger: Any = None,
    ) -> None:
        self.engine = engine
        self.outbox = outbox or Outbox(engine.context)
        self.transport = transport or SmtpTransport(engine.settings.mail)
        self.batch = batch
        self.flush_every = flush_every
        self._log = logger if logger is not None else library_logger()
        self._pause: Pause | None = None
        """Since the server was found out of reach (:attr:`paused_until`)."""

    def deliver_due(self, due_by: datetime | None = None) -> DeliveryReport:
        """Try every mail due by ``due_by`` (default: now) once; what happened (nothing
        while :attr:`paused_until` is ahead)."""
        now = self.engine.clock.now()
        report = DeliveryReport()
        if self.pause_ends(now) is not None:
            return report
        self._pause = None
        due_by = due_by or now
        token = secrets.token_hex(16)
        while True:
            claim = self.outbox.claim(token, limit=self.batch, due_by=due_by)
            report.held += claim.held
            if not claim.mails:
                if claim.held:
                    continue
                break
            if not self._send(claim, report):
                break
        return report

    def _send(self, claim: Claim, report: DeliveryReport) -> bool:
        """Send one claim's mails; ``False`` to end the run (the lease ran short and the rest
        went back, or no session could be opened: the mails not yet claimed keep their
        turn without an attempt counted)."""
        budget = time.monotonic() + self.outbox.settings.lease_s / 2
        now = self.engine.clock.now()
        groups = _groups(
            claim.mails, now - timedelta(seconds=self.outbox.writer.settings.max_age_s)
        )
        alone = [g[0] for reason, g in groups if reason == "single"]
        histories, current = self.outbox.histories(alone, claim.mails)
        accepted: list[Accepted] = []
        session: SmtpSession | None = None
        try:
            for index, (reason, group) in enumerate(groups):
                if len(accepted) >= self.flush_every:
                    report.sent += self.outbox.sent(accepted, claim.token)
                    accepted.clear()
                if time.monotonic() > budget:
                    rest = [mail for _, g in groups[index:] for mail in g]
                    report.released += self.outbox.release(rest, claim.token)
                    return False
                try:
                    mail = self._write(reason, group, histories, current)
                    message = self.outbox.writer.message(mail, self.engine.clock.now())
                except Undeliverable as err:
                    self._failed(group, claim.token, str(err), True, report)
                    continue
                except Exception as err:  # one bad mail is its own dead letter, never the queue's
                    self._failed(group, claim.token, _described(err), True, report)
                    continue
                if session is None:
                    try:
                        session = self.transport.open()
                    except SmtpFailure as err:  # the server is out of reach: end the run
                        rest = [m for _, g in groups[index:] for m in g]
                        self._failed(rest, claim.token, err.text, err.permanent, report)
                        self._pause_from(self.engine.clock.now())
                        return False
                try:
                    refused = session.send(message, mail.to)
                except SmtpFailure as err:
                    self._failed(group, claim.token, err.text, err.permanent, report)
                    if err.broken:
                        session.close()
                        session = None
                    continue
                note = "; ".join(f"refused {a}: {t}" for a, t in refused.items()) or None
                accepted.append(Accepted(tuple(group), mail.message_id, note))
                report.messages += 1
                self._log.info(
                    "mail_sent", message_id=mail.message_id, mails=len(group), to=list(mail.to)
                )
                if session.sent >= self.outbox.writer.settings.per_connection:
                    session.close()
                    session = None
        finally:
            try:
                if accepted:  # may fail with the database: the session closes all the same
                    report.sent += self.outbox.sent(accepted, claim.token)
            finally:
                if session is not None:
                    session.close()
        return True

    @property
    def paused_until(self) -> datetime | None:
        """Set when the server was out of reach: until then a run claims nothing (the
        mails written meanwhile wait no longer than a mail that failed once), so an
        outage costs one attempt a pause, not a claim and a render of each new mail."""
        return None if self._pause is None else self._pause.ends

    def pause_ends(self, now: datetime) -> datetime | None:
        """When the pause that holds at ``now`` ends; ``None`` if none does (a clock set
        back before the pause began ends it too)."""
        return None if self._pause is None else self._pause.until(now)

    def _pause_from(self, now: datetime) -> None:
        """Claim nothing for as long as a mail waits after its first failure."""
        self._pause = Pause.first_backoff(now, self.outbox)
        self._log.warning("mail_paused", until=self._pause.ends.isoformat())

    def _write(
        self,
        reason: str,
        group: Sequence[OutboxMail],
        histories: Mapping[int, Sequence[EventRecord]],
        current: Mapping[str, CaseRecord],
    ) -> RenderedMail:
        writer = self.outbox.writer
        if reason != "single":
            return writer.digest(group, current, reason)
        mail = group[0]
        if mail.kind == REPORT_KIND or mail.case_id is None:
            return writer.report(mail)
        return writer.notice(mail, histories[mail.id], current.get(mail.case_id))

    def _failed(
        self,
        group: Sequence[OutboxMail],
        token: str,
        error: str,
        permanent: bool,
        report: DeliveryReport,
    ) -> None:
        retried, dead = self.outbox.failed(group, token, error, permanent=permanent)
        report.retried += retried
        report.dead += dead
        report.errors.append(error)
        self._log.warning(
            "mail_failed",
            mails=[m.id for m in group],
            error=error,
            dead=dead,
            retried=retried,
        )
