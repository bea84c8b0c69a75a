"""The web console clicked through in Chromium (Playwright): an agent walks a complaint
through its six steps, a supervisor sees it late on the overdue board, an auditor
records nothing; no console errors, markup in a complaint stays text. Screenshots of
every page go to a temporary folder, or to ``$CASEWORK_ARTIFACTS/console/`` when that
names one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from casework.workflow.clock import FixedClock
from casework.workflow.engine import Engine
from tests.support import open_sample
from tests.support.api_server import Served, serving
from tests.support.browser import artifacts, playwright_chromium

ARTIFACTS = artifacts("console")
"""Where screenshots go: never into the checkout unless ``CASEWORK_ARTIFACTS`` says so."""
XSS = '<script>alert("x")</script><b>加粗</b>'
pytestmark = pytest.mark.slow  # a browser per test: the full suite runs them, not the fast lane


@pytest.fixture
def browser() -> Iterator[Any]:
    path = playwright_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as play:
        launched = play.chromium.launch(
            executable_path=path,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        yield launched
        launched.close()


@pytest.fixture
def console(engine: Engine) -> Iterator[Served]:
    with serving(engine) as served:
        yield served


class Visit:
    """One person's browser tab: signs in, goes places, keeps screenshots and errors."""

    def __init__(
        self, browser: Any, served: Served, name: str, lang: str = "en",
        size: tuple[int, int] = (1100, 900),
    ) -> None:  # fmt: skip
        self.context = browser.new_context(
            base_url=served.url, locale="zh-CN" if lang == "zh" else "en-GB",
            timezone_id="Asia/Shanghai", viewport={"width": size[0], "height": size[1]},
        )  # fmt: skip
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: self.errors.append(f"dialog: {d.message}"))
        self.name = name
        self.shots = 0

    def sign_in(self, token: str) -> None:
        self.page.goto("/login")
        self.shot("login")
        self.page.fill("input[name=token]", token)
        self.page.click("button[type=submit]")

    def shot(self, what: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.shots += 1
        self.page.screenshot(path=str(ARTIFACTS / f"{self.name}-{self.shots:02d}-{what}.png"),
                             full_page=True)  # fmt: skip

    def fire(self, event: str, **fields: str) -> None:
        """Record ``event`` from its form (opened from the menu if it is there), each
        field typed or chosen as its input takes it."""
        form = self.page.locator(f"form[aria-label={event}]")
        if not form.is_visible():
            self.page.locator("#more > summary").click()
            self.page.locator(f"#act-{event} > summary").click()
        for name, value in fields.items():
            field = form.locator(f"[name='data.{name}']").last
            tag = field.evaluate("e => e.tagName + ':' + e.type")
            if tag.startswith("SELECT"):
                field.select_option(value)
            elif tag.endswith("checkbox"):
                field.set_checked(value == "true")
            else:
                field.fill(value)
        form.locator("button[type=submit]").click()
        self.page.wait_for_load_state()


def test_an_agent_walks_a_complaint_through_its_six_steps(browser: Any, console: Served) -> None:
    agent = Visit(browser, console, "agent", lang="zh")
    agent.sign_in(console.token(actor="李娜", branch="东莞长安店"))
    assert agent.page.url.endswith("/queue")
    agent.shot("queue-empty")
    agent.page.click("a[href='/open']")
    agent.page.fill("input[name=customer]", "王先生 138****0000")
    agent.page.select_option("select[name=channel]", "phone")
    agent.page.select_option("select[name=category]", "missed_appointment")
    agent.page.fill("textarea[name=summary]", XSS)
    agent.shot("open")
    agent.page.click("form button[type=submit] >> text=登记")
    agent.page.wait_for_load_state()
    assert "/cases/" in agent.page.url
    assert agent.page.locator("#summary").inner_text() == XSS  # markup shows as text
    assert agent.page.locator("#chain").inner_text() == "哈希链校验通过"
    agent.shot("case-received")
    agent.fire("apologise")
    agent.fire("confirm_needs")
    agent.fire("resolve", solution="   ")  # no solution: refused beside the form, and why
    refusal = agent.page.locator("#form-resolve [role=alert]").inner_text()
    assert "解决方案" in refusal, refusal
    agent.shot("guard-refused")
    agent.fire("resolve", solution="上门维修，免收上门费")
    assert agent.page.locator("#state").inner_text() == "已解决"
    agent.fire("follow_up", satisfaction="5")
    assert agent.page.locator("#state").inner_text() == "已回访"
    agent.shot("case-followed-up")
    steps = agent.page.locator("#timeline tbody tr td:nth-child(3)").all_inner_texts()
    assert steps == ["登记投诉", "致歉", "确认需求", "解决", "回访"], steps
    case_url = agent.page.url
    agent.page.goto("/queue")
    assert agent.page.locator("#queue").count() == 0  # followed up: done work, not open
    agent.shot("queue")
    agent.page.set_viewport_size({"width": 390, "height": 844})  # a phone
    agent.page.goto(case_url)
    agent.shot("case-phone")
    assert agent.errors == []


def test_a_supervisor_sees_a_late_case_on_the_overdue_board(
    browser: Any, console: Served, engine: Engine, clock: FixedClock
) -> None:
    clock.advance(timedelta(days=1))
    received = clock.now() - timedelta(hours=23)  # back-filled: an hour before its target
    case_id = open_sample(engine, summary="空调不制冷", branch="东莞长安店", received_at=received)
    boss = Visit(browser, console, "supervisor")
    boss.sign_in(console.token("supervisor", actor="zhao.lei"))
    boss.page.goto("/overdue")
    assert boss.page.locator("#board").count() == 0
    # no worker has run: the supervisor is told deadlines wait; a heartbeat clears it
    assert "No SLA worker" in boss.page.locator(".banner").inner_text()
    clock.advance(timedelta(hours=2))  # within the session's working day
    engine.process_due()  # what the worker does
    engine.heartbeat("w1", clock.now())
    boss.page.reload()
    assert boss.page.locator(".banner").all_inner_texts() == []
    row = boss.page.locator("#board tbody tr").first
    assert case_id[:8] in row.inner_text()
    assert "东莞长安店" in row.inner_text()
    assert "First response" in boss.page.locator("#week").inner_text()
    assert boss.page.locator("#today").count() == 1
    boss.shot("overdue")
    boss.page.goto(f"/cases/{case_id}")
    boss.shot("late-case")
    boss.page.goto("/reports?from=2026-11-01&to=2026-12-31")
    assert "First response" in boss.page.content()
    assert "Service delayed" in boss.page.locator("#categories").inner_text()
    boss.shot("reports")
    boss.page.click("text=with charts (SLA)")
    assert "(Asia/Shanghai)" in boss.page.content()  # days cut in the viewer's zone
    assert "东莞长安店" in chart_labels(boss.page)
    boss.shot("report-charts")
    assert boss.errors == []


def chart_labels(page: Any) -> list[str]:
    """The labels the page's charts draw (matplotlib notes each text drawn as paths in a
    comment); none may be an escape code."""
    labels: list[str] = page.evaluate(
        """() => {
          const found = [];
          for (const svg of document.querySelectorAll("svg")) {
            const walk = document.createTreeWalker(svg, NodeFilter.SHOW_COMMENT);
            while (walk.nextNode()) found.push(walk.currentNode.nodeValue.trim());
          }
          return found;
        }"""
    )
    assert labels, "no chart on the page"
    assert not [label for label in labels if "\\u" in label], labels
    return labels


def test_report_pages_draw_chinese_names_and_local_times(
    browser: Any, engine: Engine, clock: FixedClock, tmp_path: Path
) -> None:
    from casework.machines.sla import DEFAULT_DOCUMENT, policy_from_document
    from casework.workflow.display.periods import period_of
    from casework.workflow.display.zones import zone_named
    from casework.workflow.reports.business import (
        complaints_page,
        complaints_report,
        sla_page,
        sla_report,
    )
    from casework.workflow.reports.case_page import case_report
    from casework.workflow.reports.whatif_page import whatif_page
    from casework.workflow.sla.whatif import simulate

    shanghai = zone_named("Asia/Shanghai", "tz")
    cases = [
        open_sample(engine, branch=branch, actor=agent, category=category)
        for branch, agent, category in (
            ("东莞长安店", "李娜", "missed_appointment"),
            ("深圳南山店", "张伟", "not_fixed_first_visit"),
            ("深圳南山店", "张伟", "service_delayed"),
        )
    ]
    clock.advance(timedelta(hours=3))
    engine.fire(cases[0], "apologise", actor="李娜")
    clock.advance(timedelta(days=4))
    engine.process_due()
    period, _ = period_of(month="2026-11", zone=shanghai, now=clock.now())
    tighter = {**DEFAULT_DOCUMENT, "name": "tighter", "clocks": {
        **DEFAULT_DOCUMENT["clocks"],
        "first_response": {**DEFAULT_DOCUMENT["clocks"]["first_response"], "within_s": 3600},
    }}  # fmt: skip
    machine = engine.registry.get("complaint")
    proposal = policy_from_document(tighter, machine.states, machine.events)
    pages = {
        "sla": sla_page(sla_report(engine.context, period)),
        "complaints": complaints_page(complaints_report(engine.context, period)),
        "case": case_report(engine.context, cases[1], shanghai),
        "whatif": whatif_page(simulate(engine.context, proposal, period)),
    }
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for name, html in pages.items():
        path = tmp_path / f"{name}.html"
        path.write_text(html, encoding="utf-8")
        page.goto(path.as_uri())
        page.screenshot(path=str(ARTIFACTS / f"report-{name}.png"), full_page=True)
        labels = chart_labels(page)
        text = page.inner_text("body")
        assert "+08:00" in text, name
        if name == "case":
            assert "resolution #1" in labels
            assert "深圳南山店" in text
            assert any(label.startswith("L1") for label in labels)  # the first escalation
        else:
            assert {"东莞长安店", "深圳南山店"} <= set(labels), (name, labels)
            assert "2026-11-01 to 2026-11-30 (Asia/Shanghai)" in text
        if name == "whatif":  # the one case answered in 3 hours breaches a 1-hour target
            assert {"what happened", "proposed"} <= set(labels)
            assert "First response breaches\n+1" in text
    context.close()


def _checkpoint(engine: Engine, folder: Path) -> tuple[str, str]:
    """A signed checkpoint of the history by now, and the keyring that checks it."""
    import json

    from casework.workflow.audit.checkpoints import load_private_key, make_checkpoint, new_key

    new_key(folder / "k.key", folder / "k.ring", engine.clock.now(), replace=False)
    key = load_private_key(folder / "k.key")
    checkpoint = make_checkpoint(engine.context, key, engine.clock.now())
    return json.dumps(checkpoint.to_json()), (folder / "k.ring").read_text()


def test_an_auditor_verifies_and_records_nothing(
    browser: Any, console: Served, engine: Engine, tmp_path: Path
) -> None:
    case_id = open_sample(engine)
    auditor = Visit(browser, console, "auditor")
    auditor.sign_in(console.token("auditor", actor="audit.1"))
    assert auditor.page.url.endswith("/overdue")
    auditor.page.goto(f"/cases/{case_id}")
    assert auditor.page.locator("#actions").count() == 0
    auditor.shot("case-read-only")
    csrf = auditor.page.goto("/audit") and auditor.page.locator(
        "input[name=csrf]"
    ).first.get_attribute("value")
    refused = auditor.page.request.post(
        f"/cases/{case_id}/events", form={"csrf": csrf or "", "event": "apologise"}
    )
    assert refused.status == 403
    assert [e.event for e in engine.history(case_id)] == ["open"]
    auditor.page.fill("form[action='/audit'] input[name=case]", case_id[:8])  # a short id
    auditor.page.click("form[action='/audit'] button:not([name=all])")
    assert "All chains and replays verify" in auditor.page.locator("#verify").inner_text()
    auditor.page.click("button[name=all]")
    assert "All chains and replays verify" in auditor.page.locator("#verify").inner_text()
    auditor.shot("audit")
    checkpoint, keyring = _checkpoint(engine, tmp_path)
    auditor.page.fill("textarea[name=checkpoint]", checkpoint)
    auditor.page.fill("textarea[name=keyring]", keyring)
    auditor.page.click("text=Verify the checkpoint")
    assert "All chains and replays verify" in auditor.page.locator("#verify").inner_text()
    auditor.shot("checkpoint")
    download = auditor.page.request.get("/audit/export")
    assert download.status == 200
    assert download.text().splitlines()[0].startswith('{"record":"header"')
    assert auditor.errors == []


def test_forms_need_their_csrf_token_and_a_session(browser: Any, console: Served) -> None:
    visit = Visit(browser, console, "csrf")
    assert visit.page.request.get("/queue", max_redirects=0).status == 303
    visit.sign_in(console.token())
    cookies = {c["name"]: c for c in visit.context.cookies()}
    assert cookies["casework_session"]["httpOnly"] is True
    assert cookies["casework_session"]["sameSite"] == "Strict"
    forged = visit.page.request.post(
        "/open", form={"csrf": "forged", "customer": "C", "summary": "s"}
    )
    assert forged.status == 401
    visit.page.click("header form[action='/logout'] button")  # sign out
    assert visit.page.url.endswith("/login")
    assert visit.page.request.get("/queue", max_redirects=0).status == 303


def test_an_administrator_gives_a_supervisor_a_token_in_the_browser(
    browser: Any, console: Served
) -> None:
    admin = Visit(browser, console, "admin", lang="zh")
    admin.sign_in(console.token("admin", actor="it.admin"))
    admin.page.goto("/tokens")
    admin.page.fill("input[name=actor]", "zhao.lei")
    admin.page.select_option("select[name=role]", "supervisor")
    admin.page.fill("input[name=branch]", "东莞长安店")
    admin.page.click("text=生成令牌")
    made = admin.page.locator("#made").inner_text().strip()
    assert made.startswith("cw_")
    admin.shot("tokens")
    boss = Visit(browser, console, "new-supervisor")
    boss.sign_in(made)
    assert boss.page.url.endswith("/queue")
    admin.page.click(f"button[value='{made.split('_')[1]}']")  # revoke
    boss.page.goto("/queue")
    assert boss.page.url.endswith("/login")
    assert admin.errors == []
    assert boss.errors == []


def test_a_booked_visit_shows_its_window_and_escalation_asks_why(
    browser: Any, console: Served, engine: Engine, clock: FixedClock
) -> None:
    case_id = open_sample(engine, branch="东莞长安店")
    engine.fire(case_id, "apologise", actor="li.na")
    window = {"from": (clock.now() + timedelta(hours=2)).isoformat(),
              "to": (clock.now() + timedelta(hours=5)).isoformat(),
              "technician": "刘师傅", "partner": "P-安装一队"}  # fmt: skip
    engine.fire(case_id, "book_visit", actor="li.na", data=window)
    agent = Visit(browser, console, "visit", lang="zh")
    agent.sign_in(console.token(actor="li.na", branch="东莞长安店"))
    agent.page.goto(f"/cases/{case_id}")
    timer = agent.page.locator("#timer-appointment").inner_text()
    assert "预约上门时段截止" in timer
    assert "P-安装一队" in timer
    assert "14:00:00" in timer  # 06:00 UTC, in the viewer's zone
    agent.shot("visit-booked")
    agent.fire("escalate_now", reason="客户要求店长处理")
    assert engine.get(case_id).escalation_level == 1
    assert agent.errors == []
