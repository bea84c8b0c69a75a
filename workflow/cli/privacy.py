"""``casework erase``: a customer's personal data forgotten, the history still provable."""

from __future__ import annotations

from typing import Any

import click

from casework.workflow.cli.support import (
    CaseworkCommand,
    database_options,
    emit_json,
    engine_for,
    handle_errors,
    json_option,
)
from casework.workflow.errors import InvalidInput


@click.command("erase", cls=CaseworkCommand)
@click.option("--customer", default=None, help="The customer, as their cases name them.")
@click.option("--due", is_flag=True, help="Every customer [privacy] erase_after_days makes due.")
@click.option("--actor", default=None, help="Who erases (with --customer).")
@click.option("--reason", default=None, help="Why: the request, its date, its reference.")
@click.option("--dry-run", is_flag=True, help="Only say which cases would be erased.")
@click.option(
    "--finish",
    is_flag=True,
    help="Complete the compaction of the database files earlier erasures left pending.",
)
@database_options
@json_option
@handle_errors
def erase_command(
    customer: str | None, due: bool, actor: str | None, reason: str | None, dry_run: bool,
    finish: bool, db_url: str | None, config_path: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Erase a customer's personal data (their name, contact and personal attributes):
    the values and the customer's secret are deleted and every copy the database holds
    overwritten, and each of their cases records an `erased` event, in one
    transaction; the database files are then rid of them (SQLite: the write-ahead log
    truncated; PostgreSQL: the touched tables rewritten). `verify`, checkpoints taken
    before and report counts stay valid. --due erases the customers whose cases have
    all rested for [privacy] erase_after_days (the worker does so daily). When a reader
    holds the files (SQLite's log, a PostgreSQL table), their compaction is left pending
    and said so; --finish completes it (the worker's daily pass does too)."""
    if finish:
        if due or customer is not None or dry_run:
            raise InvalidInput("--finish goes alone", field="finish")
        with engine_for(db_url, config_path) as engine:
            done = engine.finish_erasure()
        if as_json:
            emit_json(done)
        else:
            _say_finished(done)
        if done["compaction_pending"] is not None:
            raise click.exceptions.Exit(1)  # not done yet: a reader holds the files still
        return
    if due == (customer is not None):
        raise InvalidInput("give --customer C, --due or --finish", field="customer")
    if customer is not None:
        missing = [name for name, v in (("--actor", actor), ("--reason", reason)) if not v]
        if missing:
            raise InvalidInput(f"missing options: {', '.join(missing)}", field="actor")
    with engine_for(db_url, config_path) as engine:
        if due:
            summary = engine.erase_due(dry_run=dry_run)
        else:
            summary = engine.erase(str(customer), actor=str(actor), reason=str(reason),
                                   dry_run=dry_run)  # fmt: skip
    if as_json:
        emit_json(summary)
        return
    _say(summary, due)


def _say(summary: dict[str, Any], due: bool) -> None:
    verb = "would erase" if summary["dry_run"] else "erased"
    who = f"{summary['customers']} customer(s), " if due else ""
    click.echo(f"{verb} {who}{len(summary['cases'])} case(s): {', '.join(summary['cases'])}")
    if summary.get("fields"):
        click.echo(f"  fields: {', '.join(summary['fields'])}")
    if summary.get("expunged"):
        how = " with `casework erase --finish`" if summary.get("compaction_pending") else ""
        click.echo(f"  database files: {summary['expunged']}{how}")


def _say_finished(done: dict[str, Any]) -> None:
    if done["pending_since"] is None:
        click.echo("no compaction is pending: the database files hold no erased value")
    elif done["compaction_pending"] is None:
        click.echo(f"compaction pending since {done['pending_since']} done: {done['expunged']}")
    else:
        click.echo(f"still pending since {done['pending_since']}: {done['expunged']}")
