"""``casework outbox``: the escalation mails, their attempts and errors; re-queue a dead one."""

from __future__ import annotations

import click

from casework.storage.outbox_store import STATUSES
from casework.workflow.cli.support import (
    WHOLE,
    CaseworkSubgroup,
    database_options,
    display_zone,
    emit_json,
    engine_for,
    handle_errors,
    json_option,
    table,
    zoned,
)
from casework.workflow.display.times import local_text
from casework.workflow.errors import InvalidInput
from casework.workflow.outbox.mail import RETRYABLE, Outbox
from casework.workflow.webhooks.queue import answer_text

MAIL_KINDS = ("warning", "escalation", "report")


@click.group("outbox", cls=CaseworkSubgroup, invoke_without_command=True)
@click.option(
    "--status", type=click.Choice(STATUSES), default=None, help="Only mails of this status."
)
@click.option("--limit", type=WHOLE, default=None, help="At most this many mails.")
@click.option("--case", "case_id", default=None, help="Only the mails of this case.")
@click.option(
    "--kind",
    type=click.Choice(MAIL_KINDS),
    default=None,
    help="Only warnings, escalations or daily reports.",
)
@database_options
@json_option
@click.pass_context
@handle_errors
def outbox_group(
    ctx: click.Context,
    status: str | None,
    limit: int | None,
    case_id: str | None,
    kind: str | None,
    db_url: str | None,
    config_path: str | None,
    as_json: bool,
) -> None:
    """List the escalation mails and daily reports: status, kind, case (``-`` for a
    report), the address each goes to, attempts, next attempt or sent time, last error;
    then how many have each status.

    Statuses: pending (waiting for its next attempt), held (quiet hours), sending
    (claimed by a deliverer), sent, dead (a dead letter; `casework outbox retry ID`).
    """
    if ctx.invoked_subcommand is not None:
        return
    with engine_for(db_url, config_path) as engine:
        outbox = Outbox(engine.context)
        if case_id is not None:
            case_id = engine.resolve(case_id)
        mails = outbox.list(status=status, limit=limit, case_id=case_id, kind=kind)
        counts = outbox.counts()
        mail = engine.settings.mail
        zone = display_zone(engine)
    if as_json:
        emit_json({"mails": [m.as_json() for m in mails], "counts": counts})
        return

    def to(recipient: str) -> str:
        address = recipient if "@" in recipient else mail.agent_address(recipient)
        return address or f"{recipient} (no address)"

    table(
        (
            "id",
            "status",
            "kind",
            "level",
            "case",
            "to",
            "attempts",
            zoned("next/sent", zone),
            "last error",
        ),
        [
            (
                str(m.id),
                m.status,
                m.kind,
                str(m.level),
                m.case_id or "-",
                ", ".join(to(r) for r in m.recipients),
                str(m.attempts),
                local_text(m.sent_at or m.next_attempt_at, zone.zone),
                answer_text(m.last_error, 80),
            )
            for m in mails
        ],
    )
    click.echo("  ".join(f"{name} {count}" for name, count in counts.items() if count) or "empty")


@outbox_group.command("retry")
@click.argument("mail_id", type=WHOLE, required=False)
@click.option("--all", "every", is_flag=True, help="Every mail of --status, not one.")
@click.option(
    "--status",
    type=click.Choice(RETRYABLE),
    default="dead",
    show_default=True,
    help="With --all: dead letters, or pending mails waiting out a backoff.",
)
@database_options
@json_option
@handle_errors
def retry_command(
    mail_id: int | None,
    every: bool,
    status: str,
    db_url: str | None,
    config_path: str | None,
    as_json: bool,
) -> None:
    """Queue the dead letter MAIL_ID again, due at once with its attempts counted afresh;
    with --all, every dead letter (or every pending mail, --status pending).
    """
    if (mail_id is None) == (not every):
        raise InvalidInput("name one mail (MAIL_ID) or --all, not both", field="mail_id")
    with engine_for(db_url, config_path) as engine:
        outbox = Outbox(engine.context)
        if mail_id is None:
            count = outbox.retry_all(status)
            if as_json:
                emit_json({"queued": count, "status": status})
            else:
                click.echo(f"{count} {status} mail(s) queued again")
            return
        mail = outbox.retry(mail_id)
    if as_json:
        emit_json(mail.as_json())
    else:
        click.echo(f"mail {mail.id} queued again (was dead: {answer_text(mail.last_error)})")
