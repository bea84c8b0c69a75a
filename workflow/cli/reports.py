"""``casework report``: the case page and the business reports (the ``reports`` extra)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import click

from casework.workflow.audit.private_files import private_file
from casework.workflow.cli.hints import as_options
from casework.workflow.cli.support import (
    CaseworkSubgroup,
    database_options,
    display_zone,
    emit_json,
    engine_for,
    handle_errors,
    json_option,
    note,
    table,
)
from casework.workflow.display.periods import Period, period_of
from casework.workflow.labels import LANGUAGES, language
from casework.workflow.reports.business import (
    complaints_page,
    complaints_report,
    read_dispatch,
    sla_page,
    sla_report,
)
from casework.workflow.reports.case_page import case_report

if TYPE_CHECKING:
    from casework.workflow.engine import Engine


@click.group("report", cls=CaseworkSubgroup)
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
@click.option("--lang", type=click.Choice(LANGUAGES), default=None, help="The page's "
              "language (default: [display] language, else $LANG's, else en).")  # fmt: skip
@database_options
@handle_errors
def report_case_command(
    case_id: str,
    html_path: str,
    force: bool,
    lang: str | None,
    db_url: str | None,
    config_path: str | None,
) -> None:
    """A page with the case's timeline, SLA clocks as bars and its chain's verification."""
    with engine_for(db_url, config_path, read_only=True) as engine:
        case_id = engine.resolve(case_id)
        zone = display_zone(engine).zone
        page = case_report(engine.context, case_id, zone, page_language(engine, lang))
    with private_file(html_path, replace=force) as file:
        file.write(page)
    click.echo(f"case {case_id}: {html_path}")


def _period(engine: Engine, asked: dict[str, str | None]) -> Period:
    period, notes = period_of(**asked, zone=display_zone(engine).zone, now=engine.clock.now())
    for text in notes:
        note(as_options(text))
    return period


_PERIOD = [
    click.option("--from", "start", metavar="DATE", help="Cases received from this day "
                 "(or time; the display zone unless an offset is given)."),
    click.option("--to", "end", metavar="DATE", help="... through this day (a time: up to it). "
                 "Default: now."),
    click.option("--month", metavar="YYYY-MM", help="Cases received in this month."),
    click.option("--last", metavar="SPAN", help="Cases received in the last 24h, 7d, 4w, ..."),
    click.option("--branch", default=None, help="Only the cases of this branch (a branch of "
                 "[organisation]: its stores' too)."),
    click.option("--html", "html_path", default=None, type=click.Path(dir_okay=False),
                 help="Write a self-contained HTML page with charts to this file."),
    click.option("--force", is_flag=True, help="Replace the --html file if it exists."),
    click.option("--lang", type=click.Choice(LANGUAGES), default=None, help="The --html "
                 "page's language (default: [display] language, else $LANG's, else en)."),
]  # fmt: skip


LANG_OPTION = _PERIOD[-1]
"""``--lang zh|en``: the language of an ``--html`` page."""


def page_language(engine: Engine, asked: str | None) -> str:
    """The language of a report page: ``--lang``, else ``[display] language``, else the
    one ``$LANG`` names, else English."""
    return language(asked or engine.settings.display_language or os.environ.get("LANG"))


def _period_options(func: Any) -> Any:
    for option in reversed(_PERIOD):
        func = option(func)
    return func


def PERIOD_ONLY(func: Any) -> Any:
    """The period options alone (``--from``, ``--to``, ``--month``, ``--last``,
    ``--branch``), without ``--html``."""
    for option in reversed(_PERIOD[:5]):
        func = option(func)
    return func


def _publish(
    report: dict[str, Any],
    page: Any,
    html_path: str | None,
    force: bool,
    as_json: bool,
    lang: str = "en",
) -> None:
    if html_path is not None:
        with private_file(html_path, replace=force) as file:
            file.write(page(report, lang=lang))
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
    html_path: str | None, force: bool, lang: str | None,
    db_url: str | None, config_path: str | None, as_json: bool, **asked: str | None,
) -> None:  # fmt: skip
    """SLA compliance for a supervisor: a summary (compliance per clock, cases late now by
    escalation level, the worst branches), first response per branch and category, then
    per branch, category, channel and owner; time to first response as percentiles;
    escalations per level; who hands cases on; the weekly trend. Days and weeks are cut
    in the display zone (--tz)."""
    with engine_for(db_url, config_path, read_only=True) as engine:
        report = sla_report(engine.context, _period(engine, asked))
        lang = page_language(engine, lang)
    _publish(report, sla_page, html_path, force, as_json, lang)
    if not as_json:
        click.echo(f"{report['cases']:,} cases received {report['period']}")
        for row in report["clocks"]:
            rate = "-" if row["compliance"] is None else f"{row['compliance']:.1f}%"
            click.echo(
                f"{row['name']}: {rate} met ({row['met']} met, {row['breached']} breached, "
                f"{row['open']} open)"
            )
        late = report["summary"]["late_now"]
        levels = ", ".join(f"level {k}: {n}" for k, n in late["by_level"].items())
        click.echo(f"late now: {late['cases']} cases" + (f" ({levels})" if levels else ""))
        worst = report["summary"]["worst_branches"]
        if worst:
            click.echo(
                "worst first response: "
                + "; ".join(f"{r['name']} {r['compliance']:.1f}%" for r in worst)
            )
        _rollup_table(
            report["first_response_rollup"],
            ("met", "breached", "open", "compliance"),
            lambda r: [str(r["met"]), str(r["breached"]), str(r["open"]),
                       "-" if r["compliance"] is None else f"{r['compliance']:.1f}%"],
        )  # fmt: skip


def _rollup_table(rows: list[dict[str, Any]], columns: tuple[str, ...], cells: Any) -> None:
    """The store -> branch -> company rollup as a table: a branch, its stores indented
    under it, the company's total row last."""
    if not rows:
        return
    click.echo("")
    lines = [
        ["  " + r["name"] if r["level"] == "store" else r["name"], r["level"], *cells(r)]
        for r in rows
    ]
    table(("branch / store", "level", *columns), lines)


