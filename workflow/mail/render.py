"""Escalation mails written from Jinja2 templates: subject, plain text and HTML.

Templates live in ``workflow/mail/templates/<language>/`` (``notice`` for one warning
or escalation, ``digest`` for notices held during quiet hours, ``daily`` for the daily
report of returns, exchanges and complaints), each as ``.subject``,
``.txt`` and ``.html``; a ``[mail] templates`` folder of the same layout overrides
them file by file. HTML is autoescaped; undefined names are errors. :meth:`MailWriter.check`
renders every template with sample data so a broken one stops the configuration load.

Case text reaches headers only through :func:`header_text`, which folds every line
break and control character to a space: a summary cannot inject a header.

Mails show labels, never identifiers: the ``label`` filter (``{{ case.state|label("state")
}}``) reads the catalogue of :mod:`casework.workflow.labels` in the mail's language.
Times carry their zone's offset and name (``2026-01-05 17:00 +08:00 Asia/Shanghai``),
never an abbreviation such as CST that means other zones too. With ``[console]
base_url`` set, ``case.link`` is the case's page in the console.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import format_datetime, formataddr, parseaddr
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import jinja2

from casework.machines.definition import MANUAL_ESCALATION
from casework.storage import CaseRecord, EventRecord, iso
from casework.storage.records import OutboxMail
from casework.workflow.durations import spoken
from casework.workflow.errors import ConfigError
from casework.workflow.labels import label, text
from casework.workflow.mail.settings import LANGUAGES, MailSettings, is_address

MAX_SUBJECT = 250
REPORT_KIND = "report"
"""The outbox ``kind`` of a daily report: a mail about no one case, never held or
gathered in a digest."""
_WIRE = compat32.clone(linesep="\r\n")


def _encoded(text: str) -> str | Header:
    """An ASCII header value as is, any other as RFC 2047 encoded words."""
    return text if text.isascii() else Header(text, "utf-8", maxlinelen=76)


class Undeliverable(Exception):
    """A mail that can never be sent as it stands (no address for a recipient)."""


@dataclass(frozen=True)
class RenderedMail:
    """A written mail: addresses, subject, both bodies and its ``Message-ID``."""

    to: tuple[str, ...]
    subject: str
    text: str
    html: str
    message_id: str
    language: str
    keys: tuple[str, ...]


def message_id(keys: Sequence[str], domain: str) -> str:
    """A ``Message-ID`` fixed by the dedupe keys it carries: a resend repeats it."""
    digest = hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:40]
    return f"<{digest}.casework@{domain}>"


def header_text(text: str, limit: int = MAX_SUBJECT) -> str:
    """``text`` on one line: line breaks and control characters become single spaces."""
    cleaned = "".join(c if c.isprintable() else " " for c in text)
    line = " ".join(cleaned.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _notice(
    mail: OutboxMail, case: Mapping[str, Any], history: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    body = mail.body
    processed = datetime.fromisoformat(body["processed_at"])
    target = datetime.fromisoformat(body["target_at"])
    by_hand = body["clock"] == MANUAL_ESCALATION
    event = next((e for e in history if by_hand and e["seq"] == body["cycle"]), None)
    data = event["data"] if event is not None else {}
    return {
        "by_hand": by_hand,
        "reason": body.get("reason") or data.get("reason") or "",
        "by": body.get("actor") or (event["actor"] if event is not None else ""),
        "kind": mail.kind,
        "key": mail.dedupe_key,
        "level": mail.level,
        "level_name": body["level_name"],
        "clock": body["clock"],
        "cycle": body["cycle"],
        "due_at": datetime.fromisoformat(body["due_at"]),
        "target_at": target,
        "processed_at": processed,
        "late": max(processed - target, timedelta(0)),
        "left": max(target - processed, timedelta(0)),
    }


CASE_FIELDS = ("owner", "branch", "category", "channel", "priority", "state", "customer")


def _case(
    mail: OutboxMail, current: CaseRecord | None = None, console: str | None = None
) -> dict[str, Any]:
    """The case a mail speaks of: as it is at sending where it is given, else as the
    mail's body recorded it when the deadline fired."""
    body = mail.body
    case = {name: body.get(name) for name in CASE_FIELDS}
    case["summary"] = body.get("summary", "")
    case["received_at"] = datetime.fromisoformat(body["received_at"])
    if current is not None:
        case.update({name: getattr(current, name) for name in CASE_FIELDS})
        case["summary"] = current.summary
        case["received_at"] = current.received_at
    case["id"] = mail.case_id
    linked = console and mail.case_id is not None
    case["link"] = f"{console}/cases/{quote(mail.case_id or '', safe='')}" if linked else None
    return case


def _report(body: Mapping[str, Any], language: str) -> dict[str, Any]:
    """A daily report's figures as its templates read them: the scope's name (the
    branch, or all branches for headquarters) and the rows, the company's labelled."""
    rows = [
        {**row, "name": text(language, "daily.total") if row["level"] == "company" else row["name"]}
        for row in body["rows"]
    ]
    scope = body.get("branch") or text(language, "daily.hq")
    return {
        **body,
        "scope": scope,
        "rows": rows,
        "generated_at": datetime.fromisoformat(body["generated_at"]),
    }


