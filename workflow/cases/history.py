"""Rebuilding and checking cases from their events alone: replay and verification.

Both walk a case's events through :func:`casework.machines.step`, the same rule the engine
fires by, so a case row is exactly the fold of its history or verification says where
it is not.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from itertools import chain, groupby
from operator import itemgetter
from types import MappingProxyType
from typing import Any

import orjson

from casework.machines import (
    ENGINE_EVENTS,
    OPEN_EVENT,
    Allowed,
    CaseRules,
    Folded,
    MachineDefinition,
    opened,
    step,
)
from casework.machines.clocks import NO_CLOCKS, Moves, moved, moves_of
from casework.machines.definition import ATTACH_EVENT, CLASSIFICATION_FACT
from casework.machines.fold import with_sla
from casework.machines.sla import SlaPolicy
from casework.storage import GENESIS_HASH, canonical_event, iso
from casework.storage.chain import EVENT_FORMAT, PERSONAL_FORMAT, parse_json
from casework.storage.records import UNDECLARED_AS_EMPTY
from casework.storage.transition_sql import CASE_COLUMNS
from casework.workflow.privacy.commitments import is_commitment
from casework.workflow.results import Problem
from casework.workflow.transitions import pending_json, plan_of, profile_of, sla_json

OPENING_FIELDS = ("channel", "category", "summary", "customer", "contact", "branch", "priority")
"""Case columns that the opening event's data carries and the case row must equal."""


def fold_steps(rules: CaseRules, events: Iterable[Any]) -> Iterator[tuple[Any, Folded]]:
    """Each event with the fold of the history up to and including it.

    Events are trusted to be a verified chain; use :class:`CaseChecker` to check one.
    """
    folded: Folded | None = None
    for event in events:
        if folded is None:
            data = event.data
            folded = opened(rules, str(data["owner"]), event.occurred_at, data.get("policy"))
        else:
            _, folded = step(rules, folded, event.event, event.data, event.occurred_at)
        yield event, folded


def fold_history(
    rules: CaseRules, events: Iterable[Any], at: datetime | None = None
) -> Folded | None:
    """The fold of the events that occurred at or before ``at`` (all when ``None``).

    Returns ``None`` when no event had occurred by then (the case did not yet exist).
    """
    folded: Folded | None = None
    for event, after in fold_steps(rules, events):
        if at is not None and event.occurred_at > at:
            break
        folded = after
    return folded


_CASE = {name: index for index, name in enumerate(CASE_COLUMNS)}
NO_DATA: Mapping[str, Any] = MappingProxyType({})
"""The data of an event the fold does not read."""
_time = datetime.fromisoformat
_loads = orjson.loads


