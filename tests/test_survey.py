"""The customer's link: ``/s/<token>`` signed for one case, valid 14 days, showing the
case's status in plain words and, once resolved, a survey whose answer lands in the
history as the customer's, once. Over HTTP on a real server, and in Chromium at phone
width in Chinese and English (screenshots to the artifacts folder)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from casework.workflow import Engine, FixedClock
from casework.workflow.config import Settings, settings_from_mapping
from casework.workflow.survey import service
from casework.workflow.survey import token as tokens
from tests.support import START, book_visit, open_sample
from tests.support.api_server import Served, serving
from tests.support.browser import artifacts, playwright_chromium

SURVEY = "survey-secret-0123456789abcdef"
OLD = "an-older-survey-secret-987654"
ARTIFACTS = artifacts("survey")
XSS = '<script>alert("x")</script><b>bold</b>'


def _settings(**survey: Any) -> Settings:
    return settings_from_mapping(
        {
            "console": {"base_url": "https://cs.example.com"},
            "display": {"timezone": "Asia/Shanghai"},
            "survey": {"secret": SURVEY, **survey},
        },
        "test",
    )


@pytest.fixture
def site(db_url: str) -> Iterator[Served]:
    with (
        Engine.open(db_url, clock=FixedClock(START), config=_settings()) as engine,
        serving(engine) as served,
    ):
        yield served


def _path(engine: Engine, case_id: str) -> str:
    return "/s/" + service.link(engine.context, case_id).rsplit("/s/", 1)[1]


def _resolve(engine: Engine, case_id: str) -> None:
    engine.fire(case_id, "apologise", actor="li.na")
    engine.fire(case_id, "confirm_needs", actor="li.na")
    engine.fire(case_id, "resolve", actor="li.na", data={"solution": "new compressor"})


def _form(client: httpx.Client, path: str) -> dict[str, str]:
    page = client.get(path).text
    nonce = page.split('name="nonce" value="', 1)[1].split('"', 1)[0]
    return {"nonce": nonce}


def test_a_token_opens_one_case_for_14_days() -> None:
    """Signed for one case; another case id, a changed letter, another secret or the
    15th day: refused. A rotated secret's links keep working while it is in previous."""
    signed = tokens.sign("abc123", (SURVEY,), START, 14)
    assert tokens.verify(signed, (SURVEY,), START + timedelta(days=13)) == "abc123"
    with pytest.raises(tokens.LinkInvalid):
        tokens.verify(signed, (SURVEY,), START + timedelta(days=14))
    forged = signed.replace("abc123", "abc124", 1)
    for bad in (forged, signed[:-1] + ("A" if signed[-1] != "A" else "B"), "x", "", "a.b.c"):
        with pytest.raises(tokens.LinkInvalid):
            tokens.verify(bad, (SURVEY,), START)
    with pytest.raises(tokens.LinkInvalid):
        tokens.verify(signed, ("another-secret-0123456789",), START)
    assert tokens.verify(signed, ("a-new-secret-0123456789", SURVEY), START) == "abc123"


