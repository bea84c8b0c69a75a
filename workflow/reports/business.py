"""The figures the business is judged on: SLA compliance and the complaint structure.

Both reports cover the cases received in ``[start, end)``. They read the case rows
(each the verified fold of its history) and, for the timings, each case's history
folded as the engine folds it: the first response is the moment the
``first_response`` clock first stopped (what its target is judged on), and the
escalations are the rises of the case's escalation level, by a deadline or by hand.

SLA compliance counts each clock's current cycle of each case from its times alone
(:meth:`casework.machines.clocks.ClockState.outcome`): **met** when it stopped with no more
working time used than its target, **breached** when it used more (stopped or still
running), whether or not a deadline fired; **open** when it still runs within its
target (not in the rate). Compliance is met / (met + breached).
"""

from __future__ import annotations

import csv
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from casework.machines import ENGINE_EVENTS, OPEN_EVENT, Folded
from casework.machines.clocks import BREACHED, state_from_json
from casework.machines.definition import MANUAL_ESCALATION
from casework.storage import CaseRecord, iso
from casework.storage.records import CaseQuery
from casework.workflow.access.organisation import rollup
from casework.workflow.cases.history import fold_steps
from casework.workflow.cases.reading import timeline
from casework.workflow.display.periods import Period, week_of
from casework.workflow.errors import InvalidInput
from casework.workflow.partners.ratings import by_customer, follow_up_credits
from casework.workflow.reports.case_page import PAGES
from casework.workflow.reports.words import page_words
from casework.workflow.sla.views import overdue

if TYPE_CHECKING:
    from casework.workflow.context import Context

DIMENSIONS = ("branch", "category", "channel", "owner")
TIMED_EVENTS = ("open", "assign", "book_visit", "follow_up", "survey_answered")
"""The events the report reads beside the fold: the opening names the first owner, an
``assign`` the next, a booked visit the partner and technician a later follow-up (or
the customer's survey answer) is credited to."""


FIRST_RESPONSE = "first_response"
"""The clock whose first stop is the case's first response."""


@dataclass(frozen=True)
class FoldRecord:
    """What the fold of one case's history says of its timings."""

    steps: list[tuple[Any, Folded]]
    """Each event with the case as it stood right after it."""
    first_response: datetime | None
    """When the ``first_response`` clock first stopped (``None``: it has not)."""
    rises: list[tuple[int, bool]]
    """Each rise of the escalation level: the level reached, and whether by hand."""


def fold_record(context: Context, case: CaseRecord, history: Sequence[Any]) -> FoldRecord:
    """The fold of ``case``'s whole ``history`` (its events, oldest first) and the
    timings the reports read from it."""
    steps = list(fold_steps(context.rules(case), history))
    first: datetime | None = None
    rises: list[tuple[int, bool]] = []
    level = 0
    for event, folded in steps:
        if first is None and any(
            c.name == FIRST_RESPONSE and c.cycle > 0 and not c.running for c in folded.sla.clocks
        ):
            first = event.occurred_at
        if folded.escalation_level > level:
            level = folded.escalation_level
            rises.append((level, event.event == MANUAL_ESCALATION))
    return FoldRecord(steps, first, rises)


def every_event(context: Context) -> tuple[str, ...]:
    """The name of every event a case of the installed machines may hold."""
    names = {OPEN_EVENT, *ENGINE_EVENTS}
    for definition in context.registry:
        names.update(definition.events)
    return tuple(sorted(names))


def _cases(
    context: Context, period: Period, names: Sequence[str]
) -> tuple[list[CaseRecord], dict[str, list[Any]]]:
    cases, events = context.store.cases.received_between(period.start, period.end, names)
    if period.branch is not None:  # a branch and its stores ([organisation])
        units = context.settings.organisation.covered(period.branch)
        cases = [c for c in cases if c.branch in units]
    return cases, events


def rolled_up(
    context: Context, period: Period, counts: Iterable[tuple[str, Mapping[str, int]]]
) -> list[dict[str, Any]]:
    """Counts per unit rolled up store -> branch -> company (seed 003: 门店, 分部, 总部):
    each branch, then its stores, then the company's total row (``level`` company),
    which a report of one branch leaves out (its branch row is its total)."""
    rows = rollup(context.settings.organisation, counts)
    return rows[:-1] if period.branch is not None else rows


