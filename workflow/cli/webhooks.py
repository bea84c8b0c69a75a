"""``casework webhooks``: subscriptions (add, list, remove) and their deliveries (list, retry)."""

from __future__ import annotations

import click

from casework.storage.outbox_store import STATUSES
from casework.storage.records import WEBHOOK_KIND
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
from casework.workflow.outbox.mail import Outbox
from casework.workflow.webhooks.queue import answer_text, delivery_json
from casework.workflow.webhooks.subscriptions import add, remove


@click.group("webhooks", cls=CaseworkSubgroup)
def webhooks_group() -> None:
    """Webhooks: every recorded event POSTed, signed, to the subscribed URLs.

    Deliveries join the outbox in the event's own transaction; `casework deliver` and
    the worker send them (Standard Webhooks headers webhook-id, webhook-timestamp,
    webhook-signature), retry them with backoff, and dead-letter them at last.
    """


@webhooks_group.command("add")
@click.option("--url", required=True, help="Where to POST (http:// or https://).")
@click.option(
    "--events",
    default="*",
    show_default=True,
    help="Comma-separated event names (apologise,resolve,...), or * for every event.",
)
@database_options
@json_option
@handle_errors
def add_command(
    url: str, events: str, db_url: str | None, config_path: str | None, as_json: bool
) -> None:
    """Subscribe URL and print its signing secret (whsec_...), this once."""
    with engine_for(db_url, config_path) as engine:
        added = add(engine.context.store, url, events, engine.settings.webhooks, engine.clock.now())
    if as_json:
        emit_json(added.to_json())
        return
    click.echo(added.secret)
    click.echo(
        f"webhook {added.record.id} -> {added.record.url} ({','.join(added.record.events)}): "
        "keep the secret now; receivers check webhook-signature with it",
        err=True,
    )


@webhooks_group.command("list")
@click.option("--removed", is_flag=True, help="The removed subscriptions too.")
@database_options
@json_option
@handle_errors
def list_command(removed: bool, db_url: str | None, config_path: str | None, as_json: bool) -> None:
    """The subscriptions: id, URL, events, made (and removed) when."""
    with engine_for(db_url, config_path) as engine:
        hooks = engine.context.store.webhooks.subscriptions(removed=removed)
        zone = display_zone(engine)
    if as_json:
        emit_json([h.to_json() for h in hooks])
        return
    table(
        ("id", "url", "events", zoned("created", zone), "removed"),
        [
            (
                h.id,
                h.url,
                ",".join(h.events),
                local_text(h.created_at, zone.zone),
                "-" if h.removed_at is None else local_text(h.removed_at, zone.zone),
            )
            for h in hooks
        ],
    )


@webhooks_group.command("remove")
@click.argument("hook_id")
@database_options
@json_option
@handle_errors
def remove_command(
    hook_id: str, db_url: str | None, config_path: str | None, as_json: bool
) -> None:
    """End the subscription HOOK_ID: nothing more is queued or sent to it."""
    with engine_for(db_url, config_path) as engine:
        record = remove(engine.context.store, hook_id, engine.clock.now())
    if as_json:
        emit_json(record.to_json())
    else:
        click.echo(f"webhook {record.id} ({record.url}) removed")


@webhooks_group.command("deliveries")
@click.option("--status", type=click.Choice(STATUSES), default=None, help="Only this status.")
@click.option("--limit", type=WHOLE, default=None, help="At most this many.")
@database_options
@json_option
@handle_errors
def deliveries_command(
    status: str | None,
    limit: int | None,
    db_url: str | None,
    config_path: str | None,
    as_json: bool,
) -> None:
    """The deliveries: status, attempts, next attempt or sent time, last answer."""
    with engine_for(db_url, config_path) as engine:
        rows = Outbox(engine.context, kind=WEBHOOK_KIND).list(status=status, limit=limit)
        zone = display_zone(engine)
    if as_json:
        emit_json([delivery_json(r) for r in rows])
        return
    table(
        (
            "id",
            "status",
            "webhook",
            "event",
            "case",
            "attempts",
            zoned("next/sent", zone),
            "last answer",
        ),
        [
            (
                str(r.id),
                r.status,
                str(r.body.get("webhook")),
                str(r.body.get("payload", {}).get("type")),
                r.case_id or "-",
                str(r.attempts),
                local_text(r.sent_at or r.next_attempt_at, zone.zone),
                answer_text(r.last_error or r.message_id, 80),
            )
            for r in rows
        ],
    )


@webhooks_group.command("retry")
@click.argument("delivery_id", type=WHOLE)
@database_options
@json_option
@handle_errors
def retry_command(
    delivery_id: int, db_url: str | None, config_path: str | None, as_json: bool
) -> None:
    """Queue the dead delivery DELIVERY_ID again, due at once, attempts counted afresh."""
    with engine_for(db_url, config_path) as engine:
        row = Outbox(engine.context, kind=WEBHOOK_KIND).retry(delivery_id)
    if as_json:
        emit_json(delivery_json(row))
    else:
        click.echo(f"delivery {row.id} queued again")
