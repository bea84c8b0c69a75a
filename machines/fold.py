"""Folding a case's events into its state: the one rule for firing, replay and verify.

Besides the events of its machine, every case knows the engine's own events, which
change no machine state: ``wait`` and ``resume`` (the case waits on the customer or a
part; SLA clocks pause), and the system's ``sla_warning``, ``escalate`` and
``replan`` (the case moves to another policy version), and ``reclassify`` (what the
case's targets depend on changes; its clocks keep the working time they used).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from types import MappingProxyType
from typing import Any, NamedTuple

import casework.machines.clocks as clocks
import casework.machines.timers as timers
from casework.machines.clocks import NO_CLOCKS, SlaState
from casework.machines.definition import (
    AGENT_EVENTS,
    ATTACH_EVENT,
    CLASSIFICATION_FACT,
    ENGINE_EVENTS,
    ERASED,
    ERASED_FACT,
    EVIDENCE_KINDS,
    HAND_EVENTS,
    MANUAL_ESCALATION,
    RECLASSIFIABLE,
    RECLASSIFY,
    Allowed,
    Blocked,
    Decision,
    MachineDefinition,
    NotAllowed,
)
from casework.machines.sla import SlaPolicy

WAIT_REASONS = ("customer", "part")
TIMER_OF = {event: name for name, event in timers.TIMER_EVENTS.items()}
"""The timer whose running out each engine event records."""


@dataclass(frozen=True)
class CaseRules:
    """What decides a case's fold: its machine, the SLA policies it may run under (by
    version) and its profile: the case fields that targets and recipients depend on
    (priority, category, channel, branch, tier) as the case was opened; a
    ``reclassify`` changes it from then on (:func:`profile_now`).

    ``with_clocks=False`` folds everything but the clocks' arithmetic (they stay empty;
    what the policies decide, an opening or a replan under a known version and waiting,
    is still folded): for a check that has no clocks to compare the fold with.
    """

    definition: MachineDefinition
    policies: Mapping[str, SlaPolicy] = field(default_factory=dict)
    profile: Mapping[str, Any] = field(default_factory=dict)
    with_clocks: bool = True

    def started(self, policy: SlaPolicy, state: str, at: datetime) -> SlaState:
        """The clocks of a case opened in ``state`` at ``at`` under ``policy``: worked out
        once per policy and state (they depend on the profile, not on the instant) and
        moved to ``at``, for the many cases one set of rules opens in a verification."""
        # made on first use: a fire builds rules for one step and never asks
        cache: dict[tuple[str, str], SlaState] = self.__dict__.setdefault("_started", {})
        key = (policy.version, state)
        found = cache.get(key)
        if found is None:
            found = cache[key] = clocks.start(policy, self.profile, state, at)
        return clocks.counting_from(found, at)

    def policy(self, version: str | None) -> SlaPolicy | None:
        """The policy of that version (``None`` for a case without SLA clocks)."""
        return None if version is None else self.policies[version]

    def allowed_events(self, state: str) -> tuple[str, ...]:
        """The machine's events from ``state``, then ``wait``/``resume``,
        ``escalate_now`` and ``reclassify`` on open cases."""
        own = self.definition.allowed_events(state)
        if state in self.definition.final_states:
            return own
        return own + self.definition.agent_events + HAND_EVENTS

    def needs_data(self, state: str, event: str) -> bool:
        """Whether folding ``event`` in ``state`` reads its data."""
        definition = self.definition
        return (
            event in ENGINE_EVENTS
            or event in definition.data_events
            or (state, event) in definition.guarded
        )


NO_FACTS: Mapping[str, Any] = MappingProxyType({})


def profile_now(rules: CaseRules, facts: Mapping[str, Any]) -> Mapping[str, Any]:
    """The case's profile after its ``reclassify`` events (kept in its facts)."""
    changed = facts.get(CLASSIFICATION_FACT)
    return rules.profile if not changed else {**rules.profile, **changed}


class Folded(NamedTuple):
    """What a case's history adds up to after ``version`` events.

    A named tuple rather than a frozen dataclass: every event of a verification builds
    one, and a tuple is built several times faster.
    """

    state: str
    version: int
    owner: str
    escalation_level: int = 0
    facts: Mapping[str, Any] = NO_FACTS
    sla: SlaState = NO_CLOCKS
    policy: str | None = None

    def guard_facts(self) -> dict[str, Any]:
        """The facts guards see: remembered data plus the current owner."""
        return {**self.facts, "owner": self.owner}