def sample_report() -> dict[str, Any]:
    """A branch's daily report as the outbox holds it, for checking templates."""
    rows = [
        {"level": "branch", "name": "Guangzhou", "returns": 2, "exchanges": 1, "complaints": 5},
        {"level": "store", "name": "Tianhe", "returns": 2, "exchanges": 1, "complaints": 3},
    ]
    return {
        "report": "daily",
        "date": "2026-01-04",
        "branch": "Guangzhou",
        "zone": "Asia/Shanghai",
        "from": "2026-01-03T16:00:00Z",
        "to": "2026-01-04T16:00:00Z",
        "generated_at": "2026-01-05T02:00:00Z",
        "rows": rows,
        "total": {"returns": 2, "exchanges": 1, "complaints": 5},
    }


def _history(events: Sequence[EventRecord]) -> list[dict[str, Any]]:
    return [
        {
            "seq": e.seq,
            "occurred_at": e.occurred_at,
            "event": e.event,
            "from_state": e.from_state,
            "to_state": e.to_state,
            "actor": e.actor,
            "note": e.data.get("note") if isinstance(e.data, Mapping) else None,
            "data": e.data if isinstance(e.data, Mapping) else {},
        }
        for e in events
    ]


class MailWriter:
    """Writes the mails of one configuration. Safe to share between threads."""

    def __init__(self, settings: MailSettings) -> None:
        self.settings = settings
        self.zone = ZoneInfo(settings.timezone)
        loaders: list[jinja2.BaseLoader] = []
        if settings.templates is not None:
            loaders.append(jinja2.FileSystemLoader(settings.templates))
        loaders.append(jinja2.PackageLoader("casework.workflow.mail", "templates"))
        self._envs = {lang: self._environment(loaders, lang) for lang in LANGUAGES}

    def _environment(self, loaders: list[jinja2.BaseLoader], language: str) -> jinja2.Environment:
        env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html",)),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
        )
        env.filters["duration"] = lambda d: spoken(d, language)
        env.filters["when"] = self._when
        env.filters["label"] = lambda value, kind: label(language, kind, value)
        env.globals["text"] = lambda msgid, **values: text(language, msgid, **values)
        return env

    def _when(self, moment: datetime) -> str:
        """A time in the mails' zone with its offset and the zone's name: never an
        abbreviation (CST is China's, but also Cuba's and the US's central time)."""
        local = moment.astimezone(self.zone)
        if self.zone.key == "UTC":
            return f"{local:%Y-%m-%d %H:%M} UTC"
        offset = local.isoformat()[-6:]
        return f"{local:%Y-%m-%d %H:%M} {offset} {self.zone.key}"

    def _render(self, language: str, kind: str, context: dict[str, Any]) -> tuple[str, str, str]:
        env = self._envs[language]
        subject = header_text(env.get_template(f"{language}/{kind}.subject").render(context))
        context = {**context, "subject": subject}
        text = env.get_template(f"{language}/{kind}.txt").render(context)
        html = env.get_template(f"{language}/{kind}.html").render(context)
        return subject, text, html

    def addresses(self, mail: OutboxMail) -> tuple[str, ...]:
        """The mail addresses of a mail's recipients; :class:`Undeliverable` names one
        without. A warning's recipient is the owner, an agent id mapped by the
        configuration alone; a ladder level's are the configured addresses."""
        found = []
        for recipient in mail.recipients:
            if mail.kind == "warning":
                address = self.settings.agent_address(recipient)
                if address is None:
                    raise Undeliverable(self.settings.agent_problem(recipient) or recipient)
            elif is_address(recipient):
                address = recipient
            else:
                raise Undeliverable(f"ladder recipient {recipient!r} is not a mail address")
            found.append(address)
        return tuple(dict.fromkeys(found))

    def notice(
        self,
        mail: OutboxMail,
        history: Sequence[EventRecord],
        current: CaseRecord | None = None,
    ) -> RenderedMail:
        """The mail of one warning or escalation, with the case's history before it and
        the case as it is now (``current``)."""
        case = _case(mail, current, self.settings.console_url)
        language = self.settings.language_for(case["branch"])
        events = _history(history)
        context = {"case": case, "notice": _notice(mail, case, events), "history": events}
        return self._written(language, "notice", context, mail, (mail.dedupe_key,))

    def digest(
        self,
        mails: Sequence[OutboxMail],
        current: Mapping[str, CaseRecord] | None = None,
        reason: str = "quiet",
    ) -> RenderedMail:
        """One mail for several notices for the same recipients, each case as it is now
        where ``current`` has it; ``reason`` is ``quiet`` (held during quiet hours) or
        ``late`` (fallen due longer ago than ``mail.max_age_s``, after downtime)."""
        notices = []
        for mail in mails:
            found = (current or {}).get(mail.case_id or "")
            case = _case(mail, found, self.settings.console_url)
            notices.append({"case": case, "notice": _notice(mail, case)})
        language = self.settings.language_for(notices[0]["case"]["branch"])
        context = {"notices": notices, "reason": reason}
        keys = tuple(m.dedupe_key for m in mails)
        return self._written(language, "digest", context, mails[0], keys, ("digest", *keys))

    def report(self, mail: OutboxMail) -> RenderedMail:
        """The mail of a daily report (:mod:`casework.workflow.reports.daily`), written from the
        figures its outbox row holds, in the language of its branch's mails."""
        body = mail.body
        language = self.settings.language_for(body.get("branch"))
        context = {"report": _report(body, language)}
        return self._written(language, "daily", context, mail, (mail.dedupe_key,))

    def _written(
        self,
        language: str,
        template: str,
        context: dict[str, Any],
        first: OutboxMail,
        keys: tuple[str, ...],
        id_parts: Sequence[str] | None = None,
    ) -> RenderedMail:
        """The mail ``template`` writes from ``context``, to the recipients of ``first``,
        for the outbox rows ``keys``; its ``Message-ID`` is made of ``id_parts`` (by
        default ``keys``)."""
        subject, text, html = self._render(language, template, context)
        return RenderedMail(
            to=self.addresses(first),
            subject=subject,
            text=text,
            html=html,
            message_id=message_id(id_parts or keys, self.settings.message_id_domain),
            language=language,
            keys=keys,
        )

    def message(self, mail: RenderedMail, now: datetime) -> bytes:
        """The MIME message as sent: text and HTML alternatives in UTF-8, CRLF line ends.

        Header values are our own or pass through :func:`header_text`; non-ASCII ones
        are RFC 2047 encoded. (The ``compat32`` MIME classes build it several times
        faster than :class:`email.message.EmailMessage`, which matters at hundreds of
        mails per second.)
        """
        msg = MIMEMultipart("alternative")
        name, address = parseaddr(self.settings.sender)
        msg["From"] = formataddr((header_text(name), address), charset="utf-8")
        msg["To"] = ", ".join(mail.to)
        msg["Subject"] = _encoded(mail.subject)  # type: ignore[assignment]  # Header is allowed
        msg["Message-ID"] = mail.message_id
        msg["Date"] = format_datetime(now.astimezone(UTC))
        msg["Auto-Submitted"] = "auto-generated"
        msg["Content-Language"] = mail.language
        msg.attach(MIMEText(mail.text, "plain", "utf-8"))
        msg.attach(MIMEText(mail.html, "html", "utf-8"))
        return msg.as_bytes(policy=_WIRE)

    def check(self) -> None:
        """Render every template in every language with sample data; ConfigError on failure."""
        mail = sample_mail()
        case = _case(mail, None, self.settings.console_url or "https://casework.invalid")
        notice = _notice(mail, case)
        by_hand = _notice(sample_mail(MANUAL_ESCALATION), case)
        event = {
            "seq": 1,
            "occurred_at": case["received_at"],
            "event": "open",
            "from_state": None,
            "to_state": "received",
            "actor": "li.na",
            "note": "sample",
            "data": {"note": "sample"},
        }
        contexts: dict[str, dict[str, Any]] = {
            "notice": {"case": case, "notice": notice, "history": [event]},
            "notice-by-hand": {"case": {**case, "link": None}, "notice": by_hand, "history": []},
            "digest": {"notices": [{"case": case, "notice": notice}], "reason": "quiet"},
            "digest-late": {"notices": [{"case": case, "notice": notice}], "reason": "late"},
            "daily": {"report": _report(sample_report(), "en")},
            "daily-hq": {"report": _report({**sample_report(), "branch": None}, "en")},
        }
        for language in LANGUAGES:
            for kind, context in contexts.items():
                try:
                    self._render(language, kind.partition("-")[0], context)
                except jinja2.TemplateError as err:
                    where = getattr(err, "filename", None) or f"{language}/{kind}"
                    line = getattr(err, "lineno", None)
                    at = f"{where}:{line}" if line else where
                    raise ConfigError(f"mail template {at}: {err}") from None


def sample_mail(clock: str = "first_response") -> OutboxMail:
    """An escalation as the outbox holds it, for checking templates."""
    at = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    body = {
        "case_id": "0123456789abcdef",
        "clock": clock,
        "reason": "sample",
        "actor": "li.na",
        "cycle": 1,
        "level": 1,
        "level_name": "store supervisor",
        "due_at": iso(at),
        "target_at": iso(at),
        "processed_at": iso(at + timedelta(minutes=5)),
        "owner": "li.na",
        "branch": "Guangzhou",
        "category": "service_delayed",
        "channel": "phone",
        "priority": "normal",
        "state": "received",
        "customer": "CUST-0001",
        "summary": "The technician did not come.",
        "received_at": iso(at - timedelta(days=1)),
        "version": 1,
    }
    return OutboxMail(
        id=0,
        dedupe_key=f"0123456789abcdef:{clock}:1:1",
        case_id="0123456789abcdef",
        kind="escalation",
        level=1,
        recipients=("supervisor@example.com",),
        body=body,
        status="pending",
        attempts=0,
        next_attempt_at=at,
        last_error=None,
        created_at=at,
        held_until=None,
        sent_at=None,
        message_id=None,
    )
