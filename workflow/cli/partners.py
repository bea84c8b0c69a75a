"""``casework partners`` and ``casework jobs``: the partner registry and the dispatched
jobs complaint rates are counted against."""

from __future__ import annotations

import click

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
)
from casework.workflow.partners.jobs import JOB_KINDS, add_jobs, import_jobs, job_row
from casework.workflow.partners.registry import PARTNER_KINDS, add_partner


@click.group("partners", cls=CaseworkSubgroup)
def partners_group() -> None:
    """Installers, repairers and manufacturers, by the id events name them with
    (book_visit --data partner=ID, route, partner_fault, suspend_settlement)."""


@partners_group.command("add")
@click.argument("partner_id")
@click.option("--name", required=True, help="The partner's name.")
@click.option("--kind", type=click.Choice(PARTNER_KINDS), required=True)
@click.option("--branch", default=None, help="The branch it works for.")
@database_options
@json_option
@handle_errors
def add_command(
    partner_id: str, name: str, kind: str, branch: str | None,
    db_url: str | None, config_path: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Register PARTNER_ID."""
    with engine_for(db_url, config_path) as engine:
        partner = add_partner(engine.context, partner_id, name=name, kind=kind, branch=branch)
    if as_json:
        emit_json(partner.to_json())
    else:
        click.echo(f"{partner.id}: {partner.name} ({partner.kind})")


@partners_group.command("list")
@database_options
@json_option
@handle_errors
def list_command(db_url: str | None, config_path: str | None, as_json: bool) -> None:
    """The registered partners."""
    with engine_for(db_url, config_path) as engine:
        found = engine.context.store.partners.registered()
    if as_json:
        emit_json([p.to_json() for p in found])
        return
    table(("id", "name", "kind", "branch"),
          [(p.id, p.name, p.kind, p.branch or "-") for p in found])  # fmt: skip


@click.group("jobs", cls=CaseworkSubgroup)
def jobs_group() -> None:
    """Dispatched jobs (installations and repairs): what `report complaints` counts
    complaints per 10,000 jobs against, per branch, category and partner."""


@jobs_group.command("add")
@click.option("--kind", type=click.Choice(JOB_KINDS), required=True)
@click.option("--branch", required=True)
@click.option("--category", default=None, help="The complaint category the job is of.")
@click.option("--partner", default=None, help="The partner who did the job.")
@click.option("--at", "done_at", required=True, metavar="DAY", help="When (a date or time).")
@click.option("--count", type=WHOLE, default=1, show_default=True, help="How many jobs.")
@database_options
@json_option
@handle_errors
def jobs_add_command(
    kind: str, branch: str, category: str | None, partner: str | None, done_at: str,
    count: int, db_url: str | None, config_path: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Record dispatched jobs."""
    with engine_for(db_url, config_path) as engine:
        values = {"kind": kind, "branch": branch, "category": category, "partner": partner,
                  "done_at": done_at, "jobs": count}  # fmt: skip
        row = job_row(values, display_zone(engine).zone, "casework jobs add", "--at")
        total = add_jobs(engine.context, [row])
    if as_json:
        emit_json({"rows": 1, "jobs": total})
    else:
        click.echo(f"{total} {kind} job(s) recorded")


@jobs_group.command("import")
@click.argument("path", type=click.Path(dir_okay=False))
@database_options
@json_option
@handle_errors
def jobs_import_command(
    path: str, db_url: str | None, config_path: str | None, as_json: bool
) -> None:
    """Import a CSV of dispatched jobs: header kind,branch,category,partner,done_at,jobs
    (category, partner and jobs may be empty; done_at a date or time in the display
    zone). All rows or none."""
    with engine_for(db_url, config_path) as engine:
        rows, total = import_jobs(engine.context, path, display_zone(engine).zone)
    if as_json:
        emit_json({"rows": rows, "jobs": total})
    else:
        click.echo(f"{rows} rows, {total} jobs imported from {path}")
