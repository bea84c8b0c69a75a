"""Each partner's quarter, read from the history (seed 003): 100 points less a deduction
per fault, the fines, the band, the jobs it was given, its customers' satisfaction and
any suspended settlement. Every deduction cites its case, event and hash, so anyone
can check it against `casework verify`.

The faults: a booked window nobody kept (``appointment_missed``, the partner of the
booking), a repeat repair (a visit after one that did not fix the fault charges the
partner of that visit), and what a supervisor records with ``partner_fault``.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from casework.machines.partner_rules import PARTNER_RULES, PartnerRules
from casework.storage import iso
from casework.storage.records import EventRecord
from casework.workflow.display.periods import described, midnight
from casework.workflow.display.zones import zone_name
from casework.workflow.errors import InvalidInput

if TYPE_CHECKING:
    from casework.workflow.context import Context


def money(amount: Decimal) -> int | float:
    """A sum in yuan for JSON: whole yuan as a whole number, else to the fen."""
    return int(amount) if amount == amount.to_integral_value() else float(round(amount, 2))


READ = (
    "book_visit",
    "visit_done",
    "appointment_missed",
    "partner_fault",
    "suspend_settlement",
    "follow_up",
    "survey_answered",
)
"""The events a rating reads."""
CUSTOMER = "customer"
"""The actor of a score the customer gave through their survey link."""
SCORED = ("follow_up", "survey_answered")
"""The events that carry a satisfaction score: an agent's or the customer's follow-up,
and the customer's survey answer after an agent's follow-up."""


def by_customer(event: Any) -> bool:
    """Whether a scored event is the customer's own answer (not typed by an agent)."""
    return bool(event.actor == CUSTOMER)


_QUARTER = re.compile(r"(\d{4})\s*-?\s*Q([1-4])", re.IGNORECASE)


@dataclass(frozen=True)
class Quarter:
    """A calendar quarter, cut in a zone."""

    year: int
    number: int
    zone: tzinfo

    @property
    def start(self) -> datetime:
        """Its first instant."""
        return midnight(date(self.year, 3 * self.number - 2, 1), self.zone)

    @property
    def end(self) -> datetime:
        """The first instant after it."""
        if self.number == 4:
            return midnight(date(self.year + 1, 1, 1), self.zone)
        return midnight(date(self.year, 3 * self.number + 1, 1), self.zone)

    @property
    def name(self) -> str:
        """``2026Q3``."""
        return f"{self.year}Q{self.number}"


def quarter(text: str, zone: tzinfo) -> Quarter:
    """``2026Q3`` (or ``2026-Q3``) as a quarter in ``zone``."""
    found = _QUARTER.fullmatch(text.strip())
    if found is None:
        raise InvalidInput(f"`quarter`: {text!r} is not a quarter such as 2026Q3", field="quarter")
    return Quarter(int(found.group(1)), int(found.group(2)), zone)


def _cited(event: EventRecord, **more: Any) -> dict[str, Any]:
    return {
        "case_id": event.case_id,
        "seq": event.seq,
        "event": event.event,
        "hash": event.hash,
        "at": iso(event.occurred_at),
        **more,
    }


def _faults(
    history: list[EventRecord], start: datetime, end: datetime
) -> Iterable[tuple[str, str, EventRecord]]:
    """(partner, fault, the event that shows it) of one case's events, those in the
    quarter."""
    partner: str | None = None
    unfixed: str | None = None
    for event in history:
        data = event.data or {}
        inside = start <= event.occurred_at < end
        if event.event == "book_visit":
            partner = str(data.get("partner") or "") or None
        elif event.event == "appointment_missed" and data.get("partner") and inside:
            yield str(data["partner"]), "missed_appointment", event
        elif event.event == "partner_fault" and inside:
            yield str(data.get("partner")), str(data.get("fault")), event
        elif event.event == "visit_done":
            if unfixed is not None and inside:
                yield unfixed, "repeat_repair", event
            fixed = str(data.get("fixed")).lower() in ("true", "yes")
            unfixed = None if fixed else partner


