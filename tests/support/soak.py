"""A simulated month at high speed, then every invariant checked.

The simulation behind ``python -m bench.soak`` (a month) and ``tests/test_soak.py``
(four days).

Complaints arrive on a daily pattern (busy late mornings and afternoons, quiet
nights); agents answer after a lognormal delay (median about three hours, so some
first responses miss the 24 hours), confirm, resolve and follow up after further
delays. A fixed clock is advanced five simulated minutes at a time; at each step the
due events are fired, then the deadlines and the outbox are processed as the worker
does. The worker is restarted (a new engine) every simulated day, and the SMTP server
is down for one simulated hour mid-month. At the end: every deadline that fell due
fired exactly once, every breach event exists once, every mail was accepted by the
SMTP server (any resend with the same ``Message-ID``), and ``verify`` passes.

The after-sales work behind each complaint follows from its category: a visit is
booked for most, and for a missed appointment the technician comes after the window
(the engine records ``appointment_missed``); a fault not fixed at the first visit
needs a second; a delayed service waits on a part promised by procurement that comes
late (``part_overdue``), the owner calling the customer meanwhile. Visits are done by
partners, so the partner report rates them. The complaint structure read back from the
events must be the one the categories gave, every missed window recorded once, every
deduction traceable to its event's hash.
"""

from __future__ import annotations

import heapq
import math
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from casework.machines.fold import TIMER_OF
from casework.scheduler.mail.delivery import Deliverer
from casework.scheduler.mail.smtp_sink import SmtpSink
from casework.storage.tables import deadlines_table, outbox_table
from casework.workflow import CaseworkError, Engine, FixedClock
from casework.workflow.config import settings_from_mapping
from casework.workflow.outbox.mail import Outbox

STEP = timedelta(minutes=5)
HOURLY = [1, 1, 1, 1, 1, 2, 4, 8, 12, 16, 18, 16, 10, 12, 16, 16, 14, 10, 8, 6, 4, 3, 2, 1]
"""Relative arrivals per hour of the day."""
CATEGORIES = {"missed_appointment": 38, "not_fixed_first_visit": 33, "service_delayed": 24,
              "other": 3, "unreasonable_charge": 2}  # fmt: skip
BRANCHES = ("Guangzhou", "Shenzhen", "Nanning")
PARTNERS = ("P-install-1", "P-install-2", "P-repair-1")
TECHNICIANS = ("liu", "zhang", "huang")
H = timedelta(hours=1)
CHANNELS = ("phone", "store", "letter", "web")
AGENTS = ("li.na", "wang.wei", "zhao.lei", "chen.jie")
NEXT = {"received": "apologise", "apologised": "confirm_needs", "needs_confirmed": "resolve",
        "resolved": "follow_up"}  # fmt: skip
DATA = {"resolve": {"solution": "repaired"}, "follow_up": {"satisfaction": 4}}


