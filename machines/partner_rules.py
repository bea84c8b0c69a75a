"""How partners are rated each quarter (seed 003): 100 points less a deduction per fault,
a fine per fault, and the band the points fall in. A pure, versioned value.

The faults are the rows of seed 003's penalty table (负激励标准); a fine is a fixed sum,
a multiple of the basic repair fee, or a multiple of the unreasonable charge the event
names, plus the compensation the event names where the table says "照价赔偿"."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

CHARGE_FIELD = "charge"
"""The unreasonable charge in yuan, named by a fault whose fine is a multiple of it."""
FEE_FIELD = "repair_fee"
"""The basic fee of the repair in yuan, where a fault's fine is a multiple of it (the
configured basic repair fee otherwise)."""
COMPENSATION_FIELD = "compensation"
"""What the partner pays the customer for damage, in yuan (added to the fine)."""


def yuan(value: Any) -> Decimal | None:
    """A sum of money in yuan from event data, or ``None`` if it is not one."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() and 0 <= amount < 10**9 else None


@dataclass(frozen=True)
class Deduction:
    """What one fault costs a partner: points off its quarter, and a fine in yuan, a
    multiple of the basic repair fee, or a multiple of the unreasonable charge."""

    points: int
    fine_yuan: int = 0
    fee_multiple: int = 0
    charge_multiple: int = 0
    compensated: bool = False
    """The partner also pays the customer's loss at cost (the event's ``compensation``)."""
    zh: str = ""
    en: str = ""
    item: str = ""
    """Where the fault stands in seed 003's table (``service 9``)."""

    def needs(self) -> tuple[str, ...]:
        """The data fields an occurrence must name for its fine to be computed."""
        return (CHARGE_FIELD,) if self.charge_multiple else ()

    def fine(self, basic_repair_fee: int, data: Mapping[str, Any] | None = None) -> Decimal:
        """The fine of one occurrence, in yuan, from the event's ``data``."""
        given = data or {}
        fee = yuan(given.get(FEE_FIELD)) if given.get(FEE_FIELD) is not None else None
        charge = yuan(given.get(CHARGE_FIELD)) or Decimal(0)
        paid = yuan(given.get(COMPENSATION_FIELD)) if self.compensated else None
        return (
            self.fine_yuan
            + self.fee_multiple * (fee if fee is not None else Decimal(basic_repair_fee))
            + self.charge_multiple * charge
            + (paid or Decimal(0))
        )


@dataclass(frozen=True)
class PartnerRules:
    """The rating rules of one version."""

    version: int
    deductions: Mapping[str, Deduction]
    bands: tuple[tuple[int, str], ...]
    """(lowest points, band), highest first."""
    basic_repair_fee: int = 100
    start: int = 100
    extra: Mapping[str, str] = field(default_factory=dict)

    def band(self, points: int) -> str:
        """The band ``points`` fall in."""
        return next(name for lowest, name in self.bands if points >= lowest)


def _d(item: str, zh: str, en: str, points: int, **fine: Any) -> Deduction:
    return Deduction(points=points, zh=zh, en=en, item=item, **fine)