def follow_up_credits(
    history: Iterable[Any],
) -> Iterator[tuple[Any, str | None, str | None]]:
    """Each scored event (``follow_up``, the customer's ``survey_answered``) of a case's
    events (oldest first) with the partner and the technician its satisfaction score is
    credited to: those of the case's last booked
    visit before it, whether or not an earlier visit failed (003: the call-back asks
    about the technician's service, 售后服务技术员的服务质量, the one who came last).
    The one rule of the partner and the SLA reports."""
    partner: str | None = None
    technician: str | None = None
    for event in history:
        data = event.data or {}
        if event.event == "book_visit":
            partner = str(data.get("partner") or "") or None
            technician = str(data.get("technician") or "") or None
        elif event.event in SCORED:
            yield event, partner, technician


def partner_report(
    context: Context, period: Quarter, rules: PartnerRules = PARTNER_RULES
) -> dict[str, Any]:
    """Every partner registered or named in the quarter's events, best first."""
    start, end = period.start, period.end
    histories = context.store.cases.named_events(start, end, READ)
    registered = {p.id: p for p in context.store.partners.registered()}
    deductions: dict[str, list[dict[str, Any]]] = defaultdict(list)
    suspended: dict[str, list[dict[str, Any]]] = defaultdict(list)
    scores: dict[str, list[int]] = defaultdict(list)
    customers: dict[str, list[int]] = defaultdict(list)
    unknown: Counter[str] = Counter()
    for history in histories.values():
        for partner, fault, event in _faults(history, start, end):
            rule = rules.deductions.get(fault)
            if rule is None:
                unknown[fault] += 1
                continue
            deductions[partner].append(
                _cited(event, fault=fault, points=rule.points,
                       fine_yuan=money(rule.fine(rules.basic_repair_fee, event.data)))
            )  # fmt: skip
        for event in history:
            if event.event == "suspend_settlement" and start <= event.occurred_at < end:
                partner = str(event.data.get("partner"))
                suspended[partner].append(_cited(event, reason=event.data.get("reason")))
        for event, credited, _ in follow_up_credits(history):
            score = event.data.get("satisfaction")
            if credited and isinstance(score, int) and start <= event.occurred_at < end:
                (customers if by_customer(event) else scores)[credited].append(score)
    jobs: Counter[str] = Counter()
    for count in context.store.partners.job_counts(start, end):
        if count.partner:
            jobs[count.partner] += count.jobs
    names = sorted(
        set(registered) | set(deductions) | set(suspended) | set(scores) | set(customers)
        | set(jobs)
    )  # fmt: skip
    rows = []
    for partner in names:
        found = sorted(deductions.get(partner, []), key=lambda d: (d["at"], d["case_id"]))
        points = max(0, rules.start - sum(d["points"] for d in found))
        record = registered.get(partner)
        # the customers' own scores rate a partner where there are any; else the agents'
        rated = customers.get(partner) or scores.get(partner, [])
        rows.append(
            {
                "partner": partner,
                "name": record.name if record else None,
                "kind": record.kind if record else None,
                "branch": record.branch if record else None,
                "registered": record is not None,
                "jobs": jobs.get(partner, 0),
                "points": points,
                "band": rules.band(points),
                "fines_yuan": money(sum((Decimal(str(d["fine_yuan"])) for d in found), Decimal(0))),
                "faults": dict(Counter(d["fault"] for d in found)),
                "csat": None if not rated else round(sum(rated) / len(rated), 2),
                "follow_ups": len(rated),
                "csat_from": None
                if not rated
                else ("customers" if customers.get(partner) else "agents"),
                "customer_scores": len(customers.get(partner, [])),
                "agent_scores": len(scores.get(partner, [])),
                "settlement_suspended": suspended.get(partner, []),
                "deductions": found,
            }
        )
    rows.sort(key=lambda r: (-r["points"], r["fines_yuan"], r["partner"]))
    return {
        "report": "partners",
        "quarter": period.name,
        "from": iso(start),
        "to": iso(end),
        "zone": zone_name(period.zone),
        "period": described(start, end, period.zone),
        "rules_version": rules.version,
        "basic_repair_fee_yuan": rules.basic_repair_fee,
        "generated_at": iso(context.clock.now()),
        "partners": rows,
        "unrated_faults": dict(unknown),
    }
