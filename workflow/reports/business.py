"""The figures the business is judged on: SLA compliance and the complaint structure.

Both reports cover the cases received in ``[start, end)``. They read the case rows
(each the verified fold of its history) and, for the timings, the events that matter
(``apologise``, ``escalate``, ``assign``).

SLA compliance counts each clock's current cycle of each case from its times alone
(:meth:`machines.clocks.ClockState.outcome`): **met** when it stopped with no more
working time used than its target, **breached** when it used more (stopped or still
running), whether or not a deadline fired; **open** when it still runs within its
target (not in the rate). Compliance is met / (met + breached).
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from machines.clocks import BREACHED, state_from_json
from storage import CaseRecord, iso
from workflow.errors import InvalidInput
from workflow.reports.case_page import PAGES

if TYPE_CHECKING:
    from workflow.engine import Engine

DIMENSIONS = ("branch", "category", "channel", "owner")
TIMED_EVENTS = ("open", "apologise", "escalate", "assign")
"""The events the report reads for every case: the opening names the first owner."""


@dataclass(frozen=True)
class Period:
    """The cases received from ``start`` (inclusive) to ``end`` (exclusive)."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise InvalidInput("--to must be later than --from", field="to")


def _cases(engine: Engine, period: Period) -> tuple[list[CaseRecord], dict[str, list[Any]]]:
    return engine.store.received_between(period.start, period.end, TIMED_EVENTS)


def _rate(met: int, breached: int) -> float | None:
    return None if met + breached == 0 else round(100.0 * met / (met + breached), 1)


def _week(moment: datetime) -> datetime:
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def _outcomes(engine: Engine, case: CaseRecord, now: datetime) -> Iterable[tuple[str, str]]:
    """(clock, met|breached|open) of each clock that ran for the case, from its times."""
    policy = engine.policies.get(case.sla_policy)
    for clock in state_from_json(case.sla).clocks:
        outcome = clock.outcome(now, policy)
        if outcome is not None:
            yield clock.name, outcome


def handovers_of(events: Iterable[Any]) -> list[dict[str, str]]:
    """Each change of owner: from the owner before the event to the one after it, by whom.

    A change made by the owner is a ``handover`` (the owner passed the case on); one made
    by anybody else, a supervisor say, is a ``reassignment`` and charges nobody.
    """
    moves = []
    owner: str | None = None
    for event in events:
        data = event.data or {}
        if event.event == "open":
            owner = str(data.get("owner") or event.actor)
        elif event.event == "assign" and owner is not None:
            to = str(data.get("to"))
            kind = "handover" if event.actor == owner else "reassignment"
            moves.append({"from": owner, "to": to, "by": event.actor, "kind": kind})
            owner = to
    return moves


def _move_text(move: Mapping[str, str]) -> str:
    text = f"{move['from']} -> {move['to']}"
    return text if move["kind"] == "handover" else f"{text} (reassigned by {move['by']})"


def breach_owner(engine: Engine, case: CaseRecord, clock: str, now: datetime) -> str | None:
    """Who owned the case when ``clock``'s current cycle ran past its target.

    The history is folded step by step; the breach falls in the span between two events
    (or after the last, up to ``now``) in which the clock's used time crossed its target,
    and belongs to the owner of that span.
    """
    policy = engine.policies.get(case.sla_policy)
    if policy is None:
        return None
    cycle = next(c.cycle for c in state_from_json(case.sla).clocks if c.name == clock)
    steps = engine.timeline(case.id)
    ends = [event.occurred_at for event, _ in steps[1:]] + [now]
    for (_, folded), end in zip(steps, ends, strict=True):
        for state in folded.sla.clocks:
            if (
                (state.name, state.cycle) == (clock, cycle)
                and state.running
                and state.used_at(end, policy) > state.target
            ):
                return folded.owner
    return None


