"""SLA policies: which clocks run in which states, their targets, calendars and ladder.

A policy is a pure, immutable value built from a JSON-ready *document* (the form it
is configured in and stored in, so that a case's deadlines can always be re-derived
with the policy it ran under). Its ``version`` is a digest of the document: equal
documents, equal versions. Every error names the key that is wrong.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from casework.machines.calendars import (
    WEEKDAYS,
    AroundTheClock,
    BusinessHours,
    Calendar,
    parse_period,
)
from casework.machines.timers import SAME_DAY, TIMER_EVENTS

PROFILE_FIELDS = ("priority", "category", "channel", "branch", "tier")
"""Case fields a clock's target may depend on (``by_priority`` ... ``by_tier`` tables;
``tier`` is the customer tier attribute). Where several apply, the shortest target
wins: a case gets the strictest promise any of its fields carries."""


class PolicyError(ValueError):
    """A policy document is invalid; ``key`` is the dotted path of the bad value."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


@dataclass(frozen=True)
class ClockSpec:
    """An SLA clock: it runs while the case is in one of ``runs_in``.

    Leaving those states ends the clock's cycle; entering them again starts a new one.
    Events can do the same without a change of state: one of ``stops_on`` ends the
    running cycle (the agent called back), one of ``starts_on`` starts a new cycle
    if the clock is stopped and the case is in one of ``runs_in``.
    ``within`` is the target in working time of ``calendar``; ``overrides`` map a case
    field and value to another target (a regulator's complaint gets a shorter one);
    ``branch_calendars`` map a branch to the calendar its cases' cycles run on instead
    (each branch its own zone, working hours and holidays).
    """

    name: str
    runs_in: frozenset[str]
    within: timedelta
    calendar: str = "24x7"
    warn_at: float | None = 0.75
    overrides: Mapping[tuple[str, str], timedelta] = field(default_factory=dict)
    starts_on: frozenset[str] = frozenset()
    stops_on: frozenset[str] = frozenset()
    branch_calendars: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_targets", {})

    def calendar_for(self, profile: Mapping[str, Any]) -> str:
        """The calendar a new cycle of a case runs on: its branch's, else ``calendar``."""
        if not self.branch_calendars:
            return self.calendar
        return self.branch_calendars.get(str(profile.get("branch")), self.calendar)

    def target_for(self, profile: Mapping[str, Any]) -> timedelta:
        """The target for a case: the shortest override that applies, else ``within``."""
        key = tuple(map(profile.get, PROFILE_FIELDS))
        cache: dict[tuple[Any, ...], timedelta] = self._targets  # type: ignore[attr-defined]
        found = cache.get(key)
        if found is None:
            applying = [
                within
                for (name, value), within in self.overrides.items()
                if profile.get(name) == value
            ]
            found = cache[key] = min(applying, default=self.within)
        return found


@dataclass(frozen=True)
class LadderLevel:
    """A rung of the escalation ladder, reached ``after`` this much overdue working time."""

    level: int
    name: str
    after: timedelta
    recipients: Mapping[str, tuple[str, ...]]

    def recipients_for(self, branch: str | None) -> tuple[str, ...]:
        """Who hears of a case of ``branch``: its own list, else the default ``*`` one."""
        return self.recipients.get(branch or "*") or self.recipients.get("*", ())


