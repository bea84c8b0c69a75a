"""The "three guarantees" (seed 000): which remedy a customer is owed, and until when.

The guarantees cover a performance fault not caused by the customer (非人为损坏的性能
故障): a phone may then be returned within 7 days of sale, exchanged within 15,
repaired under warranty for a year; a battery is under warranty 6 months, earphones 3,
a charger a year. A general fault (一般性故障: fixed in the store by software, an update
or a reset) is repaired, never returned or exchanged; a fault the customer caused
(人为故障) is repaired at the customer's cost only. Strict brands (Apple, Samsung,
Xiaomi, Meizu) return or exchange only with the manufacturer's test report; normal
brands in principle with one; special brands are decided by the store on inspection.
Product and fault classes are closed vocabularies with Chinese and English names and
aliases: an unknown value is refused, never read as "any other".

Each decision says where the remedy is carried out (:class:`Routing`): a strict or
normal brand's repair at the manufacturer's service, the customer taking it there
(客户自行送修); Apple's returns and exchanges decided by Apple's service; a special
brand's return or exchange decided in the store, never sent upward (不得上返). A
warranty repair is promised within ``repair_days``; one that overran may become an
exchange after the exchange window (维修超期可申请换机).

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


@dataclass(frozen=True)
class Term:
    """One value of a closed vocabulary: its id, its Chinese and English names, and
    other spellings people type for it."""

    id: str
    zh: str
    en: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Vocabulary:
    """A closed list of terms; :meth:`resolve` reads any of a term's spellings."""

    name: str
    terms: tuple[Term, ...]

    def resolve(self, value: object) -> str | None:
        """The id of the term ``value`` spells (case and surrounding blanks ignored),
        or ``None`` for a value that is none of them."""
        wanted = str(value).strip().casefold().replace("-", "_").replace(" ", "_")
        for term in self.terms:
            spellings = (term.id, term.zh, term.en, *term.aliases)
            if wanted in {s.casefold().replace("-", "_").replace(" ", "_") for s in spellings}:
                return term.id
        return None

    def choices(self) -> str:
        """The terms as a person reads them: ``battery (电池)``, ..."""
        return ", ".join(f"{t.id} ({t.zh})" for t in self.terms)

    def ids(self) -> tuple[str, ...]:
        """The terms' ids, in order."""
        return tuple(t.id for t in self.terms)

    def with_terms(self, terms: tuple[Term, ...]) -> Vocabulary:
        """This vocabulary with ``terms`` added, or replacing the terms of the same id."""
        kept = tuple(t for t in self.terms if t.id not in {n.id for n in terms})
        return Vocabulary(self.name, kept + terms)


PRODUCT_CLASSES = Vocabulary(
    "product_class",
    (
        Term("phone", "主机", "phone", ("手机", "handset", "main unit", "host")),
        Term("battery", "电池", "battery", ("電池",)),
        Term("earphones", "耳机", "earphones", ("earphone", "headset", "耳機")),
        Term("charger", "充电器", "charger", ("充電器",)),
    ),
)
"""Seed 000's parts: the phone (主机) and its accessories (附件)."""

FAULT_CLASSES = Vocabulary(
    "fault_class",
    (
        Term("performance", "性能故障", "performance fault",
             ("hardware", "硬件故障", "性能故障（硬件）", "hardware fault")),
        Term("general", "一般性故障", "general fault",
             ("software", "软件故障", "一般故障", "general")),
        Term("customer_caused", "人为故障", "customer-caused fault",
             ("人为损坏", "customer caused", "customer", "damage", "人為故障")),
    ),
)  # fmt: skip
"""Seed 000's fault classes: a performance fault is a hardware fault the store cannot
fix (the manufacturer's service can); a general fault the store fixes by software, an
update or a reset; a customer-caused fault comes from misuse, a third party's repair or
damage."""


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
class Routing:
    """Where a decided remedy is carried out and who decides it (seed 000's brand
    slide): ``route_to`` the store or the manufacturer's service, ``customer_takes``
    when the customer takes the product there himself (客户自行送修), ``decided_by``
    the store, or the manufacturer's service when the store only hands the case over
    (Apple's returns and exchanges); ``policy`` the seed's words for it."""

    route_to: str
    customer_takes: bool
    decided_by: str
    policy: str

    def to_data(self) -> dict[str, object]:
        """The fields a ``decide_remedy`` event records."""
        return {
            "route_to": self.route_to,
            "customer_takes": self.customer_takes,
            "decided_by": self.decided_by,
            "policy": self.policy,
        }


ROUTINGS = {
    "manufacturer_decides": Routing(
        "manufacturer", True, "manufacturer",
        "苹果品牌退换机由厂家客服自行处理: handed over to the manufacturer's service, "
        "which decides",
    ),
    "special_in_store": Routing(
        "store", False, "store",
        "由门店按目测检测标准处理, 现场快速处理, 不得上返: decided in the store on the spot, "
        "never sent upward",
    ),
    "store_on_report": Routing(
        "store", False, "store",
        "退换机须有厂家客服检测单: decided in the store on the manufacturer's test report",
    ),
    "general_in_store": Routing(
        "store", False, "store",
        "一般性故障: fixed in the store (software, an update, a reset)",
    ),
    "through_company": Routing(
        "manufacturer", False, "store",
        "当地没有厂家网点返公司返厂维修: sent to the factory through the company where the "
        "manufacturer has no local service point",
    ),
    "customer_takes": Routing(
        "manufacturer", True, "store",
        "维修由客户自行送修: the customer takes it to the manufacturer's service",
    ),
}  # fmt: skip
"""Seed 000's brand policies, by the case they apply to."""

