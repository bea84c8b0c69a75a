"""Periods people ask for (``from``/``to``, ``month``, ``last``), cut in the display
zone; the period a report covers; the weeks reports group by."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from casework.storage import iso
from casework.workflow.clock import EARLIEST, LATEST
from casework.workflow.display.times import local, read_time, stamped
from casework.workflow.display.zones import zone_name
from casework.workflow.errors import InvalidInput

_LAST = re.compile(r"(\d{1,4})\s*([hdw])", re.IGNORECASE)
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


@dataclass(frozen=True)
class Asked:
    """A period from ``start`` (inclusive) to ``end`` (exclusive), in UTC, with the zone
    it was cut in and what was assumed to read it."""

    start: datetime
    end: datetime
    zone: tzinfo
    notes: tuple[str, ...] = ()


def asked_period(
    *,
    start: str | None,
    end: str | None,
    month: str | None,
    last: str | None,
    zone: tzinfo,
    now: datetime,
) -> Asked:
    """The period one of ``from [to]``, ``month`` (YYYY-MM) or ``last`` (7d) names; the
    messages and notes name these parameters in backquotes (:mod:`~casework.workflow.errors`).

    A date is a day in ``zone``: from 2026-11-01 to 2026-11-30 is the whole of November
    there, the 30th included. ``from`` alone runs to now.
    """
    given = [name for name, value in (("`from`", start), ("`month`", month),
                                      ("`last`", last)) if value]  # fmt: skip
    if len(given) != 1 or (end and not start):
        raise InvalidInput(
            "give the period as one of `from` DATE [`to` DATE], `month` YYYY-MM or `last` 7d"
            + (f" (got {' and '.join(given)})" if len(given) > 1 else ""),
            field="from",
        )
    if month:
        first = _month(month)
        after = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        note = f"`month` {month.strip()} cut in {zone_name(zone)}"
        return Asked(midnight(first, zone), midnight(after, zone), zone, (note,))
    if last:
        found = _LAST.fullmatch(last.strip())
        if found is None or int(found.group(1)) == 0:
            raise InvalidInput(
                f"`last`: {last!r} is not a span such as 24h, 7d or 4w", field="last"
            )
        span = int(found.group(1)) * _UNITS[found.group(2).lower()]
        return Asked(now - span, now, zone)
    assert start is not None
    low = read_time(start, "`from`", zone)
    high = read_time(end, "`to`", zone, end_of_day=True) if end else None
    notes = tuple(r.assumed for r in (low, high) if r is not None and r.assumed)
    return Asked(low.moment, now if high is None else high.moment, zone, notes)


@dataclass(frozen=True)
class Period:
    """The cases received from ``start`` (inclusive) to ``end`` (exclusive), of one
    ``branch`` if given; days and weeks are cut in ``zone``."""

    start: datetime
    end: datetime
    zone: tzinfo = UTC
    branch: str | None = None

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise InvalidInput("`to` must be later than `from`", field="to")

    def heading(self, now: datetime) -> dict[str, Any]:
        """The fields every report starts with: the period in UTC and as people read it."""
        return {
            "from": iso(self.start),
            "to": iso(self.end),
            "zone": zone_name(self.zone),
            "period": described(self.start, self.end, self.zone),
            "branch": self.branch,
            "generated_at": iso(now),
            "generated_local": stamped(now, self.zone),
        }


def period_of(
    *,
    start: str | None = None,
    end: str | None = None,
    month: str | None = None,
    last: str | None = None,
    zone: tzinfo,
    branch: str | None = None,
    now: datetime,
) -> tuple[Period, tuple[str, ...]]:
    """The period people ask for (see :func:`asked_period`), and the notes saying what
    was assumed to read it."""
    asked = asked_period(start=start, end=end, month=month, last=last, zone=zone, now=now)
    return Period(asked.start, asked.end, zone, branch or None), asked.notes


def _month(text: str) -> date:
    try:
        first = date.fromisoformat(f"{text.strip()}-01")
    except ValueError:
        raise InvalidInput(
            f"`month`: {text!r} is not a month such as 2026-11", field="month"
        ) from None
    if not EARLIEST.year <= first.year < LATEST.year:
        raise InvalidInput(
            f"`month` {text.strip()} lies outside the years {EARLIEST.year} to {LATEST.year - 1}",
            field="month",
        )
    return first


def midnight(day: date, zone: tzinfo) -> datetime:
    """The instant ``day`` begins in ``zone``, in UTC."""
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def week_of(moment: datetime, zone: tzinfo) -> date:
    """The Monday, in ``zone``, of the week ``moment`` falls in."""
    day = local(moment, zone).date()
    return day - timedelta(days=day.weekday())


def day_of(moment: datetime, zone: tzinfo) -> date:
    """The date ``moment`` falls on in ``zone``."""
    return local(moment, zone).date()


def described(start: datetime, end: datetime, zone: tzinfo) -> str:
    """``2026-11-01 to 2026-11-30 (Asia/Shanghai)``: a period as its local days, the
    last day included when the period ends at a midnight."""
    first = local(start, zone)
    final = local(end, zone)
    if final.time() == time():
        shown_end = f"{final.date() - timedelta(days=1)}"
    else:
        shown_end = f"{final:%Y-%m-%d %H:%M}"
    shown_start = f"{first.date()}" if first.time() == time() else f"{first:%Y-%m-%d %H:%M}"
    return f"{shown_start} to {shown_end} ({zone_name(zone)})"