@report_group.command("partners")
@click.option("--quarter", required=True, metavar="YYYYQN", help="The quarter, e.g. 2026Q3.")
@click.option("--html", "html_path", default=None, type=click.Path(dir_okay=False),
              help="Write a self-contained HTML page to this file.")  # fmt: skip
@click.option("--force", is_flag=True, help="Replace the --html file if it exists.")
@LANG_OPTION
@database_options
@json_option
@handle_errors
def report_partners_command(
    quarter: str, html_path: str | None, force: bool, lang: str | None,
    db_url: str | None, config_path: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Each partner's quarter (seed 003): 100 points less each fault's deduction, the
    fines, the band (five stars 96-100 down to not qualified under 60), jobs, CSAT and
    suspended settlements; every deduction cites its case, event and hash."""
    from casework.workflow.partners.ratings import partner_report
    from casework.workflow.partners.ratings import quarter as quarter_of
    from casework.workflow.reports.partner_page import partners_page

    with engine_for(db_url, config_path, read_only=True) as engine:
        period = quarter_of(quarter, display_zone(engine).zone)
        report = partner_report(engine.context, period, engine.settings.partners)
        lang = page_language(engine, lang)
    if html_path is not None:
        with private_file(html_path, replace=force) as file:
            file.write(partners_page(report, lang=lang))
    if as_json:
        emit_json(report)
        return
    for row in report["partners"]:
        click.echo(
            f"{row['partner']}: {row['points']} points, {row['band']}, "
            f"fines {row['fines_yuan']} yuan, {row['jobs']} jobs"
            + (", settlement suspended" if row["settlement_suspended"] else "")
        )
    if html_path is not None:
        click.echo(f"partners report of {report['quarter']}: {html_path}")


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
    html_path: str | None, force: bool, lang: str | None, dispatch: str | None,
    db_url: str | None, config_path: str | None, as_json: bool, **asked: str | None,
) -> None:  # fmt: skip
    """The complaint structure: share per category, per branch and channel, complaints per
    10,000 dispatched jobs per branch and category, complaints per week (weeks from
    Monday in the display zone)."""
    jobs = None if dispatch is None else read_dispatch(dispatch)
    with engine_for(db_url, config_path, read_only=True) as engine:
        report = complaints_report(engine.context, _period(engine, asked), jobs)
        lang = page_language(engine, lang)
    _publish(report, complaints_page, html_path, force, as_json, lang)
    if not as_json:
        for row in report["by_category"]:
            click.echo(f"{row['category']}: {row['complaints']} ({row['share']:.1f}%)")
        _rollup_table(
            report["rollup"],
            ("complaints", "jobs", "per 10,000"),
            lambda r: [str(r["complaints"]), str(r["jobs"] or "-"),
                       "-" if r["per_10000"] is None else f"{r['per_10000']:.2f}"],
        )  # fmt: skip


@report_group.command("daily")
@click.option(
    "--date",
    "day",
    metavar="YYYY-MM-DD",
    default=None,
    help="The day reported (default: yesterday in the reader's zone).",
)
@click.option(
    "--branch",
    default=None,
    help="A branch's report (its stores); default: "
    "headquarters' (each branch, the company's total).",
)
@database_options
@json_option
@handle_errors
def report_daily_command(
    day: str | None, branch: str | None, db_url: str | None, config_path: str | None,
    as_json: bool,
) -> None:  # fmt: skip
    """The daily report of returns, exchanges and complaints (seed 003: 退换货及投诉日报)
    as the worker mails it at [reports.daily] at: the returns and exchanges decided and
    the complaints received on the day (cut at midnight in the branch's zone of
    [reports.daily] timezones, else [display] timezone), per store for a branch, per
    branch with the company's total for headquarters."""
    from datetime import date

    from casework.workflow.errors import InvalidInput
    from casework.workflow.reports.daily import FIGURES, daily_report, yesterday

    try:
        asked = None if day is None else date.fromisoformat(day)
    except ValueError:
        raise InvalidInput(f"--date {day!r} is not a day YYYY-MM-DD", field="date") from None
    with engine_for(db_url, config_path, read_only=True) as engine:
        report = daily_report(
            engine.context, asked or yesterday(engine.context, branch), branch or None
        )
    if as_json:
        emit_json(report)
        return
    scope = report["branch"] or "headquarters"
    click.echo(f"returns, exchanges and complaints of {report['date']} ({report['zone']}): {scope}")
    table(
        ("branch / store", "level", *FIGURES),
        [
            ["  " + r["name"] if r["level"] == "store" else r["name"], r["level"],
             *(str(r[f]) for f in FIGURES)]
            for r in report["rows"]
        ],
    )  # fmt: skip
