"""A machine definition: a python-statemachine chart compiled into a transition table.

The chart class is the single definition of a machine. Building a chart instance and
calling ``send`` costs hundreds of microseconds, so the engine never does that per
event: :func:`compile_chart` reads the chart's states, transitions and guards once
into a table of :class:`Rule` objects, and :meth:`MachineDefinition.decide` walks
that table. A property test proves the table decides exactly as the chart does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import Any, Literal, cast

from statemachine import Event, StateChart

from casework.machines.timers import TIMER_EVENTS, TimerSpec

OPEN_EVENT = "open"
"""The first event of every case: it enters the machine's initial state."""
AGENT_EVENTS = ("wait", "resume")
"""Engine events an agent may fire on an open case, where its machine takes them."""
MANUAL_ESCALATION = "escalate_now"
"""The engine event an agent fires to take an open case up the ladder at once."""
ERASED = "erased"
"""The engine event that records a customer's personal data erased from a case (any
state, closed ones too); its data names the fields."""
ERASED_FACT = "personal_data_erased"
"""The fact an ``erased`` event sets: the case's personal values are gone."""
SYSTEM_EVENTS = ("sla_warning", "escalate", "replan", ERASED, *TIMER_EVENTS.values())
"""Engine events only the engine itself records."""
RECLASSIFY = "reclassify"
"""The engine event that changes what a case's SLA targets depend on (data any of
:data:`RECLASSIFIABLE`); its clocks keep the working time they used."""
RECLASSIFIABLE = ("priority", "category", "channel", "tier")
CLASSIFICATION_FACT = "classification"
"""The fact that holds what ``reclassify`` events changed, over the case's opening."""
HAND_EVENTS = (MANUAL_ESCALATION, RECLASSIFY)
"""Engine events an agent may fire on any open case."""
ATTACH_EVENT = "attach"
"""The engine event that records an evidence file attached to a case, by its digest."""
EVIDENCE_KINDS = ("test_report", "photo", "invoice")
ENGINE_EVENTS = frozenset((*AGENT_EVENTS, *HAND_EVENTS, ATTACH_EVENT, *SYSTEM_EVENTS))

Guard = Callable[..., bool]
"""A named condition: ``guard(data, facts) -> bool``; its docstring says what it needs."""

AttributeKind = Literal["text", "integer", "date"]
INTAKE_FIELDS = ("channel", "category")
"""The intake fields a machine may require of its cases."""
DATA_FIELD = re.compile(r"(?:^|[\s(;])(\w+)=")
"""How a guard's requirement names the event data fields it reads, after ``data``:
``data solution=<text>``, ``data from=<time> to=<time> (partner=<id> optional)``."""


