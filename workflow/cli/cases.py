"""Agents' commands on one case at a time: ``open``, ``fire``, ``show``, ``list``,
``history`` and ``replay``."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta, tzinfo
from typing import Any

import click

from casework.machines.definition import done_states
from casework.machines.timers import TIMER_EVENTS
from casework.storage.records import CaseQuery
from casework.workflow.cases.intake import INTAKE
from casework.workflow.cases.paging import MAX_PAGE
from casework.workflow.cli.support import (
    WHOLE,
    CaseworkCommand,
    actor_option,
    database_options,
    display_width,
    display_zone,
    emit_json,
    engine_for,
    handle_errors,
    json_option,
    note,
    parse_data,
    table,
    typed_time,
    warn_unreachable,
)
from casework.workflow.clock import parse_instant
from casework.workflow.display.times import local_text, stamped
from casework.workflow.durations import hours_minutes, spoken
from casework.workflow.errors import InvalidInput


def intake_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options of :data:`~casework.workflow.cases.intake.INTAKE` on ``command``, in
    its order (attributes as repeated ``--attr K=V``, times as ``--received-at ISO``)."""
    for field in reversed(INTAKE):
        extra: dict[str, Any] = {"metavar": {"instant": "ISO", "attributes": "K=V"}.get(field.kind)}
        if field.kind == "attributes":
            extra["multiple"] = True
        elif field.default is not None:
            extra.update(default=field.default, show_default=True)
        command = click.option(
            field.option, field.name, required=field.required, help=field.help, **extra
        )(command)
    return command


@click.command("open", cls=CaseworkCommand)
@intake_options
@click.option(
    "--actor", default="intake", show_default=True, envvar="CASEWORK_ACTOR",
    help="First receiver: owns the case (default: $CASEWORK_ACTOR, else intake).",
)  # fmt: skip
@database_options
@json_option
@handle_errors
def open_command(
    actor: str,
    db_url: str | None,
    config_path: str | None,
    as_json: bool,
    received_at: str | None,
    attributes: tuple[str, ...],
    **values: Any,
) -> None:
    """Open a case; prints its id (with --json, the case)."""
    attrs = {k: str(v) for k, v in parse_data(attributes, "--attr").items()}
    with engine_for(db_url, config_path) as engine:
        received = None if received_at is None else typed_time(received_at, "--received-at", engine)
        case = engine.open_case(actor=actor, received_at=received, attributes=attrs, **values)
        warn_unreachable(engine, case.owner)
    if as_json:
        emit_json(case.to_json())
    else:
        click.echo(case.id)


@click.command("fire", cls=CaseworkCommand)
@click.argument("case_id")
@click.argument("event")
@actor_option("Who does it")
@click.option("--note", default=None, help="Free text kept with the event.")
@click.option("--data", "pairs", multiple=True, metavar="K=V", help="Event data, repeatable.")
@click.option("--at", default=None, metavar="ISO", help="When it happened (back-fill).")
@click.option(
    "--expected-version",
    type=click.IntRange(1, 2**31 - 1),
    default=None,
    help="Refuse if the case moved on.",
)
@click.option(
    "--role",
    type=click.Choice(["agent", "supervisor", "admin"]),
    default=None,
    help="Decide within this role's [authority] (remedies, refunds, compensation, partner "
    "sanctions); a decision above it is refused (exit 2). Default: the actor's role in "
    "[authority.actors], else unchecked.",
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
    role: str | None,
    db_url: str | None,
    config_path: str | None,
    as_json: bool,
) -> None:
    """Apply EVENT to CASE_ID (apologise, confirm_needs, resolve, follow_up, note, ...).

    With --role (or a role [authority.actors] gives the actor) the decision must be
    within that role's authority: a remedy, a refund or compensation above it, or a
    partner sanction, is refused naming who decides it (escalate_now takes it there).
    """
    data = parse_data(pairs)
    with engine_for(db_url, config_path) as engine:
        role = role or engine.settings.authority.role_of(actor)
        when = None if at is None else typed_time(at, "--at", engine)
        case_id = engine.resolve(case_id)
        before = engine.get(case_id)
        machine = engine.registry.get(before.machine, before.machine_version)
        for key in machine.time_fields.get(event, ()):  # a window or a day, typed as people do
            if isinstance(data.get(key), str):
                data[key] = typed_time(data[key], f"--data {key}", engine).isoformat()
        case = engine.fire(
            case_id,
            event,
            actor=actor,
            data=data,
            note=note,
            at=when,
            expected_version=expected_version,
            role=role,
        )
        if case.owner != before.owner:
            warn_unreachable(engine, case.owner)
    if as_json:
        emit_json(case.to_json())
    else:
        click.echo(f"{case.id}: {event}: {before.state} -> {case.state} (version {case.version})")


