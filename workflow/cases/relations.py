"""Cases related to each other: linked (a repeat, a related complaint) or merged."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

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
    relating = context.store.cases.named_events(EARLIEST, LATEST, ("link", "merge_into"))
    for events in relating.values():
        for e in events:
            other = str(e.data.get("case"))
            if case_id not in (e.case_id, other):
                continue
            kind = "merged" if e.event == "merge_into" else e.data.get("kind") or "linked"
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
    """The data of ``link``/``merge_into`` with the other case named in full; a case
    that does not exist or is not in ``within`` (a branch, if given: answered alike),
    the case itself, or a merged one to merge into, refused."""
    other = resolve(context, str(data.get("case") or ""), within)
    if other == case_id:
        raise InvalidInput(f"case {case_id} cannot be related to itself", field="case")
    target = context.store.cases.get(other)
    if target is None:
        raise CaseNotFound(other)
    if "repeat_of" in data:
        data = {**data, "repeat_of": resolve(context, str(data["repeat_of"] or ""), within)}
    if event == "merge_into" and target.state == "merged":
        raise InvalidInput(
            f"case {other} is merged itself: merge into the case it was merged into",
            field="case",
        )
    return {**data, "case": other}


def repeat_of(context: Context, case: CaseRecord, within: str | None) -> str | None:
    """The latest earlier case of the same customer about the same serial number,
    received within the repeat window (of branch ``within``, if given), if any."""
    serial = case.attributes.get("serial_number")
    if not serial:
        return None
    since = case.received_at - context.settings.repeat_window
    mine = scoped(context, CaseQuery(customer=case.customer, branch=within))
    earlier = [
        c for c in context.store.cases.matching(mine)
        if c.id != case.id and c.attributes.get("serial_number") == serial
        and since <= c.received_at <= case.received_at
    ]  # fmt: skip
    return max(earlier, key=lambda c: (c.received_at, c.id)).id if earlier else None