_folded: Callable[[tuple[Any, ...]], Folded] = partial(tuple.__new__, Folded)
"""A fold from all its fields in order, without the Python ``__new__`` of a named tuple:
every step of a verification builds one."""


def with_sla(folded: Folded, sla: SlaState) -> Folded:
    """``folded`` with the clocks ``sla`` (``_replace`` without its per-call cost)."""
    state, version, owner, level, facts, _, policy = folded
    return _folded((state, version, owner, level, facts, sla, policy))


def opened(rules: CaseRules, owner: str, at: datetime, policy: str | None) -> Folded:
    """The fold after the opening event at ``at``, under the policy of that version."""
    state = rules.definition.initial_state
    found = rules.policy(policy)
    sla = NO_CLOCKS if found is None or not rules.with_clocks else rules.started(found, state, at)
    return _folded((state, 1, owner, 0, NO_FACTS, sla, policy))


def step(
    rules: CaseRules, folded: Folded, event: str, data: Mapping[str, Any], at: datetime
) -> tuple[Decision, Folded]:
    """Apply one event at ``at``: the decision and, if allowed, the new fold.

    A decision other than :class:`Allowed` returns the fold unchanged.
    """
    if event in ENGINE_EVENTS:
        return _engine_step(rules, folded, event, data, at)
    definition = rules.definition
    state = folded.state
    key = (state, event)
    if key in definition.guarded:
        decision = definition.decide(state, event, data, folded.guard_facts())
    else:  # no conditions: the first rule decides, as decide would say
        found = definition.rules.get(key)
        decision = found[0].allowed if found else definition.decide(state, event, data, NO_FACTS)
    if type(decision) is not Allowed:
        return decision, folded
    target = decision.target
    owner = folded.owner
    facts = folded.facts
    if event in definition.data_events:  # hand-overs, remembered and counted facts
        handover = definition.handover
        if handover is not None and event == handover[0]:
            owner = str(data[handover[1]])
        keys = definition.remembered.get(event)
        if keys:
            remembered = {name: data[name] for name in keys if name in data}
            if remembered:
                facts = MappingProxyType({**facts, **remembered})
        if event in definition.counted:
            facts = _counted(definition, facts, definition.counted[event])
    sla = folded.sla
    if folded.policy is not None and rules.with_clocks:
        policy = rules.policies[folded.policy]
        profile = profile_now(rules, facts) if CLASSIFICATION_FACT in facts else rules.profile
        if target != state:
            sla = clocks.enter_state(policy, profile, sla, target, at)
        if event in policy.clock_events:
            sla = clocks.on_event(policy, profile, sla, target, event, at)
        if event in definition.timer_events:
            sla = _timers(definition, policy, sla, event, data, at, folded.version + 1, profile)
        if sla.timers and target in definition.final_states:  # a closed case waits on none
            sla = sla._replace(timers=())
    return decision, _folded(
        (target, folded.version + 1, owner, folded.escalation_level, facts, sla, folded.policy)
    )


def _counted(
    definition: MachineDefinition, facts: Mapping[str, Any], counter: str
) -> Mapping[str, Any]:
    """The facts with ``counter`` one higher, and the marks that count sets."""
    count = int(facts.get(counter, 0)) + 1
    changed: dict[str, Any] = {counter: count}
    for mark, (source, threshold) in definition.marks.items():
        if source == counter and count >= threshold:
            changed[mark] = True
    return MappingProxyType({**facts, **changed})


def _timers(
    definition: MachineDefinition,
    policy: SlaPolicy,
    sla: SlaState,
    event: str,
    data: Mapping[str, Any],
    at: datetime,
    seq: int,
    profile: Mapping[str, Any],
) -> SlaState:
    """The timers after ``event`` (number ``seq``): those it ends ended, those it sets
    (again) armed; a same-day timer by the end of the working day in the calendar of
    the case's ``profile`` (its branch)."""
    found = sla.timers
    ended = definition.ends.get(event)
    if ended:
        found = timers.disarm(found, ended)
    for spec in definition.timers.get(event, ()):
        if spec.applies(data):
            due = spec.due(
                data, at, policy.timers,
                lambda moment: timers.working_day_end(moment, policy.day_calendar(profile)),
            )  # fmt: skip
            if due is not None:
                found = timers.arm(found, spec, due, data, seq)
    return sla if found == sla.timers else sla._replace(timers=found)


