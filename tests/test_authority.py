"""Authority (seeds 000 and 003: 在自己授权范围内, "if you have the authority handle it
quickly, if not find someone who can"): per role which remedies, refunds, compensation
and partner sanctions it decides; above it the event is refused naming who decides it
and the escalation level, in the engine, over HTTP (403) and on the command line
(exit 2), and ``escalate_now`` takes the case there."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from casework.workflow import Engine, FixedClock
from casework.workflow.access.authority import Authority, authority
from casework.workflow.cli import main
from casework.workflow.config import Settings, settings_from_mapping
from casework.workflow.errors import BeyondAuthority, ConfigError, InvalidInput, NotPermitted
from tests.support import open_sample
from tests.support.api_server import Served

REFUSED = "refused"
SUSPEND = {"partner": "P-1", "reason": "收费不规范, 待查"}
FAULT = {"partner": "P-1", "fault": "missed_appointment"}

# role, event, data -> None (allowed) or (the role that decides it, its level)
TABLE: list[tuple[str, str, dict[str, Any], tuple[str, int] | None]] = [
    # remedies: an agent repairs; returns and exchanges need a supervisor (000)
    ("agent", "decide_remedy", {"remedy": "repair"}, None),
    ("agent", "decide_remedy", {"remedy": "paid_repair"}, None),
    ("agent", "decide_remedy", {"remedy": "return"}, ("supervisor", 1)),
    ("agent", "decide_remedy", {"remedy": "exchange"}, ("supervisor", 1)),
    ("supervisor", "decide_remedy", {"remedy": "return"}, None),
    ("supervisor", "decide_remedy", {"remedy": "exchange"}, None),
    ("admin", "decide_remedy", {"remedy": "exchange"}, None),
    # partner sanctions: a supervisor's (003)
    ("agent", "suspend_settlement", SUSPEND, ("supervisor", 1)),
    ("agent", "partner_fault", FAULT, ("supervisor", 1)),
    ("supervisor", "suspend_settlement", SUSPEND, None),
    ("supervisor", "partner_fault", {**FAULT, "compensation": 300}, None),
    # money: up to 200 yuan an agent, 2,000 a supervisor, any an administrator
    ("agent", "resolve", {"solution": "退款", "refund": "200"}, None),
    ("agent", "resolve", {"solution": "退款", "refund": "200.01"}, ("supervisor", 1)),
    ("agent", "resolve", {"solution": "赔偿", "compensation": 500}, ("supervisor", 1)),
    ("supervisor", "resolve", {"solution": "退款", "refund": 2000}, None),
    ("supervisor", "resolve", {"solution": "退款", "refund": 2500}, ("admin", 3)),
    ("admin", "resolve", {"solution": "退款", "refund": 99999}, None),
    ("agent", "quote", {"amount": "180", "currency": "CNY", "compensation": 50}, None),
    # what is no decision is anyone's
    ("agent", "note", {"note": "客户来电"}, None),
    ("agent", "escalate_now", {"reason": "退货需主管决定"}, None),
]


@pytest.mark.parametrize(("role", "event", "data", "needed"), TABLE)
def test_each_role_decides_within_its_authority(
    role: str, event: str, data: dict[str, Any], needed: tuple[str, int] | None
) -> None:
    rules = Authority()
    if needed is None:
        rules.check(role, event, data)
        return
    with pytest.raises(BeyondAuthority) as refused:
        rules.check(role, event, data, lambda level: {1: "store supervisor"}.get(level))
    err = refused.value
    assert (err.role, err.needed, err.level) == (role, *needed)
    text = str(err)
    assert text.startswith("beyond your authority: ")
    assert f"decides it (escalation level {needed[1]}" in text
    assert f"escalate the case (escalate_now) to take it to level {needed[1]}" in text
    if needed[1] == 1:
        assert "escalation level 1, store supervisor" in text
    assert isinstance(err, NotPermitted)


def test_the_message_says_what_was_asked_in_a_store_agent_s_words() -> None:
    with pytest.raises(BeyondAuthority) as refused:
        Authority().check("agent", "decide_remedy", {"remedy": "return"})
    assert str(refused.value) == (
        "beyond your authority: an agent may not decide a return (退货); a supervisor "
        "decides it (escalation level 1): escalate the case (escalate_now) to take it to "
        "level 1"
    )
    with pytest.raises(BeyondAuthority, match=r"grant a refund of 350 yuan \(up to 200 yuan\)"):
        Authority().check("agent", "resolve", {"solution": "x", "refund": 350})
    with pytest.raises(BeyondAuthority, match="suspend a partner's settlement"):
        Authority().check("agent", "suspend_settlement", SUSPEND)
    with pytest.raises(BeyondAuthority, match="an auditor decides nothing"):
        Authority().check("auditor", "note", {})
    with pytest.raises(InvalidInput, match="refund must be an amount in yuan"):
        Authority().check("admin", "resolve", {"solution": "x", "refund": "lots"})


def test_the_matrix_is_configured_per_role() -> None:
    settings = settings_from_mapping(
        {
            "authority": {
                "agent": {"remedies": ["repair", "paid_repair", "exchange"], "max_yuan": 50},
                "supervisor": {"max_yuan": "unlimited", "level": 2},
                "actors": {"wang.fang": "supervisor"},
            }
        },
        "casework.toml",
    )
    rules = settings.authority
    rules.check("agent", "decide_remedy", {"remedy": "exchange"})
    with pytest.raises(BeyondAuthority, match="level 2"):
        rules.check("agent", "resolve", {"solution": "x", "refund": 51})
    rules.check("supervisor", "resolve", {"solution": "x", "refund": 10**6})
    assert rules.role_of("wang.fang") == "supervisor"
    assert rules.role_of("li.na") is None
    # nobody may: said so
    nobody = authority({"supervisor": {"sanctions": False}, "admin": {"sanctions": False}}, "f")
    with pytest.raises(BeyondAuthority, match="no role may under"):
        nobody.check("agent", "suspend_settlement", SUSPEND)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"clerk": {}}, "unknown key authority.clerk"),
        ({"agent": {"remedies": ["refund"]}}, "authority.agent.remedies must list"),
        ({"agent": {"max_yuan": -5}}, "authority.agent.max_yuan must be"),
        ({"agent": {"sanctions": "yes"}}, "authority.agent.sanctions must be"),
        ({"agent": {"level": 99}}, "authority.agent.level must be"),
        ({"agent": {"limit": 5}}, "unknown key limit"),
        ({"actors": {"li.na": "boss"}}, "authority.actors must map"),
    ],
)
def test_a_wrong_authority_table_is_refused_naming_the_key(
    body: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        settings_from_mapping({"authority": body}, "casework.toml")


def _confirmed(engine: Engine) -> str:
    values = {"purchase_date": "2026-11-20", "brand": "华为", "product_class": "phone",
              "fault_class": "performance"}  # fmt: skip
    case_id = open_sample(engine, attributes=values)
    engine.fire(case_id, "apologise", actor="li.na")
    engine.fire(case_id, "confirm_needs", actor="li.na")
    return case_id


def test_the_engine_refuses_above_the_role_and_escalate_now_takes_it_there(
    engine: Engine,
) -> None:
    case_id = _confirmed(engine)
    with pytest.raises(BeyondAuthority) as refused:
        engine.fire(case_id, "decide_remedy", actor="li.na", data={"remedy": "return"},
                    role="agent")  # fmt: skip
    assert "a supervisor decides it (escalation level 1, store supervisor)" in str(refused.value)
    assert engine.get(case_id).version == 3  # nothing recorded
    escalated = engine.fire(case_id, "escalate_now", actor="li.na", role="agent",
                            data={"reason": str(refused.value)})  # fmt: skip
    assert escalated.escalation_level == 1
    with pytest.raises(BeyondAuthority, match="the case stands at level 1 already: hand it"):
        engine.fire(case_id, "decide_remedy", actor="li.na", data={"remedy": "return"},
                    role="agent")  # fmt: skip
    decided = engine.fire(case_id, "decide_remedy", actor="wang.fang", role="supervisor",
                          data={"remedy": "return"})  # fmt: skip
    assert engine.history(decided.id)[-1].data["remedy"] == "return"
    # the library's own use (no role) is unrestricted
    other = _confirmed(engine)
    engine.fire(other, "decide_remedy", actor="li.na", data={"remedy": "exchange"})


def test_over_http_an_agent_token_gets_403_naming_the_supervisor(
    api: Served, engine: Engine
) -> None:
    case_id = _confirmed(engine)
    events = f"/v1/cases/{case_id}/events"
    with api.client(api.token("agent", "li.na")) as agent:
        answer = agent.post(events, json={"event": "suspend_settlement", "data": SUSPEND})
        assert answer.status_code == 403, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert "a supervisor decides it (escalation level 1" in answer.json()["detail"]
        assert answer.json()["type"] == "urn:casework:problem:beyond-authority"
        exchange = {"event": "decide_remedy", "data": {"remedy": "exchange"}}
        assert agent.post(events, json=exchange).status_code == 403
        repair = {"event": "decide_remedy", "data": {"remedy": "repair"}}
        answer = agent.post(events, json=repair)
        assert answer.status_code == 200, answer.text
    with api.client(api.token("supervisor", "wang.fang")) as supervisor:
        answer = supervisor.post(events, json={"event": "suspend_settlement", "data": SUSPEND})
        assert answer.status_code == 200, answer.text


def test_the_command_line_checks_with_role_or_the_actor_s_role(
    db_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    config = tmp_path / "casework.toml"
    config.write_text('[authority.actors]\n"li.na" = "agent"\n', encoding="utf-8")
    with Engine.open(db_url, clock=clock) as engine:
        case_id = _confirmed(engine)
    runner = CliRunner()

    def fire(*args: str) -> Any:
        return runner.invoke(main, ["--db", db_url, "fire", case_id, *args])

    refused = fire("decide_remedy", "--actor", "zhao.lei", "--data", "remedy=return",
                   "--role", "agent")  # fmt: skip
    assert refused.exit_code == 2
    assert "beyond your authority: an agent may not decide a return" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    mapped = fire("resolve", "--actor", "li.na", "--data", "solution=退款", "--data",
                  "refund=500", "--config", str(config))  # fmt: skip
    assert mapped.exit_code == 2
    assert "grant a refund of 500 yuan" in mapped.stderr
    unchecked = fire("suspend_settlement", "--actor", "zhao.lei", "--data", "partner=P-1",
                     "--data", "reason=收费不规范")  # fmt: skip
    assert unchecked.exit_code == 0, unchecked.output
    assert "--role" in runner.invoke(main, ["fire", "--help"]).output
    assert Settings().authority == Authority()


def _field(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found is not None, html
    return found.group(1)


def test_the_console_refuses_in_place_as_the_api_does(api: Served, engine: Engine) -> None:
    case_id = _confirmed(engine)
    with httpx.Client(base_url=api.url, timeout=30) as browser:
        login = browser.get("/login").text
        form = {"token": api.token("agent", "li.na"), "csrf": _field(login, "csrf")}
        signed = browser.post("/login", data=form, headers={"Origin": api.url})
        assert signed.status_code in (200, 303), signed.text
        page = browser.get(f"/cases/{case_id}").text
        event = {"csrf": _field(page, "csrf"), "event": "decide_remedy",
                 "data.remedy": "return", "version": "3"}  # fmt: skip
        refused = browser.post(f"/cases/{case_id}/events", data=event)
        assert refused.status_code == 200
        assert "escalate_now" in refused.text
        assert engine.get(case_id).version == 3  # nothing recorded
        event["data.remedy"] = "repair"
        assert browser.post(f"/cases/{case_id}/events", data=event).status_code == 303
        assert engine.get(case_id).version == 4
