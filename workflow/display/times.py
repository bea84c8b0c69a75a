"""Local times for people: shown to the second in the display zone, typed as a date, a
naive time or a full ISO 8601 instant."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from casework.workflow.clock import aware, parse_instant
from casework.workflow.display.zones import offset_text, zone_name
from casework.workflow.errors import InvalidInput

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_OFFSET = re.compile(r"(Z|[+-]\d{2}(:?\d{2})?)$", re.IGNORECASE)


def local(moment: datetime, zone: tzinfo) -> datetime:
    """``moment`` in ``zone``, without microseconds."""
    return aware(moment, "time").astimezone(zone).replace(microsecond=0)


def local_text(moment: datetime | str, zone: tzinfo) -> str:
    """``2026-11-03 09:15:02``: the time in ``zone`` to the second (for table cells,
    whose header names the zone)."""
    if isinstance(moment, str):
        moment = parse_instant(moment, "time")
    return f"{local(moment, zone):%Y-%m-%d %H:%M:%S}"


def stamped(moment: datetime | str, zone: tzinfo) -> str:
    """``2026-11-03 09:15:02 +08:00``: a local time that says its offset."""
    if isinstance(moment, str):
        moment = parse_instant(moment, "time")
    shown = local(moment, zone)
    return f"{shown:%Y-%m-%d %H:%M:%S} {offset_text(shown)}"


@dataclass(frozen=True)
class Reading:
    """A time a person typed: the instant, and what was assumed to get it (if anything)."""

    moment: datetime
    assumed: str | None = None


def read_time(text: str, what: str, zone: tzinfo, *, end_of_day: bool = False) -> Reading:
    """A time typed by a person: an ISO 8601 instant with an offset as it is; a naive
    time or a date in ``zone`` (a date is its midnight, or the next midnight when
    ``end_of_day``, for the end of a period), saying so in :attr:`Reading.assumed`."""
    cleaned = text.strip()
    if _OFFSET.search(cleaned) and not _DATE.fullmatch(cleaned):
        return Reading(parse_instant(cleaned, what))
    try:
        if _DATE.fullmatch(cleaned):
            day = date.fromisoformat(cleaned)
            naive = datetime.combine(day + timedelta(days=1 if end_of_day else 0), time())
        else:
            naive = datetime.fromisoformat(cleaned)
    except OverflowError:
        raise InvalidInput(
            f"{what} {cleaned} lies outside the years 1900 to 8999", field=what
        ) from None
    except ValueError:
        raise InvalidInput(
            f"{what}: {text!r} is not a date or time (for example 2026-11-01, "
            "2026-11-23 09:30 or 2026-11-23T09:30:00+08:00)",
            field=what,
        ) from None
    moment = aware(naive.replace(tzinfo=zone), what)
    shown = local(moment, zone)
    through = " (through the end of that day)" if end_of_day and _DATE.fullmatch(cleaned) else ""
    note = (
        f"{what} {cleaned} read as {shown:%Y-%m-%d %H:%M:%S} in {zone_name(zone)} "
        f"({offset_text(shown)}){through}"
    )
    return Reading(moment, note)
