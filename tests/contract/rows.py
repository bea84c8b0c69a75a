"""Rows the contract tests write through the port by hand: cases, their next events,
fired deadlines and outbox mails."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from casework.storage import GENESIS_HASH
from casework.storage.port import Store
from casework.workflow.transitions import event_row
from tests.support import START

H = timedelta(hours=1)


def case_rows(
    case_id: str, at: Any = START, data: Any = None, **columns: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A case row and its opening event (with ``data``)."""
    event = event_row(case_id, 1, "open", None, "received", "li.na", at, at, data or {},
                      GENESIS_HASH)  # fmt: skip
    case = {
        "id": case_id, "machine": "complaint", "machine_version": 1, "state": "received",
        "version": 1, "owner": "li.na", "branch": "东莞长安店", "channel": "phone",
        "category": "service_delayed", "priority": "normal", "customer": "C-1",
        "contact": None, "summary": "师傅没有按约上门", "received_at": at, "opened_at": at,
        "last_event_at": at, "escalation_level": 0, "attributes": {}, "facts": {},
        "head_hash": event["hash"], "sla_policy": None, "sla": {}, **columns,
    }  # fmt: skip
    return case, event


def opened(store: Store, *ids: str, at: Any = START, **columns: Any) -> None:
    """Open cases with these ids, received at ``at``."""
    with store.transaction() as cursor:
        for case_id in ids:
            store.cases.insert(cursor, *case_rows(case_id, at, **columns))


def next_event(
    store: Store, case_id: str, event: str, to_state: str, at: Any, data: Any = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The event that follows the case's last one, and the case update it makes."""
    case = store.cases.get(case_id)
    assert case is not None
    row = event_row(case_id, case.version + 1, event, case.state, to_state, "li.na", at, at,
                    data or {}, case.head_hash)  # fmt: skip
    update = {"state": to_state, "version": case.version + 1, "owner": case.owner, "facts": {},
              "escalation_level": 0, "last_event_at": at, "head_hash": row["hash"]}  # fmt: skip
    return row, update


def moved(store: Store, case_id: str, event: str, to_state: str, at: Any, data: Any = None) -> None:
    """Append the next event to the case."""
    row, update = next_event(store, case_id, event, to_state, at, data)
    with store.transaction() as cursor:
        assert store.cases.append(cursor, row, update, expected=update["version"] - 1)


def fired_deadlines(store: Store, count: int, case_id: str = "c1") -> list[int]:
    """Ids of ``count`` fired deadlines of the case (a mail names the deadline it is for)."""
    with store.transaction() as cursor:
        store.deadlines.plan_many(
            cursor, [(case_id, ("first_response", 1, n), START) for n in range(count)]
        )
        return [d.id for d in store.deadlines.claim(cursor, START, count)]


def outbox_mail(
    key: str, deadline_id: int | None, level: int = 1, **columns: Any
) -> dict[str, Any]:
    """An outbox mail about case c1 (or ``case_id``)."""
    return {
        "dedupe_key": key, "case_id": "c1", "deadline_id": deadline_id,
        "kind": "warning" if level == 0 else "escalation", "level": level,
        "recipients": ["店长@example.com"], "subject": "", "body": {"case_id": "c1"},
        "next_attempt_at": START, "created_at": START, **columns,
    }  # fmt: skip