class CaseChecker:
    """Checks one case: its chain, each event against the machine, and its row.

    Rows are the raw tuples of :meth:`casework.storage.port.AuditStreams.snapshot`; times are
    their canonical text, which sorts in time order. ``with_clocks=False`` leaves the
    SLA clocks unfolded, for a check without a case row to compare them with; such a
    checker cannot :meth:`finish`.
    """

    def __init__(
        self,
        case_id: str,
        definition: MachineDefinition | None,
        policies: Mapping[str, SlaPolicy] | None = None,
        *,
        with_clocks: bool = True,
        shared: SharedRules | None = None,
        attached: list[tuple[Any, ...]] | None = None,
    ) -> None:
        self.case_id = case_id
        self.attached = attached
        """Where the rows of the case's ``attach`` events are put, if given (those after a
        problem too), for their files to be checked."""
        self.shared = shared
        self.definition = definition
        self.policies = policies or {}
        self.with_clocks = with_clocks
        self.rules: CaseRules | None = None
        self.expected_seq = 1
        self.prev_hash = GENESIS_HASH
        self.prev_at: str | None = None
        self.folded: Folded | None = None
        self.path: Path | None = None
        """Where the case stands in the histories the check has seen (``None`` once it
        left them): then its fold is the path's, with the clocks of :attr:`sla`."""
        self.sla = NO_CLOCKS
        self.opening: Mapping[str, Any] | None = None
        self.opened: tuple[str, str] | None = None
        """The first event's occurred_at and recorded_at: the case's received_at and
        opened_at."""
        self.problem: Problem | None = None
        self.format = EVENT_FORMAT

    def _fail(self, seq: int | None, reason: str) -> None:
        if self.problem is None:
            self.problem = Problem(self.case_id, seq, reason)

    def add(self, row: tuple[Any, ...]) -> None:
        """Check the next event row of the case (rows come in seq order)."""
        self.add_rows((row,))

    def add_rows(self, rows: Iterable[tuple[Any, ...]]) -> int:
        """Check the next event rows of the case (in seq order); how many there were.

        One loop over the rows with the chain's state in local variables: verification
        runs it for every event of the history."""
        count = 0
        rows = iter(rows)
        expected, prev_hash, prev_at = self.expected_seq, self.prev_hash, self.prev_at
        fold = None if self.definition is None else self._fold
        sha256 = hashlib.sha256
        case_id = self.case_id
        decoded: Any = None
        attached = self.attached
        path = self.path
        for row in rows:
            if self.problem is not None:
                rows = chain((row,), rows)
                break
            count += 1
            _, seq, event, from_state, to_state, actor, occurred, recorded, data, prev, digest = row
            if event == ATTACH_EVENT and attached is not None:
                attached.append(row)
            if seq != expected:
                self._fail(expected, f"event {expected} is missing: the next stored event is {seq}")
                break
            if prev != prev_hash:
                self._fail(
                    seq,
                    "prev_hash does not link to the event before it: "
                    "an event was removed, inserted or reordered here",
                )
                break
            if seq == 1:  # the opening says the history's format; every event has it
                self.format, decoded = _format_of(data)
            canonical = canonical_event(
                case_id, seq, event, from_state, to_state, actor, occurred, recorded, data,
                self.format,
            )  # fmt: skip
            if sha256(prev.encode("ascii") + b"\n" + canonical).hexdigest() != digest:
                self._fail(seq, "hash does not match the event's content: the event was altered")
                break
            if prev_at is not None and occurred < prev_at:
                self._fail(seq, "occurred_at lies before the previous event's")
                break
            prev_hash = digest
            prev_at = occurred
            expected += 1
            if path is not None:  # the step decided for an earlier case at the same point
                ahead = path.next
                found = ahead.get(event)
                if found is None and type(data) is str:
                    found = ahead.get((event, data))
                if found is not None:
                    try:
                        at = _time(occurred)
                    except ValueError:
                        self._fail(seq, f"occurred_at {occurred!r} is not a time")
                        continue
                    source, target = path.folded[0], found.folded[0]
                    if from_state != source or to_state != target:
                        self._fail_states(seq, from_state, to_state, source, target)
                    if found.moves and found.policy is not None:
                        self.sla = moved(found.policy, self.sla, found.moves, at)
                    path = found
                    continue
                self.path = path
            if fold is not None:  # the opening's data as decoded above
                fold(seq, event, from_state, to_state, decoded if seq == 1 else data, occurred,
                     recorded)  # fmt: skip
                path = self.path
        self.expected_seq, self.prev_hash, self.prev_at = expected, prev_hash, prev_at
        self.path = path
        for row in rows:  # after a problem: counted, and their attachments kept
            count += 1
            if attached is not None and row[2] == ATTACH_EVENT:
                attached.append(row)
        return count

    def _fold(
        self,
        seq: int,
        event: str,
        from_state: str | None,
        to_state: str,
        stored: Any,
        occurred: str,
        recorded: str,
    ) -> None:
        path = self.path
        if path is not None:  # no earlier case took this step from here: the case's own
            self.folded = self._leave()
        folded = self.folded
        rules = self.rules
        data: Any = NO_DATA  # decoded only where the fold reads it
        if (
            folded is None  # the first event: it must open the case
            or rules is None
            or event in ENGINE_EVENTS
            or event in rules.definition.data_events
            or (folded.state, event) in rules.definition.guarded
        ):
            try:  # orjson at once, parse_json for what it refuses
                data = _loads(stored) if isinstance(stored, str) else stored
            except ValueError:
                try:
                    data = parse_json(stored)
                except ValueError:
                    self._fail(seq, "data is not valid JSON")
                    return
        try:
            at = _time(occurred)
        except ValueError:
            self._fail(seq, f"occurred_at {occurred!r} is not a time")
            return
        if folded is None or rules is None:
            self._opening(seq, event, from_state, to_state, data, at, (occurred, recorded))
            return
        decision, after = step(rules, folded, event, data, at)
        if type(decision) is not Allowed:
            self._fail(seq, f"{event!r} is not allowed from {folded.state!r} here")
        elif from_state != folded.state or to_state != after.state:
            self._fail_states(seq, from_state, to_state, folded.state, after.state)
        elif path is not None and self.shared is not None:  # the next cases take it from here
            self.path = self.shared.step(rules, path, folded, event, stored, after, at)
            self.sla = after.sla
        self.folded = after

    def _fail_states(
        self, seq: int, from_state: str | None, to_state: str, source: str, target: str
    ) -> None:
        """The event records another step than the machine's ``source -> target``."""
        self._fail(
            seq, f"records {from_state} -> {to_state}, the machine gives {source} -> {target}"
        )

    def _leave(self) -> Folded:
        """The case's own fold where it leaves the shared paths."""
        path = self.path
        assert path is not None
        self.path = None
        return with_sla(path.folded, self.sla)

    def _opening(
        self,
        seq: int,
        event: str,
        from_state: str | None,
        to_state: str,
        data: Mapping[str, Any],
        at: datetime,
        times: tuple[str, str],
    ) -> None:
        """The opening event (``times``: occurred and recorded) names the case's rules."""
        definition = self.definition
        assert definition is not None
        if event != OPEN_EVENT or from_state is not None:
            self._fail(seq, f"the first event must be {OPEN_EVENT!r}")
            return
        self.opening = data
        self.opened = times
        policy = data.get("policy")
        if policy is not None and policy not in self.policies:
            self._fail(seq, f"SLA policy {policy} is not stored: deadlines cannot be derived")
            return
        profile = profile_of(data)
        shared = self.shared
        if shared is None:
            self.rules = CaseRules(definition, self.policies, profile, self.with_clocks)
        else:
            self.rules = shared.rules(definition, profile)
        self.folded = opened(self.rules, str(data.get("owner")), at, policy)
        if to_state != self.folded.state:
            self._fail(seq, f"opening state {to_state!r} is not the machine's")
        elif shared is not None:
            self.path = shared.root(self.rules, self.folded)
            self.sla = self.folded.sla

    def finish(
        self, case: tuple[Any, ...] | None, deadlines: Iterable[tuple[Any, ...]] = ()
    ) -> Problem | None:
        """Compare the case row (``None`` if missing) and its pending deadline rows
        (case id, clock, cycle, level, due_at text) with the fold; the first problem."""
        if not self.with_clocks:
            raise ValueError("a checker without clocks cannot compare a case row")
        if self.problem is not None:
            return self.problem
        if case is None:
            return Problem(self.case_id, 1, "events exist for a case that has no case row")
        if self.expected_seq == 1:
            return Problem(self.case_id, 1, "the case has no events: its history is gone")
        if self.path is not None:
            self.folded = self._leave()
        folded = self.folded
        if folded is None:
            return Problem(
                self.case_id,
                None,
                f"machine {case[_CASE['machine']]} v{case[_CASE['machine_version']]} is not "
                "registered here, so the case cannot be replayed",
            )
        last = self.expected_seq - 1
        version = case[_CASE["version"]]
        if version > last:
            return Problem(
                self.case_id,
                last + 1,
                f"history ends at event {last} but the case row is at version "
                f"{version}: the tail of the history was removed",
            )
        if version < last:
            return Problem(
                self.case_id,
                version + 1,
                f"the case row is at version {version} but events go on to {last}: "
                "events were added behind the engine's back",
            )
        assert self.rules is not None
        plan = plan_of(self.rules, folded)
        if not _row_matches(
            case, folded, plan, self.prev_hash, self.prev_at, self.opening, self.opened
        ):
            mismatch = _row_mismatch(
                case, folded, self.rules, plan, self.prev_hash, self.prev_at, self.opening,
                self.opened,
            )  # fmt: skip
            if mismatch:
                return Problem(self.case_id, None, f"case row differs from its replay: {mismatch}")
        if not plan and not deadlines:
            return None
        stored = {(d[1], d[2], d[3]): d[4] for d in deadlines}
        expected = {key: iso(p.due_at) for key, p in plan.items()}
        if stored != expected:
            return Problem(
                self.case_id,
                None,
                f"pending deadlines differ from the history's plan: stored {_plan(stored)}, "
                f"replay gives {_plan(expected)}",
            )
        return None