@dataclass(frozen=True)
class Condition:
    """One guard of a rule and the value it must return (``False`` for ``unless=``)."""

    check: Guard
    expected: bool

    @property
    def name(self) -> str:
        """The guard's function name, as the chart names it."""
        return self.check.__name__

    @property
    def requirement(self) -> str:
        """What the guard requires, from the first line of its docstring."""
        doc = (self.check.__doc__ or self.name).strip().splitlines()[0]
        return doc if self.expected else f"not: {doc}"

    def holds(self, data: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
        """Whether the guard returns its expected value for this event."""
        return bool(self.check(data, facts)) is self.expected

    @property
    def data_fields(self) -> tuple[str, ...]:
        """The event data fields the guard reads, as its requirement names them
        (``data solution=...``); none for a guard on the case's facts alone."""
        _, found, rest = self.requirement.partition("data ")
        return tuple(dict.fromkeys(DATA_FIELD.findall(rest))) if found else ()

    def could_hold(self, facts: Mapping[str, Any]) -> bool:
        """Whether some event could pass this guard now: a guard on the event's data
        may, given the data; a guard on the case's facts alone is asked now."""
        return bool(self.data_fields) or self.holds({}, facts)


@dataclass(frozen=True)
class Allowed:
    """The event is allowed and leads to ``target``."""

    target: str


@dataclass(frozen=True)
class Rule:
    """One transition of the chart: on ``event`` from ``source`` to ``target`` if all hold."""

    event: str
    source: str
    target: str
    conditions: tuple[Condition, ...]
    allowed: Allowed = field(init=False, repr=False, compare=False)
    """The decision this rule gives, built once (decisions are immutable)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed", Allowed(self.target))


@dataclass(frozen=True)
class NotAllowed:
    """The event has no transition from the state; ``allowed`` are those that do."""

    allowed: tuple[str, ...]


@dataclass(frozen=True)
class Blocked:
    """The event has transitions from the state, but the named condition failed."""

    condition: str
    requirement: str


Decision = Allowed | NotAllowed | Blocked


@dataclass(frozen=True)
class AttributeSpec:
    """A fact a back office keeps on a case beyond the fixed columns; a ``personal`` one
    (an address, a phone number) is kept out of the hashed history like the customer's
    name and contact, and can be erased."""

    kind: AttributeKind = "text"
    required: bool = False
    max_length: int = 200
    personal: bool = False


@dataclass(frozen=True)
class RepeatRule:
    """When a new case repeats an earlier one: a case of the same customer with the same
    ``attribute`` received at most ``window`` before it (settings may set another window).
    The new case is linked to the latest such case; one opened with ``category`` also
    goes up the ladder at once (``escalate_now``, unless the settings say not), with
    ``note`` as its reason (``{case}``: the earlier case's id)."""

    attribute: str
    window: timedelta = timedelta(days=90)
    category: str | None = None
    note: str = "a repeat of case {case}"

    def reason(self, earlier: str) -> str:
        """The reason the escalation of a repeat of ``earlier`` records."""
        return self.note.format(case=earlier)


@dataclass(frozen=True)
class Relations:
    """The events that relate a case to the other named in their data's ``case``:
    ``link`` leaves the case as it is (``repeat``: how a repeat is found and linked
    when the case opens), ``merge`` closes it into the other, which may not be in the
    ``merged`` state itself (merge into the case it was merged into)."""

    link: str = "link"
    merge: str | None = "merge_into"
    merged: str | None = "merged"
    repeat: RepeatRule | None = None

    @property
    def events(self) -> tuple[str, ...]:
        """The relating events: the link, and the merge if there is one."""
        return (self.link,) if self.merge is None else (self.link, self.merge)


@dataclass(frozen=True)
class Checks:
    """Events whose data casework's rules check and complete before the machine decides
    them: ``remedy`` by the warranty rules (the three guarantees; ``evidenced``, those
    of them that read the case's history: test reports, a repair's overrun, a quote
    accepted), ``faults`` by the partner rules (the violation's terms)."""

    remedy: tuple[str, ...] = ()
    evidenced: tuple[str, ...] = ()
    faults: tuple[str, ...] = ()

    @property
    def events(self) -> tuple[str, ...]:
        """Every event checked."""
        return (*self.remedy, *self.evidenced, *self.faults)


@dataclass(frozen=True)
class MachineDefinition:
    """A named, versioned machine: its chart, compiled table and case-level settings.

    ``remembered`` maps an event to the data keys whose latest value the case keeps as
    a fact for later guards (for example the satisfaction score of ``follow_up``,
    which allows a reopen).
    ``handover`` names the event and data key that hand the case to a new owner.
    ``sla`` is the machine's own SLA policy document (``None``: its cases have no
    clocks; configuration may replace it), checked against its states and events.
    ``intake`` names the intake fields its cases must be opened with (``channel``,
    ``category``); ``agent_events`` the engine's events an agent may fire on its open
    cases (``wait`` and ``resume``, or none).
    ``timers`` maps an event to the timers it sets (:mod:`casework.machines.timers`), ``ends``
    an event to the timers it ends; ``counted`` an event to the fact that counts it,
    and ``marks`` a fact to (a counted fact, the count that sets it): the second
    ``visit_done`` marks ``not_fixed_first_visit``.
    ``relations`` names the events that relate cases and how a repeat is found
    (``None``: its cases relate to none); ``checks`` the events casework's warranty and
    partner rules check.
    """

    name: str
    version: int
    chart: type[StateChart[Any]]
    title: str = ""
    remembered: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    handover: tuple[str, str] | None = None
    attributes: Mapping[str, AttributeSpec] = field(default_factory=dict)
    sla: Mapping[str, Any] | None = None
    intake: tuple[str, ...] = INTAKE_FIELDS
    agent_events: tuple[str, ...] = AGENT_EVENTS
    timers: Mapping[str, tuple[TimerSpec, ...]] = field(default_factory=dict)
    ends: Mapping[str, frozenset[str]] = field(default_factory=dict)
    counted: Mapping[str, str] = field(default_factory=dict)
    marks: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    time_fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Event data fields that are instants (ISO 8601 with an offset), by event."""
    resting: frozenset[str] = frozenset()
    """States in which a case's work is done though it is not final (a followed-up
    complaint, unless reopened): not open for queues, boards and ``list --open``."""
    relations: Relations | None = None
    checks: Checks = Checks()
    labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """The machine's own labels by language, then ``kind:identifier``
    (``{"zh": {"state:needs_confirmed": "已确认需求"}}``), read before the catalogue."""
    initial_state: str = field(init=False)
    states: tuple[str, ...] = field(init=False)
    final_states: frozenset[str] = field(init=False)
    events: tuple[str, ...] = field(init=False)
    rules: Mapping[tuple[str, str], tuple[Rule, ...]] = field(init=False, repr=False)
    guarded: frozenset[tuple[str, str]] = field(init=False, repr=False)
    """(state, event) pairs with at least one condition: only those need facts."""
    data_events: frozenset[str] = field(init=False, repr=False)
    """Events whose data the fold reads in any state: remembered and counted facts,
    hand-overs, timers."""
    timer_events: frozenset[str] = field(init=False, repr=False)
    """Events that set or end a timer of this machine's cases."""

    def __post_init__(self) -> None:
        initial, states, finals, events, rules = compile_chart(self.chart)
        object.__setattr__(self, "initial_state", initial)
        object.__setattr__(self, "states", states)
        object.__setattr__(self, "final_states", finals)
        object.__setattr__(self, "events", events)
        object.__setattr__(self, "rules", rules)
        guarded = frozenset(k for k, v in rules.items() if any(r.conditions for r in v))
        object.__setattr__(self, "guarded", guarded)
        data_events = set(self.remembered) | ({self.handover[0]} if self.handover else set())
        data_events |= set(self.timers) | set(self.counted)
        object.__setattr__(self, "data_events", frozenset(data_events))
        object.__setattr__(self, "timer_events", frozenset(self.timers) | frozenset(self.ends))
        object.__setattr__(self, "attributes", MappingProxyType(dict(self.attributes)))
        object.__setattr__(self, "remembered", MappingProxyType(dict(self.remembered)))
        labels = {lang: MappingProxyType(dict(v)) for lang, v in self.labels.items()}
        object.__setattr__(self, "labels", MappingProxyType(labels))
        strays = sorted(self.resting - set(states))
        if strays:
            raise ValueError(f"{self.name}: resting names unknown states {strays}")
        unknown = [f for f in self.intake if f not in INTAKE_FIELDS]
        if unknown:
            raise ValueError(f"{self.name}: intake names unknown fields {unknown}")
        strange = [e for e in self.agent_events if e not in AGENT_EVENTS]
        if strange:
            raise ValueError(f"{self.name}: agent_events may be wait and resume, not {strange}")
        named = (*self.checks.events, *(self.relations.events if self.relations else ()))
        foreign = sorted({e for e in named if e not in events})
        if foreign:
            raise ValueError(f"{self.name}: relations or checks name unknown events {foreign}")
        taken = [e for e in events if e in ENGINE_EVENTS or e == OPEN_EVENT]
        if taken:
            raise ValueError(f"{self.name}: events {taken} are the engine's own")

    @property
    def key(self) -> tuple[str, int]:
        """The registry key: (name, version)."""
        return (self.name, self.version)

    def is_open(self, state: str) -> bool:
        """Whether a case in ``state`` is open work: neither final nor resting."""
        return state not in self.final_states and state not in self.resting

    def moves_timers(self, event: str) -> bool:
        """Whether ``event`` sets or ends a timer of this machine's cases."""
        return event in self.timer_events

    def needs_data(self, state: str, event: str) -> bool:
        """Whether folding ``event`` in ``state`` reads the event's data at all."""
        return event in self.data_events or (state, event) in self.guarded

    def allowed_events(self, state: str) -> tuple[str, ...]:
        """Events that have a transition from ``state``, in definition order."""
        return tuple(e for e in self.events if (state, e) in self.rules)

    def could_pass(self, state: str, event: str, facts: Mapping[str, Any]) -> bool:
        """Whether ``event`` could pass in ``state`` given the case's ``facts``: not when
        every rule for it has a guard on the facts that already says no (``reopen``
        after a satisfied follow-up, say). An event with no rule here is not judged."""
        rules = self.rules.get((state, event), ())
        return not rules or any(all(c.could_hold(facts) for c in r.conditions) for r in rules)

    def decide(
        self, state: str, event: str, data: Mapping[str, Any], facts: Mapping[str, Any]
    ) -> Decision:
        """Decide what ``event`` does in ``state``, exactly as the chart would."""
        rules = self.rules.get((state, event))
        if rules is None:
            return NotAllowed(self.allowed_events(state))
        failed: Condition | None = None
        for rule in rules:
            for condition in rule.conditions:
                if not condition.holds(data, facts):
                    failed = failed or condition
                    break
            else:
                return rule.allowed
        assert failed is not None
        return Blocked(failed.name, failed.requirement)


def compile_chart(
    chart: type[StateChart[Any]],
) -> tuple[
    str, tuple[str, ...], frozenset[str], tuple[str, ...], dict[tuple[str, str], tuple[Rule, ...]]
]:
    """Read a flat chart into (initial, states, final states, events, rules by (state, event))."""
    states_map = chart.states_map
    initial = chart.initial_state
    if initial is None:
        raise ValueError(f"{chart.__name__} has no initial state")
    table: dict[tuple[str, str], list[Rule]] = {}
    for state in states_map.values():
        if state.parent is not None or state.states:
            raise ValueError(f"{chart.__name__}: compound states are not supported ({state.id})")
        for transition in state.transitions:
            targets = transition.targets
            if len(targets) != 1:
                raise ValueError(f"{chart.__name__}: {state.id} needs exactly one target")
            conditions = tuple(_condition(chart, spec) for spec in transition.cond)
            for event in transition.events:
                rule = Rule(str(event.id), str(state.id), str(targets[0].id), conditions)
                table.setdefault((rule.source, rule.event), []).append(rule)
    declared = cast("list[Event]", chart.events)  # the metaclass's list; typed on instances only
    events = tuple(str(e.id) for e in declared)
    states = tuple(str(s.id) for s in states_map.values())
    finals = frozenset(str(s.id) for s in chart.final_states)
    rules = {key: tuple(value) for key, value in table.items()}
    return str(initial.id), states, finals, events, rules


def _condition(chart: type[StateChart[Any]], spec: Any) -> Condition:
    func = spec.func
    if isinstance(func, str):
        func = getattr(chart, func, None)
    if not callable(func):
        raise ValueError(f"{chart.__name__}: guard {spec.attr_name!r} must be a function")
    return Condition(func, spec.expected_value is not False)


def done_states(definitions: Iterable[MachineDefinition]) -> tuple[str, ...]:
    """The states in which a case of one of ``definitions`` is not open work: final or
    resting (what an open-cases query leaves out)."""
    return tuple(sorted({s for d in definitions for s in d.final_states | d.resting}))
