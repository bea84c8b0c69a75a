"""``casework related``: the cases a case is linked to or merged with."""

from __future__ import annotations

import click

from casework.workflow.cli.support import (
    CaseworkCommand,
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

WHO = {"to": "this case -> it", "from": "it -> this case"}
"""Which case recorded the relation."""


@click.command("related", cls=CaseworkCommand)
@click.argument("case_id")
@database_options
@json_option
@handle_errors
def related_command(
    case_id: str, db_url: str | None, config_path: str | None, as_json: bool
) -> None:
    """The cases CASE_ID is related to, either way: repeats found when a complaint was
    opened (same customer, same serial number), links (``fire CASE link --data
    case=OTHER``) and merges (``fire CASE merge_into --data case=OTHER``)."""
    with engine_for(db_url, config_path) as engine:
        case_id = engine.resolve(case_id)
        found = engine.related(case_id)
        zone = display_zone(engine)
    if as_json:
        emit_json(found)
        return
    rows = [
        (r["case"], r["relation"], WHO[r["direction"]], local_text(r["event"]["at"], zone.zone),
         f"{r['event']['event']} #{r['event']['seq']}")
        for r in found
    ]  # fmt: skip
    table(("case", "relation", "recorded on", zoned("at", zone), "event"), rows)
