"""``casework survey-link``: the customer's link to a case's status page and survey."""

from __future__ import annotations

import click

from casework.workflow.cli.support import (
    CaseworkCommand,
    database_options,
    emit_json,
    engine_for,
    handle_errors,
    json_option,
)


@click.command("survey-link", cls=CaseworkCommand)
@click.argument("case_id")
@database_options
@json_option
@handle_errors
def survey_link_command(
    case_id: str, db_url: str | None, config_path: str | None, as_json: bool
) -> None:
    """The link that shows the customer of CASE_ID the case's status and, once it is
    resolved, its survey: ``<[console] base_url>/s/<token>``, signed with ``[survey]``'s
    secret for this case alone and valid ``[survey] valid_days`` (14). JSON: ``{"url": ...}``."""
    from casework.workflow.survey.service import link

    with engine_for(db_url, config_path) as engine:
        url = link(engine.context, engine.resolve(case_id))
    if as_json:
        emit_json({"url": url})
    else:
        click.echo(url)
