"""Deciding a warranty remedy (``decide_remedy``): the three-guarantees rules checked at
the event's instant against the case's purchase date, product and brand, and the rule
and its version written into the event, so each decision cites what it was made under.

What the brand policies decide is written into the event too, never worked out again on
replay: where the remedy is carried out (``route_to``, ``customer_takes``), who decides
it (``decided_by``: Apple's service for an Apple return or exchange), and for a warranty
repair its promised days (``repair_days``, ``repair_due``: the ``repair`` timer). Two
more events are checked here when they are fired: a ``route`` of a special brand's
return or exchange to the manufacturer (不得上返), and the ``resolve`` of a paid repair
before its quote was accepted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from casework.machines.warranty import OVERRUN_RULE, REMEDIES, Vocabulary, WarrantyRules
from casework.storage.records import CaseRecord, EventRecord
from casework.storage.timestamps import iso
from casework.workflow.errors import InvalidInput, RemedyRefused


@dataclass(frozen=True)
class RemedyEvidence:
    """What a remedy decision reads from the case's history: the digests of the test
    reports attached (oldest first), the ``repair_overdue`` of the last warranty repair
    when it overran and was neither finished nor decided again (its citation), and
    whether the customer accepted the latest quote."""

    reports: tuple[str, ...] = ()
    overrun: Mapping[str, Any] | None = None
    quote_accepted: bool = False


NO_EVIDENCE = RemedyEvidence()


def remedy_evidence(events: Iterable[EventRecord]) -> RemedyEvidence:
    """The :class:`RemedyEvidence` of a case's history."""
    reports: list[str] = []
    overrun: dict[str, Any] | None = None
    accepted = False
    for event in events:
        data = event.data or {}
        if event.event == "attach" and data.get("kind") == "test_report":
            reports.append(str(data.get("digest")))
        elif event.event == "repair_done" or (
            event.event == "decide_remedy" and data.get("remedy") == "repair"
        ):
            overrun = None
        elif event.event == "repair_overdue":
            overrun = {"seq": event.seq, "hash": event.hash, "at": iso(event.occurred_at)}
        elif event.event in ("quote", "accept_quote", "decline_quote"):
            accepted = event.event == "accept_quote"
    return RemedyEvidence(tuple(reports), overrun, accepted)


def _term(vocabulary: Vocabulary, value: Any) -> str:
    found = vocabulary.resolve(value)
    if found is None:
        raise InvalidInput(
            f"{vocabulary.name} {str(value)!r} is none of: {vocabulary.choices()}",
            field=vocabulary.name,
        )
    return found


def classified(rules: WarrantyRules, attributes: Mapping[str, Any]) -> dict[str, Any]:
    """``attributes`` with ``product_class`` and ``fault_class`` read as their
    vocabularies' ids (``电池`` is ``battery``); :class:`InvalidInput` naming the choices
    for a value that is none of them."""
    result = dict(attributes)
    for vocabulary in (rules.product_classes, rules.fault_classes):
        if result.get(vocabulary.name) is not None:
            result[vocabulary.name] = _term(vocabulary, result[vocabulary.name])
    return result


def sold_by(rules: WarrantyRules, attributes: Mapping[str, Any], received: datetime) -> None:
    """Refuse a ``purchase_date`` after the day the case was received (in the store's
    zone): a product is sold before it is complained about."""
    given = attributes.get("purchase_date")
    if given is None:
        return
    day = received.astimezone(ZoneInfo(rules.zone)).date()
    if date.fromisoformat(str(given)) > day:
        raise InvalidInput(
            f"purchase_date {given} lies after the case was received ({day.isoformat()})",
            field="purchase_date",
        )


