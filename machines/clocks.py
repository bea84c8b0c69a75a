"""SLA clocks folded through a case's history, and the deadlines they imply.

Pure: every function takes the instant it acts at. A clock runs while the case is in
one of its ``runs_in`` states and is not waiting on the customer or a part; its
working time accrues on its calendar. The deadlines a case should have pending are a
function of its folded clocks alone, so they can always be re-derived from history.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from functools import partial
from operator import itemgetter
from typing import Any, NamedTuple

from casework.machines.sla import ClockSpec, SlaPolicy
from casework.machines.timers import Timer, timer_from_json

ZERO = timedelta(0)
WARNING = 0
"""The ``level`` of a warning deadline; escalation levels count from 1 (the breach)."""
BREACH = 1
"""The ``level`` of the first rung of the ladder: the target itself has run out."""


def level_kind(level: int) -> str:
    """What a fired deadline of ``level`` is, and the kind of its mail: ``warning`` or
    ``escalation``."""
    return "warning" if level == WARNING else "escalation"


def level_label(level: int) -> str:
    """A deadline of ``level`` as a case shows it: ``warning``, ``breach`` or
    ``escalation level N``."""
    if level == WARNING:
        return "warning"
    return "breach" if level == BREACH else f"escalation level {level}"


def level_event(level: int) -> str:
    """The event a fired deadline of ``level`` records: ``sla_warning`` or ``escalate``."""
    return "sla_warning" if level == WARNING else "escalate"


def level_key(level: int) -> str:
    """A level as settings name it: ``warning`` or the rung's number."""
    return "warning" if level == WARNING else str(level)


BREACHED = "breached"
"""The :meth:`ClockState.outcome` of a cycle that used more than its target."""


class ClockState(NamedTuple):
    """One clock of one case: its current cycle and how much working time it has used.

    A named tuple rather than a dataclass: verification builds millions of them.
    """

    name: str
    cycle: int = 0
    running: bool = False
    elapsed: timedelta = ZERO
    counting_since: datetime | None = None
    target: timedelta = ZERO
    warned: bool = False
    level: int = 0
    calendar: str = ""
    """The calendar this cycle runs on where the case's branch has its own; ``""``: the
    clock's (so rows written before branches had calendars read as they always have)."""

    def used_at(self, moment: datetime, policy: SlaPolicy) -> timedelta:
        """Working time used by ``moment`` in this cycle."""
        if self.counting_since is None:
            return self.elapsed
        calendar = policy.calendar_named(self.calendar, self.name)
        return self.elapsed + calendar.between(self.counting_since, moment)

    def target_at(self, policy: SlaPolicy) -> datetime | None:
        """When this cycle reaches its target if it keeps counting (``None``: paused or
        stopped)."""
        if self.counting_since is None:
            return None
        calendar = policy.calendar_named(self.calendar, self.name)
        return calendar.add(self.counting_since, self.target - self.elapsed)

    def outcome(self, moment: datetime, policy: SlaPolicy | None) -> str | None:
        """How this cycle stands at ``moment``, from its times alone: ``met`` (stopped with
        the working time used within the target), ``breached`` (more than the target
        used, stopped or not), ``open`` (running within it); ``None`` before a first cycle.

        Whether a warning or escalation deadline fired plays no part: a first response
        thirty hours after receipt breached a 24-hour target even if no worker ran.
        """
        if self.cycle == 0:
            return None
        used = self.used_at(moment, policy) if policy is not None else self.elapsed
        if used > self.target:
            return BREACHED
        return "open" if self.running else "met"

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (stored on the case row); ``calendar`` only where a branch's."""
        name, cycle, running, elapsed, since, target, warned, level, calendar = self
        document = {
            "name": name,
            "cycle": cycle,
            "running": running,
            "elapsed_us": elapsed // _MICROSECOND,
            "counting_since": None if since is None else since.isoformat(timespec="microseconds"),
            "target_us": target // _MICROSECOND,
            "warned": warned,
            "level": level,
        }
        if calendar:
            document["calendar"] = calendar
        return document


_MATCHED = ("name", "cycle", "running", "elapsed_us", "target_us", "warned", "level")


