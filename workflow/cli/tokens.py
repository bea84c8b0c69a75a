"""``casework tokens``: bearer tokens of the HTTP API, made, listed and revoked."""

from __future__ import annotations

import click

from casework.workflow.access.tokens import ROLES, issue, revoke
from casework.workflow.cli.support import (
    CaseworkSubgroup,
    database_options,
    display_zone,
    emit_json,
    engine_for,
    handle_errors,
    json_option,
    table,
    typed_text,
    zoned,
)
from casework.workflow.display.times import local_text


@click.group("tokens", cls=CaseworkSubgroup)
def tokens_group() -> None:
    """Bearer tokens of the HTTP API: each speaks for one actor in one role."""


@tokens_group.command("create")
@click.option("--actor", required=True, help="Who the token speaks for (an agent id).")
@click.option("--role", required=True, type=click.Choice(ROLES), help="What it may do.")
@click.option("--branch", default=None, help="Only this branch's cases.")
@database_options
@json_option
@handle_errors
def create_command(
    actor: str,
    role: str,
    branch: str | None,
    db_url: str | None,
    config_path: str | None,
    as_json: bool,
) -> None:
    """Make a token and print it, this once: only a hash of it is kept."""
    with engine_for(db_url, config_path) as engine:
        issued = issue(engine.context.store, actor, role, branch, engine.clock.now())
    if as_json:
        emit_json({**issued.record.to_json(), "token": issued.token})
    else:
        click.echo(issued.token)
        click.echo(
            f"token {issued.record.id} for {actor} ({role}"
            f"{', branch ' + branch if branch else ''}): keep it now, it is not shown again",
            err=True,
        )


@tokens_group.command("list")
@database_options
@json_option
@handle_errors
def list_command(db_url: str | None, config_path: str | None, as_json: bool) -> None:
    """The tokens: id, actor, role, branch, made and revoked when."""
    with engine_for(db_url, config_path) as engine:
        found = engine.context.store.access.tokens()
        zone = display_zone(engine)
    if as_json:
        emit_json([t.to_json() for t in found])
        return
    table(
        ("id", "actor", "role", "branch", zoned("created", zone), "revoked"),
        [
            (
                t.id,
                t.actor,
                t.role,
                t.branch or "-",
                local_text(t.created_at, zone.zone),
                "-" if t.revoked_at is None else local_text(t.revoked_at, zone.zone),
            )
            for t in found
        ],
    )


@tokens_group.command("revoke")
@click.argument("token_id")
@database_options
@json_option
@handle_errors
def revoke_command(
    token_id: str, db_url: str | None, config_path: str | None, as_json: bool
) -> None:
    """Revoke TOKEN_ID: every request with it is refused from now on."""
    typed_text(token_id, "TOKEN_ID")
    with engine_for(db_url, config_path) as engine:
        record = revoke(engine.context.store, token_id, engine.clock.now())
    if as_json:
        emit_json(record.to_json())
    else:
        click.echo(f"token {record.id} ({record.actor}) revoked")