def checked_data(
    rules: WarrantyRules,
    case: CaseRecord,
    event: str,
    data: Mapping[str, Any],
    at: datetime,
    evidence: RemedyEvidence = NO_EVIDENCE,
) -> dict[str, Any]:
    """The data of an event the machine's ``checks.remedy`` names as it is recorded, or
    :class:`RemedyRefused` saying why the rules do not allow it."""
    if event == "decide_remedy":
        return remedy_data(rules, case, data, at, evidence)
    remedy = case.facts.get("remedy")
    brand = case.attributes.get("brand")
    upward = event == "route" and data.get("to") == "manufacturer"
    if upward and remedy in ("return", "exchange") and rules.brand_class(brand) == "special":
        raise RemedyRefused(
            f"case {case.id}: a special brand's {remedy} ({brand}) is decided in the store "
            "on the spot and never sent upward (不得上返): decide it here on inspection "
            "(decide_remedy)",
            field="to",
        )
    if event == "resolve" and remedy == "paid_repair" and not evidence.quote_accepted:
        raise RemedyRefused(
            f"case {case.id}: a paid repair is resolved once the customer accepted its "
            "quote: record quote amount=<yuan> currency=CNY (parts=, labour=, travel=) "
            "and accept_quote first",
            field="remedy",
        )
    return dict(data)


def remedy_data(
    rules: WarrantyRules,
    case: CaseRecord,
    data: Mapping[str, Any],
    at: datetime,
    evidence: RemedyEvidence = NO_EVIDENCE,
) -> dict[str, Any]:
    """The event data of a ``decide_remedy`` the rules allow, with the rule, its
    version, the window's end and the brand policy's routing added (and a warranty
    repair's promised day); :class:`RemedyRefused` otherwise. A strict brand's return
    or exchange names a test report attached to the case (the newest, unless
    ``test_report`` says); an exchange after a repair's overrun cites the overrun."""
    reports = evidence.reports
    remedy = data.get("remedy")
    if remedy not in REMEDIES:
        raise InvalidInput(f"remedy must be one of {', '.join(REMEDIES)}", field="remedy")
    attributes = case.attributes
    try:
        sold = date.fromisoformat(str(attributes.get("purchase_date")))
    except ValueError:
        raise RemedyRefused(
            f"case {case.id}: deciding a remedy needs the purchase_date attribute "
            "(open the case with the attribute purchase_date=YYYY-MM-DD)",
            field="purchase_date",
        ) from None
    if sold > at.astimezone(ZoneInfo(rules.zone)).date():
        raise RemedyRefused(
            f"case {case.id}: the purchase_date {sold.isoformat()} lies after this decision",
            field="purchase_date",
        )
    try:
        known = classified(rules, attributes)
    except InvalidInput as err:
        raise RemedyRefused(f"case {case.id}: {err}", field=err.field) from None
    verdict = rules.verdict(
        str(remedy),
        sold=sold,
        product_class=known.get("product_class"),
        brand=attributes.get("brand"),
        fault_class=known.get("fault_class"),
        at=at,
        overrun=evidence.overrun is not None,
    )
    closes = None if verdict.closes_at is None else verdict.closes_at.isoformat()
    where = f"rule {verdict.rule!r} (warranty rules v{rules.version})"
    if not verdict.allowed:
        reason = f"the window closed at {closes}" if closes else "not covered"
        raise RemedyRefused(
            f"case {case.id}: {remedy} refused by {where}: {reason}", field="remedy"
        )
    named = str(data.get("test_report") or "") or (reports[-1] if reports else "")
    if named and named not in reports:
        raise RemedyRefused(
            f"case {case.id}: test_report {named} is no test report attached to the case",
            field="test_report",
        )
    if verdict.needs_test_report and not named:
        brand = attributes.get("brand")
        raise RemedyRefused(
            f"case {case.id}: {remedy} of a strict brand ({brand}) needs the manufacturer's "
            f"test report ({where}): attach it first (an attachment of kind test_report)",
            field="test_report",
        )
    extra: dict[str, Any] = {"test_report": named} if named else {}
    if verdict.rule == OVERRUN_RULE:
        extra["overrun"] = dict(evidence.overrun or {})
    if remedy == "repair":
        extra["repair_days"] = rules.repair_days
        extra["repair_due"] = iso(rules.repair_due(at))
    routing = rules.routing(str(remedy), attributes.get("brand"), known.get("fault_class"))
    return {
        **data,
        **extra,
        **routing.to_data(),
        "brand_class": rules.brand_class(attributes.get("brand")),
        "rule": verdict.rule,
        "rules_version": rules.version,
        "window_closes_at": closes,
        "purchase_date": sold.isoformat(),
    }
