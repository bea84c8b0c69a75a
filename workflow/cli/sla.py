"""``casework tick``, ``sla explain``, ``replan``, ``reclassify``: SLA deadlines by hand."""

from __future__ import annotations

from typing import Any

import click

from casework.machines.clocks import level_label
from casework.workflow.cli.support import (
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
from casework.workflow.display.times import local_text, stamped
from casework.workflow.durations import hours_minutes
from casework.workflow.errors import InvalidInput
from casework.workflow.sla.views import Overdue


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
    for change in document["target_changes"]:
        changed = ", ".join(f"{k} {a or '-'} -> {b}" for k, (a, b) in change["changed"].items())
        reason = f": {change['reason']}" if change["reason"] else ""
        click.echo(
            f"  {change['event']} at {stamped(change['at'], zone)} by {change['actor']} "
            f"(event {change['seq']}): {changed}{reason}"
        )
    for clock in document["clocks"]:
        status = "running" if clock["running"] else "stopped"
        if not clock["started"]:
            status = "not started yet"
        if clock["running"] and not clock["counting"]:
            status = "paused"
        click.echo(
            f"{clock['clock']} (cycle {clock['cycle']}, {status}): target "
            f"{hours_minutes(clock['target_s'])} ({clock['target_from']}) on calendar "
            f"{clock['calendar']} {clock['calendar_version']} ({clock['calendar_from']}); used "
            f"{hours_minutes(clock['used_s'])}; level {clock['level']}"
        )
        nxt = clock["next"]
        if nxt:
            due = stamped(nxt["due_at"], zone)
            click.echo(f"  next: {nxt['kind']} due {due} = {nxt['computed']}")
            for start, end in nxt["closed_spans_skipped"]:
                click.echo(f"    closed {stamped(start, zone)} .. {stamped(end, zone)} skipped")


@click.command("replan", cls=CaseworkCommand)
@click.argument("case_id", required=False)
@click.option("--all", "every", is_flag=True, help="Every open case under another policy.")
@click.option("--dry-run", is_flag=True, help="With --all: only say what would change.")
@actor_option("Who moves the case to the configured policy")
@database_options
@json_option
@handle_errors
def replan_command(
    case_id: str | None, every: bool, dry_run: bool, actor: str,
    db_url: str | None, config_path: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Move CASE_ID (or with --all every open case) to the configured SLA policy, each
    recorded as a replan event; the clocks keep the working time they used. --dry-run
    lists each case's pending deadlines before and after, and writes nothing."""
    if (case_id is None) == (not every):
        raise InvalidInput("give a CASE_ID or --all", field="case_id")
    if dry_run and not every:
        raise InvalidInput("--dry-run goes with --all", field="dry_run")
    with engine_for(db_url, config_path) as engine:
        if every:
            summary = engine.replan_all(actor=actor, dry_run=dry_run)
            zone = display_zone(engine).zone
        else:
            case = engine.replan(engine.resolve(str(case_id)), actor=actor)
    if every:
        _say_replanned(summary, zone, as_json)
    elif as_json:
        emit_json(case.to_json())
    else:
        click.echo(f"{case.id}: now under SLA policy {case.sla_policy}")


def _say_replanned(summary: dict[str, Any], zone: Any, as_json: bool) -> None:
    if as_json:
        emit_json(summary)
        return
    verb = "would move" if summary["dry_run"] else "moved"
    changing = [r for r in summary["moved"] if r["before"] != r["after"]]
    click.echo(
        f"{verb} {summary['cases']} open case(s) to the configured policy; "
        f"the deadlines of {len(changing)} change:"
    )
    for row in changing:

        def shown(deadlines: list[dict[str, Any]]) -> str:
            return (
                ", ".join(
                    f"{d['clock']} {d['kind']} {local_text(d['due_at'], zone)}" for d in deadlines
                )
                or "none"
            )

        click.echo(f"  {row['case_id']}: {shown(row['before'])}  ->  {shown(row['after'])}")


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


@click.command("reclassify", cls=CaseworkCommand)
@click.argument("case_id")
@click.option("--priority", default=None, help="The new priority.")
@click.option("--category", default=None, help="The new category.")
@click.option("--channel", default=None, help="The new channel.")
@click.option("--tier", default=None, help="The customer's new tier (a complaint v2 attribute).")
@click.option("--reason", default=None, help="Why, kept with the event.")
@actor_option("Who reclassifies it")
@database_options
@json_option
@handle_errors
def reclassify_command(
    case_id: str, priority: str | None, category: str | None, channel: str | None,
    tier: str | None, reason: str | None, actor: str,
    db_url: str | None, config_path: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Change what CASE_ID's SLA targets depend on: its priority, category, channel or
    customer tier. Recorded as a reclassify event with the values it replaces; each
    running clock keeps the working time it used and takes the target that now
    applies (`casework sla explain` shows the rule and the change)."""
    given = {"priority": priority, "category": category, "channel": channel, "tier": tier}
    data: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    if not data:
        raise InvalidInput(
            "give one or more of --priority, --category, --channel, --tier", field="priority"
        )
    if reason:
        data["reason"] = reason
    with engine_for(db_url, config_path) as engine:
        case = engine.fire(engine.resolve(case_id), "reclassify", actor=actor, data=data)
        zone = display_zone(engine).zone
        event = engine.history(case.id)[-1]
    if as_json:
        emit_json(case.to_json())
        return
    was = event.data["was"]
    changed = ", ".join(f"{k} {was.get(k) or '-'} -> {event.data[k]}" for k in was)
    click.echo(f"{case.id}: reclassified: {changed}")
    for deadline in case.deadlines:
        click.echo(
            f"  {deadline['clock']} {level_label(deadline['level'])} "
            f"due {stamped(deadline['due_at'], zone)}"
        )
