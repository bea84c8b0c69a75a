"""Deciding a warranty remedy (``decide_remedy``): the three-guarantees rules checked at
the event's instant against the case's purchase date, product and brand, and the rule
and its version written into the event, so each decision cites what it was made under.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from casework.machines.warranty import REMEDIES, Vocabulary, WarrantyRules
from casework.storage.records import CaseRecord
from casework.workflow.errors import InvalidInput, RemedyRefused


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


def remedy_data(
    rules: WarrantyRules,
    case: CaseRecord,
    data: Mapping[str, Any],
    at: datetime,
    reports: Sequence[str] = (),
) -> dict[str, Any]:
    """The event data of a ``decide_remedy`` the rules allow, with the rule, its
    version and the window's end added; :class:`RemedyRefused` otherwise. ``reports``
    are the digests of the test reports attached to the case, newest last: a strict
    brand's return or exchange names one (the newest, unless ``test_report`` says)."""
    remedy = data.get("remedy")
    if remedy not in REMEDIES:
        raise InvalidInput(f"remedy must be one of {', '.join(REMEDIES)}", field="remedy")
    attributes = case.attributes
    try:
        sold = date.fromisoformat(str(attributes.get("purchase_date")))
    except ValueError:
        raise RemedyRefused(
            f"case {case.id}: deciding a remedy needs the purchase_date attribute "
            "(open the case with --attr purchase_date=YYYY-MM-DD)",
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
            f"test report ({where}): attach it first (casework attach CASE FILE "
            "--kind test_report)",
            field="test_report",
        )
    extra = {"test_report": named} if named else {}
    return {
        **data,
        **extra,
        "rule": verdict.rule,
        "rules_version": rules.version,
        "window_closes_at": closes,
        "purchase_date": sold.isoformat(),
    }
