"""``casework outbox``: the escalation mails, their attempts and errors; re-queue a dead one."""

from __future__ import annotations

import click

from storage import iso
from storage.outbox_store import STATUSES
from workflow.cli_support import (
    database_options,
    emit_json,
    engine_for,
    handle_errors,
    json_option,
    table,
)
from workflow.outbox import Outbox


@click.group("outbox", invoke_without_command=True)
@click.option(
    "--status", type=click.Choice(STATUSES), default=None, help="Only mails of this status."
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many mails.")
@database_options
@json_option
@click.pass_context
@handle_errors
def outbox_group(
    ctx: click.Context,
    status: str | None,
    limit: int | None,
    db_url: str | None,
    config_path: str | None,
    as_json: bool,
) -> None:
    """List the escalation mails: status, attempts, next attempt and last error.

    Statuses: pending (waiting for its next attempt), held (quiet hours), sending
    (claimed by a deliverer), sent, dead (a dead letter; `casework outbox retry ID`).
    """
    if ctx.invoked_subcommand is not None:
        return
    with engine_for(db_url, config_path) as engine:
        mails = Outbox(engine).list(status=status, limit=limit)
    if as_json:
        emit_json({"mails": [m.as_json() for m in mails]})
        return
    table(
        ("id", "status", "kind", "level", "case", "to", "attempts", "next/sent", "last error"),
        [
            (
                str(m.id),
                m.status,
                m.kind,
                str(m.level),
                m.case_id,
                ",".join(m.recipients),
                str(m.attempts),
                iso(m.sent_at or m.next_attempt_at),
                (m.last_error or "")[:80],
            )
            for m in mails
        ],
    )


@outbox_group.command("retry")
@click.argument("mail_id", type=click.IntRange(min=1))
@database_options
@json_option
@handle_errors
def retry_command(mail_id: int, db_url: str | None, config_path: str | None, as_json: bool) -> None:
    """Queue the dead letter MAIL_ID again, due at once with its attempts counted afresh."""
    with engine_for(db_url, config_path) as engine:
        mail = Outbox(engine).retry(mail_id)
    if as_json:
        emit_json(mail.as_json())
    else:
        click.echo(f"mail {mail.id} queued again (was dead: {mail.last_error})")
