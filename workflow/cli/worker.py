"""``casework worker``: the long-running service that enforces SLA deadlines."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import click
import structlog

from casework.scheduler.mail.delivery import Deliverer
from casework.scheduler.worker import Worker
from casework.workflow.cli.support import (
    WHOLE,
    CaseworkCommand,
    database_options,
    engine_for,
    handle_errors,
)


@click.command("worker", cls=CaseworkCommand)
@click.option(
    "--poll",
    "poll_s",
    type=click.FloatRange(min=0.05),
    default=1.0,
    show_default=True,
    help="Seconds between safety polls for deadlines planned by other processes.",
)
@click.option(
    "--batch",
    type=WHOLE,
    default=200,
    show_default=True,
    help="Deadlines fired per transaction.",
)
@click.option(
    "--mail/--no-mail",
    "send_mail",
    default=True,
    show_default=True,
    help="Also deliver the outbox over SMTP (mail.url of the configuration).",
)
@click.option(
    "--webhooks/--no-webhooks",
    "send_hooks",
    default=True,
    show_default=True,
    help="Also deliver webhook deliveries to their subscriptions.",
)
@click.option(
    "--notify/--no-notify",
    "send_notices",
    default=True,
    show_default=True,
    help="Also send the customers' notifications ([notify]: mail and text messages).",
)
@database_options
@handle_errors
def worker_command(
    poll_s: float,
    batch: int,
    send_mail: bool,
    send_hooks: bool,
    send_notices: bool,
    db_url: str | None,
    config_path: str | None,
) -> None:
    """Run the SLA scheduler, mail and webhook delivery until SIGTERM or SIGINT stops them.

    Several workers may run against one database: each deadline fires once and each
    mail or webhook is sent by one of them at a time (claimed with a lease). Every wake
    records a heartbeat, which `casework serve`'s /readyz reads. Log lines (one per
    wake that fired deadlines, with their count, and one per mail sent) go to stderr;
    use --log-level info to see them.
    """
    from casework.scheduler.notify.delivery import NotifyDeliverer
    from casework.scheduler.webhooks.delivery import WebhookDeliverer

    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        structlog.get_logger("casework.worker").info("signal", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with engine_for(db_url, config_path) as engine:
        logger = structlog.get_logger("casework.worker")
        deliverer = Deliverer(engine, logger=logger) if send_mail else None
        hooks = WebhookDeliverer(engine, logger=logger) if send_hooks else None
        notices = NotifyDeliverer(engine, logger=logger) if send_notices else None
        worker = Worker(
            engine,
            poll_s=poll_s,
            batch=batch,
            deliverer=deliverer,
            webhooks=hooks,
            notifications=notices,
            logger=logger,
        )
        worker.start()
        try:
            while not stop.wait(0.5):
                pass
        finally:
            worker.stop()