@click.command("show", cls=CaseworkCommand)
@click.argument("case_id")
@database_options
@json_option
@handle_errors
def show_command(case_id: str, db_url: str | None, config_path: str | None, as_json: bool) -> None:
    """Show a case as a person reads it: who has it, where it stands, each SLA clock
    and the next deadlines (--json: every field, as programs read it)."""
    with engine_for(db_url, config_path, reads=True) as engine:
        case = engine.get(engine.resolve(case_id))
        explained = None if as_json else engine.explain_sla(case.id)
        zone = display_zone(engine).zone
        now = engine.clock.now()
    if as_json:
        emit_json(case.to_json())
        return
    assert explained is not None
    for line in case_lines(case, explained, zone, now):
        click.echo(line)


def case_lines(case: Any, explained: dict[str, Any], zone: tzinfo, now: datetime) -> list[str]:
    """The lines of ``show`` for a person, times in ``zone``."""
    waiting = explained.get("waiting")
    rows = [
        ("case", f"{case.id} ({case.machine} v{case.machine_version})"),
        ("state", f"{case.state}" + (f", waiting on the {waiting}" if waiting else "")),
        ("owner", f"{case.owner}" + (f" · branch {case.branch}" if case.branch else "")),
        ("customer", case.customer + (f" · contact {case.contact}" if case.contact else "")),
        ("complaint", " · ".join(x for x in (case.channel, case.category, case.priority) if x)),
        ("received", stamped(case.received_at, zone)),
        ("escalation", f"level {case.escalation_level}" if case.escalation_level else "none"),
        ("summary", case.summary),
    ]
    if case.facts:
        facts = " · ".join(f"{k} {v}" for k, v in sorted(case.facts.items()))
        rows.insert(-1, ("facts", facts))
    width = max(display_width(k) for k, _ in rows)
    lines = [f"{k.rjust(width)}  {v}" for k, v in rows]
    lines.append("")
    for clock in explained["clocks"]:
        lines.append("  " + _clock_sentence(clock, zone))
    due = [_due_text(d, zone, now) for d in sorted(case.deadlines, key=lambda d: d["due_at"])]
    lines.append("  next: " + ("; ".join(due) if due else "nothing pending"))
    return lines


def _due_text(deadline: Mapping[str, Any], zone: tzinfo, now: datetime) -> str:
    """``first_response target at 2026-11-04 09:00:00 +08:00 (in 17h 20m)``."""
    at = parse_instant(deadline["due_at"], "due_at")
    away = f"in {spoken(at - now, 'en')}" if at >= now else f"{spoken(now - at, 'en')} ago"
    what = deadline["kind"]
    if what in TIMER_EVENTS.values():  # a timer: the window, the unit's time, the call
        return f"{deadline['clock']} timer runs out at {stamped(at, zone)} ({away})"
    return f"{deadline['clock']} {what} at {stamped(at, zone)} ({away})"


def _clock_sentence(clock: dict[str, Any], zone: tzinfo) -> str:
    """``first response: due in 17h 20m, at 2026-11-04 09:00:00 +08:00 (1d target,
    office hours)``; the time left is working time on the clock's calendar."""
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
        state = f"due in {spoken(target - used, 'en')}"
        if clock.get("target_at"):
            state += f", at {stamped(clock['target_at'], zone)}"
    if not clock.get("counting", clock.get("running")):
        state += ", paused" if clock.get("running") else ", stopped"
    return f"{name}: {state} ({terms})"


FILTERS = ("owner", "branch", "customer", "channel", "category", "priority")
"""The case fields ``list`` filters on, besides the state."""


def _filter_options(func: Any) -> Any:
    for name in reversed(FILTERS):
        func = click.option(f"--{name}", default=None, help=f"Only cases of this {name}.")(func)
    return func


