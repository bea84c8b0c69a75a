"""Deciding a warranty remedy (``decide_remedy``): the three-guarantees rules checked at
the event's instant against the case's purchase date, product and brand, and the rule
and its version written into the event, so each decision cites what it was made under.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from casework.machines.warranty import REMEDIES, WarrantyRules
from casework.storage.records import CaseRecord
from casework.workflow.errors import InvalidInput, RemedyRefused


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
    verdict = rules.verdict(
        str(remedy),
        sold=sold,
        product_class=attributes.get("product_class"),
        brand=attributes.get("brand"),
        fault_class=attributes.get("fault_class"),
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
