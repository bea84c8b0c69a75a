"""``casework tick``, ``casework sla explain``, ``casework replan``: SLA deadlines by hand."""

from __future__ import annotations

import click

from workflow.cli.support import (
    WHOLE,
    CaseworkCommand,
    CaseworkSubgroup,
    actor_option,
    database_options,
    display_zone,
    emit_json,
    engine_for,
    handle_errors,
    json_option,
    typed_time,
)
from workflow.display.times import stamped
from workflow.durations import hours_minutes
from workflow.sla.views import Overdue


@click.command("tick", cls=CaseworkCommand)
@click.option("--now", default=None, metavar="ISO", help="Process as at this instant (simulation).")
@click.option("--batch", type=WHOLE, default=200, show_default=True)
@database_options
@json_option
@handle_errors
def tick_command(
    now: str | None, batch: int, db_url: str | None, config_path: str | None, as_json: bool
) -> None:
    """Process every deadline due now (or at --now) once, then exit."""
    with engine_for(db_url, config_path) as engine:
        moment = None if now is None else typed_time(now, "--now", engine)
        fired = engine.process_due(moment, batch=batch)
        zone = display_zone(engine).zone
    if as_json:
        emit_json({"fired": [f.to_json() for f in fired]})
        return
    for f in fired:
        late = f"{hours_minutes(f.late_by.total_seconds())} late" if f.late_by else "on time"
        click.echo(
            f"{f.case_id}: {f.clock} {f.kind} level {f.level} "
            f"(due {stamped(f.due_at, zone)}, {late})"
        )
    click.echo(f"{len(fired)} deadline(s) fired")


@click.group("sla", cls=CaseworkSubgroup)
def sla_group() -> None:
    """SLA clocks of a case."""


@sla_group.command("explain")
@click.argument("case_id")
@database_options
@json_option
@handle_errors
def explain_command(
    case_id: str, db_url: str | None, config_path: str | None, as_json: bool
) -> None:
    """How each clock of CASE_ID stands and how its next deadline was computed."""
    with engine_for(db_url, config_path) as engine:
        document = engine.explain_sla(engine.resolve(case_id))
        zone = display_zone(engine).zone
    if as_json:
        emit_json(document)
        return
    click.echo(f"case {case_id}, policy {document['policy_name']} ({document['policy']})")
    if document["waiting"]:
        click.echo(f"waiting on the {document['waiting']}: clocks paused")
    for pause in document["pauses"]:
        at = stamped(pause["at"], zone)
        click.echo(f"  {pause['event']} at {at} {pause['reason'] or ''}".rstrip())
    for clock in document["clocks"]:
        status = "running" if clock["running"] else "stopped"
        if clock["running"] and not clock["counting"]:
            status = "paused"
        click.echo(
            f"{clock['clock']} (cycle {clock['cycle']}, {status}): target "
            f"{hours_minutes(clock['target_s'])} ({clock['target_from']}) on calendar "
            f"{clock['calendar']} {clock['calendar_version']}; used "
            f"{hours_minutes(clock['used_s'])}; level {clock['level']}"
        )
        nxt = clock["next"]
        if nxt:
            due = stamped(nxt["due_at"], zone)
            click.echo(f"  next: {nxt['kind']} due {due} = {nxt['computed']}")
            for start, end in nxt["closed_spans_skipped"]:
                click.echo(f"    closed {stamped(start, zone)} .. {stamped(end, zone)} skipped")


@click.command("replan", cls=CaseworkCommand)
@click.argument("case_id")
@actor_option("Who moves the case to the configured policy")
@database_options
@json_option
@handle_errors
def replan_command(
    case_id: str, actor: str, db_url: str | None, config_path: str | None, as_json: bool
) -> None:
    """Move CASE_ID to the configured SLA policy (recorded as a replan event)."""
    with engine_for(db_url, config_path) as engine:
        case = engine.replan(engine.resolve(case_id), actor=actor)
    if as_json:
        emit_json(case.to_json())
    else:
        click.echo(f"{case.id}: now under SLA policy {case.sla_policy}")


def overdue_rows(items: list[Overdue]) -> list[tuple[str, ...]]:
    """Table rows for ``list --overdue``: case, owner, branch, clock, level, how late."""
    return [
        (
            o.case.id,
            o.case.owner,
            o.case.branch or "-",
            o.clock,
            str(o.case.escalation_level),
            hours_minutes(o.late_by.total_seconds()),
        )
        for o in items
    ]
