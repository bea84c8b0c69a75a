"""The "three guarantees" (seed 000): which remedy a customer is owed, and until when.

A phone may be returned within 7 days of sale, exchanged within 15, repaired under
warranty for a year; a battery is under warranty 6 months, earphones 3, a charger a
year. Strict brands (Apple, Samsung, Xiaomi) return or exchange only with the
manufacturer's test report; normal brands in principle with one; special brands are
decided by the store on inspection. A fault the customer caused is repaired at the
customer's cost only.

Days are counted as China's Civil Code counts them (art. 201-203): the day of sale is
not counted, a period ends at 24:00 of its last day in the store's time zone, and a
period of months or years ends on the corresponding day (the month's last day where
it has none). A pure, versioned value: each decision records the version it was made
under.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

REMEDIES = ("return", "exchange", "repair", "paid_repair")
BRAND_CLASSES = ("strict", "normal", "special")


def period_end(sold: date, zone: str, *, days: int = 0, months: int = 0) -> datetime:
    """The instant a period from the day of sale ends: 24:00 (the next midnight) of its
    last day in ``zone``. The day of sale is not counted; a period of months ends on
    the corresponding day, or the month's last day where there is none."""
    if days:
        last = sold + timedelta(days=days)
    else:
        years, month_index = divmod(sold.month - 1 + months, 12)
        year, month = sold.year + years, month_index + 1
        last = date(year, month, min(sold.day, calendar.monthrange(year, month)[1]))
    return datetime.combine(last + timedelta(days=1), time(), tzinfo=ZoneInfo(zone))


@dataclass(frozen=True)
class Verdict:
    """Whether a remedy may be decided, under which rule, and until when its window
    stays open (``None`` for one without a window)."""

    allowed: bool
    rule: str
    closes_at: datetime | None = None
    needs_test_report: bool = False


@dataclass(frozen=True)
class WarrantyRules:
    """The windows, brand classes and fault rule of one version."""

    version: int
    zone: str = "Asia/Shanghai"
    return_days: int = 7
    exchange_days: int = 15
    repair_months: Mapping[str, int] = field(default_factory=dict)
    """Warranty repair months by product class; ``*`` for any other."""
    brands: Mapping[str, str] = field(default_factory=dict)
    """Brand (lower case) to ``strict``, ``normal`` or ``special``; others are normal."""

    def brand_class(self, brand: str | None) -> str:
        """The class of ``brand``."""
        return self.brands.get((brand or "").strip().lower(), "normal")

    def verdict(
        self,
        remedy: str,
        *,
        sold: date,
        product_class: str | None,
        brand: str | None,
        fault_class: str | None,
        at: datetime,
    ) -> Verdict:
        """Whether ``remedy`` may be decided at ``at`` for a product sold on ``sold``."""
        if remedy == "paid_repair":
            return Verdict(True, "paid repair: always possible")
        if fault_class == "customer_caused":
            return Verdict(False, "a fault the customer caused: paid repair only")
        if remedy == "repair":
            months = self.repair_months.get(product_class or "", self.repair_months.get("*", 12))
            closes = period_end(sold, self.zone, months=months)
            rule = f"warranty repair within {months} months of sale"
            return Verdict(at < closes, rule, closes)
        days = self.return_days if remedy == "return" else self.exchange_days
        closes = period_end(sold, self.zone, days=days)
        strict = self.brand_class(brand) == "strict"
        rule = f"{remedy} within {days} days of sale"
        return Verdict(at < closes, rule, closes, needs_test_report=strict)


WARRANTY_RULES_V1 = WarrantyRules(
    version=1,
    repair_months={"phone": 12, "battery": 6, "earphones": 3, "charger": 12, "*": 12},
    brands={
        **dict.fromkeys(("apple", "samsung", "xiaomi", "苹果", "三星", "小米"), "strict"),
        **dict.fromkeys(
            ("zte", "huawei", "coolpad", "lenovo", "oppo", "vivo", "中兴", "华为", "酷派", "联想"),
            "normal",
        ),
        **dict.fromkeys(
            ("motorola", "hisense", "tcl", "konka", "摩托罗拉", "海信", "康佳"), "special"
        ),
    },
)
"""Seed 000's three guarantees for mobile phones and their accessories."""
