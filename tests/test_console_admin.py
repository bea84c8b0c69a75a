"""Supervisors, administrators and the data protection officer in the console, on a
phone (390x844) in Chinese: the overdue board and the tokens page as cards with nothing
essential hidden, report pages that fit the screen with presets and a way back, and a
customer erased after confirming which person it is."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from casework.workflow.clock import FixedClock
from casework.workflow.engine import Engine
from tests.support import open_sample
from tests.support.api_server import Served, serving
from tests.test_console import Visit
from tests.test_console import browser as browser  # the fixture, shared
from tests.test_console_day import fits

pytestmark = pytest.mark.slow  # a browser per test: the full suite runs them

PHONE = (390, 844)


@pytest.fixture
def console(engine: Engine) -> Iterator[Served]:
    with serving(engine) as served:
        yield served


def test_a_supervisor_on_a_phone_sees_every_column_as_a_card(
    browser: Any, console: Served, engine: Engine, clock: FixedClock
) -> None:
    late = open_sample(engine, branch="东莞长安店", actor="李娜", customer="欧阳娜娜",
                       received_at=clock.now() - timedelta(days=3))  # fmt: skip
    boss = Visit(browser, console, "phone-supervisor", lang="zh", size=PHONE)
    boss.sign_in(console.token("supervisor", actor="赵磊"))
    boss.page.goto("/overdue")
    card = boss.page.locator("#board tbody tr").first
    assert late[:8] in card.inner_text()
    shown = card.inner_text()  # what is displayed: nothing hidden at this width
    for value in ("李娜", "东莞长安店", "欧阳娜娜", "首次响应"):
        assert value in shown
    name = card.locator("td.name").last.bounding_box()
    assert name is not None
    assert name["width"] > 3 * 16  # a name is not one character per line
    fits(boss)
    boss.shot("overdue")
    boss.page.goto("/reports")
    boss.page.click("#this-month")
    assert "首次响应" in boss.page.locator("#clocks").inner_text()
    fits(boss)
    boss.shot("reports")
    for size in ((1366, 800), PHONE):
        boss.page.set_viewport_size({"width": size[0], "height": size[1]})
        boss.page.goto("/reports/sla.html?last=7d")
        assert boss.page.locator("meta[name=viewport]").count() == 1
        fits(boss)
        boss.shot(f"report-sla-{size[0]}")
        boss.page.click("p.back a >> nth=0")  # the way back
        assert "/reports?" in boss.page.url
    assert boss.errors == []


def test_an_administrator_revokes_on_a_phone_and_erases_the_right_person(
    browser: Any, console: Served, engine: Engine, clock: FixedClock
) -> None:
    first = open_sample(engine, branch="东莞长安店", customer="彭平", contact="138 0000 1111",
                        received_at=clock.now() - timedelta(days=4))  # fmt: skip
    second = open_sample(engine, branch="深圳南山店", customer="彭平", contact="13912345678")
    kept = open_sample(engine, branch="深圳南山店", customer="黄丽", contact="13700000000")
    console.token(actor="王芳", branch="东莞长安店")
    admin = Visit(browser, console, "phone-admin", lang="zh", size=PHONE)
    admin.sign_in(console.token("admin", actor="it.admin"))
    admin.page.goto("/tokens")
    revoke = admin.page.locator("#tokens button[name=revoke]").first
    assert revoke.is_visible()  # a token's revoke button is not hidden on a phone
    fits(admin)
    admin.shot("tokens")

    admin.page.goto("/erase")
    admin.page.fill("main input[name=customer]", "彭平")
    admin.page.click("main button >> text=查找投诉单")
    table = admin.page.locator("#erasing").inner_text()
    for shown in ("东莞长安店", "深圳南山店", "138****1111", "139****5678", first[:8], second[:8]):
        assert shown in table
    assert "13912345678" not in table  # masked: enough to tell the people apart
    assert admin.page.locator("#people").count() == 1  # two contacts: maybe two people
    fits(admin)
    admin.shot("erase-confirm")
    admin.page.fill("#confirm input[name=reason]", "客户要求删除")
    admin.page.click("#confirm button[type=submit]")
    assert "2" in admin.page.locator("#done").inner_text()
    admin.shot("erased")
    assert engine.get(first).customer == "[erased]"
    assert engine.get(kept).customer == "黄丽"

    admin.page.goto(f"/cases/{first}")  # still open and late: shown as erased
    assert admin.page.locator("#erased").count() == 1
    assert "已删除" in admin.page.locator("#panel").inner_text()
    assert "[erased]" not in admin.page.locator("main").inner_text()
    assert admin.page.locator("form[aria-label=contact]").count() == 0
    assert admin.page.locator("form[aria-label=book_visit]").count() == 0
    fits(admin)
    admin.shot("erased-case")
    assert admin.errors == []
