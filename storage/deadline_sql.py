"""SLA policies and the deadline queue on SQL: the statements of a transaction on its
driver cursor, the reads through SQLAlchemy Core, and wake-ups across processes.

Deadlines are keyed by (case, clock, cycle, level): planning a key again moves it
(unless it already fired), cancelling marks it, firing claims it exactly once.
Claiming takes ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several workers share the
due deadlines without waiting on each other; on SQLite the write lock taken at
``BEGIN IMMEDIATE`` serialises them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from casework.storage.chain import canonical_json, parse_json
from casework.storage.records import DueDeadline
from casework.storage.timestamps import as_utc
from casework.storage.transition_sql import TransitionSQL
from casework.storage.tx import Tx, cursor_of

if TYPE_CHECKING:
    from casework.storage.port import DeadlineKey, Listener


POLICIES = "SELECT version, CAST(document AS TEXT) FROM sla_policies"
"""Every stored policy document as its text (the connection's hook adds a table prefix)."""


class SqlDeadlines:
    """:class:`casework.storage.port.Deadlines` on SQLite and PostgreSQL."""

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

    def _time(self, moment: datetime) -> Any:
        return self.sql.dialect.time(moment)

    def plan(self, tx: Tx, case_id: str, key: DeadlineKey, due_at: datetime) -> None:
        """Make the deadline ``key`` of the case pending at ``due_at`` (moved if it was)."""
        cursor_of(tx).execute(self._upsert, (case_id, *key, self._time(due_at)))

    def cancel(self, tx: Tx, case_id: str, key: DeadlineKey) -> None:
        """Cancel the pending deadline ``key`` of the case."""
        cursor_of(tx).execute(self._cancel, (case_id, *key))

    def claim(self, tx: Tx, now: datetime, limit: int) -> list[DueDeadline]:
        """Claim up to ``limit`` deadlines due at ``now`` (oldest first): they are marked
        fired at ``now`` in this transaction, which must record them or roll back."""
        cursor = cursor_of(tx)
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

    def unclaim(self, tx: Tx, rows: list[tuple[str, datetime, int]]) -> None:
        """Put claimed deadlines back: (status, due_at, id) for each."""
        if rows:
            cursor_of(tx).executemany(self._reset, [(st, self._time(d), i) for st, d, i in rows])

    def plan_many(self, tx: Tx, rows: list[tuple[str, DeadlineKey, datetime]]) -> None:
        """:meth:`plan` for many (case id, key, due_at) at once."""
        if rows:
            cursor_of(tx).executemany(self._upsert, [(c, *k, self._time(d)) for c, k, d in rows])

    def cancel_many(self, tx: Tx, rows: list[tuple[str, DeadlineKey]]) -> None:
        """:meth:`cancel` for many (case id, key) at once."""
        if rows:
            cursor_of(tx).executemany(self._cancel, [(c, *k) for c, k in rows])

    def store_policy(
        self, tx: Tx, version: str, name: str, document: Mapping[str, Any], now: datetime
    ) -> None:
        """Keep a policy document under its version (once)."""
        cursor_of(tx).execute(
            self._policy, (version, name, canonical_json(document), self._time(now))
        )

    def announce(self, tx: Tx, due_at: datetime) -> None:
        """Tell other processes, at commit, that a deadline falls due at ``due_at``
        (PostgreSQL's NOTIFY; on SQLite the safety poll finds it)."""
        if not self.sql.sqlite:
            from casework.storage.notify import NOTIFY, channel_of

            cursor_of(tx).execute(NOTIFY, (channel_of(self.sql.engine), due_at.isoformat()))

    def listen(
        self, heard: Callable[[datetime], None], failed: Callable[[Exception], None]
    ) -> Listener | None:
        """Start hearing other processes' announcements (``None`` on SQLite, and behind a
        bouncer, which cannot keep a LISTEN, unless ``CASEWORK_LISTEN_DATABASE_URL``
        names a direct connection)."""
        if self.sql.sqlite:
            return None
        import os

        from casework.storage.database import is_pooled, libpq_url
        from casework.storage.notify import PlannedListener, channel_of, conninfo

        engine = self.sql.engine
        dsn = os.environ.get("CASEWORK_LISTEN_DATABASE_URL")
        if not dsn and is_pooled(engine):
            return None  # a bouncer cannot keep a LISTEN: the safety poll finds them
        dsn = dsn or conninfo(engine.url)
        dsn = libpq_url(dsn)
        return PlannedListener(dsn, heard, failed, channel_of(engine)).start()

    def policies(self) -> dict[str, Any]:
        """Every stored SLA policy document by version (one that is not JSON as its text,
        for the caller to name as damaged). A plain statement: the table definitions
        (and the ORM under them, a fifth of a second to import) are not loaded for it, so
        ``verify`` runs without them."""
        with self.sql.reading() as conn:
            rows = conn.exec_driver_sql(POLICIES)
            found: dict[str, Any] = {}
            for version, document in rows:
                try:
                    found[version] = parse_json(document)
                except ValueError:
                    found[version] = document
            return found

    def next_due(self) -> datetime | None:
        """When the earliest pending deadline falls due (``None`` if none is pending)."""
        from casework.storage.tables import deadlines_table

        with self.sql.reading() as conn:
            query = select(deadlines_table.c.due_at).where(deadlines_table.c.status == "pending")
            value = conn.execute(
                query.order_by(deadlines_table.c.due_at).limit(1)
            ).scalar_one_or_none()
            return value if isinstance(value, datetime) else None

    def pending_count(self) -> int:
        """How many deadlines are pending."""
        from casework.storage.tables import deadlines_table

        with self.sql.reading() as conn:
            query = select(func.count()).where(deadlines_table.c.status == "pending")
            return int(conn.execute(query).scalar_one())
