"""How a case stands against its SLA targets for the people working it: late by how
much, or how long is left to the breach (never to a warning's 75 %), and the order of
a queue: breached first (the latest first), then by the next breach."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from casework.machines.clocks import state_from_json
from casework.storage.records import CaseRecord
from casework.workflow.console.texts import TEXTS
from casework.workflow.engine import Engine


@dataclass(frozen=True)
class Standing:
    """A case's most pressing clock: ``late`` past its target, else its ``breach_at``
    (``None``: no clock counting towards a target)."""

    case: CaseRecord
    clock: str | None
    late: timedelta | None
    breach_at: datetime | None

    @property
    def order(self) -> tuple[int, float]:
        """Sort key: breached (latest first), then the next breach, then the rest."""
        if self.late is not None:
            return (0, -self.late.total_seconds())
        if self.breach_at is not None:
            return (1, self.breach_at.timestamp())
        return (2, self.case.received_at.timestamp())


def standing(engine: Engine, case: CaseRecord, now: datetime) -> Standing:
    """Where ``case`` stands at ``now``: its latest breached clock, or its next breach."""
    policy = engine.policies.get(case.sla_policy)
    if policy is None:
        return Standing(case, None, None, None)
    worst: tuple[str, timedelta] | None = None
    nearest: tuple[str, datetime] | None = None
    for clock in state_from_json(case.sla).clocks:
        if not clock.running or clock.cycle == 0:
            continue
        late = clock.used_at(now, policy) - clock.target
        if late > timedelta(0):
            if worst is None or late > worst[1]:
                worst = (clock.name, late)
            continue
        at = clock.target_at(policy)
        if at is not None and (nearest is None or at < nearest[1]):
            nearest = (clock.name, at)
    if worst is not None:
        return Standing(case, worst[0], worst[1], None)
    if nearest is not None:
        return Standing(case, nearest[0], None, nearest[1])
    return Standing(case, None, None, None)


def queue_order(engine: Engine, cases: Iterable[CaseRecord], now: datetime) -> list[Standing]:
    """``cases`` as a queue shows them: breached first (the latest first), then by the
    next breach, then those with no clock running (oldest first)."""
    return sorted((standing(engine, c, now) for c in cases), key=lambda s: s.order)


def span(seconds: float, lang: str) -> str:
    """A duration as a person reads it: ``2天 5小时 59分`` / ``2d 5h 59m``."""
    whole = int(abs(seconds))
    days, hours, minutes = whole // 86400, whole % 86400 // 3600, whole % 3600 // 60
    units = ("天", "小时", "分") if lang == "zh" else ("d", "h", "m")
    parts = []
    if days:
        parts.append(f"{days}{units[0]}")
    if days or hours:
        parts.append(f"{hours}{units[1]}")
    parts.append(f"{minutes}{units[2]}")
    return " ".join(parts)


def countdown(lang: str, found: Standing, now: datetime) -> tuple[str, bool]:
    """How late ``found`` is, or how long is left to its breach: (the words, late)."""
    texts = TEXTS[lang]
    if found.late is not None:
        return texts["late_by"].format(span=span(found.late.total_seconds(), lang)), True
    if found.breach_at is not None:
        left = (found.breach_at - now).total_seconds()
        return texts["left"].format(span=span(left, lang)), False
    return texts["no_clock"], False
