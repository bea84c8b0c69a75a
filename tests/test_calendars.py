"""Business calendars: DST-correct arithmetic, holidays, and the properties deadlines rely on."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casework.machines.calendars import (
    AroundTheClock,
    BusinessHours,
    Period,
    china_holidays,
    parse_period,
)

ZONES = ("Asia/Shanghai", "Europe/Berlin", "America/New_York")
OFFICE = (parse_period("09:00-12:00"), parse_period("13:00-18:00"))


def office(zone: str, **extra: object) -> BusinessHours:
    """Monday to Friday, 9 to 12 and 13 to 18, in ``zone``."""
    week = (OFFICE,) * 5 + ((), ())
    return BusinessHours(name=f"office-{zone}", timezone=zone, week=week, **extra)  # type: ignore[arg-type]


def whole_days(zone: str) -> BusinessHours:
    """Every hour of every day, counted through the local periods of ``zone``."""
    return BusinessHours(name="all", timezone=zone, week=((Period(time(0), None),),) * 7)


def test_china_national_day_and_its_make_up_saturday() -> None:
    """24 working hours from the eve of National Day skip the holiday week and use the
    Saturday that makes up for it."""
    holidays, working = china_holidays([2026])
    calendar = office("Asia/Shanghai", holidays=holidays, working_days=working)
    shanghai = ZoneInfo("Asia/Shanghai")
    received = datetime(2026, 9, 30, 17, 0, tzinfo=shanghai)
    due = calendar.add(received, timedelta(hours=24))
    assert due == datetime(2026, 10, 10, 17, 0, tzinfo=shanghai)
    assert date(2026, 10, 10) in working
    assert calendar.between(received, due) == timedelta(hours=24)


def test_a_weekend_is_skipped() -> None:
    """Friday 17:00 plus 2 working hours is Monday 10:00."""
    calendar = office("Europe/Berlin")
    berlin = ZoneInfo("Europe/Berlin")
    due = calendar.add(datetime(2026, 11, 20, 17, 0, tzinfo=berlin), timedelta(hours=2))
    assert due == datetime(2026, 11, 23, 10, 0, tzinfo=berlin)


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        ("Europe/Berlin", date(2026, 3, 29), 23),
        ("Europe/Berlin", date(2026, 10, 25), 25),
        ("America/New_York", date(2026, 3, 8), 23),
        ("America/New_York", date(2026, 11, 1), 25),
        ("Asia/Shanghai", date(2026, 3, 29), 24),
    ],
)
def test_days_when_the_clocks_change_have_their_real_length(
    zone: str, day: date, hours: int
) -> None:
    """A local day of 00:00-24:00 lasts 23 or 25 real hours when the clocks change."""
    calendar = whole_days(zone)
    tz = ZoneInfo(zone)
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    assert calendar.between(start, end) == timedelta(hours=hours)
    assert calendar.add(start, timedelta(hours=hours)) == end


def test_office_hours_on_a_dst_day_are_still_eight_hours() -> None:
    """9 to 12 and 13 to 18 is eight working hours on the day Berlin moves its clocks."""
    calendar = BusinessHours(name="b", timezone="Europe/Berlin", week=(OFFICE,) * 7)
    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2026, 3, 29, 0, 0, tzinfo=berlin)
    assert calendar.between(start, start + timedelta(days=1)) == timedelta(hours=8)


def test_closed_and_extra_days() -> None:
    """A one-off closed day is skipped; a one-off working day counts."""
    closed = office("Asia/Shanghai", closed_days=frozenset({date(2026, 11, 23)}))
    shanghai = ZoneInfo("Asia/Shanghai")
    monday = datetime(2026, 11, 23, 9, 0, tzinfo=shanghai)
    assert closed.add(monday, timedelta(hours=1)) == datetime(2026, 11, 24, 10, tzinfo=shanghai)
    extra = office("Asia/Shanghai", working_days=frozenset({date(2026, 11, 22)}))
    sunday = datetime(2026, 11, 22, 9, 0, tzinfo=shanghai)
    assert extra.add(sunday, timedelta(hours=1)) == datetime(2026, 11, 22, 10, tzinfo=shanghai)


def test_bad_definitions_are_refused() -> None:
    """Overlapping periods, a week without work and an unknown zone are errors."""
    with pytest.raises(ValueError, match="overlap"):
        BusinessHours(
            name="x", timezone="UTC",
            week=((parse_period("09:00-12:00"), parse_period("11:00-13:00")),) + ((),) * 6,
        )  # fmt: skip
    with pytest.raises(ValueError, match="no working period"):
        BusinessHours(name="x", timezone="UTC", week=((),) * 7)
    with pytest.raises(ValueError, match="period like"):
        parse_period("9 to 5")
    with pytest.raises(Exception, match="Mars"):
        office("Mars/Olympus")


def test_around_the_clock_counts_everything() -> None:
    """The default calendar is plain arithmetic."""
    calendar = AroundTheClock()
    start = datetime(2026, 3, 29, 0, 0, tzinfo=UTC)
    assert calendar.add(start, timedelta(hours=24)) == start + timedelta(hours=24)
    assert calendar.between(start, start - timedelta(hours=1)) == timedelta(0)
    assert calendar.closed_spans(start, start + timedelta(days=2)) == []


INSTANTS = st.datetimes(
    min_value=datetime(2025, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive by its API
    max_value=datetime(2028, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)
WORK = st.timedeltas(min_value=timedelta(minutes=1), max_value=timedelta(hours=120))
EDGE_ZONES = (*ZONES, "Australia/Sydney", "America/Santiago")
EDGES = (
    (parse_period("01:30-02:30"), parse_period("09:00-17:00")),
    (parse_period("02:30-03:00"), parse_period("03:00-04:00")),
    (parse_period("00:30-01:30"), parse_period("02:00-03:30")),
    (parse_period("00:00-02:00"), parse_period("23:00-24:00")),
)


def at_the_edges(zone: str, periods: tuple[Period, ...]) -> BusinessHours:
    """Every day the same periods, starting or ending where the clocks jump or repeat."""
    return BusinessHours(name=f"edges-{zone}", timezone=zone, week=(periods,) * 7)


CALENDARS = st.sampled_from(
    [office(z) for z in ZONES]
    + [whole_days(z) for z in ZONES]
    + [at_the_edges(z, p) for z in EDGE_ZONES for p in EDGES]
)


@settings(max_examples=200, deadline=None)
@given(calendar=CALENDARS, start=INSTANTS, work=WORK)
def test_adding_then_subtracting_round_trips(
    calendar: BusinessHours, start: datetime, work: timedelta
) -> None:
    """From an open instant, subtracting what was added comes back to it."""
    opened = calendar.add(start, timedelta(0))
    due = calendar.add(opened, work)
    assert calendar.subtract(due, work) == opened
    assert calendar.between(opened, due) == work


@settings(max_examples=200, deadline=None)
@given(calendar=CALENDARS, start=INSTANTS, work=WORK)
def test_a_deadline_never_lands_inside_a_closed_period(
    calendar: BusinessHours, start: datetime, work: timedelta
) -> None:
    """Working time runs right up to every deadline."""
    due = calendar.add(start, work)
    assert calendar.is_open(due - timedelta(microseconds=1))


@settings(max_examples=200, deadline=None)
@given(
    calendar=CALENDARS,
    start=INSTANTS,
    work=WORK,
    pause_after=st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=200)),
    pause_for=st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=200)),
)
def test_pausing_never_shortens_a_deadline(
    calendar: BusinessHours,
    start: datetime,
    work: timedelta,
    pause_after: timedelta,
    pause_for: timedelta,
) -> None:
    """A clock paused and resumed later is due no earlier than one never paused."""
    unpaused = calendar.add(start, work)
    paused_at = start + pause_after
    spent = calendar.between(start, paused_at)
    if spent >= work:
        return  # breached before the pause: the pause cannot move it
    resumed = paused_at + pause_for
    assert calendar.add(resumed, work - spent) >= unpaused


def test_a_period_in_the_skipped_hour_has_no_working_time() -> None:
    """02:30-03:00 on the night New York springs forward does not exist: an hour of work
    from Saturday 17:00 ends on Sunday at 10:00, and the spans in between are in order."""
    ny = ZoneInfo("America/New_York")
    day = (parse_period("02:30-03:00"), parse_period("09:00-17:00"))
    calendar = BusinessHours(name="ny", timezone="America/New_York", week=(day,) * 7)
    start = datetime(2026, 3, 7, 17, 0, tzinfo=ny)
    due = calendar.add(start, timedelta(hours=1))
    assert due == datetime(2026, 3, 8, 10, 0, tzinfo=ny)
    assert calendar.between(start, due) == timedelta(hours=1)
    spans = calendar.closed_spans(start, due)
    assert spans  # Saturday evening and the night are closed
    assert all(a < b for a, b in spans)
    assert spans == sorted(spans)


def test_a_period_that_starts_in_the_skipped_hour_starts_at_the_jump() -> None:
    """02:30-05:00 on that night works from the jump (03:00 EDT) to 05:00: two hours."""
    ny = ZoneInfo("America/New_York")
    calendar = at_the_edges("America/New_York", (parse_period("02:30-05:00"),))
    [(a, b)] = calendar.intervals_on(date(2026, 3, 8))
    assert (a, b) == (datetime(2026, 3, 8, 3, 0, tzinfo=ny), datetime(2026, 3, 8, 5, 0, tzinfo=ny))


@settings(max_examples=300, deadline=None)
@given(calendar=CALENDARS, start=INSTANTS, end=INSTANTS)
def test_working_time_is_never_negative_and_closed_spans_are_in_order(
    calendar: BusinessHours, start: datetime, end: datetime
) -> None:
    """Between any two instants: working time from zero to the span, every interval
    forward, and the closed spans ordered and disjoint."""
    start, end = min(start, end), max(start, end)
    end = min(end, start + timedelta(days=20))
    worked = calendar.between(start, end)
    assert timedelta(0) <= worked <= end - start
    spans = calendar.closed_spans(start, end)
    assert all(a < b for a, b in spans)
    assert all(b1 <= a2 for (_, b1), (a2, _) in pairwise(spans))
    closed = sum((b - a for a, b in spans), timedelta(0))
    assert worked + closed == end - start