def sla_report(engine: Engine, period: Period) -> dict[str, Any]:
    """SLA compliance per clock and per branch, category, channel and owner; first-response
    times; escalations per level; ownership hand-overs; a weekly trend."""
    cases, events = _cases(engine, period)
    now = engine.clock.now()
    table: dict[str, dict[str, Counter[str]]] = {d: defaultdict(Counter) for d in DIMENSIONS}
    per_clock: dict[str, Counter[str]] = defaultdict(Counter)
    weekly: dict[datetime, Counter[str]] = defaultdict(Counter)
    first_response_h: list[float] = []
    levels: Counter[int] = Counter()
    handovers: list[dict[str, Any]] = []
    passed_on: Counter[str] = Counter()
    for case in cases:
        timed = events.get(case.id, [])
        for clock, outcome in _outcomes(engine, case, now):
            per_clock[clock][outcome] += 1
            if clock == "first_response":
                owner = case.owner
                if outcome == BREACHED:
                    owner = breach_owner(engine, case, clock, now) or owner
                for dimension in DIMENSIONS:
                    value = owner if dimension == "owner" else getattr(case, dimension)
                    table[dimension][str(value or "-")][outcome] += 1
                weekly[_week(case.received_at)][outcome] += 1
        first = next((e for e in timed if e.event == "apologise"), None)
        if first is not None:
            first_response_h.append((first.occurred_at - case.received_at).total_seconds() / 3600)
        for event in timed:
            if event.event == "escalate":
                levels[int((event.data or {}).get("level", 0))] += 1
        moves = handovers_of(timed)
        passed_on.update(m["from"] for m in moves if m["kind"] == "handover")
        if moves:
            handovers.append(
                {
                    "case_id": case.id,
                    "handovers": len(moves),
                    "moves": [_move_text(m) for m in moves],
                    "changes": moves,
                }
            )

    def rows(counter_map: Mapping[str, Counter[str]]) -> list[dict[str, Any]]:
        return sorted(
            (
                {
                    "name": name,
                    "met": c["met"],
                    "breached": c["breached"],
                    "open": c["open"],
                    "compliance": _rate(c["met"], c["breached"]),
                }
                for name, c in counter_map.items()
            ),
            key=lambda r: (r["compliance"] is None, r["compliance"] or 0.0, r["name"]),
        )

    return {
        "report": "sla",
        "from": iso(period.start),
        "to": iso(period.end),
        "generated_at": iso(now),
        "cases": len(cases),
        "clocks": rows(per_clock),
        "first_response_by": {d: rows(table[d]) for d in DIMENSIONS},
        "first_response_hours": sorted(round(h, 3) for h in first_response_h),
        "escalations_by_level": {str(k): levels[k] for k in sorted(levels)},
        "handovers": sorted(handovers, key=lambda h: -h["handovers"]),
        "handed_on_by": dict(passed_on.most_common()),
        "weekly": [
            {
                "week": week.date().isoformat(),
                "met": c["met"],
                "breached": c["breached"],
                "compliance": _rate(c["met"], c["breached"]),
            }
            for week, c in sorted(weekly.items())
        ],
    }


def read_dispatch(path: str | Path) -> dict[tuple[str, str | None], int]:
    """Dispatched jobs from a CSV with a header ``branch,jobs`` or ``branch,category,jobs``."""
    file = Path(path)
    try:
        with file.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as err:
        raise InvalidInput(f"cannot read {file}: {err.strerror}", field="dispatch") from None
    jobs: dict[tuple[str, str | None], int] = {}
    for number, row in enumerate(rows, 2):
        try:
            count = int(row["jobs"])
            branch = row["branch"].strip()
        except (KeyError, ValueError, TypeError, AttributeError):
            raise InvalidInput(
                f"{file}:{number}: needs columns branch and jobs (a whole number)",
                field="dispatch",
            ) from None
        if count <= 0 or not branch:
            raise InvalidInput(f"{file}:{number}: jobs must be positive, branch given")
        category = (row.get("category") or "").strip() or None
        jobs[(branch, category)] = jobs.get((branch, category), 0) + count
    return jobs


def _rate_row(branch: str, category: str | None, jobs: int, complaints: int) -> dict[str, Any]:
    return {
        "branch": branch,
        "category": category,
        "jobs": jobs,
        "complaints": complaints,
        "per_10000": round(10_000 * complaints / jobs, 2),
    }


