"""``casework export``: the history with its hashes, for auditors (signed on request)."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from typing import IO, Any

import click

from casework.workflow.audit.export import FORMATS, write_export
from casework.workflow.audit.private_files import private_file
from casework.workflow.cli.support import (
    CaseworkCommand,
    database_options,
    engine_for,
    handle_errors,
    typed_time,
)
from casework.workflow.errors import InvalidInput


def _progress(label: str) -> Any:
    def show(count: int) -> None:
        click.echo(f"\r{label} {count:,} events", err=True, nl=False)

    return show


@click.command("export", cls=CaseworkCommand)
@click.option(
    "--since", default=None, metavar="TIME",
    help="Events that occurred at or after this (a date or time in the display zone, or ISO).",
)  # fmt: skip
@click.option(
    "--until", default=None, metavar="TIME",
    help="Events that occurred before this (a date: through its end).",
)  # fmt: skip
@click.option("--case", "case_id", default=None, help="Only this case's events.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="jsonl", show_default=True)
@click.option(
    "--out",
    default=None,
    type=click.Path(dir_okay=False),
    help="Write to this file (created private, complete or not at all); default stdout.",
)
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@click.option(
    "--redact", is_flag=True,
    help="Leave the customers' personal values out (the file still verifies).",
)  # fmt: skip
@click.option(
    "--sign",
    "sign_key",
    default=None,
    type=click.Path(dir_okay=False),
    help="Sign the export with this Ed25519 key (the checkpoint key will do).",
)
@database_options
@handle_errors
def export_command(
    since: str | None,
    until: str | None,
    case_id: str | None,
    fmt: str,
    out: str | None,
    force: bool,
    redact: bool,
    sign_key: str | None,
    db_url: str | None,
    config_path: str | None,
) -> None:
    """Write the events with their hashes, in the documented casework-export format.

    One snapshot, streamed: memory stays flat over millions of events. `casework
    verify --export FILE` checks the file without the database. An unsigned export
    proves each event and chain in it, not that it is whole: with --sign KEY its end
    record carries a signature over the header, the counts and every case's head,
    which `verify --export FILE --keyring RING` checks. The opening event of each
    history since personal data is kept apart carries the customer's values
    (`[erased]` once erased); --redact leaves them out.
    """
    signer = None
    if sign_key is not None:
        from casework.workflow.audit.checkpoints import export_signer, load_private_key

        signer = export_signer(load_private_key(sign_key))
    show = out is not None and sys.stderr.isatty()
    with engine_for(db_url, config_path, read_only=True, audit=True) as engine:
        low = None if since is None else typed_time(since, "--since", engine)
        high = None if until is None else typed_time(until, "--until", engine, end_of_day=True)
        if low is not None and high is not None and high <= low:
            raise InvalidInput("--until must be later than --since", field="until")
        if case_id is not None:
            engine.get(case_id)
        policies = engine.context.store.deadlines.policies()
        target: Any = nullcontext(sys.stdout) if out is None else private_file(out, replace=force)
        with target as file:
            stream: IO[str] = file
            summary = write_export(
                engine.context.store, stream, fmt=fmt, redact=redact, since=low, until=high,
                case_id=case_id,
                policies=policies, now=engine.clock.now(),
                progress=_progress("exported") if show else None, sign=signer,
            )  # fmt: skip
    if show:
        click.echo("", err=True)
    if out is not None:
        click.echo(f"exported {summary.events:,} events of {summary.cases:,} cases to {out}")
        click.echo(f"digest {summary.digest}")
