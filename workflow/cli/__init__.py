"""The ``casework`` command: the contract other programs rely on.

The database comes from ``--db URL``, else ``CASEWORK_DATABASE_URL``, else
``sqlite:///casework.db``; settings from ``--config FILE``, else ``CASEWORK_CONFIG``,
else built-in defaults. ``--json`` prints one JSON document on stdout and nothing
else. Errors are one line on stderr; exit status 2 for bad input, 1 for a failed
check, 0 for success.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from storage import iso
from workflow.audit.checkpoints import CHECKPOINT, check_checkpoint, read_keyring, statement_problem
from workflow.audit.export_check import FILE, verify_export
from workflow.cases.catalog import installed_registry
from workflow.cli.audit import (
    checkpoint_command,
    export_command,
    keys_group,
    read_checkpoint,
    report_group,
)
from workflow.cli.deliver import deliver_command
from workflow.cli.demo import demo_command
from workflow.cli.machines import machines_command
from workflow.cli.outbox import outbox_group
from workflow.cli.sla import overdue_rows, replan_command, sla_group, tick_command
from workflow.cli.support import (
    WHOLE,
    CaseworkGroup,
    database_options,
    emit_json,
    engine_for,
    handle_errors,
    json_option,
    parse_data,
    table,
    warn_unreachable,
)
from workflow.cli.worker import worker_command
from workflow.clock import parse_instant
from workflow.engine import POLICIES
from workflow.errors import InvalidInput
from workflow.logs import configure_logging
from workflow.results import VerifyReport
from workflow.sla.views import hours_minutes


@click.group(cls=CaseworkGroup, context_settings={"help_option_names": ["-h", "--help"]})
@database_options
@click.option(
    "--log-level",
    default=None,
    metavar="LEVEL",
    help="debug, info, warning (default) or error; log lines go to stderr.",
)
@click.version_option(package_name="casework")
def main(db_url: str | None, config_path: str | None, log_level: str | None) -> None:
    """casework: customer complaints as persisted state machines with a tamper-evident history.

    Every case runs through a versioned state machine; every event is stored in a
    hash chain that `casework verify` checks and `casework replay` rebuilds.
    """
    configure_logging(log_level or os.environ.get("CASEWORK_LOG_LEVEL", "warning"))


@main.command("open")
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
@click.option("--actor", default="intake", show_default=True, help="First receiver: owns the case.")
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


@main.command("fire")
@click.argument("case_id")
@click.argument("event")
@click.option("--actor", required=True, help="Who does it.")
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


@main.command("show")
@click.argument("case_id")
@database_options
@json_option
@handle_errors
def show_command(case_id: str, db_url: str | None, config_path: str | None, as_json: bool) -> None:
    """Show a case with its deadlines."""
    with engine_for(db_url, config_path) as engine:
        case = engine.get(case_id)
    document = case.to_json()
    if as_json:
        emit_json(document)
        return
    for key, value in document.items():
        if key == "deadlines":
            value = "; ".join(f"{d['clock']} {d['kind']} due {d['due_at']}" for d in value)
            value = value or "none pending"
        click.echo(f"{key:>17}: {value}")


@main.command("list")
@click.option("--state", default=None, help="Only cases in this state.")
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
) -> None:
    """List cases, oldest received first (with --overdue: the latest first)."""
    if overdue:
        with engine_for(db_url, config_path) as engine:
            late = [o for o in engine.overdue() if state is None or o.case.state == state]
        late = late[:limit] if limit else late
        if as_json:
            emit_json([o.to_json() for o in late])
        else:
            table(("id", "owner", "branch", "clock", "level", "late"), overdue_rows(late))
        return
    with engine_for(db_url, config_path) as engine:
        cases = engine.list(state=state, limit=limit)
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


@main.command("history")
@click.argument("case_id")
@database_options
@json_option
@handle_errors
def history_command(
    case_id: str, db_url: str | None, config_path: str | None, as_json: bool
) -> None:
    """The events of a case, oldest first."""
    with engine_for(db_url, config_path, read_only=True) as engine:
        events = engine.history(case_id)
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


@main.command("replay")
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
        replay = engine.replay(case_id, when)
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


@main.command("verify")
@click.argument("case_id", required=False)
@click.option(
    "--workers",
    type=click.IntRange(1, 2),
    default=min(2, os.cpu_count() or 1),
    show_default=True,
    help="Processes checking a whole database (each takes half the cases).",
)
@click.option(
    "--export",
    "export_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="Check this export file on its own, without the database.",
)
@click.option(
    "--checkpoint",
    "checkpoint_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="Also prove that nothing recorded before this signed checkpoint changed.",
)
@click.option(
    "--keyring",
    default=None,
    type=click.Path(dir_okay=False),
    help="Public keys for --checkpoint (default: $CASEWORK_KEYRING); with --export, "
    "require the export to be signed by one of them.",
)
@database_options
@json_option
@handle_errors
def verify_command(
    case_id: str | None,
    workers: int,
    export_path: str | None,
    checkpoint_path: str | None,
    keyring: str | None,
    db_url: str | None,
    config_path: str | None,
    as_json: bool,
) -> None:
    """Check every hash chain and that every case equals its replay (exit 1 if not).

    With --export FILE, check an export instead: chains, hashes, replay through the
    machines (the SLA clocks are compared with case rows, which only a database has),
    and that the file is whole and in order. With --checkpoint FILE, also
    check the checkpoint's signature against the keyring and that the history it
    signed is still there unchanged, even if someone rewrote a chain with fresh hashes.
    """
    show_progress = not as_json and sys.stderr.isatty()

    def progress(cases: int, events: int) -> None:
        click.echo(f"\rverified {cases:,} cases, {events:,} events", err=True, nl=False)

    if checkpoint_path is not None:
        if case_id is not None or export_path is not None:
            raise InvalidInput("--checkpoint checks the whole database: no case id or --export")
        ring = keyring or os.environ.get("CASEWORK_KEYRING")
        if not ring:
            raise InvalidInput("give --keyring FILE (or set CASEWORK_KEYRING)", field="keyring")
        checkpoint = read_checkpoint(checkpoint_path)
        keys = read_keyring(ring)
        with engine_for(db_url, config_path, read_only=True) as engine:
            report = check_checkpoint(engine, checkpoint, keys)
    elif export_path is not None:
        if case_id is not None:
            raise InvalidInput("give a case id or --export, not both", field="export")
        export_keys = None if keyring is None else read_keyring(keyring)
        report = verify_export(
            export_path,
            installed_registry(),
            progress=(lambda n: progress(0, n)) if show_progress else None,
            workers=workers,
            check_signature=None
            if export_keys is None
            else lambda statement, key, value: statement_problem(
                statement, key, value, export_keys, "export"
            ),
        )
    else:
        with engine_for(db_url, config_path, read_only=True) as engine:
            report = engine.verify(
                case_id, progress=progress if show_progress else None, workers=workers
            )
    if show_progress:
        click.echo("", err=True)
    if as_json:
        emit_json(report.to_json())
    else:
        for line in verify_lines(report):
            click.echo(line)
    if not report.ok:
        sys.exit(1)


WHOLE_FILE = {FILE: "export", CHECKPOINT: "checkpoint", POLICIES: "SLA policies"}
"""The ``case_id`` of problems of a whole file, and what the file is."""


def verify_lines(report: VerifyReport) -> list[str]:
    """What ``verify`` says to a person: what was checked, then each problem and a count."""
    lines = []
    checked = report.checkpoint
    if checked is not None:
        holds = "still hold" if checked["history_holds"] else "NO LONGER HOLD"
        lines.append(
            f"checkpoint signed by key {checked['key_id']} (signature valid) states the "
            f"history at {checked['at']}: its {checked['cases']} cases, {checked['events']} "
            f"events and root {checked['root'][:16]}... {holds}"
        )
    if report.signature is not None:
        lines.append(
            f"export signed by key {report.signature['key_id']} (signature valid): its "
            "header, counts and every case's head are as signed"
        )
    files = [p for p in report.problems if p.case_id in WHOLE_FILE]
    cases = [p for p in report.problems if p.case_id not in WHOLE_FILE]
    for problem in files:
        lines.append(f"BROKEN {WHOLE_FILE[problem.case_id]}: {problem.reason}")
    for problem in cases:
        where = "case row" if problem.seq is None else f"event {problem.seq}"
        lines.append(f"BROKEN case {problem.case_id} {where}: {problem.reason}")
    if report.ok:
        lines.append(f"ok: {report.cases} cases, {report.events} events verified")
    elif cases:
        failed = len({p.case_id for p in cases})
        lines.append(f"{failed} of {report.cases} cases failed verification")
    return lines


main.add_command(machines_command)
main.add_command(tick_command)
main.add_command(sla_group)
main.add_command(replan_command)
main.add_command(worker_command)
main.add_command(deliver_command)
main.add_command(outbox_group)
main.add_command(export_command)
main.add_command(checkpoint_command)
main.add_command(keys_group)
main.add_command(report_group)
main.add_command(demo_command)


if __name__ == "__main__":
    main()
