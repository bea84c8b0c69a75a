"""A Chinese store agent's whole day in the console, on a desktop (1366x800) and on a
phone (390x844), in Asia/Shanghai: her queue with the overdue case on top, a back-filled
intake, a visit booked by picking local times, a refused form that keeps what she
typed, search by phone and by the first characters of a case number, the customer's
page and the case page; never a sideways scroll. Screenshots of every page go to the
artifacts folder (:data:`tests.test_console.ARTIFACTS`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from casework.workflow.clock import FixedClock
from casework.workflow.engine import Engine
from tests.support import open_sample
from tests.support.api_server import Served, serving
from tests.test_console import Visit
from tests.test_console import browser as browser  # the fixture, shared

pytestmark = pytest.mark.slow  # a browser per test: the full suite runs them

BRANCH = "东莞长安店"
AGENT = "李娜"
SIZES = {"desktop": (1366, 800), "phone": (390, 844)}


@pytest.fixture
def console(engine: Engine) -> Iterator[Served]:
    with serving(engine) as served:
        yield served


def fits(visit: Visit) -> None:
    """The page scrolls no sideways at its width."""
    wide = visit.page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
    assert wide[0] <= wide[1], (visit.page.url, wide)


def _day_before(engine: Engine, clock: FixedClock) -> dict[str, str]:
    """What the agent finds in the morning: a case four days late, a fresh one, a
    followed-up one (done work) and another branch's case."""
    late = open_sample(engine, actor=AGENT, branch=BRANCH, customer="彭平",
                       contact="138 0000 1111", summary="空调不制冷 四天没人来",
                       received_at=clock.now() - timedelta(days=7))  # fmt: skip
    done = open_sample(engine, actor=AGENT, branch=BRANCH, customer="黄丽",
                       contact="13900002222", summary="已处理完毕")  # fmt: skip
    steps = (("apologise", {}), ("confirm_needs", {}), ("resolve", {"solution": "更换压缩机"}),
             ("follow_up", {"satisfaction": 5}))  # fmt: skip
    for event, data in steps:
        engine.fire(done, event, actor=AGENT, data=data)
    fresh = open_sample(engine, actor=AGENT, branch=BRANCH, customer="彭平",
                        contact="138 0000 1111", summary="遥控器失灵",
                        attributes={"product": "空调", "brand": "格力",
                                    "serial_number": "GL-778899",
                                    "purchase_date": "2026-11-20"})  # fmt: skip
    other = open_sample(engine, actor="张伟", branch="深圳南山店", customer="外店客户")
    return {"late": late, "done": done, "fresh": fresh, "other": other}


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_a_store_agents_day_in_chinese(
    browser: Any, console: Served, engine: Engine, clock: FixedClock, device: str
) -> None:
    cases = _day_before(engine, clock)
    agent = Visit(browser, console, f"day-{device}", lang="zh", size=SIZES[device])
    agent.sign_in(console.token(actor=AGENT, branch=BRANCH))
    page = agent.page

    # the queue: open work only, the overdue case on top, counting to the breach
    assert page.url.endswith("/queue")
    rows = page.locator("#queue tbody tr")
    assert rows.count() == 2  # the followed-up case is done work
    assert cases["late"][:8] in rows.nth(0).inner_text()
    assert "已超时" in rows.nth(0).locator("td").first.inner_text()
    assert "剩余 1天 0小时 0分" in rows.nth(1).inner_text()  # to the 24-hour breach, not 75 %
    assert "已回访" not in page.locator("#queue").inner_text()
    fits(agent)
    agent.shot("queue")

    # a back-filled intake: the time is picked in the agent's zone
    page.click("nav a[href='/open']")
    page.fill("input[name=customer]", "陈静")
    page.fill("input[name=contact]", "137 1234 5678")
    page.select_option("select[name=channel]", "store")
    page.select_option("select[name=category]", "not_fixed_first_visit")
    page.fill("input[name='attr.product']", "洗衣机")
    page.fill("input[name='attr.purchase_date']", "2026-11-20")
    page.fill("textarea[name=summary]", "洗衣机修过一次 仍漏水")
    page.fill("input[name=received_at]", "2026-11-24T08:30")  # tomorrow: refused
    page.click("#intake button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("#intake #refusal").count() == 1  # beside the form, in Chinese
    assert "received_at" not in page.locator("#refusal").inner_text()
    assert page.locator("input[name=customer]").input_value() == "陈静"  # kept
    assert page.locator("textarea[name=summary]").input_value() == "洗衣机修过一次 仍漏水"
    assert page.locator("select[name=category]").input_value() == "not_fixed_first_visit"
    agent.shot("intake-refused")
    page.fill("input[name=received_at]", "2026-11-23T08:30")
    fits(agent)
    agent.shot("intake")
    page.click("#intake button[type=submit]")
    page.wait_for_load_state()
    assert "/cases/" in page.url, page.locator("#refusal").all_inner_texts()
    opened = engine.get(page.url.rsplit("/", 1)[1])
    assert opened.received_at == datetime(2026, 11, 23, 0, 30, tzinfo=UTC)  # 08:30 in China
    assert page.locator("#state").inner_text() == "已受理"
    assert "剩余" in page.locator("#countdown").inner_text()
    assert "退货至 11-27" in page.locator("#warranty").inner_text()
    fits(agent)
    agent.shot("case-opened")

    # the next step first: apologise, then book a visit picking local times
    assert page.locator("#actions > form[aria-label=apologise]").count() == 1
    agent.fire("apologise")
    assert page.locator("#state").inner_text() == "已致歉"
    # refused: the window ends before it starts; the reason beside the form, values kept
    agent.fire("book_visit", **{"from": "2026-11-24T14:00", "to": "2026-11-24T09:00",
                                "technician": "刘师傅"})  # fmt: skip
    refusal = page.locator("#form-book_visit [role=alert]")
    assert refusal.count() == 1
    assert "预约" in refusal.inner_text() or "上门" in refusal.inner_text(), refusal.inner_text()
    assert page.locator(".flash").count() == 0  # not at the top of the page
    form = page.locator("#form-book_visit")
    assert form.locator("[name='data.technician']").input_value() == "刘师傅"
    assert form.locator("[name='data.from']").input_value() == "2026-11-24T14:00"
    fits(agent)
    agent.shot("refused-kept")
    agent.fire("book_visit", **{"from": "2026-11-24T09:00", "to": "2026-11-24T12:00",
                                "technician": "刘师傅"})  # fmt: skip
    booked = engine.history(opened.id)[-1]
    assert booked.event == "book_visit"
    assert booked.data["from"].startswith("2026-11-24T09:00:00+08:00")
    timeline = page.locator("#timeline").inner_text()
    assert "预约上门" in timeline
    assert "2026-11-24 09:00" in timeline
    assert "from=" not in timeline
    assert "+00:00" not in timeline
    fits(agent)
    agent.shot("visit-booked")

    # a photo of the visit, attached and linked from the page and the timeline
    page.select_option("#upload select[name=kind]", "photo")
    page.set_input_files("#upload input[type=file]", files=[
        {"name": "现场.jpg", "mimeType": "image/jpeg", "buffer": b"\xff\xd8 photo"},
    ])  # fmt: skip
    with page.expect_navigation():
        page.click("#upload button[type=submit]")
    link = page.locator("#links a[href*='/files/']")
    assert link.inner_text() == "现场.jpg"
    assert page.request.get(link.get_attribute("href") or "").body() == b"\xff\xd8 photo"
    assert page.locator("#timeline a[href*='/files/']").count() == 1
    forged = page.request.post(
        f"/cases/{opened.id}/files?kind=photo&name=x.jpg", data=b"x",
        headers={"Content-Type": "application/octet-stream"},
    )  # fmt: skip
    assert forged.status == 401  # no CSRF token: refused, nothing attached
    assert [e.event for e in engine.history(opened.id)].count("attach") == 1
    agent.shot("attached")

    # search: by phone (two cases of one customer), by the first characters of an id
    page.fill("header input[name=q]", "13800001111")
    page.press("header input[name=q]", "Enter")
    page.wait_for_load_state()
    found = page.locator("#cases tbody tr")
    assert found.count() == 2
    assert "138****1111" in page.locator("#cases").inner_text()
    fits(agent)
    agent.shot("search-phone")
    page.fill("header input[name=q]", cases["fresh"][:6])
    page.press("header input[name=q]", "Enter")
    page.wait_for_load_state()
    assert page.url.endswith(f"/cases/{cases['fresh']}")
    panel = page.locator("#panel").inner_text()
    for shown in ("GL-778899", "格力", "138 0000 1111", "空调"):
        assert shown in panel
    fits(agent)
    agent.shot("case-found")
    page.goto(f"/search?q={cases['other'][:8]}")  # another branch's: not found
    assert page.locator("#none").count() == 1
    assert page.goto(f"/cases/{cases['other'][:8]}").status == 404
    agent.errors.remove(next(e for e in agent.errors if "404" in e))  # that page's status

    # the customer's page: both cases, the repeat visible
    page.goto(f"/cases/{cases['fresh']}")
    page.click("#panel a[href^='/customers/']")
    page.wait_for_load_state()
    assert page.locator("#cases tbody tr").count() == 2
    fits(agent)
    agent.shot("customer")

    # the overdue case's page: late, labelled, on top of her queue still
    page.goto(f"/cases/{cases['late'][:8]}")
    assert page.url.endswith(f"/cases/{cases['late']}")
    assert "已超时" in page.locator("#countdown").inner_text()
    fits(agent)
    agent.shot("case-late")
    page.goto("/overdue")
    fits(agent)
    agent.shot("overdue")
    assert agent.errors == []
