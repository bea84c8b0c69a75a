"""Deadline, policy and outbox writes inside a transition's transaction (driver cursor).

Deadlines are keyed by (case, clock, cycle, level): planning a key again moves it
(unless it already fired), cancelling marks it, firing claims it exactly once.
Claiming takes ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several workers share the
due deadlines without waiting on each other; on SQLite the write lock taken at
``BEGIN IMMEDIATE`` serialises them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.chain import canonical_json
from storage.timestamps import as_utc, iso
from storage.transition_sql import TransitionSQL


@dataclass(frozen=True)
class DueDeadline:
    """A claimed deadline: its row id and key, and when it fell due."""

    id: int
    case_id: str
    clock: str
    cycle: int
    level: int
    due_at: datetime


class DeadlineSQL:
    """The statements of deadlines, policies and the outbox for one engine."""

    def __init__(self, sql: TransitionSQL) -> None:
        self.sql = sql
        m = "?" if sql.sqlite else "%s"
        j = "?" if sql.sqlite else "%s::json"
        self._upsert = (
            "INSERT INTO deadlines (case_id, clock, cycle, level, due_at, status) "
            f"VALUES ({m}, {m}, {m}, {m}, {m}, 'pending') "
            "ON CONFLICT (case_id, clock, cycle, level) DO UPDATE "
            "SET due_at = excluded.due_at, status = 'pending' WHERE deadlines.status <> 'fired'"
        )
        self._cancel = (
            "UPDATE deadlines SET status = 'cancelled' WHERE case_id = "
            f"{m} AND clock = {m} AND cycle = {m} AND level = {m} AND status = 'pending'"
        )
        lock = "" if sql.sqlite else " FOR UPDATE SKIP LOCKED"
        self._claim = (
            "SELECT id, case_id, clock, cycle, level, due_at FROM deadlines "
            f"WHERE status = 'pending' AND due_at <= {m} ORDER BY due_at LIMIT {m}{lock}"
        )
        self._fire = (
            f"UPDATE deadlines SET status = 'fired', fired_at = {m} "
            f"WHERE id = {m} AND status = 'pending'"
        )
        self._policy = (
            "INSERT INTO sla_policies (version, name, document, stored_at) "
            f"VALUES ({m}, {m}, {j}, {m}) ON CONFLICT (version) DO NOTHING"
        )
        self._outbox = (
            "INSERT INTO outbox (dedupe_key, case_id, deadline_id, kind, level, recipients, "
            "subject, body, status, attempts, next_attempt_at, created_at) "
            f"VALUES ({m}, {m}, {m}, {m}, {m}, {j}, {m}, {j}, 'pending', 0, {m}, {m}) "
            "ON CONFLICT (dedupe_key) DO NOTHING"
        )

    def _time(self, moment: datetime) -> Any:
        return iso(moment) if self.sql.sqlite else as_utc(moment)

    def plan(self, cursor: Any, case_id: str, key: tuple[str, int, int], due_at: datetime) -> None:
        """Make the deadline ``key`` of the case pending at ``due_at`` (moved if it was)."""
        cursor.execute(self._upsert, (case_id, *key, self._time(due_at)))

    def cancel(self, cursor: Any, case_id: str, key: tuple[str, int, int]) -> None:
        """Cancel the pending deadline ``key`` of the case."""
        cursor.execute(self._cancel, (case_id, *key))

    def claim(self, cursor: Any, now: datetime, limit: int) -> list[DueDeadline]:
        """Pending deadlines due at ``now``, oldest first, locked for this transaction."""
        cursor.execute(self._claim, (self._time(now), limit))
        return [
            DueDeadline(
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                datetime.fromisoformat(row[5]) if isinstance(row[5], str) else as_utc(row[5]),
            )
            for row in cursor.fetchall()
        ]

    def fire(self, cursor: Any, deadline_id: int, fired_at: datetime) -> bool:
        """Mark a claimed deadline fired; ``False`` if it was no longer pending."""
        cursor.execute(self._fire, (self._time(fired_at), deadline_id))
        return bool(cursor.rowcount == 1)

    def store_policy(
        self, cursor: Any, version: str, name: str, document: Mapping[str, Any], now: datetime
    ) -> None:
        """Keep a policy document under its version (once)."""
        cursor.execute(self._policy, (version, name, canonical_json(document), self._time(now)))

    def queue_mail(self, cursor: Any, mail: Mapping[str, Any]) -> None:
        """Queue one outbox row; a second row with the same dedupe key is ignored."""
        cursor.execute(
            self._outbox,
            (
                mail["dedupe_key"], mail["case_id"], mail["deadline_id"], mail["kind"],
                mail["level"], canonical_json(mail["recipients"]), mail["subject"],
                canonical_json(mail["body"]), self._time(mail["next_attempt_at"]),
                self._time(mail["created_at"]),
            ),
        )  # fmt: skip