def _rate(met: int, breached: int) -> float | None:
    return None if met + breached == 0 else round(100.0 * met / (met + breached), 1)


HANDOVERS_LISTED = 20
"""The cases with the most hand-overs a report lists (it counts them all)."""


def _percentile(ordered: Sequence[float], share: float) -> float:
    """The nearest-rank percentile of sorted values."""
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def time_figures(hours: Sequence[float]) -> dict[str, Any]:
    """Count, mean, median, 90th and 95th percentile and maximum of durations in hours,
    and a histogram of about 24 buckets of a round width."""
    ordered = sorted(hours)
    if not ordered:
        return {"count": 0, "mean_h": None, "p50_h": None, "p90_h": None, "p95_h": None,
                "max_h": None, "histogram": []}  # fmt: skip
    width = next((w for w in (0.25, 0.5, 1, 2, 3, 4, 6, 12, 24, 48) if ordered[-1] / w <= 24), 168)
    counts = Counter(min(int(h // width), 10_000) for h in ordered)
    return {
        "count": len(ordered),
        "mean_h": round(sum(ordered) / len(ordered), 2),
        "p50_h": round(_percentile(ordered, 0.5), 2),
        "p90_h": round(_percentile(ordered, 0.9), 2),
        "p95_h": round(_percentile(ordered, 0.95), 2),
        "max_h": round(ordered[-1], 2),
        "histogram": [
            {"from": b * width, "to": (b + 1) * width, "cases": counts[b]}
            for b in range(max(counts) + 1)
        ],
    }


def _outcomes(context: Context, case: CaseRecord, now: datetime) -> Iterable[tuple[str, str]]:
    """(clock, met|breached|open) of each clock that ran for the case, from its times."""
    policy = context.policies.get(case.sla_policy)
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


def breach_owner(
    context: Context,
    case: CaseRecord,
    clock: str,
    now: datetime,
    steps: Sequence[tuple[Any, Folded]] | None = None,
) -> str | None:
    """Who owned the case when ``clock``'s current cycle ran past its target.

    The history is folded step by step (``steps``, if the caller folded it already);
    the breach falls in the span between two events (or after the last, up to ``now``)
    in which the clock's used time crossed its target, and belongs to the owner of that
    span.
    """
    policy = context.policies.get(case.sla_policy)
    if policy is None:
        return None
    cycle = next(c.cycle for c in state_from_json(case.sla).clocks if c.name == clock)
    steps = timeline(context, case.id) if steps is None else steps
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


def sla_report(context: Context, period: Period) -> dict[str, Any]:
    """SLA compliance for a supervisor: a summary (compliance per clock, the cases late
    now by escalation level, the worst branches), first-response compliance per branch
    and category, then the details: per branch, category, channel and owner, time to
    first response as percentiles, escalations per level, hand-overs, a weekly trend."""
    cases, histories = _cases(context, period, every_event(context))
    now = context.clock.now()
    table: dict[str, dict[str, Counter[str]]] = {d: defaultdict(Counter) for d in DIMENSIONS}
    pairs: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    per_clock: dict[str, Counter[str]] = defaultdict(Counter)
    weekly: dict[date, Counter[str]] = defaultdict(Counter)
    first_response_h: list[float] = []
    levels: Counter[int] = Counter()
    by_hand: Counter[int] = Counter()
    satisfaction: dict[str, dict[str, list[int]]] = {d: defaultdict(list) for d in RATED_BY}
    by_source: dict[str, dict[str, dict[str, list[int]]]] = {
        source: {d: defaultdict(list) for d in RATED_BY} for source in ("customers", "agents")
    }
    answered: set[str] = set()
    handovers: list[dict[str, Any]] = []
    passed_on: Counter[str] = Counter()
    for case in cases:
        history = histories.get(case.id, [])
        record = fold_record(context, case, history)
        timed = [e for e in history if e.event in TIMED_EVENTS]
        for clock, outcome in _outcomes(context, case, now):
            per_clock[clock][outcome] += 1
            if clock == FIRST_RESPONSE:
                owner = case.owner
                if outcome == BREACHED:
                    owner = breach_owner(context, case, clock, now, record.steps) or owner
                for dimension in DIMENSIONS:
                    value = owner if dimension == "owner" else getattr(case, dimension)
                    table[dimension][str(value or "-")][outcome] += 1
                pairs[(case.branch or "-", case.category or "-")][outcome] += 1
                weekly[week_of(case.received_at, period.zone)][outcome] += 1
        if record.first_response is not None:
            waited = record.first_response - case.received_at
            first_response_h.append(waited.total_seconds() / 3600)
        for level, by_a_person in record.rises:
            (by_hand if by_a_person else levels)[level] += 1

        for event, partner, technician in follow_up_credits(timed):
            if isinstance(event.data.get("satisfaction"), int):
                credited = {"partner": partner, "technician": technician}
                _rated(satisfaction, case, event.data["satisfaction"], credited)
                source = "customers" if by_customer(event) else "agents"
                _rated(by_source[source], case, event.data["satisfaction"], credited)
                if source == "customers":
                    answered.add(case.id)
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
    by_branch = _rows(table["branch"])
    branch_rollup = [
        {**row, "compliance": _rate(row.get("met", 0), row.get("breached", 0))}
        for row in rolled_up(context, period, table["branch"].items())
    ]
    handovers.sort(key=lambda h: (-h["handovers"], h["case_id"]))
    return {
        "report": "sla",
        **period.heading(context.clock.now()),
        "cases": len(cases),
        "summary": {
            "clocks": _rows(per_clock),
            "late_now": _late_now(context, period, now),
            "worst_branches": [r for r in by_branch if r["breached"]][:3],
        },
        "branch_by_category": [
            {"branch": b, "category": c, **_outcome_counts(n)}
            for (b, c), n in sorted(pairs.items())
        ],
        "clocks": _rows(per_clock),
        "first_response_by": {
            d: by_branch if d == "branch" else _rows(table[d]) for d in DIMENSIONS
        },
        "first_response_rollup": [
            {**{k: row.get(k, 0) for k in ("met", "breached", "open")}, **row}
            for row in branch_rollup
        ],
        "first_response_time": time_figures(first_response_h),
        "escalations_by_level": {str(k): levels[k] for k in sorted(levels)},
        "escalations_by_hand": {str(k): by_hand[k] for k in sorted(by_hand)},
        "csat": {d: _csat_rows(satisfaction[d]) for d in RATED_BY},
        "csat_customers": {d: _csat_rows(by_source["customers"][d]) for d in RATED_BY},
        "csat_agents": {d: _csat_rows(by_source["agents"][d]) for d in RATED_BY},
        "surveys": surveys(context, {c.id for c in cases}, answered),
        "handover_cases": len(handovers),
        "handovers": handovers[:HANDOVERS_LISTED],
        "handed_on_by": dict(passed_on.most_common()),
        "weekly": [
            {"week": week.isoformat(), **_outcome_counts(c)} for week, c in sorted(weekly.items())
        ],
    }


RATED_BY = ("branch", "owner", "technician", "partner")
"""Whom a follow-up's satisfaction score is attributed to."""


def surveys(context: Context, case_ids: set[str], answered: set[str]) -> dict[str, Any]:
    """The customers' surveys of the report's cases: how many were sent (a resolved
    case's notification that went out with its link), how many answered (a score the
    customer gave through their link) and the response rate."""
    from casework.storage.notify_store import NOTIFY_KIND

    sent = {
        row.case_id
        for row in context.store.outbox.rows(kind=NOTIFY_KIND, status="sent")
        if row.case_id in case_ids and row.body.get("template") == "resolved"
    }
    rate = None if not sent else round(len(answered & sent) / len(sent), 4)
    return {"sent": len(sent), "answered": len(answered), "response_rate": rate}


def _csat_rows(scores: Mapping[str, list[int]]) -> list[dict[str, Any]]:
    """Mean satisfaction per name, the lowest first."""
    rows = [
        {"name": name, "follow_ups": len(found), "csat": round(sum(found) / len(found), 2)}
        for name, found in scores.items()
    ]
    return sorted(rows, key=lambda r: (r["csat"], r["name"]))


def _rated(
    table: dict[str, dict[str, list[int]]],
    case: CaseRecord,
    score: int,
    credited: Mapping[str, str | None],
) -> None:
    """Count a follow-up's score for the case's branch and owner, and the technician and
    partner ``credited`` (:func:`casework.workflow.partners.ratings.follow_up_credits`)."""
    for dimension in RATED_BY:
        value = getattr(case, dimension) if dimension in ("branch", "owner") else None
        value = value or credited.get(dimension)
        if value:
            table[dimension][str(value)].append(score)


def _outcome_counts(counts: Counter[str]) -> dict[str, Any]:
    return {
        "met": counts["met"],
        "breached": counts["breached"],
        "open": counts["open"],
        "compliance": _rate(counts["met"], counts["breached"]),
    }


def _rows(counter_map: Mapping[str, Counter[str]]) -> list[dict[str, Any]]:
    """One row per name, the worst compliance first (those with none last)."""
    return sorted(
        ({"name": name, **_outcome_counts(c)} for name, c in counter_map.items()),
        key=lambda r: (r["compliance"] is None, r["compliance"] or 0.0, r["name"]),
    )


def _late_now(context: Context, period: Period, now: datetime) -> dict[str, Any]:
    """The cases past an SLA target now (of the period's branch), by escalation level."""
    late = {o.case.id: o.case for o in overdue(context, now, CaseQuery(branch=period.branch))}
    levels = Counter(case.escalation_level for case in late.values())
    return {
        "at": iso(now),
        "cases": len(late),
        "by_level": {str(k): levels[k] for k in sorted(levels)},
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


def _rate_row(
    branch: str | None, category: str | None, jobs: int, complaints: int
) -> dict[str, Any]:
    return {
        "branch": branch,
        "category": category,
        "jobs": jobs,
        "complaints": complaints,
        "per_10000": round(10_000 * complaints / jobs, 2),
        "total": False,
    }


def _repeats(cases: list[CaseRecord]) -> dict[str, Any]:
    """How many complaints repeat an earlier one (same customer, same serial number),
    and the rate per branch, product and partner."""

    def rates(key: Any) -> list[dict[str, Any]]:
        totals: Counter[str] = Counter()
        repeats: Counter[str] = Counter()
        for case in cases:
            name = key(case)
            if name:
                totals[str(name)] += 1
                repeats[str(name)] += bool(case.facts.get("repeat_of"))
        return [
            {"name": n, "cases": t, "repeats": repeats[n],
             "rate": round(100.0 * repeats[n] / t, 1)}
            for n, t in sorted(totals.items(), key=lambda kv: (-repeats[kv[0]], kv[0]))
        ]  # fmt: skip

    return {
        "cases": sum(bool(c.facts.get("repeat_of")) for c in cases),
        "by_branch": rates(lambda c: c.branch),
        "by_product": rates(lambda c: c.attributes.get("product")),
        "by_partner": rates(lambda c: c.facts.get("partner")),
    }


VISIT_EVENTS = ("book_visit", "visit_done")
"""The events the first-visit fix rate reads."""


def first_visits(
    cases: Sequence[CaseRecord], events: Mapping[str, Sequence[Any]]
) -> dict[str, Any]:
    """The first-visit fix rate (001: 一次上门修复; its opposite is the category
    ``not_fixed_first_visit``): of the cases a technician visited, the share whose first
    visit fixed the fault, for the company and per branch, partner and technician (those
    of the first visit's booking)."""
    tallies: dict[str, dict[str, Counter[str]]] = {
        d: defaultdict(Counter) for d in ("branch", "partner", "technician")
    }
    total: Counter[str] = Counter()
    for case in cases:
        booked: dict[str, str | None] = {}
        for event in events.get(case.id, ()):
            data = event.data or {}
            if event.event == "book_visit":
                booked = {k: str(data.get(k) or "") or None for k in ("partner", "technician")}
            elif event.event == "visit_done":
                fixed = str(data.get("fixed")).lower() in ("true", "yes")
                names = {**booked, "branch": case.branch or "-"}
                for dimension, counts in tallies.items():
                    if names.get(dimension):
                        counts[str(names[dimension])].update(_visit_outcome(fixed))
                total.update(_visit_outcome(fixed))
                break
    return {
        **_fix_rate(total),
        **{f"by_{d}": [{"name": n, **_fix_rate(c)} for n, c in sorted(rows.items())]
           for d, rows in tallies.items()},
    }  # fmt: skip


def _visit_outcome(fixed: bool) -> list[str]:
    return ["visited", "fixed"] if fixed else ["visited"]


def _fix_rate(counts: Counter[str]) -> dict[str, Any]:
    visited, fixed = counts["visited"], counts["fixed"]
    return {
        "visited": visited,
        "fixed_first_visit": fixed,
        "rate": None if not visited else round(100.0 * fixed / visited, 1),
    }


def _company_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The company's rows of the per-branch rates: all its complaints per 10,000 jobs,
    then per category (branch ``None``, ``total`` true)."""
    jobs: Counter[str | None] = Counter()
    complaints: Counter[str | None] = Counter()
    for row in rows:
        jobs[row["category"]] += row["jobs"]
        complaints[row["category"]] += row["complaints"]
    ordered = [None, *sorted(c for c in jobs if c is not None)]
    return [
        {**_rate_row(None, c, jobs[c], complaints[c]), "total": True} for c in ordered if jobs[c]
    ]


def recorded_jobs(
    context: Context, period: Period
) -> tuple[dict[tuple[str, str | None], int], dict[str, int]]:
    """The jobs recorded in the period (of its branch): by (branch, category), with
    (branch, ``None``) the branch's whole count; and by partner."""
    dispatch: Counter[tuple[str, str | None]] = Counter()
    partners: Counter[str] = Counter()
    units = None if period.branch is None else context.settings.organisation.covered(period.branch)
    for count in context.store.partners.job_counts(period.start, period.end):
        if units is not None and count.branch not in units:
            continue
        dispatch[(count.branch, None)] += count.jobs
        if count.category:
            dispatch[(count.branch, count.category)] += count.jobs
        if count.partner:
            partners[count.partner] += count.jobs
    return dict(dispatch), dict(partners)


def complaints_report(
    context: Context, period: Period, dispatch: Mapping[tuple[str, str | None], int] | None = None
) -> dict[str, Any]:
    """The complaint structure: share per category, counts per branch and category, and
    complaints per 10,000 dispatched jobs: from ``dispatch`` where given (a CSV handed
    to the report), else from the jobs recorded in the period (``casework jobs``), per
    branch, category and partner."""
    cases, visits = _cases(context, period, VISIT_EVENTS)
    partner_rates: list[dict[str, Any]] = []
    if dispatch is None:
        dispatch, partner_jobs = recorded_jobs(context, period)
        by_partner = Counter(str(c.facts.get("partner")) for c in cases if c.facts.get("partner"))
        partner_rates = [
            {"partner": p, "jobs": n, "complaints": by_partner[p],
             "per_10000": round(10_000 * by_partner[p] / n, 2)}
            for p, n in sorted(partner_jobs.items())
        ]  # fmt: skip
    total = len(cases)
    by_category = Counter(c.category for c in cases)
    by_branch = Counter(c.branch or "-" for c in cases)
    by_pair = Counter((c.branch or "-", c.category) for c in cases)
    by_channel = Counter(c.channel for c in cases)
    weekly = Counter(week_of(c.received_at, period.zone) for c in cases)
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
        if period.branch is None:  # the company's total row (003: 总部 sees every branch)
            rates += _company_rows(rates)
    return {
        "report": "complaints",
        **period.heading(context.clock.now()),
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
        "rollup": _complaints_rollup(context, period, cases, dispatch),
        "per_10000_jobs_by_partner": partner_rates,
        "repeats": _repeats(cases),
        "first_visit_fix": first_visits(cases, visits),
        "weekly": [{"week": w.isoformat(), "complaints": n} for w, n in sorted(weekly.items())],
    }


def _complaints_rollup(
    context: Context,
    period: Period,
    cases: Sequence[CaseRecord],
    dispatch: Mapping[tuple[str, str | None], int],
) -> list[dict[str, Any]]:
    """Complaints and dispatched jobs per store, branch and company, with complaints per
    10,000 jobs where jobs are known."""
    counts: list[tuple[str, Mapping[str, int]]] = [
        (c.branch or "-", {"complaints": 1}) for c in cases
    ]
    counts += [(unit, {"jobs": n}) for (unit, category), n in dispatch.items() if category is None]
    rows = []
    for row in rolled_up(context, period, counts):
        complaints, jobs = row.get("complaints", 0), row.get("jobs", 0)
        rate = round(10_000 * complaints / jobs, 2) if jobs else None
        rows.append({**row, "complaints": complaints, "jobs": jobs, "per_10000": rate})
    return rows


def _week_points(report: Mapping[str, Any], field: str) -> dict[datetime, float]:
    """A weekly series of the report, each week at its Monday's midnight in the zone."""
    zone = _zone(report)
    return {
        datetime.combine(date.fromisoformat(w["week"]), time(), tzinfo=zone): w[field] or 0.0
        for w in report["weekly"]
    }


def sla_page(report: Mapping[str, Any], lang: str | None = None) -> str:
    """The SLA report as a self-contained HTML page with its charts, drawn from the
    report's own figures (the page and the JSON say the same), in ``lang`` (``zh`` or
    ``en``, the default)."""
    from casework.workflow.reports import charts  # matplotlib: the JSON reports do without it

    words = page_words(lang)
    _, label = words["_"], words["label"]
    figures = {
        "clocks": charts.bar_chart(
            [(label("clock", r["name"]), r["compliance"] or 0.0) for r in report["clocks"]],
            title=_("Compliance per clock"), unit="%", percent=True,
        ),
        "branches": charts.bar_chart(
            [(r["name"], r["compliance"] or 0.0) for r in report["first_response_by"]["branch"]],
            title=_("First response compliance per branch (worst first)"), unit="%", percent=True,
        ),
        "first_response": charts.histogram(
            report["first_response_time"]["histogram"], title=_("Time to first response"),
            unit=_("hours"), count=_("cases"),
        ),
        "levels": charts.bar_chart(
            [(_("level {level}", level=k), v) for k, v in report["escalations_by_level"].items()],
            title=_("Escalations per level"), unit=_("escalations"),
        ),
        "trend": charts.trend(
            {_("first response compliance"): _week_points(report, "compliance")},
            title=_("Weekly trend (weeks from Monday)"), unit=_("% met"), zone=_zone(report),
            percent=True,
        )
        if report["weekly"]
        else "",
    }  # fmt: skip
    categories = sorted({r["category"] for r in report["branch_by_category"]})
    matrix: dict[str, dict[str, Any]] = defaultdict(dict)
    for row in report["branch_by_category"]:
        matrix[row["branch"]][row["category"]] = row
    branches = [r["name"] for r in report["first_response_by"]["branch"]]
    return PAGES.get_template("sla.html").render(
        report=report, charts=figures, categories=categories, matrix=matrix,
        branches=branches, font_note=charts.missing_font_note(), **words,
    )  # fmt: skip


def _zone(report: Mapping[str, Any]) -> tzinfo:
    try:
        return ZoneInfo(report["zone"])
    except (ValueError, KeyError, ZoneInfoNotFoundError):
        return UTC


def complaints_page(report: Mapping[str, Any], lang: str | None = None) -> str:
    """The complaint-structure report as a self-contained HTML page with its charts, in
    ``lang`` (``zh`` or ``en``, the default)."""
    from casework.workflow.reports import charts

    words = page_words(lang)
    _, label = words["_"], words["label"]
    figures = {
        "categories": charts.bar_chart(
            [(label("category", r["category"]) or "-", r["share"]) for r in report["by_category"]],
            title=_("Share of complaints per category"), unit="%", percent=True,
        ),
        "branches": charts.bar_chart(
            list(report["by_branch"].items()), title=_("Complaints per branch"),
            unit=_("complaints"),
        ),
        "rates": charts.bar_chart(
            [(f"{r['branch'] or _('Company')} "
              f"{label('category', r['category']) if r['category'] else _('all')}",
              r["per_10000"])
             for r in report["per_10000_jobs"]],
            title=_("Complaints per 10,000 dispatched jobs"), unit=_("per 10,000 jobs"),
        )
        if report["per_10000_jobs"]
        else "",
        "trend": charts.trend(
            {_("complaints"): _week_points(report, "complaints")},
            title=_("Complaints per week (weeks from Monday)"), unit=_("complaints"),
            zone=_zone(report),
        )
        if report["weekly"]
        else "",
    }  # fmt: skip
    return PAGES.get_template("complaints.html").render(
        report=report, charts=figures, font_note=charts.missing_font_note(), **words
    )