class SharedRules:
    """The :class:`CaseRules` of the cases of one check, one per machine and profile:
    cases alike share their rules and what the rules work out once (the clocks a case
    opens with), instead of each building its own."""

    def __init__(self, policies: Mapping[str, SlaPolicy], with_clocks: bool = True) -> None:
        self.policies = policies
        self.with_clocks = with_clocks
        self.found: dict[tuple[Any, ...], tuple[MachineDefinition, CaseRules]] = {}
        self.kept: set[int] = set()
        """The ids of the rules in :attr:`found` (alive while the check runs)."""
        self.roots: dict[tuple[Any, ...], Path] = {}
        self.paths = 0

    def rules(self, definition: MachineDefinition, profile: dict[str, Any]) -> CaseRules:
        """The rules of a case of ``definition`` with ``profile`` (its values compared
        with their types: a branch ``1`` is not a branch ``True``)."""
        values = profile.values()
        key = (id(definition), *values, *map(type, values))
        try:
            found = self.found.get(key)
        except TypeError:  # a value that cannot be a key: rules of its own
            return CaseRules(definition, self.policies, profile, self.with_clocks)
        if found is None:
            rules = CaseRules(definition, self.policies, profile, self.with_clocks)
            if len(self.found) < SHARED_PROFILES:
                self.found[key] = (definition, rules)
                self.kept.add(id(rules))
            return rules
        return found[1]

    def root(self, rules: CaseRules, folded: Folded) -> Path | None:
        """Where a case of ``rules`` opened as ``folded`` begins (``None`` for rules of a
        case's own, or once the check keeps :data:`SHARED_PATHS`)."""
        if id(rules) not in self.kept:
            return None
        key = (id(rules), folded.owner, folded.policy)
        found = self.roots.get(key)
        if found is None and self.paths < SHARED_PATHS:
            self.paths += 1
            found = self.roots[key] = Path(folded, (), None)
        return found

    def step(
        self,
        rules: CaseRules,
        path: Path,
        folded: Folded,
        event: str,
        stored: Any,
        after: Folded,
        at: datetime,
    ) -> Path | None:
        """Where an allowed step of ``event`` (with the ``stored`` data) from ``path``,
        folded to ``after`` at ``at``, leads the cases that take it; ``None`` where it
        cannot be shared: an engine event or one of timers (their clocks depend on their
        data and instants), a step of a waiting case or one with timers, data not stored
        as text, or once the check keeps :data:`SHARED_PATHS`."""
        definition = rules.definition
        if event in ENGINE_EVENTS or event in definition.timer_events or self.paths >= SHARED_PATHS:
            return None
        reads = event in definition.data_events or (folded.state, event) in definition.guarded
        if reads and type(stored) is not str:
            return None
        policy = None if folded.policy is None else rules.policies[folded.policy]
        if policy is None or not rules.with_clocks:
            moves: Moves | None = () if after.sla is folded.sla else None
        else:
            moves = moves_of(policy, folded.sla, after.sla, at)
        if moves is None:
            return None
        self.paths += 1
        found = path.next[(event, stored) if reads else event] = Path(after, moves, policy)
        return found


