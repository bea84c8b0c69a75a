"""The seeds' rules, each decided as the seed says: a table test per rule, citing the
seed's wording (000: the three guarantees and the brand slide; 003: the penalty table,
负激励标准)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from casework.machines.partner_rules import PARTNER_RULES
from casework.machines.warranty import WARRANTY_RULES
from casework.storage import iso
from casework.workflow import Engine, FixedClock, GuardFailed, InvalidInput
from casework.workflow.cases.remedies import RemedyRefused
from casework.workflow.config import settings_from_mapping
from tests.support import decidable, open_sample

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
    return decidable(engine, **{"fault_class": "性能故障", **attributes})  # the seed's name


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


ROUTINGS = [
    # (remedy, brand, fault class) -> (route_to, customer_takes, decided_by): 000's brand slide
    # 严控品牌 Apple/三星/小米: 3、维修必须由客户自行送修
    ("repair", "小米", "performance", ("manufacturer", True, "store")),
    # 普通品牌 中兴/华为/...: 2、维修: 由客户自行送修
    ("repair", "华为", "performance", ("manufacturer", True, "store")),
    # 特殊品牌 摩托罗拉/海信/TCL/...: 2、维修: 当地没有厂家网点返公司返厂维修
    ("repair", "TCL", "performance", ("manufacturer", False, "store")),
    # 一般性故障 ... 我们可以通过第三方软件、更新系统、恢复出厂设置等来解决的故障
    ("repair", "小米", "general", ("store", False, "store")),
    # 4、苹果品牌退换机由厂家客服自行处理
    ("return", "Apple", "performance", ("manufacturer", True, "manufacturer")),
    ("exchange", "苹果", "performance", ("manufacturer", True, "manufacturer")),
    # 严控品牌: 2、退换机必须有厂家客服检测单 (decided in the store on the report)
    ("exchange", "三星", "performance", ("store", False, "store")),
    # 特殊品牌: 1、退换机: 由门店按目测检测标准处理, 要求现场快速处理, 不得上返
    ("return", "海信", "performance", ("store", False, "store")),
]


@pytest.mark.parametrize(("remedy", "brand", "fault", "routed"), ROUTINGS)
def test_the_brand_slide_routes_each_remedy(
    remedy: str, brand: str, fault: str, routed: tuple[str, bool, str]
) -> None:
    routing = WARRANTY_RULES.routing(remedy, brand, fault)
    assert (routing.route_to, routing.customer_takes, routing.decided_by) == routed
    assert routing.policy


def test_a_decision_records_its_routing_and_a_repair_its_promised_day(engine: Engine) -> None:
    """000: 维修: 由客户自行送修; 苹果品牌退换机由厂家客服自行处理 (the store hands it over)."""
    huawei = _decidable(engine)
    engine.fire(huawei, "decide_remedy", actor="li.na", data={"remedy": "repair"})
    decided = engine.history(huawei)[-1].data
    assert (decided["route_to"], decided["customer_takes"], decided["decided_by"]) == (
        "manufacturer", True, "store",
    )  # fmt: skip
    assert decided["repair_days"] == 15
    assert decided["repair_due"].startswith("2026-12-08T16:00:00")  # 24:00 of 8 Dec, Shanghai
    repair = {d["clock"]: d for d in engine.get(huawei).deadlines}["repair"]
    assert repair["kind"] == "repair_overdue"
    apple = _decidable(engine, brand="Apple")
    engine.attach(apple, b"Apple test report", kind="test_report", name="r.pdf", actor="li.na")
    engine.fire(apple, "decide_remedy", actor="li.na", data={"remedy": "return"})
    handed = engine.history(apple)[-1].data
    assert (handed["decided_by"], handed["route_to"]) == ("manufacturer", "manufacturer")
    assert "厂家客服自行处理" in handed["policy"]
    assert engine.verify().ok


@pytest.mark.parametrize("remedy", ["return", "exchange"])
def test_a_special_brand_s_return_is_never_sent_upward(engine: Engine, remedy: str) -> None:
    """000, 特殊品牌: 退换机 ... 要求现场快速处理, 不得上返."""
    case_id = _decidable(engine, brand="TCL")
    engine.fire(case_id, "decide_remedy", actor="li.na", data={"remedy": remedy})
    with pytest.raises(RemedyRefused, match=r"never sent upward \(不得上返\)"):
        engine.fire(case_id, "route", actor="li.na", data={"to": "manufacturer"})
    engine.fire(case_id, "route", actor="li.na", data={"to": "store"})
    huawei = _decidable(engine)  # a normal brand's return may go to the manufacturer
    engine.fire(huawei, "decide_remedy", actor="li.na", data={"remedy": remedy})
    engine.fire(huawei, "route", actor="li.na", data={"to": "manufacturer"})


def test_a_repair_that_overran_may_become_an_exchange_after_its_window(
    engine: Engine, clock: FixedClock
) -> None:
    """000: 维修超期: 可申请换机. Sold on 1 November, the exchange window closed on the
    17th; the repair decided on the 23rd is promised by 24:00 on 8 December."""
    case_id = _decidable(engine, purchase_date="2026-11-01")
    engine.fire(case_id, "decide_remedy", actor="li.na", data={"remedy": "repair"})
    with pytest.raises(RemedyRefused, match="exchange within 15 days of sale"):
        engine.fire(case_id, "decide_remedy", actor="li.na", data={"remedy": "exchange"})
    engine.fire(case_id, "decide_remedy", actor="li.na", data={"remedy": "repair"})
    clock.set(datetime(2026, 12, 9, 9, tzinfo=ZoneInfo("Asia/Shanghai")))
    engine.process_due()
    (overdue,) = [e for e in engine.history(case_id) if e.event == "repair_overdue"]
    assert overdue.occurred_at == datetime(2026, 12, 9, tzinfo=ZoneInfo("Asia/Shanghai"))
    engine.fire(case_id, "decide_remedy", actor="li.na", data={"remedy": "exchange"})
    decided = engine.history(case_id)[-1].data
    assert (
        decided["rule"] == "exchange after the repair overran its promised day (维修超期可申请换机)"
    )
    assert decided["overrun"] == {
        "seq": overdue.seq,
        "hash": overdue.hash,
        "at": iso(overdue.occurred_at),
    }
    assert engine.verify().ok


def test_a_repair_finished_in_time_fires_nothing_and_gives_no_exchange(
    engine: Engine, clock: FixedClock
) -> None:
    case_id = _decidable(engine, purchase_date="2026-11-01")
    engine.fire(case_id, "decide_remedy", actor="li.na", data={"remedy": "repair"})
    clock.set(datetime(2026, 12, 1, 9, tzinfo=ZoneInfo("Asia/Shanghai")))
    engine.fire(case_id, "repair_done", actor="li.na", note="客户已取回修好的手机")
    assert "repair" not in {d["clock"] for d in engine.get(case_id).deadlines}
    clock.set(datetime(2026, 12, 10, 9, tzinfo=ZoneInfo("Asia/Shanghai")))
    engine.process_due()
    assert "repair_overdue" not in [e.event for e in engine.history(case_id)]
    with pytest.raises(RemedyRefused, match="exchange within 15 days"):
        engine.fire(case_id, "decide_remedy", actor="li.na", data={"remedy": "exchange"})


def test_repair_days_come_from_the_settings(db_url: str, clock: FixedClock) -> None:
    settings = settings_from_mapping({"warranty": {"repair_days": 7}}, "t.toml")
    with Engine.open(db_url, clock=clock, config=settings) as engine:
        case_id = _decidable(engine)
        engine.fire(case_id, "decide_remedy", actor="li.na", data={"remedy": "repair"})
        decided = engine.history(case_id)[-1].data
        assert (decided["repair_days"], decided["repair_due"][:10]) == (7, "2026-11-30")


def _visited(engine: Engine, branch: str, done_at: datetime, clock: FixedClock) -> str:
    case_id = open_sample(engine, branch=branch)
    engine.fire(case_id, "apologise", actor="li.na")
    window = {"from": clock.now().isoformat(), "to": (clock.now() + timedelta(hours=2)).isoformat(),
              "technician": "刘师傅"}  # fmt: skip
    engine.fire(case_id, "book_visit", actor="li.na", data=window)
    engine.fire(case_id, "arrive", actor="刘师傅")
    clock.set(done_at)
    engine.fire(case_id, "visit_done", actor="刘师傅", data={"fixed": "true"})
    return case_id


def _contact_due(engine: Engine, case_id: str) -> str:
    return str({d["clock"]: d for d in engine.get(case_id).deadlines}["contact"]["due_at"])


SHANGHAI = ZoneInfo("Asia/Shanghai")
SAME_DAY_CALLS = [
    # 001: 过了一天, 工程师上门将机器修好. 当天用户又收到服务中心的电话 (the same day)
    # (branch, repair finished at, the call due by): the branch's calendar is 09:00-18:00
    ("东莞长安店", datetime(2026, 11, 24, 15, tzinfo=SHANGHAI), "2026-11-24T10:00:00"),
    # after hours: by the end of the next working day (Friday evening -> Monday 18:00)
    ("东莞长安店", datetime(2026, 11, 27, 19, tzinfo=SHANGHAI), "2026-11-30T10:00:00"),
    # a branch whose clocks run around the clock: by midnight, Shanghai time
    ("广州", datetime(2026, 11, 24, 15, tzinfo=SHANGHAI), "2026-11-24T16:00:00"),
]


@pytest.mark.parametrize(("branch", "done_at", "due"), SAME_DAY_CALLS)
def test_the_call_after_a_repair_falls_due_the_same_working_day(
    db_url: str, clock: FixedClock, branch: str, done_at: datetime, due: str
) -> None:
    from casework.machines.after_sales import AFTER_SALES_TIMERS
    from casework.machines.sla import DEFAULT_DOCUMENT
    from casework.workflow import Settings

    week = {day: ["09:00-18:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
    first = {**DEFAULT_DOCUMENT["clocks"]["first_response"],
             "calendar_by_branch": {"东莞长安店": "dongguan"}}  # fmt: skip
    document = {**DEFAULT_DOCUMENT, "timers": AFTER_SALES_TIMERS,
                "calendars": {"dongguan": {"timezone": "Asia/Shanghai", **week}},
                "clocks": {**DEFAULT_DOCUMENT["clocks"], "first_response": first}}  # fmt: skip
    with Engine.open(db_url, clock=clock, config=Settings(sla=document)) as engine:
        case_id = _visited(engine, branch, done_at, clock)
        assert _contact_due(engine, case_id).startswith(due)
        assert engine.verify().ok


def test_a_case_under_a_policy_of_24_hours_keeps_them(db_url: str, clock: FixedClock) -> None:
    """A policy stored before the call came the same day (``after_repair`` = 86400 s)
    still plans 24 hours for its cases, and they verify as they did."""
    from casework.machines.after_sales import AFTER_SALES_TIMERS
    from casework.machines.sla import DEFAULT_DOCUMENT
    from casework.workflow import Settings

    timers = {**AFTER_SALES_TIMERS, "contact": {**AFTER_SALES_TIMERS["contact"],
                                                "after_repair": 24 * 3600}}  # fmt: skip
    settings = Settings(sla={**DEFAULT_DOCUMENT, "timers": timers})
    with Engine.open(db_url, clock=clock, config=settings) as engine:
        done = datetime(2026, 11, 24, 15, tzinfo=SHANGHAI)
        case_id = _visited(engine, "广州", done, clock)
        assert _contact_due(engine, case_id).startswith("2026-11-25T07:00:00")
        assert engine.verify().ok


@pytest.mark.parametrize(
    ("quote", "accepted"),
    [
        # 002: 记录每一笔费用 (every cost recorded): parts, labour and travel make the amount
        ({"amount": "180.00", "parts": "120", "labour": "50", "travel": "10"}, True),
        ({"amount": "180", "parts": "120.00", "labour": "60.00"}, True),
        ({"amount": "180.00"}, True),
        ({"amount": "180.00", "parts": "120", "labour": "50"}, False),  # 170 is not 180
        ({"amount": "180.00", "parts": "-20", "labour": "200"}, False),
        ({"amount": "180.00", "travel": "ten"}, False),
    ],
)
def test_a_quote_s_breakdown_sums_to_its_amount(
    engine: Engine, quote: dict[str, str], accepted: bool
) -> None:
    case_id = _decidable(engine, fault_class="人为故障")
    engine.fire(case_id, "decide_remedy", actor="li.na", data={"remedy": "paid_repair"})
    data = {**quote, "currency": "CNY"}
    if accepted:
        engine.fire(case_id, "quote", actor="li.na", data=data)
    else:
        with pytest.raises(GuardFailed, match="summing to the amount"):
            engine.fire(case_id, "quote", actor="li.na", data=data)


def test_a_paid_repair_is_resolved_only_after_its_quote_was_accepted(engine: Engine) -> None:
    """002: a paid repair (人为故障, 000) is charged as quoted: no resolution before the
    customer accepted the quote."""
    case_id = _decidable(engine, fault_class="人为故障")
    engine.fire(case_id, "decide_remedy", actor="li.na", data={"remedy": "paid_repair"})
    solution = {"solution": "付费维修: 更换屏幕"}
    with pytest.raises(RemedyRefused, match="accepted its quote"):
        engine.fire(case_id, "resolve", actor="li.na", data=solution)
    quote = {"amount": "180", "parts": "150", "labour": "30", "currency": "CNY"}
    engine.fire(case_id, "quote", actor="li.na", data=quote)
    engine.fire(case_id, "decline_quote", actor="li.na")
    with pytest.raises(RemedyRefused, match="accepted its quote"):
        engine.fire(case_id, "resolve", actor="li.na", data=solution)
    engine.fire(case_id, "quote", actor="li.na", data={**quote, "amount": "150", "parts": "120"})
    engine.fire(case_id, "accept_quote", actor="li.na")
    assert engine.fire(case_id, "resolve", actor="li.na", data=solution).state == "resolved"
    repaired = _decidable(engine)  # a warranty repair needs no quote
    engine.fire(repaired, "decide_remedy", actor="li.na", data={"remedy": "repair"})
    engine.fire(repaired, "resolve", actor="li.na", data=solution)
    assert engine.verify().ok


def _two_visits(engine: Engine, clock: FixedClock, first_fixed: bool) -> str:
    """A case visited by 王师傅 of P-维修二队 and, if that did not fix it, again by
    刘师傅 of P-安装一队; then resolved and followed up with a score of 4."""
    case_id = open_sample(engine, branch="东莞长安店")
    engine.fire(case_id, "apologise", actor="li.na")
    visits = [("P-维修二队", "王师傅")] if first_fixed else [("P-维修二队", "王师傅"),
                                                        ("P-安装一队", "刘师傅")]  # fmt: skip
    for number, (partner, technician) in enumerate(visits, 1):
        window = {"from": clock.now().isoformat(),
                  "to": (clock.now() + timedelta(hours=2)).isoformat(),
                  "technician": technician, "partner": partner}  # fmt: skip
        engine.fire(case_id, "book_visit", actor="li.na", data=window)
        engine.fire(case_id, "arrive", actor=technician)
        fixed = first_fixed or number == len(visits)
        engine.fire(case_id, "visit_done", actor=technician, data={"fixed": str(fixed).lower()})
    engine.fire(case_id, "confirm_needs", actor="li.na")
    engine.fire(case_id, "resolve", actor="li.na", data={"solution": "上门维修"})
    engine.fire(case_id, "follow_up", actor="wang.wei", data={"satisfaction": 4})
    return case_id


def test_a_follow_up_score_belongs_to_the_partner_of_the_last_visit(
    engine: Engine, clock: FixedClock
) -> None:
    """003: 电话回访 ... 内容包括机器运行状况, 售后服务技术员的服务质量: the call-back
    rates the technician who came last, in the partner report as in the SLA report."""
    from casework.workflow.display.periods import period_of
    from casework.workflow.partners.ratings import partner_report, quarter
    from casework.workflow.reports.business import sla_report

    _two_visits(engine, clock, first_fixed=False)
    rows = {
        r["partner"]: r
        for r in partner_report(engine.context, quarter("2026Q4", SHANGHAI))["partners"]
    }
    assert (rows["P-安装一队"]["csat"], rows["P-安装一队"]["follow_ups"]) == (4.0, 1)
    assert rows["P-维修二队"]["follow_ups"] == 0  # its visit failed: a repeat repair instead
    period, _ = period_of(month="2026-11", zone=SHANGHAI, now=clock.now())
    csat = sla_report(engine.context, period)["csat"]
    assert csat["partner"] == [{"name": "P-安装一队", "follow_ups": 1, "csat": 4.0}]
    assert csat["technician"] == [{"name": "刘师傅", "follow_ups": 1, "csat": 4.0}]


def test_the_complaints_report_has_the_first_visit_fix_rate_and_a_company_row(
    engine: Engine, clock: FixedClock
) -> None:
    """001: 一次上门修复率 (its complaint category 未能一次修好 is 33%) per branch, partner
    and technician; 003: per-branch complaints per 10,000 jobs with the company's total."""
    from casework.workflow.display.periods import period_of
    from casework.workflow.reports.business import complaints_report

    _two_visits(engine, clock, first_fixed=False)
    _two_visits(engine, clock, first_fixed=True)
    _two_visits(engine, clock, first_fixed=True)
    open_sample(engine, branch="Shenzhen", category="other")
    period, _ = period_of(month="2026-11", zone=SHANGHAI, now=clock.now())
    dispatch = {("东莞长安店", None): 10_000, ("Shenzhen", None): 20_000,
                ("Shenzhen", "other"): 5_000}  # fmt: skip
    report = complaints_report(engine.context, period, dispatch)
    fix = report["first_visit_fix"]
    assert (fix["visited"], fix["fixed_first_visit"], fix["rate"]) == (3, 2, 66.7)
    assert fix["by_partner"] == [
        {"name": "P-维修二队", "visited": 3, "fixed_first_visit": 2, "rate": 66.7}
    ]
    assert fix["by_branch"][0]["name"] == "东莞长安店"
    assert [r["name"] for r in fix["by_technician"]] == ["王师傅"]
    company = [r for r in report["per_10000_jobs"] if r.get("total")]
    assert company[0] == {"branch": None, "category": None, "jobs": 30_000, "complaints": 4,
                          "per_10000": round(4 / 3, 2), "total": True}  # fmt: skip
    assert company[1]["category"] == "other"
    from casework.workflow.reports.business import complaints_page

    assert "公司合计" in complaints_page(report, lang="zh")
    assert "Company" in complaints_page(report)
    one_branch, _ = period_of(month="2026-11", zone=SHANGHAI, branch="Shenzhen", now=clock.now())
    assert not [r for r in complaints_report(engine.context, one_branch, dispatch)["per_10000_jobs"]
                if r.get("total")]  # fmt: skip


def test_sla_explain_shows_the_target_of_a_clock_not_started_yet(
    engine: Engine, db_url: str
) -> None:
    """The follow-up clock (回访) runs once the case is resolved; before that it shows
    the 48 hours it will have, not zero."""
    case_id = open_sample(engine)
    follow_up = next(c for c in engine.explain_sla(case_id)["clocks"] if c["clock"] == "follow_up")
    assert (follow_up["target_s"], follow_up["started"]) == (48 * 3600, False)
    from click.testing import CliRunner

    from casework.workflow.cli import main

    result = CliRunner().invoke(main, ["--db", db_url, "sla", "explain", case_id])
    assert "follow_up (cycle 0, not started yet): target 2d" in result.output, result.output
