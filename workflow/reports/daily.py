"""The daily report of returns, exchanges and complaints (seed 003: 退换货及投诉日报).

One day, cut at midnight in the zone of the reader (a branch's own zone of
``[reports.daily] timezones``, else ``[display] timezone``, else UTC), counts per
unit: the **returns** and **exchanges** decided that day (``decide_remedy`` with
``remedy = return`` or ``exchange``, counted for the case's unit) and the
**complaints** received that day (every case received, as ``report complaints``
counts them). A branch reads its own row (its total) and its stores' rows; headquarters
reads a row per branch and the company's total row (:mod:`casework.workflow.access.organisation`).

The worker queues the report at ``[reports.daily] at`` (10:00) local time, once per day
per branch and once for headquarters: the outbox row's dedupe key
``daily:<date>:<branch>`` (``hq`` for headquarters) is unique, so a second worker's
insert, or a later wake's, is left out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from casework.storage import iso
from casework.workflow.access.organisation import rollup
from casework.workflow.daily_report_settings import HQ
from casework.workflow.display.zones import zone_name
from casework.workflow.mail.render import REPORT_KIND
from casework.workflow.storage_boundary import at_storage_boundary

if TYPE_CHECKING:
    from casework.workflow.context import Context

FIGURES = ("returns", "exchanges", "complaints")
"""What the report counts per unit, in its column order."""
REMEDIES = {"return": "returns", "exchange": "exchanges"}
"""The remedies of ``decide_remedy`` the report counts, and the figure each adds to."""
KEY_CHARS = 200
"""What the outbox's dedupe key holds."""


def day_bounds(day: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """``day`` from midnight to midnight in ``zone``, as UTC instants ``[start, end)``."""
    start = datetime.combine(day, time(), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def _counts(context: Context, start: datetime, end: datetime) -> list[tuple[str, dict[str, int]]]:
    """(unit, figures) for each case received and each return or exchange decided in
    ``[start, end)``."""
    received, _ = context.store.cases.received_between(start, end, ())
    counts = [(case.branch or "-", {"complaints": 1}) for case in received]
    decided = context.store.cases.named_events(start, end, ("decide_remedy",))
    _, cases = context.store.cases.events_and_cases((), sorted(decided))
    for case_id, events in decided.items():
        case = cases.get(case_id)
        unit = (case.branch if case is not None else None) or "-"
        for event in events:
            figure = REMEDIES.get(str((event.data or {}).get("remedy")))
            if figure is not None and start <= event.occurred_at < end:
                counts.append((unit, {figure: 1}))
    return counts


def daily_report(context: Context, day: date, branch: str | None = None) -> dict[str, Any]:
    """The report of ``day`` for ``branch`` (its row, then its stores', each store of
    ``[organisation]`` listed even with nothing to count), or for headquarters
    (``None``: a row per branch, then the company's total row)."""
    settings = context.settings.reports.daily
    organisation = context.settings.organisation
    zone = settings.zone_for(branch, context.settings.display_timezone)
    start, end = day_bounds(day, zone)
    zero = dict.fromkeys(FIGURES, 0)
    counts = _counts(context, start, end)
    if branch is not None:
        units = organisation.covered(branch)
        counts = [c for c in counts if c[0] in units]
        listed = [(u, zero) for u in (branch, *organisation.branches.get(branch, ()))]
        rows = rollup(organisation, listed + counts)[:-1]
        rows = [r for r in rows if r["name"] in units]
    else:
        listed = [(u, zero) for u in (*organisation.branches, *settings.recipients)]
        rows = [r for r in rollup(organisation, listed + counts) if r["level"] != "store"]
    return {
        "report": "daily",
        "date": day.isoformat(),
        "branch": branch,
        "zone": zone_name(zone),
        "from": iso(start),
        "to": iso(end),
        "generated_at": iso(context.clock.now()),
        "rows": [
            {"level": r["level"], "name": r["name"], **{f: r.get(f, 0) for f in FIGURES}}
            for r in rows
        ],
        "total": {f: sum(c.get(f, 0) for _, c in counts) for f in FIGURES},
    }


def yesterday(context: Context, branch: str | None = None) -> date:
    """The day before today in the zone of ``branch``'s report."""
    settings = context.settings.reports.daily
    zone = settings.zone_for(branch, context.settings.display_timezone)
    return context.clock.now().astimezone(zone).date() - timedelta(days=1)


def dedupe_key(day: date, branch: str | None) -> str:
    """The outbox key of one day's report for ``branch`` (``hq`` for headquarters); a
    branch named too long for the column is keyed by its SHA-256."""
    key = f"daily:{day.isoformat()}:{branch or HQ}"
    if len(key) <= KEY_CHARS:
        return key
    assert branch is not None
    return f"daily:{day.isoformat()}:sha256:{hashlib.sha256(branch.encode()).hexdigest()}"


def due(context: Context, now: datetime) -> list[tuple[str | None, date]]:
    """The reports due at ``now``: (branch, or ``None`` for headquarters; the day
    reported) for each reader whose local time is past ``at`` today."""
    settings = context.settings.reports.daily
    if not settings.enabled:
        return []
    readers: list[str | None] = [*settings.recipients, *([None] if settings.hq else [])]
    found = []
    for branch in readers:
        local = now.astimezone(settings.zone_for(branch, context.settings.display_timezone))
        if local.time() >= settings.at:
            found.append((branch, local.date() - timedelta(days=1)))
    return found


def report_row(
    report: Mapping[str, Any], recipients: Sequence[str], now: datetime
) -> dict[str, Any]:
    """The outbox row of a report: no case, its figures in the body, due at once."""
    return {
        "dedupe_key": dedupe_key(date.fromisoformat(report["date"]), report["branch"]),
        "case_id": None,
        "deadline_id": None,
        "kind": REPORT_KIND,
        "level": 0,
        "recipients": list(recipients),
        "body": dict(report),
        "next_attempt_at": now,
        "created_at": now,
    }


@at_storage_boundary
def queue_daily_reports(context: Context) -> list[str]:
    """Queue the reports due now that are not queued yet (each once: a second insert of
    its key is left out); the keys of those due. A host whose clock runs ahead of the
    database server's queues nothing (:class:`ClockAhead`): its report would be of a
    day to come and would stand in for that day's own."""
    context.server_clock.check()
    now = context.clock.now()
    settings = context.settings.reports.daily
    rows = []
    for branch, day in due(context, now):
        recipients = settings.hq if branch is None else settings.recipients[branch]
        rows.append(report_row(daily_report(context, day, branch), recipients, now))
    if rows:
        with context.store.transaction() as tx:
            context.store.outbox.queue(tx, rows)
    return [row["dedupe_key"] for row in rows]


def next_run(context: Context, now: datetime) -> datetime:
    """When the next report falls due after ``now``: the earliest ``at`` to come among
    the readers' zones (a day ahead when there are none)."""
    settings = context.settings.reports.daily
    readers: list[str | None] = [*settings.recipients, None]
    times = []
    for branch in readers:
        zone = settings.zone_for(branch, context.settings.display_timezone)
        local = now.astimezone(zone)
        at = datetime.combine(local.date(), settings.at, tzinfo=zone)
        if at <= local:
            at = datetime.combine(local.date() + timedelta(days=1), settings.at, tzinfo=zone)
        times.append(at.astimezone(UTC))
    return min(times)