SHARED_PROFILES = 10_000
"""How many machine and profile pairs one check keeps rules for: a history whose cases
nearly all differ (a branch of their own each) gives the rest rules of their own, in
bounded memory."""
SHARED_PATHS = 20_000
"""How many points of histories one check keeps the steps of (:class:`Path`): a history
of cases that nearly all differ leaves the rest to be folded each on its own."""


class Path:
    """A point the histories of the check reached by the same events (their data too,
    where the fold reads it) from the same opening, under the same rules: the fold there
    (but for the clocks, which each case keeps), what the step to it did to the clocks,
    and the steps on from it that earlier cases took.

    A case following a path takes each step's decision from it and does only its own
    clocks' arithmetic (:func:`casework.machines.clocks.moved`)."""

    __slots__ = ("folded", "moves", "next", "policy")

    def __init__(self, folded: Folded, moves: Moves, policy: SlaPolicy | None) -> None:
        self.folded = folded._replace(sla=NO_CLOCKS)
        self.moves = moves
        self.policy = policy
        self.next: dict[Any, Path] = {}


def _format_of(stored: Any) -> tuple[int, Any]:
    """The event format an opening event's stored data declares (1 if none), and the
    data decoded where it is an object (else as stored, for the fold to judge)."""
    try:
        data = parse_json(stored) if isinstance(stored, str) else stored
    except ValueError:
        return EVENT_FORMAT, stored
    if not isinstance(data, (dict, Mapping)):  # a dict, matched before the ABC
        return EVENT_FORMAT, stored
    found = data.get("format")
    return (found if found == PERSONAL_FORMAT else EVENT_FORMAT), data


