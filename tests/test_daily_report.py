"""The daily 10:00 report of returns, exchanges and complaints (seed 003: 每日 10:00 前
上报退换货及投诉日报): per store for each branch, per branch with the company's total
for headquarters, the day cut at midnight in the branch's zone; queued by the worker
once per day per reader however many workers run, and mailed in the reader's language.

On SQLite and PostgreSQL, with two engines on one database, a real SMTP server on
loopback and the command line."""

from __future__ import annotations

import json
import threading
import tomllib
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from casework.scheduler.mail.delivery import Deliverer
from casework.scheduler.worker import Worker
from casework.workflow import Engine, FixedClock
from casework.workflow.cli import main
from casework.workflow.config import Settings, settings_from_mapping
from casework.workflow.errors import ConfigError
from casework.workflow.outbox.mail import Outbox
from casework.workflow.reports.daily import daily_report, dedupe_key
from tests.support import CHANG_AN, DG, GZ, HU_MEN, ORGANISATION, TIAN_HE
from tests.support.mail_server import TestServer

SHANGHAI = ZoneInfo("Asia/Shanghai")
COLON = "\N{FULLWIDTH COLON}"
HQ_MAIL, DG_MAIL, GZ_MAIL = "hq@example.com", "dg@example.com", "gz@example.com"


def _toml(server: TestServer | None = None, *, enabled: bool = True) -> str:
    url = server.url if server is not None else "smtp://127.0.0.1:25"
    return f"""
[display]
timezone = "Asia/Shanghai"{ORGANISATION}[mail]
url = "{url}"
sender = "Casework <casework@example.com>"
language = "en"
[mail.languages]
"{DG}" = "zh"
[reports.daily]
enabled = {str(enabled).lower()}
at = "10:00"
hq = ["{HQ_MAIL}"]
[reports.daily.recipients]
"{DG}" = ["{DG_MAIL}"]
"{GZ}" = ["{GZ_MAIL}"]
"""


def _settings(server: TestServer | None = None, **kwargs: Any) -> Settings:
    return settings_from_mapping(tomllib.loads(_toml(server, **kwargs)), "casework.toml")


def _local(day: str, hour: int, minute: int = 0) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:{minute:02d}").replace(tzinfo=SHANGHAI)


@pytest.fixture
def day_clock() -> FixedClock:
    """A clock at 2026-12-02 08:00 in Shanghai, before the events of the test."""
    return FixedClock(_local("2026-12-02", 8))


@pytest.fixture
def settings(server: TestServer) -> Settings:
    return _settings(server)


def _case(engine: Engine, unit: str, at: datetime) -> str:
    """A complaint of ``unit`` received at ``at``, ready for a remedy."""
    attributes = {"purchase_date": "2026-12-01", "brand": "华为", "product_class": "phone",
                  "fault_class": "performance"}  # fmt: skip
    case = engine.open_case(customer="CUST-1", channel="phone", category="service_delayed",
                            summary="手机无法开机", actor="li.na", branch=unit,
                            received_at=at, attributes=attributes)  # fmt: skip
    engine.fire(case.id, "apologise", actor="li.na", at=at)
    engine.fire(case.id, "confirm_needs", actor="li.na", at=at)
    return case.id


def _decide(engine: Engine, case_id: str, remedy: str, at: datetime) -> None:
    engine.fire(case_id, "decide_remedy", actor="li.na", data={"remedy": remedy}, at=at)


def _the_day(engine: Engine, clock: FixedClock) -> None:
    """4 December in Shanghai: in 东莞 two complaints at 长安 (at 00:00 and 23:59), one
    at 虎门 returned the same day, one at the branch itself; in 广州 one at 天河
    exchanged; a return that day of a case received two days before; around the day a
    complaint at 23:59 the day before and one at 00:00 the day after, and a return
    decided the day after: none of those counts."""
    clock.set(_local("2026-12-06", 12))
    earlier = _case(engine, HU_MEN, _local("2026-12-02", 15))
    _case(engine, CHANG_AN, _local("2026-12-03", 23, 59))
    _case(engine, CHANG_AN, _local("2026-12-04", 0))
    returned = _case(engine, HU_MEN, _local("2026-12-04", 9))
    _decide(engine, returned, "return", _local("2026-12-04", 11))
    _decide(engine, earlier, "return", _local("2026-12-04", 12))
    _case(engine, DG, _local("2026-12-04", 13))
    exchanged = _case(engine, TIAN_HE, _local("2026-12-04", 14))
    _decide(engine, exchanged, "exchange", _local("2026-12-04", 16))
    _case(engine, CHANG_AN, _local("2026-12-04", 23, 59))
    late = _case(engine, TIAN_HE, _local("2026-12-05", 0))
    _decide(engine, late, "return", _local("2026-12-05", 1))


