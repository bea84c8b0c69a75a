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

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

TIMER_EVENTS = {
    "appointment": "appointment_missed",
    "routed": "route_overdue",
    "part_arrival": "part_overdue",
    "contact": "contact_due",
}
"""Each timer and the event the engine records when it runs out."""


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
    ) -> datetime | None:
        """When the timer runs out, or ``None`` when nothing says (no such duration)."""
        if self.due_field is not None:
            value = data.get(self.due_field)
            return parse_due(value) if isinstance(value, str) else None
        chosen = self.key if self.key is not None else data.get(self.key_field or "")
        after = durations.get(self.name, {}).get(str(chosen))
        return None if after is None else at + after


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
