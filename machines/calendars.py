"""Business calendars: when an SLA clock runs. Pure values; no I/O, no wall clock.

:class:`AroundTheClock` counts every second. :class:`BusinessHours` counts only the
working periods of each local day in an IANA time zone (several per day, for a lunch
break), skipping public holidays and one-off closed days and adding one-off working
days. Arithmetic happens on real (UTC) instants, so a day on which the clocks change
has exactly the working time its local periods span.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Protocol
from zoneinfo import ZoneInfo

MAX_DAYS = 3660
"""How far arithmetic walks before deciding a calendar never opens (ten years)."""
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ZERO = timedelta(0)


class Calendar(Protocol):
    """Counts working time between instants and finds when an amount of it has passed."""

    @property
    def name(self) -> str:
        """The calendar's name in its policy."""
        ...

    @property
    def version(self) -> str:
        """A short digest of the calendar's definition: equal definitions, equal versions."""
        ...

    def add(self, start: datetime, work: timedelta) -> datetime:
        """The instant at which ``work`` of working time has passed since ``start``."""
        ...

    def subtract(self, end: datetime, work: timedelta) -> datetime:
        """The latest instant from which ``work`` of working time ends at ``end``."""
        ...

    def between(self, start: datetime, end: datetime) -> timedelta:
        """The working time from ``start`` to ``end`` (zero if ``end`` is not later)."""
        ...

    def is_open(self, moment: datetime) -> bool:
        """Whether working time runs at ``moment``."""
        ...

    def closed_spans(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """The closed stretches between ``start`` and ``end``, for explanations."""
        ...

    def opens_at(self, moment: datetime) -> datetime:
        """``moment`` if working time runs then, else the instant it next starts."""
        ...

    def describe(self) -> dict[str, object]:
        """The definition as JSON-ready data."""
        ...


def _digest(definition: Mapping[str, object]) -> str:
    text = json.dumps(definition, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class AroundTheClock:
    """Every second counts: the default calendar."""

    name: str = "24x7"

    @property
    def version(self) -> str:
        """Digest of the definition."""
        return _digest(self.describe())

    def add(self, start: datetime, work: timedelta) -> datetime:
        """``start + work``."""
        return start + work

    def subtract(self, end: datetime, work: timedelta) -> datetime:
        """``end - work``."""
        return end - work

    def between(self, start: datetime, end: datetime) -> timedelta:
        """``end - start``, never negative."""
        span = end - start  # not max(): every clock stopped in a verification comes here
        return span if span > ZERO else ZERO

    def is_open(self, moment: datetime) -> bool:
        """Always."""
        return True

    def closed_spans(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """None."""
        return []

    def opens_at(self, moment: datetime) -> datetime:
        """``moment``: it is always open."""
        return moment

    def describe(self) -> dict[str, object]:
        """The definition as data."""
        return {"kind": "24x7", "name": self.name}


@dataclass(frozen=True)
class Period:
    """A working period of a local day, ``start`` to ``end`` (``end`` None: midnight)."""

    start: time
    end: time | None

    def __post_init__(self) -> None:
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"period {self} ends before it starts")

    def __str__(self) -> str:
        end = "24:00" if self.end is None else self.end.strftime("%H:%M")
        return f"{self.start.strftime('%H:%M')}-{end}"


@dataclass(frozen=True)
class BusinessHours:
    """Working periods per weekday in a time zone, minus holidays and closed days.

    ``week`` holds the periods of Monday to Sunday. ``working_days`` are one-off days
    that work (with ``workday``'s periods) although their weekday does not, such as
    China's weekend days that make up for a long holiday.
    """

    name: str
    timezone: str
    week: tuple[tuple[Period, ...], ...]
    holidays: frozenset[date] = frozenset()
    closed_days: frozenset[date] = frozenset()
    working_days: frozenset[date] = frozenset()
    zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.week) != 7:
            raise ValueError("week needs the periods of 7 days, Monday first")
        ordered_week = tuple(tuple(sorted(p, key=lambda x: x.start)) for p in self.week)
        for day, ordered in zip(WEEKDAYS, ordered_week, strict=True):
            for first, second in pairwise(ordered):
                if first.end is None or first.end > second.start:
                    raise ValueError(f"{day}: periods {first} and {second} overlap")
        if not any(self.week):
            raise ValueError("the week has no working period")
        object.__setattr__(
            self, "week", tuple(tuple(sorted(p, key=lambda x: x.start)) for p in self.week)
        )
        object.__setattr__(self, "zone", ZoneInfo(self.timezone))

    @property
    def workday(self) -> tuple[Period, ...]:
        """The periods a one-off working day gets: those of the first working weekday."""
        return next(periods for periods in self.week if periods)

    @property
    def version(self) -> str:
        """Digest of the definition."""
        return _digest(self.describe())

    def describe(self) -> dict[str, object]:
        """The definition as data."""
        return {
            "kind": "business_hours",
            "name": self.name,
            "timezone": self.timezone,
            "week": {d: [str(p) for p in ps] for d, ps in zip(WEEKDAYS, self.week, strict=True)},
            "holidays": sorted(d.isoformat() for d in self.holidays),
            "closed_days": sorted(d.isoformat() for d in self.closed_days),
            "working_days": sorted(d.isoformat() for d in self.working_days),
        }

    def periods_on(self, day: date) -> tuple[Period, ...]:
        """The working periods of a local date."""
        if day in self.closed_days:
            return ()
        if day in self.working_days:
            return self.week[day.weekday()] or self.workday
        if day in self.holidays:
            return ()
        return self.week[day.weekday()]

    def intervals_on(self, day: date) -> Iterator[tuple[datetime, datetime]]:
        """The working intervals of a local date as UTC instants, in order.

        A local time the clocks skip (02:30 on the night they spring forward) stands for
        the instant they jump; a period wholly inside the skipped hour has no working
        time. A time they repeat means its first occurrence.
        """
        for period in self.periods_on(day):
            start = self._instant(day, period.start)
            if period.end is None:
                end = self._instant(day + timedelta(days=1), time(0))
            else:
                end = self._instant(day, period.end)
            if start < end:
                yield start, end

    def _instant(self, day: date, wall: time) -> datetime:
        """The first UTC instant at which the local clock shows ``wall`` on ``day`` or later."""
        local = datetime.combine(day, wall, tzinfo=self.zone)
        instant = local.astimezone(UTC)
        naive = local.replace(tzinfo=None)
        if instant.astimezone(self.zone).replace(tzinfo=None) == naive:
            return instant
        # Skipped: find the jump, the first whole second whose local time is past ``wall``.
        low = int(local.replace(fold=1).astimezone(UTC).timestamp())
        high = int(instant.timestamp())
        while high - low > 1:
            middle = (low + high) // 2
            shown = datetime.fromtimestamp(middle, self.zone).replace(tzinfo=None)
            low, high = (low, middle) if shown >= naive else (middle, high)
        return datetime.fromtimestamp(high, UTC)

    def _local_day(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    def _forward(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        day = self._local_day(start)
        for offset in range(MAX_DAYS):
            for a, b in self.intervals_on(day + timedelta(days=offset)):
                if b > start:
                    yield max(a, start), b
        raise ValueError(f"calendar {self.name} has no working time within {MAX_DAYS} days")

    def opens_at(self, moment: datetime) -> datetime:
        """``moment`` if open then, else when the calendar next opens."""
        return next(self._forward(moment))[0]

    def _backward(self, end: datetime) -> Iterator[tuple[datetime, datetime]]:
        day = self._local_day(end)
        for offset in range(MAX_DAYS):
            for a, b in reversed(list(self.intervals_on(day - timedelta(days=offset)))):
                if a < end:
                    yield a, min(b, end)
        raise ValueError(f"calendar {self.name} has no working time within {MAX_DAYS} days")

    def add(self, start: datetime, work: timedelta) -> datetime:
        """Walk the working intervals forward until ``work`` has passed."""
        remaining = work
        for a, b in self._forward(start):
            if b - a >= remaining:
                return a + remaining
            remaining -= b - a
        raise AssertionError("unreachable")  # pragma: no cover

    def subtract(self, end: datetime, work: timedelta) -> datetime:
        """Walk the working intervals backward until ``work`` has passed."""
        remaining = work
        for a, b in self._backward(end):
            if b - a >= remaining:
                return b - remaining
            remaining -= b - a
        raise AssertionError("unreachable")  # pragma: no cover

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Sum the overlaps of the working intervals with ``[start, end)``."""
        total = ZERO
        if end <= start:
            return total
        day, last = self._local_day(start), self._local_day(end)
        while day <= last:
            for a, b in self.intervals_on(day):
                overlap = min(b, end) - max(a, start)
                if overlap > ZERO:
                    total += overlap
            day += timedelta(days=1)
        return total

    def is_open(self, moment: datetime) -> bool:
        """Whether ``moment`` lies inside a working interval (its start included)."""
        return any(a <= moment < b for a, b in self.intervals_on(self._local_day(moment)))

    def closed_spans(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """The gaps between working intervals within ``[start, end]``."""
        spans: list[tuple[datetime, datetime]] = []
        cursor = start
        day, last = self._local_day(start), self._local_day(end)
        while day <= last:
            for a, b in self.intervals_on(day):
                if a >= end:
                    break
                if a > cursor:
                    spans.append((cursor, a))
                cursor = max(cursor, b)
            day += timedelta(days=1)
        if cursor < end:
            spans.append((cursor, end))
        return spans


def parse_period(text: str) -> Period:
    """``"09:00-12:00"`` into a :class:`Period` (``24:00`` for midnight at the end)."""
    try:
        start_text, end_text = text.split("-")
        start = time.fromisoformat(start_text.strip())
        end = None if end_text.strip() == "24:00" else time.fromisoformat(end_text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a period like 09:00-12:00") from None
    return Period(start, end)


def china_holidays(years: Sequence[int]) -> tuple[frozenset[date], frozenset[date]]:
    """China's public holidays and its make-up weekend working days for ``years``."""
    import holidays

    table = holidays.country_holidays("CN", years=list(years))
    return frozenset(table), frozenset(getattr(table, "weekend_workdays", ()))