@click.command("list", cls=CaseworkCommand)
@click.option("--state", default=None, help="Only cases in this state (see 'casework machines').")
@_filter_options
@click.option(
    "--open",
    "only_open",
    is_flag=True,
    help="Only open work: neither closed nor resting (a followed-up complaint is done "
    "unless reopened); next deadline first by default.",
)
@click.option("--closed", "only_closed", is_flag=True, help="Only closed cases.")
@click.option(
    "--since",
    default=None,
    metavar="TIME",
    help="Received from (a date or time in the display zone, or ISO with offset).",
)
@click.option(
    "--until", default=None, metavar="TIME", help="Received before (a date: through its end)."
)
@click.option(
    "--sort",
    type=click.Choice(["due", "received"]),
    default=None,
    help="due: next deadline first (default for --open); received: oldest first.",
)
@click.option(
    "--overdue", is_flag=True, help="Only cases past an SLA target: owner, level, lateness."
)
@click.option(
    "--limit",
    type=WHOLE,
    default=None,
    help="At most this many (default 50 in the table; a page is at most 500).",
)
@click.option("--cursor", default=None, help="Continue after the page that printed this cursor.")
@click.option(
    "--paged",
    is_flag=True,
    help="With --json: one page as {items, next_cursor}, as the HTTP API gives it.",
)
@database_options
@json_option
@handle_errors
def list_command(
    state: str | None,
    only_open: bool,
    only_closed: bool,
    since: str | None,
    until: str | None,
    sort: str | None,
    overdue: bool,
    limit: int | None,
    cursor: str | None,
    paged: bool,
    db_url: str | None,
    config_path: str | None,
    as_json: bool,
    **filters: str | None,
) -> None:
    """List cases: 50 at a time, with the cursor of the next page. Open cases come
    next deadline first; others oldest received first. --overdue: who is late, the
    latest first, with counts per branch.

    --json prints every matching case as a JSON array (as it always has), or with
    --limit/--cursor that page; --json --paged prints one page as
    {"items": [...], "next_cursor": ...}.
    """
    if only_open and only_closed:
        raise InvalidInput("--open and --closed exclude each other", field="open")
    given = {k: v for k, v in filters.items() if v is not None}
    with engine_for(db_url, config_path, reads=True) as engine:
        query = CaseQuery(
            state=state,
            **given,  # type: ignore[arg-type]  # the FILTERS: text columns
            states=engine.closed_states() if only_closed else None,
            not_states=done_states(engine.registry) if only_open else None,
            received_from=None if since is None else typed_time(since, "--since", engine),
            received_until=None
            if until is None
            else typed_time(until, "--until", engine, end_of_day=True),
        )
        if overdue:
            _list_overdue(engine, query, limit, as_json)
            return
        by_due = sort == "due" or (sort is None and only_open)
        zone = display_zone(engine)
        if as_json and not paged and limit is None and cursor is None:
            emit_json([c.to_json() for c in _every(engine, query, by_due)])
            return
        page = engine.page(query, limit=limit, cursor=cursor, by_due=by_due, count=not as_json)
    if as_json:
        if paged:
            emit_json(page.to_json())
        else:
            emit_json([c.to_json() for c in page.items])
            if page.next_cursor:
                note(f"more cases follow: --cursor {page.next_cursor}")
        return
    _case_table(page.items, zone, by_due)
    shown = len(page.items)
    if page.next_cursor:
        click.echo(
            f"{shown} of {page.total} cases; the next {shown}: add --cursor {page.next_cursor}"
        )
    elif page.total and page.total > shown:
        click.echo(f"the last {shown} of {page.total} cases")


def _every(engine: Any, query: CaseQuery, by_due: bool) -> Iterator[Any]:
    """Every case matching ``query``, page by page."""
    cursor = None
    while True:
        page = engine.page(query, limit=MAX_PAGE, cursor=cursor, by_due=by_due)
        yield from page.items
        cursor = page.next_cursor
        if cursor is None:
            return


def _case_table(cases: list[Any], zone: Any, by_due: bool) -> None:
    now_rows = []
    for c in cases:
        due = min((d["due_at"] for d in c.deadlines), default=None)
        now_rows.append(
            (
                c.id,
                c.state,
                c.owner,
                c.branch or "-",
                c.category or "-",
                local_text(c.received_at, zone.zone),
                "-" if due is None else local_text(due, zone.zone),
            )
        )
    header = ("id", "state", "owner", "branch", "category", f"received ({zone.name})", "next due")
    table(header, now_rows)


def _list_overdue(engine: Any, query: CaseQuery, limit: int | None, as_json: bool) -> None:
    """``list --overdue``: late clocks of the cases ``query`` matches, counts per branch."""
    late = engine.overdue(query=query)
    late = late[:limit] if limit else late
    if as_json:
        emit_json([o.to_json() for o in late])
        return
    from casework.workflow.cli.sla import overdue_rows

    table(("id", "owner", "branch", "clock", "level", "late"), overdue_rows(late))
    cases = {o.case.id: o.case for o in late}
    branches = Counter(case.branch or "-" for case in cases.values())
    if not branches:
        click.echo("nothing is late")
        return
    counts = ", ".join(
        f"{b} {n}" for b, n in sorted(branches.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    clocks = f"{len(late)} late clock" + ("s" if len(late) != 1 else "")
    click.echo(f"{len(cases)} cases late ({clocks}); by branch: {counts}")


@click.command("history", cls=CaseworkCommand)
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
        zone = display_zone(engine)
    if as_json:
        emit_json([e.to_json() for e in events])
        return
    rows = [
        (
            str(e.seq),
            local_text(e.occurred_at, zone.zone),
            e.event,
            f"{e.from_state or '-'} -> {e.to_state}",
            e.actor,
            json.dumps(dict(e.data), ensure_ascii=False) if e.seq > 1 else "",
        )
        for e in events
    ]
    table(("seq", f"at ({zone.name})", "event", "transition", "actor", "data"), rows)


@click.command("replay", cls=CaseworkCommand)
@click.argument("case_id")
@click.option("--at", default=None, metavar="ISO", help="Rebuild the state as it stood then.")
@database_options
@json_option
@handle_errors
def replay_command(
    case_id: str, at: str | None, db_url: str | None, config_path: str | None, as_json: bool
) -> None:
    """Rebuild a case's state from its history alone, with its SLA clocks as they stood."""
    with engine_for(db_url, config_path, read_only=True) as engine:
        when = None if at is None else typed_time(at, "--at", engine)
        replay = engine.replay(engine.resolve(case_id), when)
        zone = display_zone(engine).zone
    if as_json:
        emit_json(replay.to_json())
        return
    click.echo(
        f"{case_id} at {stamped(replay.at, zone)}: state {replay.state}, version {replay.version}, "
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