@dataclass(frozen=True)
class SlaPolicy:
    """Clocks, calendars and the escalation ladder, as one versioned value."""

    name: str
    clocks: tuple[ClockSpec, ...]
    calendars: Mapping[str, Calendar]
    ladder: tuple[LadderLevel, ...]
    document: Mapping[str, Any] = field(repr=False, compare=False)
    timers: Mapping[str, Mapping[str, timedelta]] = field(default_factory=dict, compare=False)
    """Durations of timers set for a while (``routed``, ``contact``), by key."""
    clock_events: frozenset[str] = field(init=False, repr=False, compare=False)
    """Events that start or stop a clock without a change of state."""
    moves: dict[tuple[str, tuple[tuple[str, bool], ...]], tuple[int, ...]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )
    """The clocks entering a state moves, by the state and the clocks' names and
    running flags (:func:`casework.machines.clocks.enter_state` fills it)."""

    @property
    def version(self) -> str:
        """A digest of the policy's document."""
        cached: str | None = self.__dict__.get("_version")
        if cached is None:
            cached = policy_version(self.document)
            object.__setattr__(self, "_version", cached)
        return cached

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {c.name: c for c in self.clocks})
        object.__setattr__(self, "_running_in", {})
        events = frozenset().union(*(c.starts_on | c.stops_on for c in self.clocks))
        object.__setattr__(self, "clock_events", events)

    def running_in(self, state: str) -> frozenset[str]:
        """The names of the clocks that run while a case is in ``state``."""
        cache: dict[str, frozenset[str]] = self._running_in  # type: ignore[attr-defined]
        found = cache.get(state)
        if found is None:
            found = cache[state] = frozenset(c.name for c in self.clocks if state in c.runs_in)
        return found

    def clock(self, name: str) -> ClockSpec:
        """The clock of that name."""
        by_name: dict[str, ClockSpec] = self._by_name  # type: ignore[attr-defined]
        return by_name[name]

    def calendar_named(self, name: str, clock: str) -> Calendar:
        """The calendar ``name`` (a branch's), or ``clock``'s own for ``""``."""
        by_name: dict[str, ClockSpec] = self._by_name  # type: ignore[attr-defined]
        return self.calendars[name or by_name[clock].calendar]

    def day_calendar(self, profile: Mapping[str, Any]) -> Calendar:
        """The calendar a case's working day is read on (a :data:`SAME_DAY` timer): the
        first calendar of working hours its clocks run on for its branch, else around the
        clock."""
        for clock in self.clocks:
            name = clock.calendar_for(profile)
            if name != "24x7":
                return self.calendars[name]
        return self.calendars["24x7"]


def policy_version(document: Mapping[str, Any]) -> str:
    """A 16-hex-digit digest of a policy document."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


DEFAULT_DOCUMENT: dict[str, Any] = {
    "name": "standard",
    "calendars": {},
    "clocks": {
        "first_response": {
            "runs_in": ["received"],
            "within_s": 24 * 3600,
            "warn_at": 0.75,
            "calendar": "24x7",
            "by_channel": {"regulator": 4 * 3600, "media": 4 * 3600},
            "by_priority": {"urgent": 8 * 3600},
        },
        "resolution": {
            "runs_in": ["received", "apologised", "needs_confirmed"],
            "within_s": 72 * 3600,
            "warn_at": 0.75,
            "calendar": "24x7",
            "by_channel": {"regulator": 24 * 3600, "media": 24 * 3600},
        },
        "follow_up": {
            "runs_in": ["resolved"],
            "within_s": 48 * 3600,
            "warn_at": 0.75,
            "calendar": "24x7",
        },
    },
    "ladder": [
        {"level": 1, "name": "store supervisor", "after_s": 0,
         "recipients": {"*": ["store-supervisor@casework.invalid"]}},
        {"level": 2, "name": "branch customer service", "after_s": 4 * 3600,
         "recipients": {"*": ["branch-service@casework.invalid"]}},
        {"level": 3, "name": "headquarters", "after_s": 12 * 3600,
         "recipients": {"*": ["hq-complaints@casework.invalid"]}},
    ],
}  # fmt: skip
"""The built-in policy: 24 hours to the first response (4 for a regulator or the media)."""


def policy_from_document(
    document: Mapping[str, Any], states: Sequence[str] | None, events: Sequence[str] = ()
) -> SlaPolicy:
    """Build and check a policy against the machine's ``states`` (and ``events``, for
    ``starts_on``/``stops_on``, when given). ``states=None`` checks the document's own
    consistency alone: for a stored policy, checked against its machine when it was
    configured and bound to its cases by its digest."""
    name = _text(document.get("name", "standard"), "name")
    calendars: dict[str, Calendar] = {"24x7": AroundTheClock()}
    for cal_name, body in _table(document.get("calendars", {}), "calendars").items():
        calendars[cal_name] = _calendar(cal_name, _table(body, f"calendars.{cal_name}"))
    clocks = tuple(
        _clock(clock_name, _table(body, f"clocks.{clock_name}"), calendars, states, events)
        for clock_name, body in _table(document.get("clocks", {}), "clocks").items()
    )
    if not clocks:
        raise PolicyError("clocks", "at least one clock is needed")
    taken = [c.name for c in clocks if c.name in TIMER_EVENTS]
    if taken:
        raise PolicyError(f"clocks.{taken[0]}", "is the name of a timer; name the clock otherwise")
    ladder = _ladder(document.get("ladder", []))
    timers = _timers(document.get("timers", {}))
    return SlaPolicy(name, clocks, calendars, ladder, document, timers)


_DUE_BY_DATA = ("appointment", "repair")
"""Timers whose due time their event's data gives: no duration to configure."""


