"""Agents' commands on one case at a time: ``open``, ``fire``, ``show``, ``list``,
``history`` and ``replay``."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import click

from storage import iso
from workflow.cli.support import (
    WHOLE,
    database_options,
    display_width,
    emit_json,
    engine_for,
    handle_errors,
    json_option,
    parse_data,
    table,
    warn_unreachable,
)
from workflow.clock import parse_instant
from workflow.durations import hours_minutes, spoken


@click.command("open")
@click.option("--customer", required=True, help="Customer reference (not contact details).")
@click.option(
    "--channel",
    default=None,
    help="How it arrived: store, phone, letter, web, ... (if the machine needs it)",
)
@click.option(
    "--category",
    default=None,
    help="What it is about: service_delayed, ... (if the machine needs it)",
)
@click.option("--summary", required=True, help="The complaint in the customer's words.")
@click.option("--contact", default=None, help="Contact details (stored, never logged).")
@click.option("--branch", default=None, help="Branch or store that owns the case.")
@click.option("--priority", default="normal", show_default=True, help="normal, high or urgent.")
@click.option(
    "--received-at", default=None, metavar="ISO", help="When it was received (back-fill)."
)
@click.option(
    "--actor", default="intake", show_default=True, envvar="CASEWORK_ACTOR",
    help="First receiver: owns the case (default: $CASEWORK_ACTOR, else intake).",
)  # fmt: skip
@click.option("--machine", default=None, help="Machine name (default: complaint).")
@click.option("--attr", "attrs", multiple=True, metavar="K=V", help="A declared case attribute.")
@database_options
@json_option
@handle_errors
def open_command(
    customer: str,
    channel: str | None,
    category: str | None,
    summary: str,
    contact: str | None,
    branch: str | None,
    priority: str,
    received_at: str | None,
    actor: str,
    machine: str | None,
    attrs: tuple[str, ...],
    db_url: str | None,
    config_path: str | None,
    as_json: bool,
) -> None:
    """Open a case; prints its id (with --json, the case)."""
    received = None if received_at is None else parse_instant(received_at, "--received-at")
    attributes = {k: str(v) for k, v in parse_data(attrs).items()}
    with engine_for(db_url, config_path) as engine:
        case = engine.open_case(
            customer=customer,
            channel=channel,
            category=category,
            summary=summary,
            contact=contact,
            branch=branch,
            priority=priority,
            received_at=received,
            actor=actor,
            machine=machine,
            attributes=attributes,
        )
        warn_unreachable(engine, case.owner)
    if as_json:
        emit_json(case.to_json())
    else:
        click.echo(case.id)


@click.command("fire")
@click.argument("case_id")
@click.argument("event")
@click.option(
    "--actor",
    required=True,
    envvar="CASEWORK_ACTOR",
    help="Who does it (default: $CASEWORK_ACTOR).",
)
@click.option("--note", default=None, help="Free text kept with the event.")
@click.option("--data", "pairs", multiple=True, metavar="K=V", help="Event data, repeatable.")
@click.option("--at", default=None, metavar="ISO", help="When it happened (back-fill).")
@click.option(
    "--expected-version",
    type=click.IntRange(1, 2**31 - 1),
    default=None,
    help="Refuse if the case moved on.",
)
@database_options
@json_option
@handle_errors
def fire_command(
    case_id: str,
    event: str,
    actor: str,
    note: str | None,
    pairs: tuple[str, ...],
    at: str | None,
    expected_version: int | None,
    db_url: str | None,
    config_path: str | None,
    as_json: bool,
) -> None:
    """Apply EVENT to CASE_ID (apologise, confirm_needs, resolve, follow_up, note, ...)."""
    data = parse_data(pairs)
    when = None if at is None else parse_instant(at, "--at")
    with engine_for(db_url, config_path) as engine:
        case_id = engine.resolve(case_id)
        before = engine.get(case_id)
        case = engine.fire(
            case_id,
            event,
            actor=actor,
            data=data,
            note=note,
            at=when,
            expected_version=expected_version,
        )
        if case.owner != before.owner:
            warn_unreachable(engine, case.owner)
    if as_json:
        emit_json(case.to_json())
    else:
        click.echo(f"{case.id}: {event}: {before.state} -> {case.state} (version {case.version})")


@click.command("show")
@click.argument("case_id")
@database_options
@json_option
@handle_errors
def show_command(case_id: str, db_url: str | None, config_path: str | None, as_json: bool) -> None:
    """Show a case as a person reads it: who has it, where it stands, each SLA clock
    and the next deadlines (--json: every field, as programs read it)."""
    with engine_for(db_url, config_path) as engine:
        case = engine.get(engine.resolve(case_id))
        explained = None if as_json else engine.explain_sla(case.id)
    if as_json:
        emit_json(case.to_json())
        return
    assert explained is not None
    for line in case_lines(case, explained):
        click.echo(line)


def _when(moment: Any) -> str:
    """A time to the second, in UTC."""
    text = moment if isinstance(moment, str) else iso(moment)
    return text[:19].replace("T", " ") + " UTC"


def case_lines(case: Any, explained: dict[str, Any]) -> list[str]:
    """The lines of ``show`` for a person."""
    waiting = explained.get("waiting")
    rows = [
        ("case", f"{case.id} ({case.machine} v{case.machine_version})"),
        ("state", f"{case.state}" + (f", waiting on the {waiting}" if waiting else "")),
        ("owner", f"{case.owner}" + (f" · branch {case.branch}" if case.branch else "")),
        ("customer", case.customer + (f" · contact {case.contact}" if case.contact else "")),
        ("complaint", " · ".join(x for x in (case.channel, case.category, case.priority) if x)),
        ("received", _when(case.received_at)),
        ("escalation", f"level {case.escalation_level}" if case.escalation_level else "none"),
        ("summary", case.summary),
    ]
    width = max(display_width(k) for k, _ in rows)
    lines = [f"{k.rjust(width)}  {v}" for k, v in rows]
    lines.append("")
    for clock in explained["clocks"]:
        lines.append("  " + _clock_sentence(clock))
    due = [f"{d['clock']} {d['kind']} at {_when(d['due_at'])}" for d in case.deadlines]
    lines.append("  next: " + ("; ".join(due) if due else "nothing pending"))
    return lines


def _clock_sentence(clock: dict[str, Any]) -> str:
    """``resolution: 17h 20m left of its 72h 00m target (office hours)``."""
    name = clock["clock"].replace("_", " ")
    if not clock.get("cycle"):
        return f"{name}: not started"
    target = timedelta(seconds=clock.get("target_s") or 0)
    used = timedelta(seconds=clock.get("used_s") or 0)
    terms = f"{spoken(target, 'en')} target, {clock.get('calendar', '24x7')} hours"
    outcome = clock.get("outcome")
    if outcome == "met":
        return f"{name}: met ({terms})"
    if used > target:
        state = f"{spoken(used - target, 'en')} late"
    else:
        state = f"{spoken(target - used, 'en')} left"
    if not clock.get("counting", clock.get("running")):
        state += ", paused" if clock.get("running") else ", stopped"
    return f"{name}: {state} ({terms})"


FILTERS = ("owner", "branch", "customer", "channel", "category", "priority")
"""The case fields ``list`` filters on, besides the state."""


def _filter_options(func: Any) -> Any:
    for name in reversed(FILTERS):
        func = click.option(f"--{name}", default=None, help=f"Only cases of this {name}.")(func)
    return func


@click.command("list")
@click.option("--state", default=None, help="Only cases in this state.")
@_filter_options
@click.option(
    "--overdue", is_flag=True, help="Only cases past an SLA target: owner, level, lateness."
)
@click.option("--limit", type=WHOLE, default=None, help="At most this many.")
@database_options
@json_option
@handle_errors
def list_command(
    state: str | None,
    overdue: bool,
    limit: int | None,
    db_url: str | None,
    config_path: str | None,
    as_json: bool,
    **filters: str | None,
) -> None:
    """List cases, oldest received first (with --overdue: the latest first).

    \b
    Examples:
      casework list --owner li.na --state apologised
      casework list --branch 东莞长安店 --category missed_appointment --json
      casework list --overdue --branch 东莞长安店
    """
    given = {k: v for k, v in filters.items() if v is not None}
    if overdue:
        with engine_for(db_url, config_path) as engine:
            late = [
                o
                for o in engine.overdue()
                if (state is None or o.case.state == state)
                and all(getattr(o.case, k) == v for k, v in given.items())
            ]
        late = late[:limit] if limit else late
        if as_json:
            emit_json([o.to_json() for o in late])
        else:
            from workflow.cli.sla import overdue_rows

            table(("id", "owner", "branch", "clock", "level", "late"), overdue_rows(late))
        return
    with engine_for(db_url, config_path) as engine:
        cases = engine.list(state=state, limit=limit, **given)
    if as_json:
        emit_json([c.to_json() for c in cases])
        return
    rows = [
        (
            c.id,
            c.state,
            c.owner,
            c.channel or "-",
            c.category or "-",
            iso(c.received_at),
            str(c.version),
        )
        for c in cases
    ]
    table(("id", "state", "owner", "channel", "category", "received_at", "v"), rows)


@click.command("history")
@click.argument("case_id")
@database_options
@json_option
@handle_errors
def history_command(
    case_id: str, db_url: str | None, config_path: str | None, as_json: bool
) -> None:
    """The events of a case, oldest first."""
    with engine_for(db_url, config_path, read_only=True) as engine:
        events = engine.history(engine.resolve(case_id))
    if as_json:
        emit_json([e.to_json() for e in events])
        return
    rows = [
        (
            str(e.seq),
            iso(e.occurred_at),
            e.event,
            f"{e.from_state or '-'} -> {e.to_state}",
            e.actor,
            json.dumps(dict(e.data), ensure_ascii=False) if e.seq > 1 else "",
        )
        for e in events
    ]
    table(("seq", "occurred_at", "event", "transition", "actor", "data"), rows)


@click.command("replay")
@click.argument("case_id")
@click.option("--at", default=None, metavar="ISO", help="Rebuild the state as it stood then.")
@database_options
@json_option
@handle_errors
def replay_command(
    case_id: str, at: str | None, db_url: str | None, config_path: str | None, as_json: bool
) -> None:
    """Rebuild a case's state from its history alone, with its SLA clocks as they stood."""
    when = None if at is None else parse_instant(at, "--at")
    with engine_for(db_url, config_path, read_only=True) as engine:
        replay = engine.replay(engine.resolve(case_id), when)
    if as_json:
        emit_json(replay.to_json())
        return
    click.echo(
        f"{case_id} at {iso(replay.at)}: state {replay.state}, version {replay.version}, "
        f"owner {replay.owner}, escalation level {replay.escalation_level}"
    )
    if replay.sla.get("waiting"):
        click.echo(f"  waiting on the {replay.sla['waiting']}: clocks paused")
    for clock in replay.sla.get("clocks", []):
        click.echo("  " + clock_line(clock))


def clock_line(clock: dict[str, Any]) -> str:
    """One line for a clock's standing: used of target, and what that means."""
    if clock["cycle"] == 0:
        return f"{clock['clock']}: not started"
    if not clock["running"]:
        status = "stopped, " + (
            f"breached by {hours_minutes(clock['overdue_s'])}" if clock["breached"] else "met"
        )
    elif clock["breached"]:
        status = f"BREACHED by {hours_minutes(clock['overdue_s'])}, level {clock['level']}"
    else:
        status = f"{hours_minutes(clock['remaining_s'])} left" + (
            ", warned" if clock["warned"] else ""
        )
    paused = ", paused" if clock["paused"] else ""
    return (
        f"{clock['clock']} #{clock['cycle']}: {hours_minutes(clock['used_s'])} used of "
        f"{hours_minutes(clock['target_s'])}{paused}; {status}"
    )