def _plan(plan: Mapping[tuple[str, int, int], str]) -> str:
    parts = [
        f"{clock}#{cycle} level {level} at {due}" for (clock, cycle, level), due in plan.items()
    ]
    return "; ".join(sorted(parts)) or "none"


_FOLD_COLUMNS = itemgetter(
    *(_CASE[name] for name in (
        "state", "owner", "escalation_level", "facts", "head_hash", "last_event_at",
        "sla_policy", "received_at", "opened_at", "event_format",
    ))
)  # fmt: skip
_OPENING_COLUMNS = itemgetter(*(_CASE[name] for name in OPENING_FIELDS))
_OPENING_VALUES = itemgetter(*OPENING_FIELDS)
_EMPTY_AS_NONE = tuple(i for i, name in enumerate(OPENING_FIELDS) if name in UNDECLARED_AS_EMPTY)
_MACHINE_COLUMNS = itemgetter(_CASE["machine"], _CASE["machine_version"])
_NAME = itemgetter("name")


def _as_opened(opening: Mapping[str, Any], changed: Mapping[str, Any]) -> list[Any]:
    """The :data:`OPENING_FIELDS` the row should hold: as the opening gave them (``None``
    where it left one out), or as ``reclassify`` events ``changed`` them since."""
    if not changed:
        try:
            return list(_OPENING_VALUES(opening))
        except KeyError:  # an opening that leaves a field out
            pass
    return [changed.get(name, opening.get(name)) for name in OPENING_FIELDS]