def _figures(report: dict[str, Any]) -> list[tuple[str, str, int, int, int]]:
    return [
        (r["level"], r["name"], r["returns"], r["exchanges"], r["complaints"])
        for r in report["rows"]
    ]


def test_the_figures_are_the_day_s_events_per_store_and_per_branch(
    db_url: str, day_clock: FixedClock, settings: Settings
) -> None:
    with Engine.open(db_url, clock=day_clock, config=settings) as engine:
        _the_day(engine, day_clock)
        branch = daily_report(engine.context, date(2026, 12, 4), DG)
        hq = daily_report(engine.context, date(2026, 12, 4))
        quiet = daily_report(engine.context, date(2026, 11, 30), GZ)
    assert (branch["from"], branch["to"]) == (
        "2026-12-03T16:00:00.000000+00:00",
        "2026-12-04T16:00:00.000000+00:00",
    )
    assert branch["zone"] == "Asia/Shanghai"
    assert _figures(branch) == [
        ("branch", DG, 2, 0, 4),
        ("store", CHANG_AN, 0, 0, 2),
        ("store", HU_MEN, 2, 0, 1),
    ]
    assert branch["total"] == {"returns": 2, "exchanges": 0, "complaints": 4}
    assert _figures(hq) == [
        ("branch", DG, 2, 0, 4),
        ("branch", GZ, 0, 1, 1),
        ("company", "总部", 2, 1, 5),
    ]
    assert hq["total"] == {"returns": 2, "exchanges": 1, "complaints": 5}
    assert _figures(quiet) == [("branch", GZ, 0, 0, 0), ("store", TIAN_HE, 0, 0, 0)]


def _outbox_rows(engine: Engine) -> dict[str, Any]:
    return {m.dedupe_key: m for m in Outbox(engine.context).list(kind="report")}


def test_two_workers_at_10_queue_one_report_per_branch_and_one_for_hq(
    db_url: str, day_clock: FixedClock, server: TestServer, settings: Settings
) -> None:
    first = Engine.open(db_url, clock=day_clock, config=settings)
    second = Engine.open(db_url, clock=day_clock, config=settings)
    try:
        _the_day(first, day_clock)
        day_clock.set(_local("2026-12-05", 9, 59))
        workers = [Worker(first, listen=False), Worker(second, listen=False)]
        for worker in workers:
            worker.daily_report()
        assert _outbox_rows(first) == {}  # not 10:00 yet
        day_clock.set(_local("2026-12-05", 10))
        ran = [threading.Thread(target=w.daily_report) for w in workers for _ in range(2)]
        for thread in ran:
            thread.start()
        for thread in ran:
            thread.join()
        day_clock.advance(timedelta(hours=3))  # a later wake the same day adds nothing
        workers[1].daily_report()
        rows = _outbox_rows(second)
        assert set(rows) == {"daily:2026-12-04:hq", f"daily:2026-12-04:{DG}",
                             f"daily:2026-12-04:{GZ}"}  # fmt: skip
        hq = rows["daily:2026-12-04:hq"]
        assert (hq.case_id, hq.kind, hq.recipients) == (None, "report", (HQ_MAIL,))
        assert hq.body["total"] == {"returns": 2, "exchanges": 1, "complaints": 5}
        assert rows[f"daily:2026-12-04:{DG}"].recipients == (DG_MAIL,)
        assert _figures(dict(rows[f"daily:2026-12-04:{GZ}"].body)) == [
            ("branch", GZ, 0, 1, 1),
            ("store", TIAN_HE, 0, 1, 1),
        ]
        report = Deliverer(first).deliver_due()
        assert (report.sent, report.dead) == (3, 0)
        by_to = {to: message for to, message, _ in server.script.received}
        assert set(by_to) == {(HQ_MAIL,), (DG_MAIL,), (GZ_MAIL,)}
        dg = by_to[(DG_MAIL,)]
        assert str(dg["Subject"]) == f"[casework] 退换货及投诉日报 2026-12-04{COLON}{DG}"
        text = dg.get_body(("plain",)).get_content()
        assert f"分部 / 门店{COLON}退货 / 换货 / 受理投诉" in text
        assert f"  {HU_MEN}{COLON}2 / 0 / 1" in text
        hq_text = by_to[(HQ_MAIL,)].get_body(("plain",)).get_content()
        assert "Total: 2 / 1 / 5" in hq_text
        assert "Return / Exchange / Complaints received" in hq_text
        html = by_to[(GZ_MAIL,)].get_body(("html",)).get_content()
        assert "<td>&nbsp;&nbsp;广州天河店</td>" in html
        assert first.verify().ok
    finally:
        first.close()
        second.close()


