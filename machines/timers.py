"""Timers: deadlines an event sets on a case, apart from the SLA clocks.

A booked visit must start by the end of its window; a complaint routed to a unit must
be answered within that unit's time; a part promised for a day must arrive by then;
while a case waits on a part the owner must call the customer. Each is a timer:
set by an event (its due time from the event's data, or a duration the SLA policy
gives), ended by the events that satisfy it, and when it runs out the engine records
its event (``appointment_missed`` and the like) once, as it records an escalation.

Pure, like the clocks: timers are folded from the history and the deadlines they imply
are re-derived from the fold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from casework.machines.calendars import BusinessHours, Calendar

TIMER_EVENTS = {
    "appointment": "appointment_missed",
    "routed": "route_overdue",
    "part_arrival": "part_overdue",
    "contact": "contact_due",
    "repair": "repair_overdue",
}
"""Each timer and the event the engine records when it runs out."""

SAME_DAY = timedelta(0)
"""The duration (``"same_day"`` in a policy's ``timers``) that stands for "by the end of
the working day": the end of the last working period of the day the event happened on,
or of the next working day when it happened after hours (a policy refuses a real
duration of zero, so the two never mix)."""
DAY_ZONE = "Asia/Shanghai"
"""Where a day ends for a case whose calendars run around the clock."""


class Timer(NamedTuple):
    """One armed timer of a case: its name, which time it was set (``cycle``), when it
    runs out, who answers for it (a partner, if any) and why it was set."""

    name: str
    cycle: int
    """The number of the event that set it."""
    due_at: datetime
    party: str | None = None
    purpose: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (stored with the clocks on the case row)."""
        return {
            "name": self.name,
            "cycle": self.cycle,
            "due_at": self.due_at.isoformat(timespec="microseconds"),
            "party": self.party,
            "purpose": self.purpose,
        }


def timer_from_json(document: Mapping[str, Any]) -> Timer:
    """The inverse of :meth:`Timer.to_json`."""
    return Timer(
        document["name"],
        document["cycle"],
        datetime.fromisoformat(document["due_at"]),
        document.get("party"),
        document.get("purpose"),
    )


@dataclass(frozen=True)
class TimerSpec:
    """How an event sets a timer.

    The due time is the instant in the event's data field ``due_field`` (a booked
    window's ``to``), or the event's time plus the policy's duration for this timer
    and key: the value of the data field ``key_field`` (the unit a case is routed
    to) or the fixed ``key`` (a stage of the contact plan). ``when`` lists data values
    the event must carry for the timer to be set (``reason=part``); ``party_field``
    names the partner answerable for it.
    """

    name: str
    due_field: str | None = None
    key_field: str | None = None
    key: str | None = None
    when: Mapping[str, str] = field(default_factory=dict)
    party_field: str | None = "partner"

    def __post_init__(self) -> None:
        if self.name not in TIMER_EVENTS:
            raise ValueError(f"unknown timer {self.name!r}; known: {', '.join(TIMER_EVENTS)}")
        if (self.due_field is None) == (self.key_field is None and self.key is None):
            raise ValueError(f"timer {self.name}: give due_field, or key_field or key")

    def applies(self, data: Mapping[str, Any]) -> bool:
        """Whether the event's data asks for this timer."""
        return all(str(data.get(k)).lower() == v for k, v in self.when.items())

    def due(
        self,
        data: Mapping[str, Any],
        at: datetime,
        durations: Mapping[str, Mapping[str, timedelta]],
        day_end: Callable[[datetime], datetime] | None = None,
    ) -> datetime | None:
        """When the timer runs out, or ``None`` when nothing says (no such duration).
        ``day_end`` gives the end of the working day an instant falls on, for a
        duration of :data:`SAME_DAY` (the end of the day around the clock without it)."""
        if self.due_field is not None:
            value = data.get(self.due_field)
            return parse_due(value) if isinstance(value, str) else None
        chosen = self.key if self.key is not None else data.get(self.key_field or "")
        after = durations.get(self.name, {}).get(str(chosen))
        if after == SAME_DAY:
            return (day_end or working_day_end)(at)
        return None if after is None else at + after


def working_day_end(at: datetime, calendar: Calendar | None = None) -> datetime:
    """The end of the working day ``at`` falls on in ``calendar``: the end of that local
    day's last working period, or of the next working day's when ``at`` is after hours
    or on a closed day; around the clock, the next midnight in :data:`DAY_ZONE`."""
    if isinstance(calendar, BusinessHours):
        opens = calendar.opens_at(at)
        intervals = list(calendar.intervals_on(opens.astimezone(calendar.zone).date()))
        return intervals[-1][1]
    local = at.astimezone(ZoneInfo(DAY_ZONE))
    midnight = datetime.combine(local.date() + timedelta(days=1), time(), tzinfo=local.tzinfo)
    return midnight.astimezone(UTC)


def parse_due(text: str) -> datetime | None:
    """An ISO 8601 instant with its offset, or ``None``."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return None if moment.tzinfo is None else moment


def arm(
    timers: tuple[Timer, ...],
    spec: TimerSpec,
    due_at: datetime,
    data: Mapping[str, Any],
    seq: int,
) -> tuple[Timer, ...]:
    """The timers with ``spec``'s set (again) to run out at ``due_at`` by the event
    numbered ``seq``, which is its cycle: unique in the case, so a timer set again
    after one ended never takes the place of its deadline. A timer of that name
    already armed is replaced."""
    cycle = seq
    party = data.get(spec.party_field) if spec.party_field else None
    purpose = spec.key if spec.key is not None else None
    timer = Timer(spec.name, cycle, due_at, str(party) if party else None, purpose)
    return (*(t for t in timers if t.name != spec.name), timer)


def disarm(timers: tuple[Timer, ...], names: frozenset[str]) -> tuple[Timer, ...]:
    """The timers without those named."""
    return tuple(t for t in timers if t.name not in names)


def fired(timers: tuple[Timer, ...], name: str, cycle: int) -> tuple[Timer, ...]:
    """The timers without the one that ran out."""
    return tuple(t for t in timers if (t.name, t.cycle) != (name, cycle))


FIRED_TIMER_DATA = "needs data timer=<name> and cycle=<number>"
