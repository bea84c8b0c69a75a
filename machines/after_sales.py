"""The standard complaint machine, version 2: the six handling steps of version 1 and the
after-sales work behind them (seeds 001 to 003).

Field service: ``book_visit`` (the window promised to the customer, the technician,
perhaps a partner), ``arrive``, ``visit_done`` (fixed or not). The window is a timer:
if nobody arrived by its end the engine records ``appointment_missed`` once; a second
visit marks the case ``not_fixed_first_visit``. Routing: ``route`` to the unit that
answers for the complaint, each with its own time (the policy's ``timers.routed``), and
to procurement with the date a part is promised for. ``part_shipped`` and
``part_arrived`` move the contact plan: while a case waits on a part the owner is
reminded to call the customer (``timers.contact``), each reminder satisfied by a
``contact``. ``partner_fault`` and ``suspend_settlement`` record what a supervisor
holds against a partner. A repair decided under the three guarantees carries its
promised day (``repair_due``): the ``repair`` timer records ``repair_overdue`` when it
passes before ``repair_done``. Version 1 cases keep replaying under version 1, and the
events, timers and guards added since to version 2 read only data its earlier events
never carried, so those replay as they always have.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from statemachine import State, StateChart

from casework.machines.complaint import (
    COMPLAINT_V1,
    _stay_in,
    last_follow_up_unhappy,
    new_owner_given,
    note_given,
    satisfaction_in_range,
    solution_given,
)
from casework.machines.definition import (
    AttributeSpec,
    Checks,
    MachineDefinition,
    Relations,
    RepeatRule,
)
from casework.machines.sla import DEFAULT_DOCUMENT
from casework.machines.timers import TimerSpec, parse_due
from casework.machines.warranty import REMEDIES

ROUTE_UNITS = (
    "store",
    "branch_cs",
    "distribution_centre",
    "installer",
    "manufacturer",
    "procurement",
)
"""Who a complaint may be routed to (seed 003's responsible units)."""
FIXED = ("true", "false", "yes", "no")


def _text_given(data: Mapping[str, Any], key: str) -> bool:
    value = data.get(key)
    return isinstance(value, str) and bool(value.strip())


def window_given(data: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
    """needs the window promised to the customer and the technician: data from=<ISO time> to=<later ISO time> technician=<name> (partner=<partner id> optional)"""  # noqa: E501
    start = parse_due(data["from"]) if isinstance(data.get("from"), str) else None
    end = parse_due(data["to"]) if isinstance(data.get("to"), str) else None
    return start is not None and end is not None and start < end and _text_given(data, "technician")


def visit_booked(data: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
    """only while a booked visit has not started (book_visit first)"""
    return int(facts.get("bookings", 0)) > int(facts.get("arrivals", 0))


def visit_started(data: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
    """only after the technician arrived (arrive first)"""
    return int(facts.get("arrivals", 0)) > int(facts.get("visits", 0))


def fixed_given(data: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
    """needs whether the fault is fixed: data fixed=true or fixed=false"""
    fixed = data.get("fixed")
    return isinstance(fixed, bool) or str(fixed).lower() in FIXED


def unit_given(data: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
    """needs the responsible unit: data to=store, branch_cs, distribution_centre, installer, manufacturer or procurement (promised=<ISO time> for a part; partner=<id> optional)"""  # noqa: E501
    promised = data.get("promised")
    promised_ok = promised is None or (isinstance(promised, str) and parse_due(promised))
    return data.get("to") in ROUTE_UNITS and bool(promised_ok)


def fault_given(data: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
    """needs the partner and the violation: data partner=<partner id> fault=<a violation of the partner rules, e.g. missed_appointment; unreasonable_charge with charge=<yuan>>"""  # noqa: E501
    return _text_given(data, "partner") and _text_given(data, "fault")


def remedy_given(data: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
    """needs the remedy the three guarantees give: data remedy=return, exchange, repair or paid_repair (test_report=<digest> for a strict brand's return or exchange)"""  # noqa: E501
    return data.get("remedy") in REMEDIES


QUOTE_PARTS = ("parts", "labour", "travel")
"""The lines of a quote's breakdown (seed 002: every cost recorded)."""


def _yuan(value: Any) -> Decimal | None:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() and 0 <= amount < 10**9 else None


def quote_given(data: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
    """needs the quote of a paid repair: data amount=<yuan, e.g. 180.00> currency=<CNY> (parts=, labour=, travel=<yuan> optional, summing to the amount)"""  # noqa: E501
    amount = _yuan(data.get("amount"))
    if amount is None or amount == 0 or not _text_given(data, "currency"):
        return False
    lines = [data[k] for k in QUOTE_PARTS if data.get(k) is not None]
    found = [_yuan(v) for v in lines]
    if any(v is None for v in found):
        return False
    return not found or sum(v for v in found if v is not None) == amount


def repair_decided(data: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
    """only after a repair was decided (decide_remedy remedy=repair or paid_repair first)"""
    return facts.get("remedy") in ("repair", "paid_repair")


def quote_open(data: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
    """only while a quote waits for the customer's answer (quote first)"""
    return int(facts.get("quotes", 0)) > int(facts.get("answers", 0))


def case_named(data: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
    """needs the other case: data case=<case id> (kind=repeat or duplicate optional)"""
    return _text_given(data, "case")


def suspension_given(data: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
    """needs the partner and why: data partner=<partner id> reason=<text>"""
    return _text_given(data, "partner") and _text_given(data, "reason")


class ComplaintChartV2(StateChart[Any]):
    """Complaint handling with the after-sales work, version 2."""

    allow_event_without_transition = False
    catch_errors_as_events = False
    atomic_configuration_update = True
    enable_self_transition_entries = False

    received = State("Received", initial=True)
    apologised = State("Apologised")
    needs_confirmed = State("Needs confirmed")
    resolved = State("Resolved")
    followed_up = State("Followed up")
    withdrawn = State("Withdrawn", final=True)
    merged = State("Merged", final=True)

    apologise = received.to(apologised)
    confirm_needs = apologised.to(needs_confirmed)
    resolve = needs_confirmed.to(resolved, cond=solution_given)
    reject_solution = resolved.to(needs_confirmed)
    follow_up = resolved.to(followed_up, cond=satisfaction_in_range)
    reopen = followed_up.to(needs_confirmed, cond=last_follow_up_unhappy)
    withdraw = (
        received.to(withdrawn)
        | apologised.to(withdrawn)
        | needs_confirmed.to(withdrawn)
        | resolved.to(withdrawn)
    )
    merge_into = (
        received.to(merged, cond=case_named)
        | apologised.to(merged, cond=case_named)
        | needs_confirmed.to(merged, cond=case_named)
        | resolved.to(merged, cond=case_named)
    )
    _open = (received, apologised, needs_confirmed, resolved, followed_up)
    _working = (received, apologised, needs_confirmed, resolved)
    link = _stay_in(_open, cond=case_named)
    _field = (apologised, needs_confirmed, resolved)
    note = _stay_in(_open, cond=note_given)
    contact = _stay_in(_open)
    assign = _stay_in(_open, cond=new_owner_given)
    book_visit = _stay_in(_field, cond=window_given)
    arrive = _stay_in(_field, cond=visit_booked)
    visit_done = _stay_in(_field, cond=[visit_started, fixed_given])
    route = _stay_in(_working, cond=unit_given)
    part_shipped = _stay_in(_working)
    part_arrived = _stay_in(_working)
    decide_remedy = _stay_in((needs_confirmed,), cond=remedy_given)
    quote = _stay_in((needs_confirmed, resolved), cond=quote_given)
    accept_quote = _stay_in((needs_confirmed, resolved), cond=quote_open)
    decline_quote = _stay_in((needs_confirmed, resolved), cond=quote_open)
    repair_done = _stay_in((needs_confirmed, resolved, followed_up), cond=repair_decided)
    partner_fault = _stay_in(_open, cond=fault_given)
    suspend_settlement = _stay_in(_open, cond=suspension_given)
    # the customer's survey answer after a follow-up was recorded (their first answer
    # is the follow-up itself); no earlier history holds it
    survey_answered = _stay_in((followed_up,), cond=satisfaction_in_range)


AFTER_SALES_TIMERS: dict[str, Any] = {
    "routed": {
        "store": 24 * 3600,
        "branch_cs": 24 * 3600,
        "distribution_centre": 48 * 3600,
        "installer": 24 * 3600,
        "manufacturer": 72 * 3600,
        "procurement": 72 * 3600,
    },
    "contact": {
        "estimate": 2 * 3600,
        "shipped": 4 * 3600,
        "booking": 4 * 3600,
        "after_repair": "same_day",
    },
}
"""How long each unit has to answer a routed complaint, and when each call of the
contact plan is due, in seconds or ``"same_day"`` (001: the call after a repair comes
the same working day, 当天; ``[sla.timers]`` replaces them)."""

COMPLAINT_V2 = MachineDefinition(
    name="complaint",
    version=2,
    chart=ComplaintChartV2,
    title="Customer complaint with its after-sales work",
    remembered={
        **COMPLAINT_V1.remembered,
        "book_visit": ("technician", "partner"),
        "route": ("to",),
        "decide_remedy": ("remedy", "rules_version"),
        "quote": ("amount", "currency"),
        "merge_into": ("case",),
        "link": ("repeat_of",),
        "survey_answered": ("satisfaction",),
    },
    handover=("assign", "to"),
    resting=frozenset({"followed_up"}),
    attributes={
        **COMPLAINT_V1.attributes,
        "product_class": AttributeSpec(max_length=40),
        "fault_class": AttributeSpec(max_length=40),
        "tier": AttributeSpec(max_length=40),
        "address": AttributeSpec(max_length=200, personal=True),  # where a technician visits
    },
    sla={**DEFAULT_DOCUMENT, "timers": AFTER_SALES_TIMERS},
    timers={
        "book_visit": (TimerSpec("appointment", due_field="to"),),
        "route": (
            TimerSpec("routed", key_field="to"),
            TimerSpec(
                "part_arrival", due_field="promised", when={"to": "procurement"}, party_field=None
            ),
        ),
        "wait": (TimerSpec("contact", key="estimate", when={"reason": "part"}, party_field=None),),
        "part_shipped": (TimerSpec("contact", key="shipped", party_field=None),),
        "part_arrived": (TimerSpec("contact", key="booking", party_field=None),),
        "visit_done": (
            TimerSpec("contact", key="after_repair", when={"fixed": "true"}, party_field=None),
        ),
        # a repair decision's promised day (its data's repair_due, from [warranty]
        # repair_days): decisions made before it carry none and arm nothing
        "decide_remedy": (
            TimerSpec(
                "repair", due_field="repair_due", when={"remedy": "repair"}, party_field=None
            ),
        ),
    },
    ends={
        "decide_remedy": frozenset({"repair"}),
        "repair_done": frozenset({"repair"}),
        # the follow-up closes the work: no reminder of it outlives it (a call-back
        # reminder on a case followed up is noise; a reopen arms what it needs again)
        "follow_up": frozenset({"repair", "contact", "appointment", "routed", "part_arrival"}),
        "arrive": frozenset({"appointment"}),
        "contact": frozenset({"contact"}),
        "part_arrived": frozenset({"part_arrival"}),
        "resume": frozenset({"part_arrival"}),
        "resolve": frozenset({"routed"}),
    },
    counted={
        "link": "links",
        "book_visit": "bookings",
        "arrive": "arrivals",
        "visit_done": "visits",
        "quote": "quotes",
        "accept_quote": "answers",
        "decline_quote": "answers",
    },
    marks={"not_fixed_first_visit": ("visits", 2)},
    time_fields={"book_visit": ("from", "to"), "route": ("promised",)},
    # seed 002: a complaint about the same unit again is linked to the earlier one, and
    # one that was not fixed on the first visit goes up a level at once
    relations=Relations(
        repeat=RepeatRule(
            "serial_number",
            category="not_fixed_first_visit",
            note="the same fault again: a repeat of case {case} (seed 002)",
        )
    ),
    checks=Checks(
        remedy=("decide_remedy", "route", "resolve"),
        evidenced=("decide_remedy", "resolve"),
        faults=("partner_fault",),
    ),
)
"""The standard complaint machine since version 2."""
