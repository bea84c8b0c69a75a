"""The seeds' rules, each decided as the seed says: a table test per rule, citing the
seed's wording (000: the three guarantees and the brand slide; 003: the penalty table,
负激励标准)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from casework.machines.partner_rules import PARTNER_RULES
from casework.machines.warranty import WARRANTY_RULES
from casework.workflow import Engine, FixedClock, InvalidInput
from casework.workflow.cases.remedies import RemedyRefused
from casework.workflow.config import settings_from_mapping
from tests.support import open_sample

AT = datetime(2026, 11, 23, 12, tzinfo=ZoneInfo("Asia/Shanghai"))
SOLD = date(2026, 11, 20)


@pytest.mark.parametrize(
    ("remedy", "fault", "allowed"),
    [
        # 000: 若手机出现非人为损坏的性能故障, 消费者享受以下保修服务 (退机 7 天, 换机 15 天)
        ("return", "performance", True),
        ("exchange", "performance", True),
        ("repair", "performance", True),
        # 000: 一般性故障 ... 我们可以通过第三方软件、更新系统、恢复出厂设置等来解决的故障
        ("return", "general", False),
        ("exchange", "general", False),
        ("repair", "general", True),
        # 000: 人为故障 ... 非厂家或门店造成的手机问题: paid repair only
        ("return", "customer_caused", False),
        ("repair", "customer_caused", False),
        ("paid_repair", "customer_caused", True),
        # no fault class recorded: a return or exchange needs a performance fault
        ("return", None, False),
        ("repair", None, True),
    ],
)
def test_the_three_guarantees_cover_performance_faults_only(
    remedy: str, fault: str | None, allowed: bool
) -> None:
    verdict = WARRANTY_RULES.verdict(
        remedy, sold=SOLD, product_class="phone", brand="华为", fault_class=fault, at=AT
    )
    assert verdict.allowed is allowed, verdict.rule


@pytest.mark.parametrize(
    ("typed", "product", "months"),
    [
        # 000: 附件: 电池 半年, 耳机 3个月, 充电器 1年; 主机 保修期 一年
        ("电池", "battery", 6),
        ("Battery", "battery", 6),
        ("耳机", "earphones", 3),
        ("headset", "earphones", 3),
        ("充电器", "charger", 12),
        ("主机", "phone", 12),
        ("手机", "phone", 12),
    ],
)
def test_product_classes_are_a_closed_list_with_chinese_names(
    typed: str, product: str, months: int
) -> None:
    assert WARRANTY_RULES.product_classes.resolve(typed) == product
    assert WARRANTY_RULES.repair_months[product] == months


@pytest.mark.parametrize(
    ("typed", "fault"),
    [("性能故障", "performance"), ("一般性故障", "general"), ("人为故障", "customer_caused"),
     ("人为损坏", "customer_caused"), ("customer-caused", "customer_caused")],
)  # fmt: skip
def test_fault_classes_read_the_seed_s_names(typed: str, fault: str) -> None:
    assert WARRANTY_RULES.fault_classes.resolve(typed) == fault


def _decidable(engine: Engine, **attributes: Any) -> str:
    values = {"purchase_date": "2026-11-20", "brand": "华为", "product_class": "phone",
              "fault_class": "性能故障", **attributes}  # fmt: skip
    case_id = open_sample(engine, attributes=values)
    engine.fire(case_id, "apologise", actor="li.na")
    engine.fire(case_id, "confirm_needs", actor="li.na")
    return case_id


def test_a_case_stores_the_class_ids_and_refuses_unknown_ones(engine: Engine) -> None:
    case_id = _decidable(engine, product_class="电池", fault_class="人为损坏")
    attributes = engine.get(case_id).attributes
    assert (attributes["product_class"], attributes["fault_class"]) == (
        "battery", "customer_caused",
    )  # fmt: skip
    with pytest.raises(RemedyRefused, match="paid repair only"):
        engine.fire(case_id, "decide_remedy", actor="li.na", data={"remedy": "repair"})
    with pytest.raises(InvalidInput, match=r"product_class 'screen' is none of: phone \(主机\)"):
        open_sample(engine, attributes={"product_class": "screen"})
    with pytest.raises(InvalidInput, match="fault_class"):
        open_sample(engine, attributes={"fault_class": "broken"})


def test_a_general_fault_is_repaired_in_the_store_not_returned(engine: Engine) -> None:
    case_id = _decidable(engine, fault_class="一般性故障")
    with pytest.raises(RemedyRefused, match="general fault"):
        engine.fire(case_id, "decide_remedy", actor="li.na", data={"remedy": "return"})
    engine.fire(case_id, "decide_remedy", actor="li.na", data={"remedy": "repair"})


@pytest.mark.parametrize("brand", ["魅族", "Meizu", "苹果", "Samsung", "小米"])
def test_meizu_is_a_strict_brand_as_the_brand_slide_says(engine: Engine, brand: str) -> None:
    """000: 严控品牌 苹果、三星、小米、魅族 ... 退换机必须有厂家客服检测单."""
    case_id = _decidable(engine, brand=brand)
    with pytest.raises(RemedyRefused, match="test report"):
        engine.fire(case_id, "decide_remedy", actor="li.na", data={"remedy": "return"})


def test_a_purchase_after_the_complaint_is_refused(engine: Engine, clock: FixedClock) -> None:
    tomorrow = (clock.now().astimezone(ZoneInfo("Asia/Shanghai")).date()).toordinal() + 1
    later = date.fromordinal(tomorrow).isoformat()
    with pytest.raises(InvalidInput, match=r"purchase_date .* lies after the case was received"):
        open_sample(engine, attributes={"purchase_date": later})
    assert engine.list() == []


PENALTIES = [
    # (fault, data, points, fine in yuan): seed 003's 负激励标准 as the README reads it
    ("missed_appointment", {}, 1, 100),  # 9、不能按与用户约定的时间及时上门: 100 元, 1 分
    ("unreasonable_charge", {"charge": "80"}, 2, 400),  # 12、不按规定收费: 不合理费用的5倍, 2 分
    ("repeat_repair", {}, 1, 200),  # 3、因安装质量差造成的维修: 基本维修费2倍的金额
    ("repeat_repair", {"repair_fee": "150"}, 1, 300),  # the repair's own basic fee
    ("left_unattended", {}, 2, 500),  # 11、搁置长时间不处理造成用户投诉: 500 元, 2 分
    ("return_forced_by_installation", {}, 2, 600),  # 安装 2: 600 元, 2 分
    ("installation_not_tested", {}, 1, 300),  # 安装 1: 不试机, 不检漏 ...: 300 元, 1 分
    ("damaged_property", {"compensation": "250"}, 1, 350),  # 7、损坏 ... 100 并照价赔偿
    ("major_complaint", {}, 2, 200),  # 其它 2、重大投诉和曝光
    ("no_uniform", {}, 1, 100),  # 服务 1: no legible amount, 100 and 1 by default
    ("no_shoe_covers", {}, 1, 100),
    ("use_not_explained", {}, 1, 100),
]


@pytest.mark.parametrize(("fault", "data", "points", "fine"), PENALTIES)
def test_partner_penalties_follow_seed_003_s_table(
    fault: str, data: dict[str, str], points: int, fine: int
) -> None:
    rule = PARTNER_RULES.deductions[fault]
    assert rule.points == points
    assert rule.fine(PARTNER_RULES.basic_repair_fee, data) == Decimal(fine)
    assert rule.zh
    assert rule.en
    assert rule.item


def test_every_violation_is_recordable_and_a_charge_needs_its_sum(engine: Engine) -> None:
    case_id = open_sample(engine)
    for fault in PARTNER_RULES.deductions:
        data = {"partner": "P-安装一队", "fault": fault, "charge": "50"}
        engine.fire(case_id, "partner_fault", actor="zhao.lei", data=data)
    with pytest.raises(InvalidInput, match="needs the charge in yuan"):
        engine.fire(case_id, "partner_fault", actor="zhao.lei",
                    data={"partner": "P-安装一队", "fault": "unreasonable_charge"})  # fmt: skip
    with pytest.raises(InvalidInput, match="no violation of the partner rules"):
        engine.fire(case_id, "partner_fault", actor="zhao.lei",
                    data={"partner": "P-安装一队", "fault": "late"})  # fmt: skip


def test_a_violation_added_in_the_settings_is_recordable(db_url: str, clock: FixedClock) -> None:
    settings = settings_from_mapping(
        {"partners": {"deductions": {"no_safety_helmet": {
            "points": 1, "fine_yuan": 200, "zh": "高空作业未戴安全帽"}}}}, "t.toml",
    )  # fmt: skip
    with Engine.open(db_url, clock=clock, config=settings) as engine:
        case_id = open_sample(engine)
        engine.fire(case_id, "partner_fault", actor="zhao.lei",
                    data={"partner": "P-安装一队", "fault": "no_safety_helmet"})  # fmt: skip
        assert engine.history(case_id)[-1].data["fault"] == "no_safety_helmet"
    assert settings.partners.deductions["no_safety_helmet"].zh == "高空作业未戴安全帽"