def _clock_matches(stored: Mapping[str, Any], clock: ClockState) -> bool:
    """Whether ``stored`` is ``clock.to_json()``, without building it (verification)."""
    since = clock.counting_since
    return (
        len(stored) == len(ClockState._fields) - (not clock.calendar)
        and stored.get("calendar", "") == clock.calendar
        and tuple(map(stored.get, _MATCHED))
        == (
            clock.name,
            clock.cycle,
            clock.running,
            _us(clock.elapsed),
            _us(clock.target),
            clock.warned,
            clock.level,
        )
        and stored.get("counting_since")
        == (None if since is None else since.isoformat(timespec="microseconds"))
    )


class SlaState(NamedTuple):
    """All clocks of a case, what it is waiting on (if anything) and its armed timers
    (:mod:`casework.machines.timers`).

    A named tuple, like :class:`ClockState`.
    """

    clocks: tuple[ClockState, ...] = ()
    waiting: str | None = None
    timers: tuple[Timer, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (stored on the case row); ``timers`` only when there are
        some, so the rows of cases without them read as they always have."""
        document: dict[str, Any] = {
            "waiting": self.waiting,
            "clocks": [c.to_json() for c in self.clocks],
        }
        if self.timers:
            document["timers"] = [t.to_json() for t in self.timers]
        return document

    def matches_json(self, stored: Mapping[str, Any]) -> bool:
        """Whether ``stored`` holds exactly these clocks (the ``to_json`` form), in any
        order: a policy read back from the database may list its clocks in another
        order than the one it was written in (PostgreSQL's ``jsonb`` sorts keys)."""
        clocks = stored.get("clocks")
        timers = stored.get("timers", [])
        if not (
            stored.get("waiting") == self.waiting
            and timers == [t.to_json() for t in self.timers]
            and isinstance(clocks, list)
            and len(clocks) == len(self.clocks)
            and all(isinstance(d, Mapping) for d in clocks)
        ):
            return False
        by_name = {d.get("name"): d for d in clocks}
        return len(by_name) == len(clocks) and all(
            c.name in by_name and _clock_matches(by_name[c.name], c) for c in self.clocks
        )


NO_CLOCKS = SlaState()
"""The clocks of a case without an SLA policy."""

_clock: Callable[[tuple[Any, ...]], ClockState] = partial(tuple.__new__, ClockState)
"""A clock from all its fields in order: without the Python ``__new__`` of a named
tuple, for the steps of a verification that build millions."""
_sla: Callable[[tuple[Any, ...]], SlaState] = partial(tuple.__new__, SlaState)
"""The same for a case's clocks."""


class Planned(NamedTuple):
    """A deadline a case should have pending: clock, cycle, level (0 = warning), due."""

    clock: str
    cycle: int
    level: int
    due_at: datetime

    @property
    def key(self) -> tuple[str, int, int]:
        """What identifies the deadline within its case."""
        return (self.clock, self.cycle, self.level)


_MICROSECOND = timedelta(microseconds=1)


def _us(delta: timedelta) -> int:
    return delta // _MICROSECOND


def start(policy: SlaPolicy, profile: Mapping[str, Any], state: str, at: datetime) -> SlaState:
    """The clocks of a case just opened in ``state`` at ``at``."""
    clocks = tuple(ClockState(spec.name) for spec in policy.clocks)
    return enter_state(policy, profile, SlaState(clocks), state, at)


def enter_state(
    policy: SlaPolicy, profile: Mapping[str, Any], sla: SlaState, state: str, at: datetime
) -> SlaState:
    """End the cycles of clocks that do not run in ``state``; start those that do.

    Which clocks move depends on the state and the clocks' names and running flags
    alone: it is decided once per policy and remembered (most steps move none, and
    ``sla`` itself is returned); only the time arithmetic is done per step."""
    key = (state, tuple(map(_SHAPE, sla.clocks)))
    moves = policy.moves.get(key)
    if moves is None:
        running_here = policy.running_in(state)
        shape = key[1]
        moves = policy.moves[key] = tuple(
            i for i, (name, running) in enumerate(shape) if (name in running_here) != running
        )
    if not moves:
        return sla
    clocks = list(sla.clocks)
    for index in moves:
        clock = clocks[index]
        clocks[index] = (
            _stopped(clock, at, policy)
            if clock.running
            else _new_cycle(policy.clock(clock.name), clock, profile, sla, at)
        )
    return SlaState(tuple(clocks), sla.waiting, sla.timers)


def counting_from(sla: SlaState, at: datetime) -> SlaState:
    """``sla`` just started (by :func:`start`) with its counting clocks counting from
    ``at`` instead: what :func:`start` gives at ``at`` (a new cycle's other fields do not
    depend on the instant)."""
    clocks = [c if c[4] is None else _clock((*c[:4], at, *c[5:])) for c in sla.clocks]
    return _sla((tuple(clocks), sla.waiting, sla.timers))


_SHAPE = itemgetter(0, 2)
"""A clock's name and whether it runs: all that decides which clocks entering a state
moves."""


def on_event(
    policy: SlaPolicy,
    profile: Mapping[str, Any],
    sla: SlaState,
    state: str,
    event: str,
    at: datetime,
) -> SlaState:
    """Apply a clock's ``stops_on`` and ``starts_on`` events (``sla`` itself where none
    moves: a second ``contact`` stops nothing the first did not, and nothing is stored)."""
    changed: list[ClockState] | None = None
    for index, clock in enumerate(sla.clocks):
        spec = policy.clock(clock.name)
        if clock.running and event in spec.stops_on:
            moved = _stopped(clock, at, policy)
        elif not clock.running and event in spec.starts_on and state in spec.runs_in:
            moved = _new_cycle(spec, clock, profile, sla, at)
        else:
            continue
        if changed is None:
            changed = list(sla.clocks)
        changed[index] = moved
    return sla if changed is None else _sla((tuple(changed), sla.waiting, sla.timers))


def _stopped(clock: ClockState, at: datetime, policy: SlaPolicy) -> ClockState:
    """``clock``'s cycle ended at ``at``, with the working time it used."""
    name, cycle, _, elapsed, since, target, warned, level, calendar = clock
    if since is not None:
        elapsed += policy.calendar_named(calendar, name).between(since, at)
    return _clock((name, cycle, False, elapsed, None, target, warned, level, calendar))


def _new_cycle(
    spec: ClockSpec, clock: ClockState, profile: Mapping[str, Any], sla: SlaState, at: datetime
) -> ClockState:
    """The next cycle of ``clock`` from ``at``: its target and calendar for the case."""
    since = None if sla.waiting else at
    return _clock((clock.name, clock.cycle + 1, True, ZERO, since, spec.target_for(profile),
                   False, 0, _branch_calendar(spec, profile)))  # fmt: skip


def _branch_calendar(spec: ClockSpec, profile: Mapping[str, Any]) -> str:
    """The case's branch's calendar for the clock, ``""`` where it is the clock's own."""
    name = spec.calendar_for(profile)
    return "" if name == spec.calendar else name


Moves = tuple[tuple[int, ClockState | None], ...]
"""What one step did to a case's clocks, by index: ``None`` ended the clock's cycle, a
clock began a new one (counting from the step's instant, which it is to be given)."""


def moves_of(policy: SlaPolicy, before: SlaState, after: SlaState, at: datetime) -> Moves | None:
    """The moves that turned ``before`` into ``after`` in a step at ``at``, where each
    clock was kept, stopped or began a new counting cycle and nothing waits or has a
    timer; ``None`` where the step did anything else. Which clocks a step moves depends
    on the states, the event and the clocks' running flags, never on the instants, so the
    moves found for one case are those of every case at the same point of the same
    history; only their arithmetic (:func:`moved`) is done per case."""
    if before.waiting or after.waiting or before.timers or after.timers:
        return None
    if len(before.clocks) != len(after.clocks):
        return None
    moves: list[tuple[int, ClockState | None]] = []
    for index, (old, new) in enumerate(zip(before.clocks, after.clocks, strict=True)):
        if new is old:
            continue
        if new == _stopped(old, at, policy):
            moves.append((index, None))
        elif new == _clock(
            (old.name, old.cycle + 1, True, ZERO, at, new.target, False, 0, new.calendar)
        ):
            moves.append((index, new))
        else:
            return None
    return tuple(moves)


def moved(policy: SlaPolicy, sla: SlaState, moves: Moves, at: datetime) -> SlaState:
    """``sla`` after the ``moves`` of a step at ``at`` (:func:`moves_of`)."""
    clocks = list(sla.clocks)
    for index, begun in moves:
        clocks[index] = (
            _stopped(clocks[index], at, policy)
            if begun is None
            else _clock((*begun[:4], at, *begun[5:]))
        )
    return _sla((tuple(clocks), sla.waiting, sla.timers))


def pause(policy: SlaPolicy, sla: SlaState, reason: str, at: datetime) -> SlaState:
    """Stop counting every running clock: the case waits on ``reason``."""
    clocks = tuple(
        c._replace(elapsed=c.used_at(at, policy), counting_since=None) if c.running else c
        for c in sla.clocks
    )
    return sla._replace(clocks=clocks, waiting=reason)


def resume(sla: SlaState, at: datetime) -> SlaState:
    """Count every running clock again from ``at``."""
    clocks = tuple(c._replace(counting_since=at) if c.running else c for c in sla.clocks)
    return sla._replace(clocks=clocks, waiting=None)


def mark_fired(sla: SlaState, clock: str, cycle: int, level: int) -> SlaState:
    """Record that a warning (level 0) or a ladder level of a clock's cycle fired."""
    clocks = tuple(
        (c._replace(warned=True) if level == WARNING else c._replace(level=max(c.level, level)))
        if c.name == clock and c.cycle == cycle
        else c
        for c in sla.clocks
    )
    return sla._replace(clocks=clocks)


def timer_deadlines(sla: SlaState) -> list[Planned]:
    """The deadline of every armed timer (level 0: it warns the owner)."""
    return [Planned(t.name, t.cycle, WARNING, t.due_at) for t in sla.timers]


def planned(policy: SlaPolicy, sla: SlaState) -> list[Planned]:
    """The next deadline of every counting clock: its warning, else its next level."""
    result = []
    for clock in sla.clocks:
        if not clock.running or clock.counting_since is None:
            continue
        spec = policy.clock(clock.name)
        calendar = policy.calendar_named(clock.calendar, clock.name)
        warn_point = None if spec.warn_at is None else clock.target * spec.warn_at
        if not clock.warned and clock.level == 0 and warn_point and clock.elapsed < warn_point:
            level, need = WARNING, warn_point
        elif clock.level < len(policy.ladder):
            level = clock.level + 1
            need = clock.target + policy.ladder[clock.level].after
        else:
            continue
        due = calendar.add(clock.counting_since, max(ZERO, need - clock.elapsed))
        result.append(Planned(clock.name, clock.cycle, level, due))
    return result


def rebase(
    old_policy: SlaPolicy,
    policy: SlaPolicy,
    profile: Mapping[str, Any],
    sla: SlaState,
    state: str,
    at: datetime,
) -> SlaState:
    """The clocks under a new policy: same-named clocks keep their cycle and the working
    time they used; their targets and calendars are taken from the new policy; new
    clocks start."""
    old = {c.name: c for c in sla.clocks}
    clocks = []
    for spec in policy.clocks:
        clock = old.get(spec.name, ClockState(spec.name))
        if clock.running:
            used = clock.used_at(at, old_policy)
            clock = clock._replace(
                elapsed=used,
                counting_since=None if sla.waiting else at,
                target=spec.target_for(profile),
                calendar=_branch_calendar(spec, profile),
            )
        clocks.append(clock)
    return enter_state(policy, profile, sla._replace(clocks=tuple(clocks)), state, at)


def state_from_json(document: Mapping[str, Any]) -> SlaState:
    """The inverse of :meth:`SlaState.to_json`."""
    clocks = tuple(map(_clock_from_json, document.get("clocks", ())))
    timers = tuple(timer_from_json(t) for t in document.get("timers", ()))
    return SlaState(clocks, document.get("waiting"), timers)


def _clock_from_json(c: Mapping[str, Any]) -> ClockState:
    """The inverse of :meth:`ClockState.to_json` (built positionally: a fire whose event a
    clock listens to reads every clock of the case's row)."""
    since = c["counting_since"]
    return ClockState(
        c["name"],
        c["cycle"],
        c["running"],
        timedelta(0, 0, c["elapsed_us"]),
        None if since is None else datetime.fromisoformat(since),
        timedelta(0, 0, c["target_us"]),
        c["warned"],
        c["level"],
        c.get("calendar", ""),
    )
