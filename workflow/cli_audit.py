"""``casework export``: the history for auditors, streamed to a file or stdout."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from typing import IO, Any

import click

from storage import case_store as store
from storage import read_transaction
from workflow.audit_export import FORMATS, write_export
from workflow.cli_support import database_options, engine_for, handle_errors
from workflow.clock import parse_instant
from workflow.errors import InvalidInput
from workflow.private_files import private_file


def _progress(label: str) -> Any:
    def show(count: int) -> None:
        click.echo(f"\r{label} {count:,} events", err=True, nl=False)

    return show


@click.command("export")
@click.option("--since", default=None, metavar="ISO", help="Events that occurred at or after this.")
@click.option("--until", default=None, metavar="ISO", help="Events that occurred before this.")
@click.option("--case", "case_id", default=None, help="Only this case's events.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="jsonl", show_default=True)
@click.option(
    "--out",
    default=None,
    type=click.Path(dir_okay=False),
    help="Write to this file (created private, complete or not at all); default stdout.",
)
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@database_options
@handle_errors
def export_command(
    since: str | None,
    until: str | None,
    case_id: str | None,
    fmt: str,
    out: str | None,
    force: bool,
    db_url: str | None,
    config_path: str | None,
) -> None:
    """Write the events with their hashes, in the documented casework-export format.

    One snapshot, streamed: memory stays flat over millions of events. `casework
    verify --export FILE` checks the file without the database.
    """
    low = None if since is None else parse_instant(since, "--since")
    high = None if until is None else parse_instant(until, "--until")
    if low is not None and high is not None and high <= low:
        raise InvalidInput("--until must be later than --since", field="until")
    show = out is not None and sys.stderr.isatty()
    with engine_for(db_url, config_path) as engine:
        if case_id is not None:
            engine.get(case_id)
        with read_transaction(engine.db) as conn:
            policies = store.stored_policies(conn)
        target: Any = nullcontext(sys.stdout) if out is None else private_file(out, replace=force)
        with target as file:
            stream: IO[str] = file
            summary = write_export(
                engine.db, stream, fmt=fmt, since=low, until=high, case_id=case_id,
                policies=policies, now=engine.clock.now(),
                progress=_progress("exported") if show else None,
            )  # fmt: skip
    if show:
        click.echo("", err=True)
    if out is not None:
        click.echo(f"exported {summary.events:,} events of {summary.cases:,} cases to {out}")
        click.echo(f"digest {summary.digest}")