def test_the_outbox_lists_a_report_without_a_case(
    db_url: str, day_clock: FixedClock, settings: Settings, tmp_path: Any
) -> None:
    with Engine.open(db_url, clock=day_clock, config=settings) as engine:
        _the_day(engine, day_clock)
        day_clock.set(_local("2026-12-05", 10, 30))
        Worker(engine, listen=False).daily_report()
    config = tmp_path / "casework.toml"
    config.write_text(_toml())
    runner = CliRunner()
    listed = runner.invoke(main, ["outbox", "--kind", "report", "--db", db_url,
                                  "--config", str(config)])  # fmt: skip
    assert listed.exit_code == 0, listed.output
    assert listed.output.count(" report ") == 3
    shown = runner.invoke(main, ["outbox", "--json", "--db", db_url, "--config", str(config)])
    assert {m["case_id"] for m in json.loads(shown.output)["mails"]} == {None}


def test_report_daily_prints_the_same_report(
    db_url: str, day_clock: FixedClock, settings: Settings, tmp_path: Any
) -> None:
    with Engine.open(db_url, clock=day_clock, config=settings) as engine:
        _the_day(engine, day_clock)
        expected = daily_report(engine.context, date(2026, 12, 4), DG)
    config = tmp_path / "casework.toml"
    config.write_text(_toml())
    runner = CliRunner()
    base = ["report", "daily", "--date", "2026-12-04", "--db", db_url, "--config", str(config)]
    shown = runner.invoke(main, [*base, "--branch", DG, "--json"])
    assert shown.exit_code == 0, shown.output
    got = json.loads(shown.output)
    assert _figures(got) == _figures(expected)
    assert got["total"] == expected["total"]
    table = runner.invoke(main, base)
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert (
        lines[0] == "returns, exchanges and complaints of 2026-12-04 (Asia/Shanghai): headquarters"
    )
    assert lines[-1].split() == ["总部", "company", "2", "1", "5"]
    bad = runner.invoke(main, [*base[:2], "--date", "4.12.2026", "--db", db_url])
    assert bad.exit_code == 2
    assert bad.output.strip() == "casework: error: --date '4.12.2026' is not a day YYYY-MM-DD"


def test_a_disabled_report_is_not_queued(db_url: str, day_clock: FixedClock) -> None:
    with Engine.open(db_url, clock=day_clock, config=_settings(enabled=False)) as engine:
        day_clock.set(_local("2026-12-05", 11))
        Worker(engine, listen=False).daily_report()
        assert _outbox_rows(engine) == {}


def test_a_long_branch_name_keeps_its_key_in_the_column() -> None:
    key = dedupe_key(date(2026, 12, 4), "分" * 200)
    assert len(key) <= 200
    assert key.startswith("daily:2026-12-04:sha256:")


@pytest.mark.parametrize(
    ("daily", "message"),
    [
        ({"at": "25:00"}, 'reports.daily.at must be a local time "HH:MM"'),
        ({"hq": ["not an address"]}, r"reports.daily.hq\[0\]: not a valid mail address"),
        ({"recipients": {DG: []}}, f"reports.daily.recipients.{DG} must be a non-empty list"),
        ({"timezones": {DG: "Mars/Olympus"}}, "unknown time zone 'Mars/Olympus'"),
        ({"every": "day"}, "unknown key every"),
        ({"enabled": True}, "neither hq nor recipients"),
    ],
)
def test_a_wrong_daily_table_is_refused_naming_the_key(daily: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings_from_mapping({"reports": {"daily": daily}}, "casework.toml")


def test_a_branch_in_its_own_zone_has_its_day_and_its_10_00_there(
    db_url: str, day_clock: FixedClock, server: TestServer
) -> None:
    """广州分部 on Urumqi time (UTC+6, two hours behind Shanghai): 01:00 on 5 December in
    Shanghai is still 4 December there, and its report falls due at 12:00 Shanghai."""
    document = tomllib.loads(_toml(server))
    document["reports"]["daily"]["timezones"] = {GZ: "Asia/Urumqi"}
    settings = settings_from_mapping(document, "casework.toml")
    with Engine.open(db_url, clock=day_clock, config=settings) as engine:
        _the_day(engine, day_clock)
        _case(engine, TIAN_HE, _local("2026-12-05", 1))
        gz = daily_report(engine.context, date(2026, 12, 4), GZ)
        assert gz["zone"] == "Asia/Urumqi"
        assert _figures(gz)[0] == ("branch", GZ, 1, 1, 3)  # the return at 01:00 too
        assert daily_report(engine.context, date(2026, 12, 4))["total"]["complaints"] == 5
        day_clock.set(_local("2026-12-05", 10))
        worker = Worker(engine, listen=False)
        worker.daily_report()
        assert set(_outbox_rows(engine)) == {"daily:2026-12-04:hq", f"daily:2026-12-04:{DG}"}
        day_clock.set(_local("2026-12-05", 12))
        worker.daily_report()
        assert f"daily:2026-12-04:{GZ}" in _outbox_rows(engine)