def _timers(value: Any) -> dict[str, dict[str, timedelta]]:
    """``timers``: for each timer, its duration by key (the unit routed to, the stage of
    the contact plan), in seconds, or ``"same_day"``: by the end of the working day
    (:data:`casework.machines.timers.SAME_DAY`)."""
    found: dict[str, dict[str, timedelta]] = {}
    for name, body in _table(value, "timers").items():
        if name not in TIMER_EVENTS or name in _DUE_BY_DATA:
            known = ", ".join(t for t in TIMER_EVENTS if t not in _DUE_BY_DATA)
            raise PolicyError(f"timers.{name}", f"unknown timer; known: {known}")
        found[name] = {
            str(key): SAME_DAY
            if seconds == "same_day"
            else _seconds(seconds, f"timers.{name}.{key}")
            for key, seconds in _table(body, f"timers.{name}").items()
        }
    return found


def _table(value: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PolicyError(key, "must be a table")
    return value


def _text(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PolicyError(key, "must be a non-empty text")
    return value


def _seconds(value: Any, key: str, *, zero_ok: bool = False) -> timedelta:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PolicyError(key, f"must be a number of seconds, got {value!r}")
    if value < 0 or (value == 0 and not zero_ok):
        raise PolicyError(key, f"must be {'zero or more' if zero_ok else 'more than zero'}")
    return timedelta(seconds=value)


def _dates(value: Any, key: str) -> frozenset[date]:
    if not isinstance(value, list):
        raise PolicyError(key, "must be a list of dates like 2026-10-01")
    try:
        return frozenset(date.fromisoformat(str(v)) for v in value)
    except ValueError as err:
        raise PolicyError(key, str(err)) from None


def _calendar(name: str, body: Mapping[str, Any], /) -> Calendar:
    key = f"calendars.{name}"
    zone = _text(body.get("timezone"), f"{key}.timezone")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise PolicyError(f"{key}.timezone", f"unknown time zone {zone!r}") from None
    week: list[tuple[Any, ...]] = []
    for day in WEEKDAYS:
        periods = body.get(day, [])
        if not isinstance(periods, list):
            raise PolicyError(f"{key}.{day}", "must be a list of periods like 09:00-12:00")
        try:
            week.append(tuple(parse_period(str(p)) for p in periods))
        except ValueError as err:
            raise PolicyError(f"{key}.{day}", str(err)) from None
    unknown = set(body) - {*WEEKDAYS, "timezone", "holidays", "closed", "working"}
    if unknown:
        raise PolicyError(f"{key}.{sorted(unknown)[0]}", "unknown key")
    try:
        return BusinessHours(
            name=name,
            timezone=zone,
            week=tuple(week),
            holidays=_dates(body.get("holidays", []), f"{key}.holidays"),
            closed_days=_dates(body.get("closed", []), f"{key}.closed"),
            working_days=_dates(body.get("working", []), f"{key}.working"),
        )
    except ValueError as err:
        raise PolicyError(key, str(err)) from None


def _clock(
    name: str,
    body: Mapping[str, Any],
    calendars: Mapping[str, Calendar],
    states: Sequence[str] | None,
    events: Sequence[str],
) -> ClockSpec:
    key = f"clocks.{name}"
    runs_in = body.get("runs_in")
    if not isinstance(runs_in, list) or not runs_in:
        raise PolicyError(f"{key}.runs_in", "must list the states the clock runs in")
    for state in runs_in:
        if not isinstance(state, str):
            raise PolicyError(f"{key}.runs_in", "must list state names")
        if states is not None and state not in states:
            raise PolicyError(
                f"{key}.runs_in", f"unknown state {state!r}; states: {', '.join(states)}"
            )
    calendar = _known_calendar(body.get("calendar", "24x7"), calendars, f"{key}.calendar")
    warn_at = body.get("warn_at", 0.75)
    if warn_at is not None and (
        isinstance(warn_at, bool) or not isinstance(warn_at, int | float) or not 0 < warn_at < 1
    ):
        raise PolicyError(f"{key}.warn_at", "must be a fraction between 0 and 1, or absent")
    overrides: dict[tuple[str, str], timedelta] = {}
    for profile_field in PROFILE_FIELDS:
        table = _table(body.get(f"by_{profile_field}", {}), f"{key}.by_{profile_field}")
        for value, seconds in table.items():
            overrides[(profile_field, value)] = _seconds(
                seconds, f"{key}.by_{profile_field}.{value}"
            )
    branch_calendars = {
        branch: _known_calendar(name, calendars, f"{key}.calendar_by_branch.{branch}")
        for branch, name in _table(body.get("calendar_by_branch", {}),
                                   f"{key}.calendar_by_branch").items()
    }  # fmt: skip
    triggers: dict[str, frozenset[str]] = {}
    for key_name in ("starts_on", "stops_on"):
        listed = body.get(key_name, [])
        if not isinstance(listed, list) or not all(isinstance(e, str) for e in listed):
            raise PolicyError(f"{key}.{key_name}", "must list event names")
        strange = [e for e in listed if events and e not in events]
        if strange:
            raise PolicyError(
                f"{key}.{key_name}", f"unknown event {strange[0]!r}; events: {', '.join(events)}"
            )
        triggers[key_name] = frozenset(listed)
    unknown = set(body) - {
        "runs_in", "within_s", "calendar", "warn_at", "starts_on", "stops_on",
        "calendar_by_branch",
        *(f"by_{f}" for f in PROFILE_FIELDS),
    }  # fmt: skip
    if unknown:
        raise PolicyError(f"{key}.{sorted(unknown)[0]}", "unknown key")
    return ClockSpec(
        name=name,
        runs_in=frozenset(runs_in),
        within=_seconds(body.get("within_s"), f"{key}.within_s"),
        calendar=calendar,
        warn_at=None if warn_at is None else float(warn_at),
        overrides=overrides,
        starts_on=triggers["starts_on"],
        stops_on=triggers["stops_on"],
        branch_calendars=branch_calendars,
    )


def _known_calendar(name: Any, calendars: Mapping[str, Calendar], key: str) -> str:
    if name not in calendars:
        raise PolicyError(key, f"unknown calendar {name!r}; known: {', '.join(calendars)}")
    return str(name)


def _ladder(levels: Any) -> tuple[LadderLevel, ...]:
    if not isinstance(levels, list) or not levels:
        raise PolicyError("ladder", "must list at least one level")
    result: list[LadderLevel] = []
    for index, body in enumerate(levels):
        key = f"ladder[{index}]"
        body = _table(body, key)
        level = body.get("level")
        if level != index + 1:
            raise PolicyError(f"{key}.level", f"must be {index + 1} (levels count up from 1)")
        recipients = _table(body.get("recipients", {}), f"{key}.recipients")
        lists = {
            branch: tuple(_text(r, f"{key}.recipients.{branch}") for r in people)
            for branch, people in recipients.items()
            if isinstance(people, list)
        }
        if len(lists) != len(recipients) or not any(lists.values()):
            raise PolicyError(f"{key}.recipients", "must map branches (or *) to non-empty lists")
        if "*" not in lists:
            raise PolicyError(f"{key}.recipients", "needs a default list under '*'")
        after = _seconds(body.get("after_s", 0), f"{key}.after_s", zero_ok=True)
        if result and after <= result[-1].after:
            raise PolicyError(f"{key}.after_s", "must be later than the level before it")
        result.append(
            LadderLevel(
                level, _text(body.get("name", f"level {level}"), f"{key}.name"), after, lists
            )
        )
    return tuple(result)