def _row_matches(
    case: tuple[Any, ...],
    folded: Folded,
    plan: Mapping[tuple[str, int, int], Any],
    head_hash: str,
    last_at: str | None,
    opening: Mapping[str, Any] | None,
    opened: tuple[str, str] | None,
) -> bool:
    """Whether the case row equals its replay in every column :func:`_row_mismatch`
    compares, decided cheaply: whole tuples and lists compared at once, the clocks by
    name (a policy read back may list them in another order than the row). ``True``
    only where :func:`_row_mismatch` finds no difference; ``False`` where a value
    differs or the row is not in the shape the engine writes, which
    :func:`_row_mismatch` then examines and says."""
    if opening is None or opened is None:
        return False
    try:
        changed = folded.facts.get(CLASSIFICATION_FACT) or {}
        if _FOLD_COLUMNS(case) != (
            folded.state, folded.owner, folded.escalation_level, folded.facts, head_hash,
            last_at, folded.policy, *opened, opening.get("format", EVENT_FORMAT),
        ):  # fmt: skip
            return False
        stored = list(_OPENING_COLUMNS(case))
        for index in _EMPTY_AS_NONE:
            stored[index] = stored[index] or None
        expected = _as_opened(opening, changed)
        if stored != expected and any(
            held != value and not is_commitment(opening.get(name))
            for name, held, value in zip(OPENING_FIELDS, stored, expected, strict=True)
        ):
            return False
        attributes = opening.get("attributes", {})
        held_attributes = case[_CASE["attributes"]]
        if type(attributes) is not dict:
            return False
        if ("tier" in changed or held_attributes != attributes) and held_attributes != (
            _replayed_attributes(attributes, changed, held_attributes)
        ):
            return False
        machine = opening.get("machine")
        if (
            isinstance(machine, list)
            and len(machine) == 2
            and _MACHINE_COLUMNS(case) != (machine[0], machine[1])
        ):
            return False
        sla = case[_CASE["sla"]]
        clocks = folded.sla
        return (
            type(sla) is dict
            and len(sla) == 3 + ("timers" in sla)
            and "waiting" in sla
            and "clocks" in sla
            and "pending" in sla
            and sla["pending"] == (list(pending_json(plan)) if plan else [])
            and sla["waiting"] == clocks.waiting
            and sla.get("timers", []) == [t.to_json() for t in clocks.timers]
            and type(sla["clocks"]) is list
            and sorted(sla["clocks"], key=_NAME) == [c.to_json() for c in sorted(clocks.clocks)]
        )
    except Exception:  # a row not in the engine's shape: examined by _row_mismatch
        return False


def _row_mismatch(
    case: tuple[Any, ...],
    folded: Folded,
    rules: CaseRules,
    plan: Mapping[tuple[str, int, int], Any],
    head_hash: str,
    last_at: str | None,
    opening: Mapping[str, Any] | None,
    opened: tuple[str, str] | None,
) -> str:
    """The first column of the case row that differs from its replay, said; else ``""``.

    Every column is compared: those the fold gives, those the opening event carries
    (its data, and its times as ``received_at`` and ``opened_at``), and the machine
    where the opening names it.
    """
    expected: list[tuple[str, Any]] = [
        ("state", folded.state),
        ("owner", folded.owner),
        ("escalation_level", folded.escalation_level),
        ("facts", folded.facts),
        ("head_hash", head_hash),
        ("last_event_at", last_at),
        ("sla_policy", folded.policy),
    ]
    if opening is not None:  # as opened, or as reclassify events changed it since
        changed = folded.facts.get(CLASSIFICATION_FACT) or {}
        expected += [
            (name, value)
            for name, value in zip(OPENING_FIELDS, _as_opened(opening, changed), strict=True)
            if not is_commitment(opening.get(name))  # a personal value: checked apart
        ]
        attributes = opening.get("attributes", {})
        expected.append(
            ("attributes", _replayed_attributes(attributes, changed, case[_CASE["attributes"]]))
        )
        expected.append(("event_format", opening.get("format", EVENT_FORMAT)))
        machine = opening.get("machine")
        if isinstance(machine, list) and len(machine) == 2:
            expected += [("machine", machine[0]), ("machine_version", machine[1])]
    if opened is not None:
        expected += [("received_at", opened[0]), ("opened_at", opened[1])]
    for name, value in expected:
        stored = case[_CASE[name]]
        if name in UNDECLARED_AS_EMPTY:
            stored = stored or None
        if stored != value:
            return (
                f"{name} is {stored!r}, replay gives {dict(value) if name == 'facts' else value!r}"
            )
    stored_sla = case[_CASE["sla"]]
    pending = list(pending_json(plan))
    if not (
        isinstance(stored_sla, Mapping)
        and set(stored_sla) - {"timers"} == {"waiting", "clocks", "pending"}
        and stored_sla["pending"] == pending
        and folded.sla.matches_json(stored_sla)
    ):
        return f"sla is {stored_sla!r}, replay gives {sla_json(rules, folded)!r}"
    return ""


