"""``casework migrate``: bring the database schema up to date, on purpose."""

from __future__ import annotations

import click

from casework.workflow.cli.support import (
    CaseworkCommand,
    database_options,
    emit_json,
    handle_errors,
    json_option,
    opened,
)


@click.command("migrate", cls=CaseworkCommand)
@database_options
@json_option
@handle_errors
def migrate_command(db_url: str | None, config_path: str | None, as_json: bool) -> None:
    """Bring the database schema up to date (every other command does too, unless the
    engine is opened with migrate=False); says which revision it was at and is at.

    \b
    Example:
      casework --db postgresql://casework@db/casework migrate
    """
    from casework.storage.migrate import HEAD, current_revision, upgrade

    with opened(db_url) as (url, db):
        before = current_revision(db)
        upgrade(db)
    if as_json:
        emit_json({"database": url, "from": before, "to": HEAD})
    elif before == HEAD:
        click.echo(f"schema already at revision {HEAD}")
    else:
        click.echo(f"schema migrated from revision {before or '(empty)'} to {HEAD}")