OVERRUN_RULE = "exchange after the repair overran its promised day (维修超期可申请换机)"


@dataclass(frozen=True)
class WarrantyRules:
    """The windows, brand classes and fault rule of one version."""

    version: int
    zone: str = "Asia/Shanghai"
    return_days: int = 7
    exchange_days: int = 15
    repair_days: int = 15
    """The days a warranty repair is promised in (the day of the decision not counted):
    seed 000 gives no number; 15, the length of the exchange window, unless
    ``[warranty] repair_days`` says otherwise."""
    manufacturer_decides: frozenset[str] = frozenset({"apple", "苹果"})
    """Brands (lower case) whose returns and exchanges the manufacturer's service
    decides itself (000: 苹果品牌退换机由厂家客服自行处理)."""
    repair_months: Mapping[str, int] = field(default_factory=dict)
    """Warranty repair months by product class; ``*`` for any other."""
    brands: Mapping[str, str] = field(default_factory=dict)
    """Brand (lower case) to ``strict``, ``normal`` or ``special``; others are normal."""
    product_classes: Vocabulary = PRODUCT_CLASSES
    fault_classes: Vocabulary = FAULT_CLASSES

    def brand_class(self, brand: str | None) -> str:
        """The class of ``brand``."""
        return self.brands.get((brand or "").strip().lower(), "normal")

    def routing(self, remedy: str, brand: str | None, fault_class: str | None) -> Routing:
        """Where ``remedy`` is carried out for ``brand`` and who decides it (000)."""
        kind = self.brand_class(brand)
        if remedy in ("return", "exchange"):
            if (brand or "").strip().lower() in self.manufacturer_decides:
                return ROUTINGS["manufacturer_decides"]
            return ROUTINGS["special_in_store" if kind == "special" else "store_on_report"]
        if fault_class == "general":
            return ROUTINGS["general_in_store"]
        return ROUTINGS["through_company" if kind == "special" else "customer_takes"]

    def repair_due(self, at: datetime) -> datetime:
        """The end of a warranty repair's promised days from a decision at ``at``."""
        return period_end(at.astimezone(ZoneInfo(self.zone)).date(), self.zone,
                          days=self.repair_days)  # fmt: skip

    def verdict(
        self,
        remedy: str,
        *,
        sold: date,
        product_class: str | None,
        brand: str | None,
        fault_class: str | None,
        at: datetime,
        overrun: bool = False,
    ) -> Verdict:
        """Whether ``remedy`` may be decided at ``at`` for a product sold on ``sold``
        (``product_class`` and ``fault_class`` as their vocabularies' ids); ``overrun``:
        a warranty repair of the case ran past its promised day, so an exchange may be
        decided after its window (维修超期可申请换机)."""
        if remedy == "paid_repair":
            return Verdict(True, "paid repair: always possible")
        if fault_class == "customer_caused":
            return Verdict(False, "a fault the customer caused (人为故障): paid repair only")
        if remedy in ("return", "exchange") and fault_class != "performance":
            if fault_class == "general":
                return Verdict(
                    False,
                    f"a general fault (一般性故障) is fixed in the store: repair, not {remedy}",
                )
            return Verdict(
                False,
                f"{remedy} covers a performance fault (性能故障) only: record the fault class",
            )
        if remedy == "repair":
            months = self.repair_months.get(product_class or "", self.repair_months.get("*", 12))
            closes = period_end(sold, self.zone, months=months)
            rule = f"warranty repair within {months} months of sale"
            return Verdict(at < closes, rule, closes)
        days = self.return_days if remedy == "return" else self.exchange_days
        closes = period_end(sold, self.zone, days=days)
        strict = self.brand_class(brand) == "strict"
        rule = f"{remedy} within {days} days of sale"
        if remedy == "exchange" and overrun and at >= closes:
            return Verdict(True, OVERRUN_RULE, closes, needs_test_report=strict)
        return Verdict(at < closes, rule, closes, needs_test_report=strict)


WARRANTY_RULES_V2 = WarrantyRules(
    version=2,
    repair_months={"phone": 12, "battery": 6, "earphones": 3, "charger": 12, "*": 12},
    brands={
        **dict.fromkeys(
            ("apple", "samsung", "xiaomi", "meizu", "苹果", "三星", "小米", "魅族"), "strict"
        ),
        **dict.fromkeys(
            ("zte", "nubia", "huawei", "coolpad", "lenovo", "bbk", "oppo", "vivo", "gionee",
             "doov", "nokia", "sony", "htc", "china mobile", "中兴", "努比亚", "华为", "酷派",
             "联想", "步步高", "金立", "朵唯", "诺基亚", "索尼", "中国移动"),
            "normal",
        ),
        **dict.fromkeys(
            ("motorola", "hisense", "yumi", "tcl", "konka", "tianyu", "skyworth", "uben",
             "摩托罗拉", "海信", "优米", "康佳", "天语", "贝多芬", "博瑞", "全盈", "摩天",
             "奥洛斯", "易百年", "欧博信", "广信", "国乾", "华录", "天基", "富可视", "语信",
             "酷比", "创维", "恒波"),
            "special",
        ),
    },
)  # fmt: skip
"""Seed 000's three guarantees for mobile phones and their accessories (version 2:
return and exchange for performance faults only, Meizu strict, the brand slide's full
lists, closed product and fault classes)."""

WARRANTY_RULES = WARRANTY_RULES_V2
"""The rules in force unless ``[warranty]`` changes them."""
