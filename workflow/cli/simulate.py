"""``casework simulate``: what a proposed SLA policy would have done to a period."""

from __future__ import annotations

from typing import Any

import click

from casework.workflow.audit.private_files import private_file
from casework.workflow.cli.reports import LANG_OPTION, PERIOD_ONLY, _period, page_language
from casework.workflow.cli.support import (
    CaseworkCommand,
    database_options,
    emit_json,
    engine_for,
    handle_errors,
    json_option,
)


@click.command("simulate", cls=CaseworkCommand)
@click.option(
    "--policy", "policy_path", required=True, type=click.Path(dir_okay=False),
    help="A settings file (TOML) whose [sla] table is the proposed policy.",
)  # fmt: skip
@PERIOD_ONLY
@click.option(
    "--html",
    "html_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="Also write the report as a self-contained HTML page with charts.",
)
@click.option("--force", is_flag=True, help="Replace the --html file if it exists.")
@LANG_OPTION
@database_options
@json_option
@handle_errors
def simulate_command(
    policy_path: str,
    html_path: str | None,
    force: bool,
    lang: str | None,
    db_url: str | None,
    config_path: str | None,
    as_json: bool,
    **asked: str | None,
) -> None:
    """Replay the cases received in the period under the proposed policy (the agents'
    events at their real times, deadlines fired as the worker would) and report, beside
    what happened, breaches per clock, branch and category, warnings, escalations by
    level and mails, and the cases whose outcome changes. Writes nothing."""
    from casework.workflow.config import check_policy, load_settings
    from casework.workflow.errors import InvalidInput
    from casework.workflow.sla.whatif import simulate

    proposed = load_settings(policy_path)
    if proposed.sla is None:
        raise InvalidInput(f"{policy_path} has no [sla] table to simulate", field="policy")
    with engine_for(db_url, config_path, read_only=True) as engine:
        definition = engine.registry.get(engine.settings.default_machine)
        policy = check_policy(proposed.sla, definition.states, definition.events,
                              f"{policy_path}: sla")  # fmt: skip
        report = simulate(engine.context, policy, _period(engine, asked))
        lang = page_language(engine, lang)
    if html_path is not None:
        from casework.workflow.reports.whatif_page import whatif_page

        with private_file(html_path, replace=force) as file:
            file.write(whatif_page(report, lang=lang))
    if as_json:
        emit_json(report)
        return
    _say(report)
    if html_path is not None:
        click.echo(f"  the page: {html_path}")


def _say(report: dict[str, Any]) -> None:
    click.echo(f"{report['cases']:,} cases received {report['period']}, under policy "
               f"{report['policy']['name']} ({report['policy']['version']}):")  # fmt: skip
    for row in report["by_clock"]:
        before, after = row["actual"], row["proposed"]
        click.echo(f"  {row['name']}: {before['breached']} breached -> {after['breached']} "
                   f"({row['more_breaches']:+d})")  # fmt: skip
    totals = report["totals"]
    for key in sorted(set(totals["actual"]) | set(totals["proposed"])):
        click.echo(f"  {key}: {totals['actual'].get(key, 0)} -> {totals['proposed'].get(key, 0)}")
    click.echo(f"  cases whose breaches change: {len(report['changed'])}")
    for text in report["notes"]:
        click.echo(f"  note: {text}")
