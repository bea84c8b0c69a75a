"""``casework attach``: evidence kept with a case by its SHA-256 digest."""

from __future__ import annotations

from pathlib import Path

import click

from casework.workflow.cli.support import (
    CaseworkCommand,
    actor_option,
    database_options,
    emit_json,
    engine_for,
    handle_errors,
    json_option,
)
from casework.workflow.files import read_capped


@click.command("attach", cls=CaseworkCommand)
@click.argument("case_id")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--kind", type=click.Choice(["test_report", "photo", "invoice"]), required=True,
    help="What the file is: a manufacturer's test report, a photo, an invoice.",
)  # fmt: skip
@actor_option("Who attaches it")
@database_options
@json_option
@handle_errors
def attach_command(
    case_id: str, path: Path, kind: str, actor: str,
    db_url: str | None, config_path: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Attach the file PATH to CASE_ID: kept by its SHA-256 digest, recorded as an
    ``attach`` event; `casework verify` later proves it unchanged. A strict brand's
    return or exchange needs an attached test report."""
    with engine_for(db_url, config_path) as engine:
        content = read_capped(
            path, engine.settings.max_attachment_bytes, what="file to attach",
            hint=" (limits.max_attachment_bytes)",
        )  # fmt: skip
        case = engine.attach(engine.resolve(case_id), content, kind=kind, name=path.name,
                             actor=actor)  # fmt: skip
        event = engine.history(case.id)[-1]
    if as_json:
        emit_json(event.to_json())
    else:
        click.echo(f"{case.id}: {kind} {path.name} attached, sha256 {event.data['digest']}")
