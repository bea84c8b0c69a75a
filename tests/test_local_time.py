"""People read and type times in one display zone; inside and in JSON, times are UTC."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner

from casework.workflow import Engine
from casework.workflow.cli import main
from casework.workflow.display.periods import asked_period, described, week_of
from casework.workflow.display.times import local_text, read_time, stamped
from casework.workflow.display.zones import choose_zone, zone_named
from casework.workflow.durations import spoken
from casework.workflow.errors import InvalidInput
from tests.support import START, open_sample

SHANGHAI = zone_named("Asia/Shanghai", "tz")


def _cli(db_url: str, *args: str, env: dict[str, str] | None = None) -> Any:
    result = CliRunner(env=env).invoke(main, [*args, "--db", db_url])
    assert result.exit_code == 0, result.output
    return result


def test_the_zone_comes_from_the_option_the_environment_the_settings_or_the_system(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CASEWORK_TZ", "Europe/Berlin")
    assert choose_zone("Asia/Shanghai", "UTC").name == "Asia/Shanghai"
    assert choose_zone(None, "UTC").name == "Europe/Berlin"
    monkeypatch.delenv("CASEWORK_TZ")
    assert (choose_zone(None, "UTC").name, choose_zone(None, "UTC").source) == (
        "UTC",
        "[display] timezone",
    )
    monkeypatch.setenv("TZ", "America/New_York")
    assert (choose_zone(None, None).name, choose_zone(None, None).source) == (
        "America/New_York",
        "system",
    )
    with pytest.raises(InvalidInput, match="unknown time zone 'Mars/Olympus'"):
        choose_zone("Mars/Olympus", None)


def test_times_are_shown_to_the_second_and_durations_in_days_hours_minutes() -> None:
    moment = datetime(2026, 11, 23, 1, 0, 5, 123456, tzinfo=UTC)
    assert local_text(moment, SHANGHAI) == "2026-11-23 09:00:05"
    assert stamped(moment, SHANGHAI) == "2026-11-23 09:00:05 +08:00"
    assert stamped(moment, UTC) == "2026-11-23 01:00:05 UTC"
    assert spoken(timedelta(days=2, hours=3, minutes=10), "en") == "2d 3h 10m"
    assert spoken(timedelta(minutes=35), "en") == "35m"
    assert spoken(timedelta(days=1, seconds=59), "zh") == "1天"


def test_a_date_or_naive_time_is_read_in_the_zone_and_says_so() -> None:
    naive = read_time("2026-11-23 09:30", "--at", SHANGHAI)
    assert naive.moment == datetime(2026, 11, 23, 1, 30, tzinfo=UTC)
    assert (
        naive.assumed
        == "--at 2026-11-23 09:30 read as 2026-11-23 09:30:00 in Asia/Shanghai (+08:00)"
    )
    day_end = read_time("2026-11-30", "--to", SHANGHAI, end_of_day=True)
    assert day_end.moment == datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
    assert "through the end of that day" in str(day_end.assumed)
    exact = read_time("2026-11-23T09:30:00+08:00", "--at", UTC)
    assert (exact.moment, exact.assumed) == (datetime(2026, 11, 23, 1, 30, tzinfo=UTC), None)
    with pytest.raises(InvalidInput, match="not a date or time"):
        read_time("next tuesday", "--at", SHANGHAI)


def test_a_month_asked_in_china_is_november_in_china() -> None:
    now = datetime(2026, 12, 2, tzinfo=UTC)
    november = asked_period(start=None, end=None, month="2026-11", last=None, zone=SHANGHAI,
                            now=now)  # fmt: skip
    assert (november.start, november.end) == (
        datetime(2026, 10, 31, 16, tzinfo=UTC),
        datetime(2026, 11, 30, 16, tzinfo=UTC),
    )
    assert described(november.start, november.end, SHANGHAI) == (
        "2026-11-01 to 2026-11-30 (Asia/Shanghai)"
    )
    week = asked_period(start=None, end=None, month=None, last="7d", zone=UTC, now=now)
    assert week.end - week.start == timedelta(days=7)
    # Sunday 23:30 in UTC is already Monday in China: a new week there.
    sunday_night = datetime(2026, 11, 29, 23, 30, tzinfo=UTC)
    assert week_of(sunday_night, UTC) == date(2026, 11, 23)
    assert week_of(sunday_night, SHANGHAI) == date(2026, 11, 30)
    with pytest.raises(InvalidInput, match="one of `from`"):
        asked_period(start="2026-11-01", end=None, month="2026-11", last=None, zone=UTC, now=now)


def test_commands_show_local_times_and_json_stays_utc(db_url: str) -> None:
    opened = _cli(db_url, "open", "--customer", "王先生", "--channel", "phone", "--category",
                  "service_delayed", "--summary", "师傅没来", "--actor", "李娜", "--json",
                  "--received-at", "2026-11-23 09:00", "--tz", "Asia/Shanghai")  # fmt: skip
    case = json.loads(opened.stdout)
    assert case["received_at"] == "2026-11-23T01:00:00.000000+00:00"
    assert "read as 2026-11-23 09:00:00 in Asia/Shanghai (+08:00)" in opened.stderr
    env = {"CASEWORK_TZ": "Asia/Shanghai"}
    shown = _cli(db_url, "show", case["id"], env=env).stdout
    assert "received  2026-11-23 09:00:00 +08:00" in shown
    history = _cli(db_url, "history", case["id"], env=env).stdout
    assert "at (Asia/Shanghai)" in history
    assert "2026-11-23 09:00:00" in history
    listed = _cli(db_url, "list", "--tz", "UTC").stdout
    assert "received (UTC)" in listed
    assert "2026-11-23 01:00:00" in listed
    history_json = json.loads(_cli(db_url, "history", case["id"], "--json", env=env).stdout)
    assert history_json[0]["occurred_at"] == "2026-11-23T01:00:00.000000+00:00"


def test_a_report_month_is_cut_in_the_display_zone(db_url: str) -> None:
    with Engine.open(db_url) as engine:
        # 01:00 on 1 November in China, still October in UTC; and 1 December in China.
        open_sample(engine, received_at=datetime(2026, 10, 31, 17, tzinfo=UTC), branch="东莞长安店")
        open_sample(engine, received_at=datetime(2026, 11, 30, 17, tzinfo=UTC), branch="东莞长安店")
    china = json.loads(_cli(db_url, "report", "sla", "--month", "2026-11", "--tz",
                            "Asia/Shanghai", "--json").stdout)  # fmt: skip
    assert (china["cases"], china["zone"]) == (1, "Asia/Shanghai")
    assert china["period"] == "2026-11-01 to 2026-11-30 (Asia/Shanghai)"
    assert china["weekly"][0]["week"] == "2026-10-26"  # the week of Sunday 1 November
    utc = json.loads(_cli(db_url, "report", "complaints", "--month", "2026-11", "--tz", "UTC",
                          "--json").stdout)  # fmt: skip
    assert utc["cases"] == 1
    assert utc["from"] == "2026-11-01T00:00:00.000000+00:00"
    noted = _cli(db_url, "report", "sla", "--from", "2026-11-01", "--to", "2026-11-30", "--tz",
                 "Asia/Shanghai", "--json")  # fmt: skip
    assert json.loads(noted.stdout)["cases"] == 1
    assert "--to 2026-11-30 read as 2026-12-01 00:00:00 in Asia/Shanghai" in noted.stderr


def test_the_tz_option_may_follow_the_command_and_a_bad_one_is_one_line(db_url: str) -> None:
    result = CliRunner().invoke(main, ["list", "--tz", "Asia/Atlantis", "--db", db_url])
    assert result.exit_code == 2
    assert result.stderr.startswith("casework: error: Invalid value for '--tz': unknown time zone")
    logged = CliRunner().invoke(main, ["list", "--log-level", "debug", "--db", db_url])
    assert logged.exit_code == 0, logged.output


def test_mails_speak_the_display_zone_unless_mail_says_otherwise() -> None:
    from casework.workflow.config import settings_from_mapping

    both = settings_from_mapping({"display": {"timezone": "Asia/Shanghai"}}, "t")
    assert both.mail.timezone == "Asia/Shanghai"
    own = settings_from_mapping(
        {"display": {"timezone": "Asia/Shanghai"}, "mail": {"timezone": "UTC"}}, "t"
    )
    assert own.mail.timezone == "UTC"
    assert START.tzinfo is UTC