PARTNER_RULES_V2 = PartnerRules(
    version=2,
    deductions={
        "installation_not_tested": _d(
            "installation 1",
            "安装前后不试机、不检漏、不封穿墙孔、不作排水试验、不检查电源或安装维修技术不良造成投诉",
            "no test run, leak check, sealed holes, drainage test or power check, or poor "
            "technique, causing a complaint",
            1,
            fine_yuan=300,
        ),
        "return_forced_by_installation": _d(
            "installation 2",
            "因安装技术原因造成需要为用户退换机",
            "a return or exchange forced by installation technique",
            2,
            fine_yuan=600,
        ),
        "repeat_repair": _d(
            "installation 3",
            "因安装质量差造成的维修",
            "a repair caused by poor installation quality",
            1,
            fee_multiple=2,
        ),
        "pipes_untidy": _d(
            "installation 4",
            "连接管、联机线整理包扎不平整美观",
            "connecting pipes and cables untidy",
            1,
            fine_yuan=100,
        ),
        "drain_pipe_untidy": _d(
            "installation 5", "未整理排水管", "drain pipe not arranged", 1, fine_yuan=100
        ),
        "unit_not_firm": _d(
            "installation 6",
            "室内、外机安装不平稳牢固",
            "indoor or outdoor unit not level and firm",
            1,
            fine_yuan=100,
        ),
        "no_dust_protection": _d(
            "installation 7",
            "打穿墙孔前无防尘措施",
            "no dust protection before drilling",
            1,
            fine_yuan=100,
        ),
        "remote_not_explained": _d(
            "installation 8",
            "未向用户详细介绍遥控器使用",
            "remote control not explained",
            1,
            fine_yuan=100,
        ),
        "filter_not_explained": _d(
            "installation 9",
            "未向用户详细介绍过滤网清洗方法",
            "filter cleaning not explained",
            1,
            fine_yuan=100,
        ),
        "use_not_explained": _d(
            "installation 10",
            "安装后未讲解使用方法和保养常识造成投诉",
            "use and care not explained after installing, causing a complaint",
            1,
            fine_yuan=100,
        ),
        "no_uniform": _d(
            "service 1",
            "未按规定穿着工装或衣着不整齐",
            "no company uniform, or untidy",
            1,
            fine_yuan=100,
        ),
        "other_brand_uniform": _d(
            "service 2", "穿着其它品牌工装", "another brand's uniform", 1, fine_yuan=100
        ),
        "no_shoe_covers": _d(
            "service 3",
            "不穿鞋套、不用垫布盖布、未征询意见搬动家具",
            "no shoe covers, tool cloth or furniture covers, or furniture moved unasked",
            1,
            fine_yuan=100,
        ),
        "no_design": _d(
            "service 4",
            "未按用户要求上门设计造成投诉",
            "no on-site design as the customer asked, causing a complaint",
            1,
            fine_yuan=100,
        ),
        "unsuited_model": _d(
            "service 5",
            "机型与房间不适应，安装前未解释造成投诉或退换机",
            "a model unsuited to the room not explained, causing a complaint or a return",
            1,
            fine_yuan=300,
        ),
        "not_cleaned_up": _d(
            "service 6",
            "服务后未打扫卫生、整理挪动的家具",
            "not cleaning up or putting furniture back",
            1,
            fine_yuan=100,
        ),
        "damaged_property": _d(
            "service 7",
            "损坏用户家具、用品或装修（并照价赔偿）",
            "damaging the customer's furniture, goods or decoration (and paying for it)",
            1,
            fine_yuan=100,
            compensated=True,
        ),
        "no_greeting": _d(
            "service 8",
            "未按规范问候敲门、未递交《客户服务监督卡》",
            "no proper greeting or knock, supervision card not handed over",
            1,
            fine_yuan=100,
        ),
        "missed_appointment": _d(
            "service 9",
            "不能按与用户约定的时间及时上门",
            "not arriving at the time agreed with the customer",
            1,
            fine_yuan=100,
        ),
        "shirking": _d(
            "service 10",
            "推诿安装维修要求或不执行委派的工作",
            "shirking an installation or repair, or refusing assigned work",
            1,
            fine_yuan=300,
        ),
        "left_unattended": _d(
            "service 11",
            "将用户的机器搁置长时间不处理造成投诉",
            "leaving the customer's unit unattended for long, causing a complaint",
            2,
            fine_yuan=500,
        ),
        "unreasonable_charge": _d(
            "service 12",
            "不按规定收费（不合理费用的5倍）",
            "charging outside the rules (5 times the unreasonable charge)",
            2,
            charge_multiple=5,
        ),
        "misconduct_in_home": _d(
            "service (eating)",
            "在用户家吃、喝、拿、抽烟或乱翻用户物品",
            "eating, drinking, taking or smoking in the customer's home, or searching it",
            3,
            fine_yuan=500,
        ),
        "no_feedback": _d(
            "others 1",
            "不及时反馈投诉处理信息或表格",
            "late feedback on complaints or forms",
            1,
            fine_yuan=100,
        ),
        "major_complaint": _d(
            "others 2",
            "因服务质量造成重大投诉和曝光",
            "a major complaint or media exposure",
            2,
            fine_yuan=200,
        ),
        "no_activity": _d(
            "others 3",
            "不积极配合参与公司组织的服务活动",
            "not taking part in the company's service activities",
            1,
            fine_yuan=100,
        ),
        "refused_management": _d(
            "others 4",
            "拒绝公司管理或损坏同行名誉",
            "refusing the company's management or harming other partners' names",
            1,
            fine_yuan=100,
        ),
    },
    bands=(
        (96, "★★★★★"),
        (90, "★★★★"),
        (85, "★★★"),
        (80, "★★"),
        (70, "★"),
        (60, "qualified"),
        (-(10**9), "not qualified"),
    ),
)
"""Seed 003's rating: every row of its penalty table (负激励标准) with the fine and points
it gives, as read in the README ("Partner penalties"); five stars 96-100 down to not
qualified under 60."""

PARTNER_RULES = PARTNER_RULES_V2
"""The rules in force unless ``[partners]`` changes them."""