def complaints_report(
    engine: Engine, period: Period, dispatch: Mapping[tuple[str, str | None], int] | None = None
) -> dict[str, Any]:
    """The complaint structure: share per category, counts per branch and category, and
    complaints per 10,000 dispatched jobs where the dispatch counts are given."""
    cases, _ = _cases(engine, period)
    total = len(cases)
    by_category = Counter(c.category for c in cases)
    by_branch = Counter(c.branch or "-" for c in cases)
    by_pair = Counter((c.branch or "-", c.category) for c in cases)
    by_channel = Counter(c.channel for c in cases)
    weekly = Counter(_week(c.received_at) for c in cases)
    rates = []
    if dispatch:
        branch_jobs: Counter[str] = Counter()
        for (branch, category), jobs in dispatch.items():
            if category is None:
                branch_jobs[branch] += jobs
            else:
                rates.append(_rate_row(branch, category, jobs, by_pair[(branch, category)]))
        for branch, jobs in sorted(branch_jobs.items()):
            rates.append(_rate_row(branch, None, jobs, by_branch[branch]))
    return {
        "report": "complaints",
        "from": iso(period.start),
        "to": iso(period.end),
        "generated_at": iso(engine.clock.now()),
        "cases": total,
        "by_category": [
            {"category": k, "complaints": v, "share": round(100.0 * v / total, 1)}
            for k, v in by_category.most_common()
        ],
        "by_branch": dict(by_branch.most_common()),
        "by_channel": dict(by_channel.most_common()),
        "by_branch_and_category": [
            {"branch": b, "category": c, "complaints": n} for (b, c), n in sorted(by_pair.items())
        ],
        "per_10000_jobs": rates,
        "weekly": [
            {"week": w.date().isoformat(), "complaints": n} for w, n in sorted(weekly.items())
        ],
    }


def sla_page(report: Mapping[str, Any]) -> str:
    """The SLA report as a self-contained HTML page with its charts."""
    from workflow.reports import charts  # matplotlib: the JSON reports do without it

    clocks = {r["name"]: r["compliance"] or 0.0 for r in report["clocks"]}
    branches = {r["name"]: r["compliance"] or 0.0 for r in report["first_response_by"]["branch"]}
    points = {datetime.fromisoformat(w["week"]): w["compliance"] or 0.0 for w in report["weekly"]}
    weekly = {"first response compliance": points}
    figures = {
        "clocks": charts.bar_chart(clocks, title="Compliance per clock", unit="%", percent=True),
        "branches": charts.bar_chart(
            branches, title="First response compliance per branch", unit="%", percent=True
        ),
        "first_response": charts.histogram(
            report["first_response_hours"], title="Time to first response", unit="hours"
        ),
        "levels": charts.bar_chart(
            {f"level {k}": v for k, v in report["escalations_by_level"].items()},
            title="Escalations per level",
            unit="escalations",
        ),
        "trend": charts.trend(weekly, title="Weekly trend", unit="% met")
        if report["weekly"]
        else "",
    }
    return PAGES.get_template("sla.html").render(report=report, charts=figures)


def complaints_page(report: Mapping[str, Any]) -> str:
    """The complaint-structure report as a self-contained HTML page with its charts."""
    from workflow.reports import charts

    figures = {
        "categories": charts.bar_chart(
            {r["category"]: r["share"] for r in report["by_category"]},
            title="Share of complaints per category",
            unit="%",
            percent=True,
        ),
        "branches": charts.bar_chart(
            report["by_branch"], title="Complaints per branch", unit="complaints"
        ),
        "rates": charts.bar_chart(
            {
                f"{r['branch']} {r['category'] or 'all'}": r["per_10000"]
                for r in report["per_10000_jobs"]
            },
            title="Complaints per 10,000 dispatched jobs",
            unit="per 10,000 jobs",
        )
        if report["per_10000_jobs"]
        else "",
        "trend": charts.trend(
            {
                "complaints": {
                    datetime.fromisoformat(w["week"]): w["complaints"] for w in report["weekly"]
                }
            },
            title="Complaints per week",
            unit="complaints",
        )
        if report["weekly"]
        else "",
    }
    return PAGES.get_template("complaints.html").render(report=report, charts=figures)
