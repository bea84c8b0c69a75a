"""``casework deliver``: send every due outbox mail and webhook delivery once, then exit."""

from __future__ import annotations

from dataclasses import replace

import click
import structlog

from casework.scheduler.mail.delivery import Deliverer
from casework.scheduler.mail.smtp_transport import SmtpTransport
from casework.workflow.cli.support import (
    WHOLE,
    CaseworkCommand,
    database_options,
    emit_json,
    engine_for,
    handle_errors,
    json_option,
)
from casework.workflow.mail.settings import parse_url


@click.command("deliver", cls=CaseworkCommand)
@click.option(
    "--smtp",
    "smtp_url",
    default=None,
    metavar="URL",
    help="smtp://host[:port] or smtps://host[:port] instead of the configured mail.url "
    "(never a password: that comes from $CASEWORK_SMTP_PASSWORD or mail.password_file).",
)
@click.option(
    "--batch",
    type=WHOLE,
    default=100,
    show_default=True,
    help="Mails claimed at a time.",
)
@database_options
@json_option
@handle_errors
def deliver_command(
    smtp_url: str | None, batch: int, db_url: str | None, config_path: str | None, as_json: bool
) -> None:
    """Try every due outbox mail and webhook delivery once, then exit.

    A temporary mail failure (no connection, timeout, a 4xx answer) schedules the mail
    again with exponential backoff; a permanent one (a 5xx answer, no address) makes it
    a dead letter. A webhook delivery succeeds on a 2xx answer and is retried on any
    other. Exit status 0 when everything tried was sent, 1 when some failed.
    """
    from casework.scheduler.notify.delivery import NotifyDeliverer
    from casework.scheduler.webhooks.delivery import WebhookDeliverer

    with engine_for(db_url, config_path) as engine:
        settings = engine.settings.mail
        if smtp_url is not None:
            settings = replace(settings, url=parse_url(smtp_url, "--smtp"))
        logger = structlog.get_logger("casework")  # the command's log lines, ids and errors
        report = Deliverer(
            engine, SmtpTransport(settings), batch=batch, logger=logger
        ).deliver_due()
        hooks = WebhookDeliverer(engine, batch=batch, logger=logger).deliver_due()
        notices = NotifyDeliverer(
            engine, transport=SmtpTransport(settings), batch=batch, logger=logger
        ).deliver_due()
    if as_json:
        emit_json(
            {**report.as_json(), "webhooks": hooks.as_json(), "notifications": notices.as_json()}
        )
    else:
        click.echo(
            f"{report.sent} mail(s) sent in {report.messages} message(s); "
            f"{report.retried} to retry later; {report.dead} dead; "
            f"{report.held} held for quiet hours"
        )
        if hooks.sent or hooks.retried or hooks.dead:
            put_off = f"; {hooks.put_off} put off, out of reach" if hooks.put_off else ""
            click.echo(
                f"{hooks.sent} webhook(s) sent; {hooks.retried} to retry later; "
                f"{hooks.dead} dead{put_off}"
            )
        if notices.sent or notices.retried or notices.dead or notices.held:
            click.echo(
                f"{notices.sent} notification(s) sent; {notices.retried} to retry later; "
                f"{notices.dead} dead; {notices.held} held for quiet hours"
            )
        for error in dict.fromkeys(report.errors + hooks.errors + notices.errors):
            click.echo(f"  failed: {error}", err=True)
    if (
        report.retried
        or report.dead
        or hooks.retried
        or hooks.dead
        or notices.retried
        or notices.dead
    ):
        raise SystemExit(1)
