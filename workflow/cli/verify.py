"""``casework verify``: hash chains, replays, exports and checkpoints checked."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from casework.workflow.audit.export_check import verify_export
from casework.workflow.catalog import installed_registry
from casework.workflow.cli.support import (
    CaseworkCommand,
    database_options,
    emit_json,
    engine_for,
    handle_errors,
    json_option,
)
from casework.workflow.errors import InvalidInput
from casework.workflow.results import CHECKPOINT, EXPORT_FILE, POLICIES, VerifyReport


@click.command("verify", cls=CaseworkCommand)
@click.argument("case_id", required=False)
@click.option(
    "--workers",
    type=click.IntRange(1, 2),
    default=None,
    help="Processes checking a whole database or export (each takes half the cases). "
    "Default: 2 on a machine with two cores for a history of 200,000 events or more (an "
    "export of 8 MiB or more), where the second process's start-up pays; else 1.",
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
    workers: int | None,
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
        from casework.workflow.audit.checkpoints import (  # signing extra
            check_checkpoint,
            read_keyring,
        )
        from casework.workflow.cli.signing import read_checkpoint

        checkpoint = read_checkpoint(checkpoint_path)
        keys = read_keyring(ring)
        with engine_for(db_url, config_path, read_only=True, audit=True) as engine:
            report = check_checkpoint(engine.context, checkpoint, keys)
    elif export_path is not None:
        if case_id is not None:
            raise InvalidInput("give a case id or --export, not both", field="export")
        signature = None
        if keyring is not None:
            from casework.workflow.audit.checkpoints import read_keyring, statement_problem

            export_keys = read_keyring(keyring)

            def signature(statement: Any, key: Any, value: Any) -> str | None:
                return statement_problem(statement, key, value, export_keys, "export")

        from casework.workflow.audit.parallel_verify import usable_workers

        report = verify_export(
            export_path,
            installed_registry(),
            progress=(lambda n: progress(0, n)) if show_progress else None,
            workers=usable_workers() if workers is None else workers,
            check_signature=signature,
        )
    else:
        with engine_for(db_url, config_path, read_only=True, audit=True) as engine:
            report = engine.verify(
                None if case_id is None else engine.resolve(case_id),
                progress=progress if show_progress else None,
                workers=workers,
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


WHOLE_FILE = {EXPORT_FILE: "export", CHECKPOINT: "checkpoint", POLICIES: "SLA policies"}
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
        covered = (
            "header, counts and every field of every record are as signed"
            if report.signature.get("covers") == "every record"
            else "header, counts and every case's head are as signed; this format 1 "
            "export's signature does not cover personal values nor machine versions "
            "(export it again to have them covered)"
        )
        lines.append(
            f"export signed by key {report.signature['key_id']} (signature valid): its {covered}"
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
