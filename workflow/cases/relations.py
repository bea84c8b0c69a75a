"""Cases related to each other: linked (a repeat, a related complaint) or merged."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from casework.machines import MachineRegistry, Relations, RepeatRule
from casework.storage import CaseRecord, iso
from casework.storage.records import CaseQuery
from casework.workflow.cases.reading import get, resolve, scoped
from casework.workflow.clock import EARLIEST, LATEST
from casework.workflow.errors import CaseNotFound, InvalidInput

if TYPE_CHECKING:
    from casework.workflow.context import Context


def related(context: Context, case_id: str) -> list[dict[str, Any]]:
    """The cases ``case_id`` is linked to or merged with, either way, oldest first:
    each with the event that relates them (case, number, event, kind, when)."""
    case_id = get(context, case_id).id
    found = []
    merges = {r.merge for r in _relations(context.registry)}
    names = relating_events(context.registry)
    relating = context.store.cases.named_events(EARLIEST, LATEST, names)
    for events in relating.values():
        for e in events:
            other = str(e.data.get("case"))
            if case_id not in (e.case_id, other):
                continue
            kind = "merged" if e.event in merges else e.data.get("kind") or "linked"
            found.append({
                "case": other if e.case_id == case_id else e.case_id,
                "relation": kind,
                "direction": "to" if e.case_id == case_id else "from",
                "event": {"case_id": e.case_id, "seq": e.seq, "event": e.event,
                          "at": iso(e.occurred_at), "actor": e.actor},
            })  # fmt: skip
    return sorted(found, key=lambda r: (r["event"]["at"], r["event"]["case_id"]))


def other_case(
    context: Context, case_id: str, event: str, data: Mapping[str, Any], within: str | None
) -> dict[str, Any]:
    """The data of a relating event (``link``, ``merge_into``) with the other case named
    in full; a case that does not exist or is not in ``within`` (a branch, if given:
    answered alike), the case itself, or a merged one to merge into, refused."""
    other = resolve(context, str(data.get("case") or ""), within)
    if other == case_id:
        raise InvalidInput(f"case {case_id} cannot be related to itself", field="case")
    target = context.store.cases.get(other)
    if target is None:
        raise CaseNotFound(other)
    if "repeat_of" in data:
        data = {**data, "repeat_of": resolve(context, str(data["repeat_of"] or ""), within)}
    merged = {r.merged for r in _relations(context.registry) if r.merge == event}
    if target.state in merged:
        raise InvalidInput(
            f"case {other} is merged itself: merge into the case it was merged into",
            field="case",
        )
    return {**data, "case": other}


def relating_events(registry: MachineRegistry) -> tuple[str, ...]:
    """The events any installed machine relates cases with, in a stable order."""
    return tuple(sorted({e for r in _relations(registry) for e in r.events}))


def _relations(registry: MachineRegistry) -> list[Relations]:
    return [d.relations for d in registry if d.relations is not None]


def repeat_of(
    context: Context, rule: RepeatRule, case: CaseRecord, within: str | None
) -> str | None:
    """The latest earlier case of the same customer with the same value of the
    ``rule``'s attribute, received within its window (of branch ``within``, if given)."""
    attribute = rule.attribute
    value = case.attributes.get(attribute)
    if not value:
        return None
    since = case.received_at - (context.settings.repeat_window or rule.window)
    mine = scoped(context, CaseQuery(customer=case.customer, branch=within))
    earlier = [
        c for c in context.store.cases.matching(mine)
        if c.id != case.id and c.attributes.get(attribute) == value
        and since <= c.received_at <= case.received_at
    ]  # fmt: skip
    return max(earlier, key=lambda c: (c.received_at, c.id)).id if earlier else None