@dataclass
class Outcome:
    """What the simulated month did, and whether every invariant held."""

    complaints: int = 0
    events: int = 0
    refused: int = 0
    breaches: int = 0
    escalations: int = 0
    missed_windows: int = 0
    structure: dict[str, int] = field(default_factory=dict)
    mails: int = 0
    restarts: int = 0
    seconds: float = 0.0
    invariants: dict[str, bool] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether every invariant held."""
        return all(self.invariants.values())


def _delay(rng: random.Random, median_h: float, sigma: float = 1.1) -> timedelta:
    return timedelta(hours=rng.lognormvariate(math.log(median_h), sigma))


def _arrivals(rng: random.Random, start: datetime, complaints: int, days: int) -> list[datetime]:
    weights = [w for _ in range(days) for w in HOURLY]
    hours = rng.choices(range(len(weights)), weights=weights, k=complaints)
    return sorted(start + timedelta(hours=h, seconds=rng.randrange(3600)) for h in hours)


def simulate(url: str, complaints: int, days: int, seed: int = 1) -> Outcome:
    """Run the month on ``url``; the outcome with its invariants checked."""
    rng = random.Random(seed)
    start = (datetime.now(UTC) - timedelta(days=days + 2)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    end = start + timedelta(days=days)
    outage = (
        start + timedelta(days=days // 2, hours=10),
        start + timedelta(days=days // 2, hours=11),
    )
    clock = FixedClock(start)
    outcome = Outcome(complaints=complaints)
    began = time.perf_counter()
    queue: list[tuple[datetime, int, str, str | None]] = []
    for n, at in enumerate(_arrivals(rng, start, complaints, days)):
        heapq.heappush(queue, (at, n, "open", None))
    with SmtpSink() as sink:
        mail = {"url": sink.url, "agent_domain": "example.com", "max_attempts": 12,
                "backoff_s": 60, "max_backoff_s": 1800}  # fmt: skip
        settings = settings_from_mapping({"mail": mail}, "soak")
        engine = Engine.open(url, clock=clock, config=settings)
        deliverer = Deliverer(engine)
        day = start.date()
        sink_up = True
        try:
            while clock.now() < end:
                now = clock.now() + STEP
                clock.advance(STEP)
                if now.date() != day:  # the daily restart
                    day = now.date()
                    engine.close()
                    engine = Engine.open(url, clock=clock, config=settings)
                    deliverer = Deliverer(engine)
                    outcome.restarts += 1
                in_outage = outage[0] <= now < outage[1]
                if in_outage and sink_up:
                    sink.stop()
                    sink_up = False
                elif not in_outage and not sink_up:
                    sink.start()
                    sink_up = True
                while queue and queue[0][0] <= now:
                    at, n, action, case_id = heapq.heappop(queue)
                    _act(engine, rng, queue, outcome, at, n, action, case_id)
                fired = engine.process_due(now)
                outcome.breaches += sum(
                    1 for f in fired if f.level == 1 and f.clock != "appointment"
                )
                outcome.escalations += sum(1 for f in fired if f.level >= 1)
                outcome.missed_windows += sum(1 for f in fired if f.clock == "appointment")
                deliverer.deliver_due()
            later = FixedClock(end + timedelta(hours=6))
            engine.close()
            engine = Engine.open(url, clock=later, config=settings)
            Deliverer(engine).deliver_due()
            outcome.seconds = time.perf_counter() - began
            _check(engine, sink, end, outcome)
        finally:
            engine.close()
    return outcome


def _plan(category: str, rng: random.Random) -> list[str]:
    """The work behind a complaint of ``category``, step by step."""
    steps = ["apologise"]
    if category == "service_delayed":
        steps += ["route_part", "part_arrived"]
    if category != "other":
        late = "arrive_late" if category == "missed_appointment" else "arrive"
        steps += ["book_visit", late]
        if category == "not_fixed_first_visit":
            steps += ["visit_unfixed", "book_visit", "arrive"]
        steps += ["visit_fixed"]
    return [*steps, "confirm_needs", "resolve", "follow_up"]


PLANS: dict[int, list[str]] = {}
WINDOWS: dict[int, tuple[datetime, datetime]] = {}


def _after(action: str, at: datetime, rng: random.Random, n: int) -> datetime:
    """When the next step of a case comes, after ``action`` at ``at``."""
    if action == "book_visit":
        start, end = WINDOWS[n]
        plan = PLANS[n]
        if plan and plan[0] == "arrive_late":
            return end + timedelta(minutes=rng.randint(30, 300))
        return start + timedelta(minutes=rng.randint(0, 150))
    if action == "route_part":
        return at + timedelta(hours=rng.uniform(30, 60))  # the part is promised for +24h
    if action in ("arrive", "arrive_late"):
        return at + timedelta(minutes=rng.randint(20, 90))
    if action == "visit_unfixed":
        return at + timedelta(hours=rng.uniform(1, 6))
    return at + _delay(rng, 8.0 if action != "open" else 3.0)


def _data(action: str, at: datetime, rng: random.Random, n: int) -> tuple[str, dict[str, Any]]:
    """The event an action fires and its data."""
    if action == "book_visit":
        start = at + timedelta(hours=rng.uniform(2, 24))
        WINDOWS[n] = (start, start + 3 * H)
        window = {"from": start.isoformat(), "to": (start + 3 * H).isoformat()}
        return "book_visit", {**window, "technician": rng.choice(TECHNICIANS),
                              "partner": PARTNERS[n % len(PARTNERS)]}  # fmt: skip
    if action == "route_part":
        return "route", {"to": "procurement", "promised": (at + 24 * H).isoformat()}
    if action in ("arrive", "arrive_late"):
        return "arrive", {}
    if action == "call":
        return "contact", {"note": "told the customer when the part comes"}
    if action in ("visit_fixed", "visit_unfixed"):
        return "visit_done", {"fixed": "true" if action == "visit_fixed" else "false"}
    return action, DATA.get(action, {})


def _act(
    engine: Engine, rng: random.Random, queue: list[Any], outcome: Outcome,
    at: datetime, n: int, action: str, case_id: str | None,
) -> None:  # fmt: skip
    if action == "open":
        category = rng.choices(list(CATEGORIES), weights=list(CATEGORIES.values()))[0]
        case = engine.open_case(
            customer=f"CUST-{n}", channel=rng.choice(CHANNELS), category=category,
            summary="The technician did not come.", branch=rng.choice(BRANCHES),
            actor=rng.choice(AGENTS), received_at=at,
        )  # fmt: skip
        PLANS[n] = _plan(category, rng)
        heapq.heappush(queue, (at + _delay(rng, 3.0), n, PLANS[n].pop(0), case.id))
        return
    assert case_id is not None
    event, data = _data(action, at, rng, n)
    try:
        owner = engine.get(case_id).owner
        engine.fire(case_id, event, actor=owner, data=data, at=at)
        if action == "call":
            return
        if action == "route_part":  # waits on the part; the owner calls the customer
            engine.fire(case_id, "wait", actor=owner, data={"reason": "part"}, at=at)
            heapq.heappush(queue, (at + timedelta(minutes=30), n, "call", case_id))
        elif action == "part_arrived":
            engine.fire(case_id, "resume", actor=owner, at=at)
    except CaseworkError:
        outcome.refused += 1
        return
    outcome.events += 1
    if PLANS.get(n):
        heapq.heappush(queue, (_after(action, at, rng, n), n, PLANS[n].pop(0), case_id))


def _check(engine: Engine, sink: SmtpSink, end: datetime, outcome: Outcome) -> None:
    with engine.db.connect() as conn:
        overdue = conn.execute(
            select(func.count()).where(
                deadlines_table.c.status == "pending", deadlines_table.c.due_at <= end
            )
        ).scalar_one()
        fired = conn.execute(
            select(func.count()).where(deadlines_table.c.status == "fired")
        ).scalar_one()
        mails = conn.execute(select(func.count()).select_from(outbox_table)).scalar_one()
    seen: Counter[tuple[str, Any, Any, Any]] = Counter()
    for case in engine.list():
        for event in engine.history(case.id):
            if event.event in ("sla_warning", "escalate"):
                seen[(case.id, event.data["clock"], event.data["cycle"], event.data["level"])] += 1
            elif event.event in TIMER_OF:
                seen[(case.id, event.data["timer"], event.data["cycle"], 0)] += 1
    structure, traced = _after_sales(engine, end)
    outcome.structure = structure
    sent = Outbox(engine.context).list()
    with sink.lock:
        received = Counter(str(r.message["Message-ID"]) for r in sink.received)
    outcome.mails = len(sent)
    outcome.invariants = {
        "no deadline due by the end is left pending": overdue == 0,
        "every fired deadline has exactly one event": fired == len(seen)
        and set(seen.values()) <= {1},
        "one mail per fired deadline": mails == fired,
        "every mail accepted by the SMTP server": all(m.status == "sent" for m in sent)
        and {m.message_id for m in sent} <= set(received),
        "the complaint structure read from the events is the categories'": structure[
            "from categories"
        ]
        == structure["from events"],
        "every partner deduction cites its event's hash": traced,
        "the history verifies": engine.verify().ok,
    }


STRUCTURE = ("missed_appointment", "not_fixed_first_visit", "service_delayed")


def _after_sales(engine: Engine, end: datetime) -> tuple[dict[str, Any], bool]:
    """Of the cases followed up (their work done): the structure their categories give
    and the one their events give; and whether the partner report's every deduction
    cites the hash of the event it names."""
    from casework.workflow.partners.ratings import Quarter, partner_report

    categories: Counter[str] = Counter()
    events: Counter[str] = Counter()
    hashes: dict[tuple[str, int], str] = {}
    for case in engine.list(state="followed_up"):
        history = engine.history(case.id)
        hashes.update({(case.id, e.seq): e.hash for e in history})
        if case.category in STRUCTURE:
            categories[str(case.category)] += 1
        names = {e.event for e in history}
        events["missed_appointment"] += "appointment_missed" in names
        events["not_fixed_first_visit"] += bool(case.facts.get("not_fixed_first_visit"))
        events["service_delayed"] += "part_overdue" in names
    structure = {
        "from categories": {k: categories[k] for k in STRUCTURE},
        "from events": {k: events[k] for k in STRUCTURE},
    }
    traced = True
    moment = end
    quarters = {(moment.year, (moment.month - 1) // 3 + 1)}
    moment -= timedelta(days=40)
    quarters.add((moment.year, (moment.month - 1) // 3 + 1))
    for year, number in quarters:
        report = partner_report(engine.context, Quarter(year, number, UTC))
        for row in report["partners"]:
            for d in row["deductions"]:
                found = hashes.get((d["case_id"], d["seq"]))
                traced &= found is None or found == d["hash"]
    return structure, traced
