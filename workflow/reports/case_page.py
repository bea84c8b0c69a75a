"""The case report: one self-contained HTML page an auditor can read without casework.

It shows the case's details, whether its chain verifies, its SLA clocks as bars
against their targets (paused stretches, warnings and escalations marked), and every
event with its actor, time and state change. Everything is derived from the history
through the same fold the engine uses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any

import jinja2

from casework.machines import Folded
from casework.machines.sla import SlaPolicy
from casework.storage import EventRecord
from casework.workflow.cases.reading import get, standing, timeline
from casework.workflow.display.times import local_text, stamped
from casework.workflow.display.zones import zone_name
from casework.workflow.privacy.commitments import is_commitment
from casework.workflow.reports.charts import clock_chart, missing_font_note

if TYPE_CHECKING:
    from casework.workflow.context import Context

PAGES = jinja2.Environment(  # the report pages, case and business alike
    loader=jinja2.PackageLoader("casework.workflow.reports", "templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html",)),
    undefined=jinja2.StrictUndefined,
)


@dataclass(frozen=True)
class Span:
    """A stretch of one clock cycle: counting, or paused."""

    row: str
    start: datetime
    end: datetime
    paused: bool


@dataclass(frozen=True)
class Marker:
    """A point on a clock cycle's row: its target, a warning or an escalation."""

    row: str
    at: datetime
    kind: str
    label: str


def clock_marks(
    steps: Sequence[tuple[EventRecord, Folded]], policy: SlaPolicy | None, now: datetime
) -> tuple[list[Span], list[Marker]]:
    """Spans and markers of every clock cycle, from the case as it stood after each event."""
    spans: list[Span] = []
    markers: list[Marker] = []
    counting: dict[str, datetime] = {}
    paused: dict[str, datetime] = {}
    targets: dict[str, datetime] = {}
    for event, folded in steps:
        at = event.occurred_at
        live = set()
        for clock in folded.sla.clocks:
            if clock.cycle == 0:
                continue
            row = f"{clock.name} #{clock.cycle}"
            live.add(row)
            if clock.counting_since is not None:
                if row in paused:
                    spans.append(Span(row, paused.pop(row), clock.counting_since, True))
                counting.setdefault(row, clock.counting_since)
                target_at = None if policy is None else clock.target_at(policy)
                if target_at is not None:
                    targets[row] = target_at
            elif row in counting:
                spans.append(Span(row, counting.pop(row), at, False))
                if clock.running:
                    paused[row] = at
            if not clock.running and row in paused:
                spans.append(Span(row, paused.pop(row), at, True))
        for row in [r for r in counting if r not in live]:
            spans.append(Span(row, counting.pop(row), at, False))
        if event.event in ("sla_warning", "escalate"):
            row = f"{event.data.get('clock')} #{event.data.get('cycle')}"
            level = int(event.data.get("level", 0))
            kind, label = ("warning", "warning") if level == 0 else ("escalation", f"L{level}")
            markers.append(Marker(row, at, kind, label))
    for row, start in counting.items():
        spans.append(Span(row, start, max(start, now), False))
    for row, start in paused.items():
        spans.append(Span(row, start, max(start, now), True))
    markers += [Marker(row, due, "target", "target") for row, due in targets.items()]
    return spans, markers


def _note(event: EventRecord, words: Mapping[str, Any]) -> str:
    data = event.data if isinstance(event.data, Mapping) else {}
    _, label = words["_"], words["label"]
    if "note" in data:
        return str(data["note"])
    if event.event in ("sla_warning", "escalate"):
        late = words["duration"](float(data.get("late_by_s") or 0))
        clock = label("clock", data.get("clock"))
        return str(_("{clock} level {level}, processed {late} after due", clock=clock,
                     level=data.get("level"), late=late))  # fmt: skip
    hidden = ("policy", "attributes", "contact", "format", "subject")
    shown = {
        label("field", f"{event.event}.{k}"): _value(event.event, k, v, words)
        for k, v in data.items()
        if k not in hidden
    }
    return ", ".join(f"{k}={v}" for k, v in sorted(shown.items())) if shown else ""


VALUE_KINDS = {
    "channel": "channel", "category": "category", "priority": "priority", "remedy": "remedy",
    "product_class": "product_class", "fault_class": "fault_class", "fault": "violation",
    "brand_class": "brand_class", "route.to": "route_unit", "attach.kind": "evidence",
}  # fmt: skip
"""The event data fields whose values are identifiers with labels, by field (or
``event.field``)."""


def _value(event: str, key: str, value: Any, words: Mapping[str, Any]) -> Any:
    """An event data value as the page shows it: a label where it has one."""
    if is_commitment(value):
        return words["_"]("(personal, kept apart)")
    kind = VALUE_KINDS.get(f"{event}.{key}") or VALUE_KINDS.get(key)
    if kind is None or not isinstance(value, str):
        return value
    return words["label"](kind, value)


def case_report(context: Context, case_id: str, zone: tzinfo = UTC, lang: str | None = None) -> str:
    """The HTML page of one case, times as seen in ``zone``, in ``lang`` (``zh`` or
    ``en``, the default)."""
    from casework.workflow.reports.words import page_words

    words = page_words(lang)

    from casework.workflow.audit.verification import verify

    case = get(context, case_id)
    steps = timeline(context, case_id)
    verified = verify(context, case_id)
    now = context.clock.now()
    policy = context.policies.get(case.sla_policy)
    spans, markers = clock_marks(steps, policy, now)
    final = steps[-1][1] if steps else None
    shown: dict[str, Any] = {
        "case": case,
        "received": stamped(case.received_at, zone),
        "generated_at": stamped(now, zone),
        "zone": zone_name(zone),
        "verified": verified,
        "chart": clock_chart(spans, markers, zone),
        "font_note": missing_font_note(),
        "events": [
            {
                "seq": e.seq,
                "at": local_text(e.occurred_at, zone),
                "event": e.event,
                "from_state": e.from_state,
                "to_state": e.to_state,
                "actor": e.actor,
                "note": _note(e, words),
                "system": e.event in ("sla_warning", "escalate"),
            }
            for e, _ in steps
        ],
        "clocks": [] if final is None else _clock_rows(final, policy, now, words["duration"]),
    }
    return PAGES.get_template("case.html").render({**shown, **words})


def _clock_rows(
    folded: Folded, policy: SlaPolicy | None, now: datetime, duration: Callable[[float], str]
) -> list[dict[str, Any]]:
    rows = []
    for clock in standing(policy, folded.sla, now)["clocks"]:
        if clock["cycle"] == 0:
            continue
        rows.append(
            {
                **clock,
                "used": duration(clock["used_s"]),
                "target": duration(clock["target_s"]),
                "remaining": duration(clock["remaining_s"]),
                "overdue": duration(clock["overdue_s"]),
            }
        )
    return rows
