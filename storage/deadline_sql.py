"""Deadline, policy, outbox and webhook statements inside a transaction (driver cursor).

Deadlines are keyed by (case, clock, cycle, level): planning a key again moves it
(unless it already fired), cancelling marks it, firing claims it exactly once.
Claiming takes ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several workers share the
due deadlines without waiting on each other; on SQLite the write lock taken at
``BEGIN IMMEDIATE`` serialises them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from casework.storage.chain import canonical_json
from casework.storage.records import DueDeadline
from casework.storage.timestamps import as_utc
from casework.storage.transition_sql import TransitionSQL, read_json


class DeadlineSQL:
    """The statements of deadlines, policies and the outbox for one engine."""

    def __init__(self, sql: TransitionSQL) -> None:
        self.sql = sql
        m, j = sql.dialect.mark, sql.dialect.json_mark
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
        lock = sql.dialect.skip_locked
        self._claim = (
            f"UPDATE deadlines SET status = 'fired', fired_at = {m} WHERE id IN ("
            f"SELECT id FROM deadlines WHERE status = 'pending' AND due_at <= {m} "
            f"ORDER BY due_at LIMIT {m}{lock}) "
            "RETURNING id, case_id, clock, cycle, level, due_at"
        )
        self._reset = (
            f"UPDATE deadlines SET status = {m}, due_at = {m}, fired_at = NULL WHERE id = {m}"
        )
        self._policy = (
            "INSERT INTO sla_policies (version, name, document, stored_at) "
            f"VALUES ({m}, {m}, {j}, {m}) ON CONFLICT (version) DO NOTHING"
        )
        self._outbox = (
            "INSERT INTO outbox (dedupe_key, case_id, deadline_id, kind, level, recipients, "
            "body, status, attempts, next_attempt_at, created_at) "
            f"VALUES ({m}, {m}, {m}, {m}, {m}, {j}, {j}, 'pending', 0, {m}, {m}) "
            "ON CONFLICT (dedupe_key) DO NOTHING"
        )
        self._targets = (
            "SELECT id, url, events, branch FROM webhooks WHERE removed_at IS NULL ORDER BY id"
        )

    def _time(self, moment: datetime) -> Any:
        return self.sql.dialect.time(moment)

    def plan(self, cursor: Any, case_id: str, key: tuple[str, int, int], due_at: datetime) -> None:
        """Make the deadline ``key`` of the case pending at ``due_at`` (moved if it was)."""
        cursor.execute(self._upsert, (case_id, *key, self._time(due_at)))

    def cancel(self, cursor: Any, case_id: str, key: tuple[str, int, int]) -> None:
        """Cancel the pending deadline ``key`` of the case."""
        cursor.execute(self._cancel, (case_id, *key))

    def claim(self, cursor: Any, now: datetime, limit: int) -> list[DueDeadline]:
        """Claim up to ``limit`` deadlines due at ``now`` (oldest first): they are marked
        fired at ``now`` in this transaction, which must record them or roll back."""
        cursor.execute(self._claim, (self._time(now), self._time(now), limit))
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

    def unclaim(self, cursor: Any, rows: list[tuple[str, datetime, int]]) -> None:
        """Put claimed deadlines back: (status, due_at, id) for each."""
        if rows:
            cursor.executemany(self._reset, [(st, self._time(d), i) for st, d, i in rows])

    def plan_many(
        self, cursor: Any, rows: list[tuple[str, tuple[str, int, int], datetime]]
    ) -> None:
        """:meth:`plan` for many (case id, key, due_at) at once."""
        if rows:
            cursor.executemany(self._upsert, [(c, *k, self._time(d)) for c, k, d in rows])

    def cancel_many(self, cursor: Any, rows: list[tuple[str, tuple[str, int, int]]]) -> None:
        """:meth:`cancel` for many (case id, key) at once."""
        if rows:
            cursor.executemany(self._cancel, [(c, *k) for c, k in rows])

    def store_policy(
        self, cursor: Any, version: str, name: str, document: Mapping[str, Any], now: datetime
    ) -> None:
        """Keep a policy document under its version (once)."""
        cursor.execute(self._policy, (version, name, canonical_json(document), self._time(now)))

    def queue_mails(self, cursor: Any, mails: Sequence[Mapping[str, Any]]) -> None:
        """Queue outbox rows; a second row with the same dedupe key is ignored."""
        if not mails:
            return
        cursor.executemany(
            self._outbox,
            [
                (
                    mail["dedupe_key"],
                    mail["case_id"],
                    mail.get("deadline_id"),
                    mail["kind"],
                    mail["level"],
                    canonical_json(mail["recipients"]),
                    canonical_json(mail["body"]),
                    self._time(mail["next_attempt_at"]),
                    self._time(mail["created_at"]),
                )
                for mail in mails
            ],
        )

    def webhook_targets(self, cursor: Any) -> list[tuple[str, str, tuple[str, ...], str | None]]:
        """The live webhook subscriptions: (id, url, the events each asked for, the
        branch it hears, or none for every branch)."""
        cursor.execute(self._targets)
        return [(row[0], row[1], tuple(read_json(row[2])), row[3]) for row in cursor.fetchall()]