def _replayed_attributes(
    opened: Any, changed: Mapping[str, Any], stored: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The attributes the row should hold: the opening's, with the ``tier`` a
    ``reclassify`` gave and, for a personal value (a commitment), the ``stored`` one."""
    attributes = dict(opened)
    if "tier" in changed:
        attributes["tier"] = changed["tier"]
    for name, value in attributes.items():
        if is_commitment(value):
            attributes[name] = (stored or {}).get(name)
    return attributes


class Grouped:
    """Rows of a stream ordered by case id, handed out one case at a time."""

    def __init__(self, rows: Iterator[tuple[Any, ...]]) -> None:
        self._groups = groupby(rows, key=itemgetter(0))
        self.pending = next(self._groups, None)

    def take(self, case_id: str) -> list[tuple[Any, ...]]:
        """The rows of ``case_id`` (none if it has none); skips nothing else."""
        if self.pending is not None and self.pending[0] == case_id:
            rows = list(self.pending[1])
            self.pending = next(self._groups, None)
            return rows
        return []


def check_streams(
    cases: Iterator[Any],
    events: Iterator[Any],
    deadlines: Iterator[Any],
    definition_for: Callable[[str, int], MachineDefinition | None],
    policies: Mapping[str, SlaPolicy],
    attached: list[tuple[Any, ...]] | None = None,
) -> Iterator[tuple[int, Problem | None]]:
    """Merge case, event and pending-deadline rows (all ordered by case id) and check
    each case. Yields ``(events checked, problem or None)`` once per case; the rows of
    ``attach`` events go to ``attached``, if given.
    """
    event_groups = groupby(events, key=itemgetter(0))
    pending = next(event_groups, None)
    plans = Grouped(deadlines)
    shared = SharedRules(policies)
    machines: dict[tuple[str, int], MachineDefinition | None] = {}
    for case in cases:
        case_id = case[0]
        while pending is not None and pending[0] < case_id:
            yield _guarded(pending[0], None, pending[1], None, shared, [], attached)
            pending = next(event_groups, None)
        while plans.pending is not None and plans.pending[0] < case_id:
            plans.take(plans.pending[0])
        machine = _MACHINE_COLUMNS(case)
        if machine not in machines:  # asked once per machine and version
            machines[machine] = definition_for(*machine)
        definition = machines[machine]
        has_events = pending is not None and pending[0] == case_id
        rows: Iterable[Any] = pending[1] if pending is not None and has_events else ()
        result = _guarded(case_id, case, rows, definition, shared, plans.take(case_id), attached)
        if has_events:
            pending = next(event_groups, None)
        yield result
    while pending is not None:
        yield _guarded(pending[0], None, pending[1], None, shared, [], attached)
        pending = next(event_groups, None)


MALFORMED = (TypeError, ValueError, KeyError, IndexError, AttributeError, ArithmeticError)
"""What checking a row of the wrong type raises (text where a number or JSON belongs,
a blob as text): the case is named as malformed and the check goes on."""


def _guarded(
    case_id: str,
    case: Any | None,
    rows: Iterable[Any],
    definition: MachineDefinition | None,
    shared: SharedRules,
    deadlines: list[tuple[Any, ...]],
    attached: list[tuple[Any, ...]] | None,
) -> tuple[int, Problem | None]:
    """One case's rows checked (how many, and its problem), a malformed row a problem of
    its case."""
    try:
        checker = CaseChecker(
            case_id, definition, shared.policies, shared=shared, attached=attached
        )
        count = checker.add_rows(rows)
        return count, checker.finish(case, deadlines)
    except MALFORMED as err:
        return 0, Problem(case_id, None, f"a row of the case is malformed: {malformed(err)}")


def malformed(err: BaseException) -> str:
    """What was wrong with a malformed row, on one line."""
    text = " ".join(str(err).split())[:200]
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
