"""``store.deadlines`` in memory: SLA policies and the deadline queue."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from casework.storage.memory.rows import Deadline
from casework.storage.memory.tx import Role, rows_of
from casework.storage.port import DeadlineKey, Listener
from casework.storage.records import DueDeadline
from casework.storage.timestamps import as_utc
from casework.storage.tx import Tx


class MemoryDeadlines(Role):
    """``store.deadlines`` in memory: SLA policies and the deadline queue."""

    def store_policy(
        self, tx: Tx, version: str, name: str, document: Mapping[str, Any], now: datetime
    ) -> None:
        cursor = rows_of(tx)
        as_utc(now)
        cursor.policies.setdefault(version, copy.deepcopy(dict(document)))

    def plan(self, tx: Tx, case_id: str, key: DeadlineKey, due_at: datetime) -> None:
        cursor = rows_of(tx)
        cursor.case_must_exist(case_id, "a deadline")
        due_at = as_utc(due_at)
        found = cursor.deadline(case_id, key)
        if found is None:
            new_id = cursor.next_id()
            cursor.deadlines[new_id] = Deadline(new_id, case_id, key, due_at)
        elif found.status != "fired":  # a fired deadline stays fired
            found.due_at, found.status = due_at, "pending"

    def cancel(self, tx: Tx, case_id: str, key: DeadlineKey) -> None:
        cursor = rows_of(tx)
        found = cursor.deadline(case_id, key)
        if found is not None and found.status == "pending":
            found.status = "cancelled"

    def plan_many(self, tx: Tx, rows: list[tuple[str, DeadlineKey, datetime]]) -> None:
        for case_id, key, due_at in rows:
            self.plan(tx, case_id, key, due_at)

    def cancel_many(self, tx: Tx, rows: list[tuple[str, DeadlineKey]]) -> None:
        for case_id, key in rows:
            self.cancel(tx, case_id, key)

    def announce(self, tx: Tx, due_at: datetime) -> None:
        """No other process shares the rows: nobody to tell."""
        rows_of(tx)
        as_utc(due_at)

    def listen(
        self, heard: Callable[[datetime], None], failed: Callable[[Exception], None]
    ) -> Listener | None:
        return None

    def claim(self, tx: Tx, now: datetime, limit: int) -> list[DueDeadline]:
        cursor = rows_of(tx)
        now = as_utc(now)
        due = sorted(
            (d for d in cursor.deadlines.values() if d.status == "pending" and d.due_at <= now),
            key=lambda d: (d.due_at, d.id),
        )[:limit]
        for deadline in due:
            deadline.status, deadline.fired_at = "fired", now
        return [DueDeadline(d.id, d.case_id, *d.key, d.due_at) for d in due]

    def unclaim(self, tx: Tx, rows: list[tuple[str, datetime, int]]) -> None:
        cursor = rows_of(tx)
        for status, due_at, deadline_id in rows:
            found = cursor.deadlines.get(deadline_id)
            if found is not None:
                found.status, found.due_at, found.fired_at = status, as_utc(due_at), None

    def policies(self) -> dict[str, Any]:
        return copy.deepcopy(self._rows.policies)

    def next_due(self) -> datetime | None:
        pending = [d.due_at for d in self._rows.deadlines.values() if d.status == "pending"]
        return min(pending, default=None)

    def pending_count(self) -> int:
        return sum(d.status == "pending" for d in self._rows.deadlines.values())