def test_survey_link_command(tmp_path: Path, db_url: str) -> None:
    """survey-link CASE --json gives {"url": ...} under [console] base_url; without a
    base URL or a secret it is one line on stderr, exit 2."""
    config = tmp_path / "c.toml"
    config.write_text(
        f'[console]\nbase_url = "https://cs.example.com"\n[survey]\nsecret = "{SURVEY}"\n',
        encoding="utf-8",
    )
    with Engine.open(db_url, clock=FixedClock(START)) as engine:
        case_id = open_sample(engine)
    base = [sys.executable, "-m", "casework.workflow.cli", "--db", db_url]
    done = subprocess.run(
        [*base, "--config", str(config), "survey-link", case_id, "--json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    url = json.loads(done.stdout)["url"]
    assert url.startswith(f"https://cs.example.com/s/{case_id}.")
    bare = tmp_path / "bare.toml"
    bare.write_text('[console]\nbase_url = "https://cs.example.com"\n', encoding="utf-8")
    refused = subprocess.run(
        [*base, "--config", str(bare), "survey-link", case_id],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1
    assert "[survey] secret" in refused.stderr


def test_the_page_tells_the_status_in_plain_words(site: Served) -> None:
    """Received; a visit booked for its local window; a part expected on its date;
    resolved: in Chinese by default, in English for an English browser or case. The
    page names no customer, contact, summary or agent."""
    engine = site.engine
    case_id = open_sample(engine, customer="Zhang San", summary="冰箱不制冷")
    path = _path(engine, case_id)
    with site.client() as client:
        page = client.get(path)
        assert page.status_code == 200
        assert page.headers["referrer-policy"] == "no-referrer"
        assert page.headers["cache-control"] == "no-store"
        assert "我们已收到您的投诉，正在处理。" in page.text  # noqa: RUF001
        for secret in ("Zhang San", "138", "冰箱不制冷", "li.na"):
            assert secret not in page.text
        book_visit(engine, case_id, START + timedelta(days=1, hours=5))  # 14:00 in Shanghai
        english = client.get(path, headers={"Accept-Language": "en-GB,en;q=0.9"}).text
        assert "A visit is booked for 2026-11-24 14:00-16:00 (Asia/Shanghai)." in english
        assert 'lang="en"' in english
        engine.fire(
            case_id, "route", actor="li.na",
            data={"to": "procurement", "promised": (START + timedelta(days=6)).isoformat()},
        )  # fmt: skip
        assert "正在等待配件，预计 2026年11月29日 到货。" in client.get(path).text  # noqa: RUF001
        assert "<form" not in client.get(path).text
        engine.fire(case_id, "part_arrived", actor="li.na")
        engine.fire(case_id, "resolve", actor="li.na", data={"solution": "new compressor"})
        resolved = client.get(path).text
        assert "您的问题已处理完毕。" in resolved
        assert "<form" in resolved


def test_the_answer_is_the_customers_once(site: Served) -> None:
    """The answer records follow_up as the customer, escaped wherever shown; a second
    answer is refused politely and records nothing."""
    engine = site.engine
    case_id = open_sample(engine)
    _resolve(engine, case_id)
    path = _path(engine, case_id)
    with site.client() as client:
        answer = {**_form(client, path), "score": "4", "fixed": "yes", "comment": XSS}
        done = client.post(path, data=answer)
        assert done.status_code == 200
        assert "谢谢！您的评价已记录。" in done.text  # noqa: RUF001
        assert "<script>" not in done.text
        last = engine.history(case_id)[-1]
        assert (last.event, last.actor) == ("follow_up", "customer")
        assert last.data["satisfaction"] == 4
        assert last.data["fixed"] is True
        assert last.data["comment"] == XSS
        version = engine.get(case_id).version
        again = client.post(path, data={**answer, "score": "1"})
        assert again.status_code == 409
        assert "您已提交过评价" in again.text
        assert engine.get(case_id).version == version


def test_after_an_agents_follow_up_the_answer_is_survey_answered(site: Served) -> None:
    """An agent recorded the follow-up first: the customer's answer is survey_answered;
    a low score reopens the case as an agent's reopen would."""
    engine = site.engine
    case_id = open_sample(engine, attributes={"language": "en"})
    _resolve(engine, case_id)
    engine.fire(case_id, "follow_up", actor="li.na", data={"satisfaction": 5})
    path = _path(engine, case_id)
    with site.client() as client:
        answer = {**_form(client, path), "score": "1", "fixed": "no", "comment": ""}
        done = client.post(path, data=answer)
        assert "Your case is open again" in done.text
    events = [(e.event, e.actor) for e in engine.history(case_id)[-2:]]
    assert events == [("survey_answered", "customer"), ("reopen", "customer")]
    assert engine.get(case_id).state == "needs_confirmed"
    assert engine.verify().ok


def test_forged_stale_and_bad_answers_record_nothing(site: Served) -> None:
    """No nonce, another token's nonce, a score of 6, no 'fixed', a comment past the
    limit: each is a page saying so, nothing recorded. A wrong token is a 404 page; the
    token opens no API path."""
    engine = site.engine
    case_id = open_sample(engine)
    other = open_sample(engine, customer="CUST-2")
    for each in (case_id, other):
        _resolve(engine, each)
    path, other_path = _path(engine, case_id), _path(engine, other)
    version = engine.get(case_id).version
    with site.client() as client:
        nonce = _form(client, path)["nonce"]
        wrong = _form(client, other_path)["nonce"]
        tries = [
            ({"score": "3", "fixed": "yes"}, 403),
            ({"nonce": wrong, "score": "3", "fixed": "yes"}, 403),
            ({"nonce": nonce, "score": "6", "fixed": "yes"}, 422),
            ({"nonce": nonce, "score": "3"}, 422),
            ({"nonce": nonce, "score": "3", "fixed": "yes", "comment": "x" * 1001}, 422),
        ]
        for form, status in tries:
            assert client.post(path, data=form).status_code == status, form
        assert engine.get(case_id).version == version
        token = path.rsplit("/", 1)[1]
        assert client.get(path[:-2] + "xx").status_code == 404
        assert client.get("/s/" + token.replace(case_id, other)).status_code == 404
        api = client.get(f"/v1/cases/{case_id}", headers={"Authorization": f"Bearer {token}"})
        assert api.status_code == 401
        assert client.get("/", headers={"Authorization": f"Bearer {token}"}).status_code in (
            303, 307, 401,
        )  # fmt: skip
    assert isinstance(engine.clock, FixedClock)
    engine.clock.advance(timedelta(days=15))
    with site.client() as client:
        expired = client.get(path)
        assert expired.status_code == 404
        assert "此链接无效或已过期" in expired.text


def test_an_erased_customers_link_shows_nothing(site: Served) -> None:
    """After erasure the link opens no page."""
    engine = site.engine
    case_id = open_sample(engine, customer="Zhang San")
    path = _path(engine, case_id)
    engine.erase("Zhang San", actor="dpo", reason="asked")
    with site.client() as client:
        assert client.get(path).status_code == 404


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_phone_answers_the_survey_without_script(db_url: str, lang: str) -> None:
    """At 390x844, scripts off: the status and the survey fit the width, the answer is
    tapped and sent, and the thanks come back in the phone's language."""
    path = playwright_chromium()
    from playwright.sync_api import sync_playwright

    settings = _settings()
    with (
        Engine.open(db_url, clock=FixedClock(START), config=settings) as engine,
        serving(engine) as served,
        sync_playwright() as play,
    ):
        case_id = open_sample(engine)
        _resolve(engine, case_id)
        url = served.url + _path(engine, case_id)
        browser = play.chromium.launch(executable_path=path, args=["--no-sandbox"])
        try:
            context = browser.new_context(
                viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                has_touch=True, java_script_enabled=False,
                locale="zh-CN" if lang == "zh" else "en-US",
            )  # fmt: skip
            page = context.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(url)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"survey-{lang}-1-form.png"), full_page=True)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390
            page.locator('input[name=score][value="4"]').locator("..").tap()
            page.locator("input[name=fixed][value=yes]").locator("..").tap()
            page.fill("textarea[name=comment]", XSS)
            page.screenshot(path=str(ARTIFACTS / f"survey-{lang}-2-filled.png"), full_page=True)
            with page.expect_navigation():
                page.locator("button[type=submit]").tap()
            page.screenshot(path=str(ARTIFACTS / f"survey-{lang}-3-thanks.png"), full_page=True)
            zh_thanks = "谢谢！您的评价已记录。"  # noqa: RUF001 - Chinese punctuation
            thanks = zh_thanks if lang == "zh" else "Thank you: your answer is recorded."
            assert thanks in page.content()
            assert errors == []
        finally:
            browser.close()
        last = engine.history(case_id)[-1]
        assert (last.event, last.actor, last.data["satisfaction"]) == ("follow_up", "customer", 4)


def test_reports_tell_customers_csat_from_agents(db_url: str) -> None:
    """The SLA report counts surveys sent and answered and keeps the customers' scores
    apart from those agents typed, per branch, agent, technician and partner; a
    partner's rating takes the customers' scores where there are any."""
    from casework.scheduler.notify.delivery import NotifyDeliverer
    from casework.scheduler.notify.sms import SmsProvider
    from casework.workflow.display.periods import period_of
    from casework.workflow.partners.ratings import partner_report, quarter
    from casework.workflow.reports.business import sla_report

    class Taken(SmsProvider):
        def send(self, to: str, text: str, message_id: str, now: Any) -> str:
            return message_id

    document = {
        "console": {"base_url": "https://cs.example.com"},
        "notify": {"channel": "sms"},
        "survey": {"secret": SURVEY},
    }
    settings = settings_from_mapping(document, "test")
    with Engine.open(db_url, clock=FixedClock(START), config=settings) as engine:
        ids = [open_sample(engine, customer=f"C{n}") for n in range(3)]
        for case_id in ids:
            engine.fire(case_id, "apologise", actor="li.na")
            engine.fire(case_id, "confirm_needs", actor="li.na")
            start = START + timedelta(hours=1)
            engine.fire(
                case_id, "book_visit", actor="li.na",
                data={"from": start.isoformat(), "to": (start + timedelta(hours=2)).isoformat(),
                      "technician": "wang", "partner": "P1"},
            )  # fmt: skip
            engine.fire(case_id, "resolve", actor="li.na", data={"solution": "fixed"})
        NotifyDeliverer(engine, sms=Taken()).deliver_due()
        assert service.answer(engine.context, ids[0], 3, True, None) == "recorded"
        engine.fire(ids[1], "follow_up", actor="li.na", data={"satisfaction": 5})
        assert service.answer(engine.context, ids[1], 1, False, "no") == "reopened"
        engine.fire(ids[2], "follow_up", actor="li.na", data={"satisfaction": 5})
        period, _ = period_of(month="2026-11", zone=FixedClock(START).now().tzinfo, now=START)
        report = sla_report(engine.context, period)
        assert report["surveys"] == {"sent": 3, "answered": 2, "response_rate": 0.6667}
        customers = report["csat_customers"]
        assert customers["partner"] == [{"name": "P1", "follow_ups": 2, "csat": 2.0}]
        assert customers["technician"] == [{"name": "wang", "follow_ups": 2, "csat": 2.0}]
        assert report["csat_agents"]["owner"] == [{"name": "li.na", "follow_ups": 2, "csat": 5.0}]
        rated = partner_report(engine.context, quarter("2026Q4", FixedClock(START).now().tzinfo))
        row = next(r for r in rated["partners"] if r["partner"] == "P1")
        assert (row["csat"], row["csat_from"]) == (2.0, "customers")
        assert (row["customer_scores"], row["agent_scores"]) == (2, 2)
