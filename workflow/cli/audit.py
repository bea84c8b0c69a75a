"""Auditors' commands: ``export``, ``checkpoint``, ``keys`` and ``report``."""

from __future__ import annotations

import json
import os
import sys
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import click

from storage import iso
from workflow.audit.checkpoints import (
    Checkpoint,
    export_signer,
    load_private_key,
    make_checkpoint,
    new_key,
    rotate_key,
)
from workflow.audit.export import FORMATS, write_export
from workflow.audit.private_files import private_file
from workflow.cli.support import (
    database_options,
    emit_json,
    engine_for,
    handle_errors,
    json_option,
)
from workflow.clock import parse_instant
from workflow.errors import InvalidInput
from workflow.reports.business import (
    Period,
    complaints_page,
    complaints_report,
    read_dispatch,
    sla_page,
    sla_report,
)
from workflow.reports.case_page import case_report


def _progress(label: str) -> Any:
    def show(count: int) -> None:
        click.echo(f"\r{label} {count:,} events", err=True, nl=False)

    return show


@click.command("export")
@click.option("--since", default=None, metavar="ISO", help="Events that occurred at or after this.")
@click.option("--until", default=None, metavar="ISO", help="Events that occurred before this.")
@click.option("--case", "case_id", default=None, help="Only this case's events.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="jsonl", show_default=True)
@click.option(
    "--out",
    default=None,
    type=click.Path(dir_okay=False),
    help="Write to this file (created private, complete or not at all); default stdout.",
)
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@click.option(
    "--sign",
    "sign_key",
    default=None,
    type=click.Path(dir_okay=False),
    help="Sign the export with this Ed25519 key (the checkpoint key will do).",
)
@database_options
@handle_errors
def export_command(
    since: str | None,
    until: str | None,
    case_id: str | None,
    fmt: str,
    out: str | None,
    force: bool,
    sign_key: str | None,
    db_url: str | None,
    config_path: str | None,
) -> None:
    """Write the events with their hashes, in the documented casework-export format.

    One snapshot, streamed: memory stays flat over millions of events. `casework
    verify --export FILE` checks the file without the database. An unsigned export
    proves each event and chain in it, not that it is whole: with --sign KEY its end
    record carries a signature over the header, the counts and every case's head,
    which `verify --export FILE --keyring RING` checks.

    \b
    Examples:
      casework export --out november.jsonl --since 2026-11-01T00:00+08:00
      casework export --out all.jsonl --sign /etc/casework/signing.key
    """
    signer = None if sign_key is None else export_signer(load_private_key(sign_key))
    low = None if since is None else parse_instant(since, "--since")
    high = None if until is None else parse_instant(until, "--until")
    if low is not None and high is not None and high <= low:
        raise InvalidInput("--until must be later than --since", field="until")
    show = out is not None and sys.stderr.isatty()
    with engine_for(db_url, config_path, read_only=True) as engine:
        if case_id is not None:
            engine.get(case_id)
        policies = engine.store.stored_policies()
        target: Any = nullcontext(sys.stdout) if out is None else private_file(out, replace=force)
        with target as file:
            stream: IO[str] = file
            summary = write_export(
                engine.store, stream, fmt=fmt, since=low, until=high, case_id=case_id,
                policies=policies, now=engine.clock.now(),
                progress=_progress("exported") if show else None, sign=signer,
            )  # fmt: skip
    if show:
        click.echo("", err=True)
    if out is not None:
        click.echo(f"exported {summary.events:,} events of {summary.cases:,} cases to {out}")
        click.echo(f"digest {summary.digest}")


def _key_path(key: str | None) -> str:
    path = key or os.environ.get("CASEWORK_SIGNING_KEY")
    if not path:
        raise InvalidInput("give --key FILE or set CASEWORK_SIGNING_KEY", field="key")
    return path


@click.group("keys")
def keys_group() -> None:
    """The Ed25519 key that signs checkpoints, and the keyring that verifies them.

    Keep the private key off the database server, readable only by the account that
    runs `casework checkpoint` (it is created 0600). Give auditors the keyring
    (KEY.pub by default): it holds every public key, old ones included.
    """


_KEY = click.option(
    "--key",
    default=None,
    type=click.Path(dir_okay=False),
    help="The private key file. Default: $CASEWORK_SIGNING_KEY.",
)
_KEYRING = click.option(
    "--keyring",
    default=None,
    type=click.Path(dir_okay=False),
    help="The public keyring file. Default: the key's path with .pub added.",
)


@keys_group.command("generate")
@_KEY
@_KEYRING
@handle_errors
def generate_command(key: str | None, keyring: str | None) -> None:
    """Create a new signing key (refused if the file exists) and add it to the keyring."""
    path = _key_path(key)
    made = new_key(path, keyring or f"{path}.pub", datetime.now(UTC), replace=False)
    click.echo(f"key {made} written to {path}; public key in {keyring or f'{path}.pub'}")


@keys_group.command("rotate")
@_KEY
@_KEYRING
@handle_errors
def rotate_command(key: str | None, keyring: str | None) -> None:
    """Replace the signing key with a new one; the keyring keeps the old public key."""
    path = _key_path(key)
    old, new = rotate_key(path, keyring or f"{path}.pub", datetime.now(UTC))
    click.echo(f"key {old} retired, key {new} now signs; both are in the keyring")


@click.command("checkpoint")
@_KEY
@click.option(
    "--at",
    default=None,
    metavar="ISO",
    help="The instant to state. Default: a minute ago, so that no transaction is still "
    "committing behind it.",
)
@click.option("--out", default=None, type=click.Path(dir_okay=False), help="Write to this file.")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@database_options
@handle_errors
def checkpoint_command(
    key: str | None,
    at: str | None,
    out: str | None,
    force: bool,
    db_url: str | None,
    config_path: str | None,
) -> None:
    """Sign a statement of the whole history recorded a minute ago (or by --at).

    It holds the database's identity, the instant, the numbers of cases and events and
    a Merkle root over every case's head hash. `casework verify --checkpoint FILE`
    later proves nothing recorded before it changed. Take one daily, and keep copies
    where the database's administrators cannot reach.
    """
    signing = load_private_key(_key_path(key))
    moment = None if at is None else parse_instant(at, "--at")
    with engine_for(db_url, config_path, read_only=True) as engine:
        checkpoint = make_checkpoint(engine, signing, moment)
    text = json.dumps(checkpoint.to_json(), indent=2) + "\n"
    if out is None:
        click.echo(text, nl=False)
        return
    with private_file(out, replace=force) as file:
        file.write(text)
    click.echo(
        f"checkpoint of {checkpoint.cases:,} cases, {checkpoint.events:,} events at "
        f"{iso(checkpoint.at)} signed by key {checkpoint.key_id}: {out}"
    )


def read_checkpoint(path: str) -> Checkpoint:
    """The checkpoint in file ``path``; InvalidInput if unreadable or not one."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise InvalidInput(f"cannot read checkpoint {path}: {err.strerror}") from None
    except ValueError:
        raise InvalidInput(f"{path} is not a casework checkpoint: not JSON") from None
    return Checkpoint.from_json(document, path)


@click.group("report")
def report_group() -> None:
    """Reports for auditors and the business, as self-contained HTML pages or JSON."""


@report_group.command("case")
@click.argument("case_id")
@click.option(
    "--html",
    "html_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Write the page to this file.",
)
@click.option("--force", is_flag=True, help="Replace the file if it exists.")
@database_options
@handle_errors
def report_case_command(
    case_id: str, html_path: str, force: bool, db_url: str | None, config_path: str | None
) -> None:
    """A page with the case's timeline, SLA clocks as bars and its chain's verification."""
    with engine_for(db_url, config_path, read_only=True) as engine:
        page = case_report(engine, case_id)
    with private_file(html_path, replace=force) as file:
        file.write(page)
    click.echo(f"case {case_id}: {html_path}")


def _period(start: str, end: str) -> Period:
    return Period(parse_instant(start, "--from"), parse_instant(end, "--to"))


_PERIOD = [
    click.option("--from", "start", required=True, metavar="ISO", help="Cases received from."),
    click.option("--to", "end", required=True, metavar="ISO", help="... up to (excluded)."),
    click.option("--html", "html_path", default=None, type=click.Path(dir_okay=False),
                 help="Write a self-contained HTML page with charts to this file."),
    click.option("--force", is_flag=True, help="Replace the --html file if it exists."),
]  # fmt: skip


def _period_options(func: Any) -> Any:
    for option in reversed(_PERIOD):
        func = option(func)
    return func


def _publish(
    report: dict[str, Any], page: Any, html_path: str | None, force: bool, as_json: bool
) -> None:
    if html_path is not None:
        with private_file(html_path, replace=force) as file:
            file.write(page(report))
    if as_json:
        emit_json(report)
    elif html_path is not None:
        click.echo(f"{report['report']} report of {report['cases']:,} cases: {html_path}")


@report_group.command("sla")
@_period_options
@database_options
@json_option
@handle_errors
def report_sla_command(
    start: str, end: str, html_path: str | None, force: bool,
    db_url: str | None, config_path: str | None, as_json: bool,
) -> None:  # fmt: skip
    """SLA compliance per clock, branch, category, channel and owner; first-response times;
    escalations per level; who hands cases on; the weekly trend."""
    period = _period(start, end)
    with engine_for(db_url, config_path, read_only=True) as engine:
        report = sla_report(engine, period)
    _publish(report, sla_page, html_path, force, as_json)
    if not as_json:
        for row in report["clocks"]:
            rate = "-" if row["compliance"] is None else f"{row['compliance']:.1f}%"
            click.echo(
                f"{row['name']}: {rate} met ({row['met']} met, {row['breached']} breached, "
                f"{row['open']} open)"
            )


@report_group.command("complaints")
@_period_options
@click.option(
    "--dispatch", default=None, type=click.Path(dir_okay=False),
    help="CSV of dispatched jobs (columns branch, category, jobs) for the rate per 10,000.",
)  # fmt: skip
@database_options
@json_option
@handle_errors
def report_complaints_command(
    start: str, end: str, html_path: str | None, force: bool, dispatch: str | None,
    db_url: str | None, config_path: str | None, as_json: bool,
) -> None:  # fmt: skip
    """The complaint structure: share per category, per branch and channel, complaints per
    10,000 dispatched jobs per branch and category, complaints per week."""
    period = _period(start, end)
    jobs = None if dispatch is None else read_dispatch(dispatch)
    with engine_for(db_url, config_path, read_only=True) as engine:
        report = complaints_report(engine, period, jobs)
    _publish(report, complaints_page, html_path, force, as_json)
    if not as_json:
        for row in report["by_category"]:
            click.echo(f"{row['category']}: {row['complaints']} ({row['share']:.1f}%)")