def _engine_step(
    rules: CaseRules, folded: Folded, event: str, data: Mapping[str, Any], at: datetime
) -> tuple[Decision, Folded]:
    if event == ERASED:  # any state: a closed case's customer may be forgotten too
        fields = data.get("fields")
        if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
            return Blocked("fields_named", "needs data fields=<the erased fields>"), folded
        erased = MappingProxyType({**folded.facts, ERASED_FACT: True})
        return Allowed(folded.state), folded._replace(version=folded.version + 1, facts=erased)
    if folded.state in rules.definition.final_states or (
        event in AGENT_EVENTS and event not in rules.definition.agent_events
    ):
        return NotAllowed(rules.allowed_events(folded.state)), folded
    sla, level, version = folded.sla, folded.escalation_level, folded.policy
    facts = folded.facts
    policy = rules.policy(version)
    if event == "wait":
        if sla.waiting is not None:
            return Blocked("not_waiting", f"the case already waits on the {sla.waiting}"), folded
        reason = data.get("reason")
        if reason not in WAIT_REASONS:
            return Blocked("wait_reason_given", "needs data reason=customer or reason=part"), folded
        sla = clocks.pause(policy, sla, reason, at) if policy else sla._replace(waiting=reason)
    elif event == "resume":
        if sla.waiting is None:
            return Blocked("waiting", "the case is not waiting"), folded
        sla = clocks.resume(sla, at)
    elif event == "replan":
        new = rules.policies.get(str(data.get("policy")))
        if new is None or policy is None:
            return Blocked("policy_known", "needs data policy=<a stored policy version>"), folded
        if rules.with_clocks:
            profile = profile_now(rules, facts)
            sla = clocks.rebase(policy, new, profile, sla, folded.state, at)
        version = new.version
    elif event == RECLASSIFY:
        changes = {k: data[k] for k in RECLASSIFIABLE if isinstance(data.get(k), str)}
        if not changes:
            return Blocked("classification_given", RECLASSIFY_DATA), folded
        changes = {**facts.get(CLASSIFICATION_FACT, {}), **changes}
        facts = MappingProxyType({**facts, CLASSIFICATION_FACT: changes})
        if policy is not None and rules.with_clocks:
            profile = profile_now(rules, facts)
            sla = clocks.rebase(policy, policy, profile, sla, folded.state, at)
    elif event in ("sla_warning", "escalate"):
        named = _fired_deadline(event, data)
        if named is None:
            return Blocked("deadline_named", FIRED_DATA), folded
        sla = clocks.mark_fired(sla, *named)
        level = max(level, named[2])
    elif event == MANUAL_ESCALATION:
        reason = data.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            return Blocked("reason_given", "needs the reason: data reason=<text>"), folded
        top = 0 if policy is None else len(policy.ladder)
        if level >= top:
            return Blocked("below_top", f"the case is already at the top level ({top})"), folded
        level += 1
    elif event == ATTACH_EVENT:
        digest = str(data.get("digest") or "")
        if len(digest) != 64 or data.get("kind") not in EVIDENCE_KINDS:
            return Blocked("evidence_named", ATTACH_DATA), folded
    elif event in TIMER_OF:
        name, cycle = data.get("timer"), data.get("cycle")
        if TIMER_OF[event] != name or type(cycle) is not int:
            return Blocked("timer_named", timers.FIRED_TIMER_DATA), folded
        sla = sla._replace(timers=timers.fired(sla.timers, name, cycle))
    if policy is not None and rules.with_clocks and rules.definition.moves_timers(event):
        profile = profile_now(rules, facts)
        sla = _timers(rules.definition, policy, sla, event, data, at, folded.version + 1, profile)
    decision = Allowed(folded.state)
    return decision, folded._replace(
        version=folded.version + 1, escalation_level=level, facts=facts, sla=sla, policy=version
    )


RECLASSIFY_DATA = "needs data priority=, category=, channel= or tier= (one or more)"
ATTACH_DATA = "needs data digest=<SHA-256 of the file> and kind=test_report, photo or invoice"
FIRED_DATA = "needs data clock=<name>, cycle=<number> and, to escalate, level=<1 or more>"


def _fired_deadline(event: str, data: Mapping[str, Any]) -> tuple[str, int, int] | None:
    """(clock, cycle, level) of a warning or escalation's data; ``None`` if malformed
    (only a history written behind the engine's back can hold such an event)."""
    clock, cycle = data.get("clock"), data.get("cycle")
    level = data.get("level") if event == "escalate" else clocks.WARNING
    if not isinstance(clock, str) or type(cycle) is not int or type(level) is not int:
        return None
    if event == "escalate" and level < 1:
        return None
    return clock, cycle, level
