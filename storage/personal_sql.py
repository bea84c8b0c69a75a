"""Personal data apart from the history: the values of each case and each customer's
secret (``personal_data``, ``subjects``), found, kept and erased inside a transaction
(driver cursor); and leaving no copy of erased values in the database files.

An erasure deletes the values and the secret, overwrites the case row's copies (the
caller's event does that) and every other copy the database holds: a field of a mail or
webhook body, a mail's recipient or a kept API answer whose value *is* an erased value
(never a value that merely contains one), and an erased value standing as a word in a
delivery's ``last_error``. Afterwards :func:`expunge` leaves no trace in the files:
SQLite overwrites deleted content with zeros (``secure_delete``, set on every
connection) and its write-ahead log is checkpointed and truncated; PostgreSQL keeps old
row versions in its table pages until they are rewritten, so the tables are rewritten
(``VACUUM FULL``). Neither waits long for a reader: when one holds the log or a table,
the compaction stays pending (a mark in ``casework_meta``, written in the erasure's
transaction) until a later :func:`expunge` completes it.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, bindparam, text
from sqlalchemy.exc import OperationalError

from casework.storage.chain import canonical_json
from casework.storage.database import (
    SQLITE_BUSY_TIMEOUT_MS,
    is_pooled,
    read_transaction,
    write_transaction,
)
from casework.storage.dialect import dialect_of
from casework.storage.notify_store import NOTIFY_KIND
from casework.storage.timestamps import UTCDateTime, as_utc, iso
from casework.storage.transition_sql import TransitionSQL, read_json
from casework.storage.tx import Tx, cursor_of

ERASED_TEXT = "[erased]"
"""What stands where an erased value was."""
TOUCHED_TABLES = ("cases", "personal_data", "subjects", "outbox", "idempotency_keys")
"""The tables an erasure writes to, rewritten afterwards on PostgreSQL."""
PENDING_KEY = "erasure_compaction_pending"
"""The ``casework_meta`` key whose value says since when the files of the database hold
erased values still: ``<ISO time> <mark>``, a new mark with each erasure."""
COMPACT_WAIT_MS = 1000
"""How long a compaction waits for a reader (SQLite's log, a PostgreSQL table lock)
before it leaves the work pending: what the API may wait for it, at most."""
HORIZON_WAIT_S = 10.0
"""How long a compaction waits for the transactions older than the erasure to end
(PostgreSQL), holding no lock meanwhile, before it leaves the work pending."""
LOCK_NOT_AVAILABLE = "55P03"
"""PostgreSQL's SQLSTATE when ``lock_timeout`` ran out."""


class SqlPersonalData:
    """:class:`casework.storage.port.PersonalData` on SQLite and PostgreSQL: the statements
    of a transaction on its driver cursor, the compaction and reads on their own."""

    def __init__(self, sql: TransitionSQL) -> None:
        self.sql = sql
        self.mark = m = sql.dialect.mark
        self._find = (
            "SELECT p.subject_id, s.secret FROM personal_data p "
            "JOIN subjects s ON s.id = p.subject_id "
            f"WHERE p.field = 'customer' AND p.value = {m} ORDER BY s.created_at DESC LIMIT 1"
        )
        self._subject = f"INSERT INTO subjects (id, secret, created_at) VALUES ({m}, {m}, {m})"
        self._value = (
            "INSERT INTO personal_data (case_id, field, subject_id, value) "
            f"VALUES ({m}, {m}, {m}, {m})"
        )

    def subject_for(
        self, tx: Tx, customer: str, new: tuple[str, str], now: datetime
    ) -> tuple[str, str]:
        """The subject (id, secret) of the customer named ``customer``; ``new`` stored
        as theirs if they have none yet."""
        cursor = cursor_of(tx)
        cursor.execute(self._find, (customer,))
        row = cursor.fetchone()
        if row is not None:
            return str(row[0]), str(row[1])
        cursor.execute(self._subject, (*new, self.sql.dialect.time(now)))
        return new

    def put(self, tx: Tx, case_id: str, subject_id: str, values: Mapping[str, str]) -> None:
        """Keep a case's personal values, by field."""
        cursor = cursor_of(tx)
        cursor.executemany(
            self._value, [(case_id, name, subject_id, value) for name, value in values.items()]
        )

    def _in(self, values: Sequence[Any]) -> str:
        return ", ".join(self.mark for _ in values)

    def subjects_named(self, tx: Tx, customer: str) -> list[str]:
        """Every subject whose cases name the customer ``customer``."""
        cursor = cursor_of(tx)
        cursor.execute(
            "SELECT DISTINCT subject_id FROM personal_data "
            f"WHERE field = 'customer' AND value = {self.mark} ORDER BY subject_id",
            (customer,),
        )
        return [str(row[0]) for row in cursor.fetchall()]

    def values_of(self, tx: Tx, subjects: Sequence[str]) -> dict[str, dict[str, str]]:
        """The personal values of the subjects' cases: case id -> field -> value."""
        cursor = cursor_of(tx)
        if not subjects:
            return {}
        cursor.execute(
            "SELECT case_id, field, value FROM personal_data "
            f"WHERE subject_id IN ({self._in(subjects)}) ORDER BY case_id, field",
            tuple(subjects),
        )
        found: dict[str, dict[str, str]] = {}
        for case_id, name, value in cursor.fetchall():
            found.setdefault(str(case_id), {})[str(name)] = str(value)
        return found

    def erase(self, tx: Tx, subjects: Sequence[str], cases: Sequence[str],
              values: Iterable[str], now: datetime) -> None:  # fmt: skip
        """Delete the subjects' values and secrets, put :data:`ERASED_TEXT` for the
        ``values`` wherever the outbox rows of ``cases`` (bodies, recipients, the last
        error) or kept API answers hold them, and mark the files' compaction pending.
        The case rows are the caller's to update."""
        cursor = cursor_of(tx)
        if not subjects:
            return
        params = tuple(subjects)
        marks = self._in(params)
        cursor.execute(f"DELETE FROM personal_data WHERE subject_id IN ({marks})", params)
        cursor.execute(f"DELETE FROM subjects WHERE id IN ({marks})", params)
        if cases:  # messages to the customer not sent yet are never sent
            cursor.execute(
                f"DELETE FROM outbox WHERE kind = '{NOTIFY_KIND}' AND status IN "
                f"('pending', 'held', 'sending') AND case_id IN ({self._in(cases)})",
                tuple(cases),
            )
        self._mark_pending(cursor, now)
        gone = {v for v in values if v}
        if not gone:
            return
        j, m = self.sql.dialect.json_mark, self.mark
        if cases:
            cursor.execute(
                f"SELECT id, body, recipients, last_error FROM outbox "
                f"WHERE case_id IN ({self._in(cases)})",
                tuple(cases),
            )
            for row_id, body, recipients, last_error in cursor.fetchall():
                new_body = scrub(read_json(body), gone)
                new_recipients = scrub(read_json(recipients), gone)
                new_error = scrub_text(last_error, gone)
                if (new_body, new_recipients, new_error) != (None, None, None):
                    cursor.execute(
                        f"UPDATE outbox SET body = {j}, recipients = {j}, last_error = {m} "
                        f"WHERE id = {m}",
                        (
                            canonical_json(read_json(body) if new_body is None else new_body),
                            canonical_json(
                                read_json(recipients) if new_recipients is None else new_recipients
                            ),
                            last_error if new_error is None else new_error,
                            row_id,
                        ),
                    )
        cursor.execute("SELECT token_id, key, body FROM idempotency_keys")
        for token_id, key, body in cursor.fetchall():
            scrubbed = scrub(read_json(body), gone, cases=set(cases))
            if scrubbed is not None:
                cursor.execute(
                    f"UPDATE idempotency_keys SET body = {j} WHERE token_id = {m} AND key = {m}",
                    (canonical_json(scrubbed), token_id, key),
                )

    def _mark_pending(self, cursor: Any, now: datetime) -> None:
        """Say the files hold erased values until a compaction after this erasure: the
        first such erasure's time kept, a new mark (so that a compaction begun before
        this erasure committed does not clear it) and, on PostgreSQL, this transaction's
        id (old row versions stay while a snapshot taken before it committed lives)."""
        m = self.mark
        cursor.execute(f"SELECT value FROM casework_meta WHERE key = {m}", (PENDING_KEY,))
        row = cursor.fetchone()
        since = str(row[0]).split(" ", 1)[0] if row is not None else iso(now)
        value = f"{since} {secrets.token_hex(8)}"
        if not self.sql.sqlite:
            cursor.execute("SELECT CAST(pg_current_xact_id() AS text)")
            value += f" {cursor.fetchone()[0]}"
        cursor.execute(f"DELETE FROM casework_meta WHERE key = {m}", (PENDING_KEY,))
        cursor.execute(
            f"INSERT INTO casework_meta (key, value) VALUES ({m}, {m})", (PENDING_KEY, value)
        )

    def compaction_pending(self) -> datetime | None:
        """Since when the files hold erased values still (``None``: since no time)."""
        with self.sql.translating():
            found = _pending(self.sql.engine)
        return None if found is None else found[0]

    def expunge(self) -> str:
        """Leave no copy of deleted values in the database files (after an erasure's
        commit); says what was done. SQLite: the write-ahead log checkpointed and truncated
        (deleted content is zeroed as it is deleted). PostgreSQL: the tables an erasure
        writes to rewritten by ``VACUUM FULL`` (each briefly locked). Neither waits more than
        :data:`COMPACT_WAIT_MS` for a reader: then the compaction stays pending, and the
        answer says so; done, it clears the pending mark (unless an erasure since set a new
        one)."""
        engine = self.sql.engine
        with self.sql.translating():
            pending = _pending(engine)
            if dialect_of(engine).sqlite:
                blocked = _compact_sqlite(engine)
            else:
                erasure = pending[1].split(" ")[2:] if pending is not None else []
                blocked = _compact_postgres(engine, int(erasure[0]) if erasure else None)
            if blocked is not None:
                return f"compaction pending: {blocked}; finish the erasure later"
            if pending is not None:
                with write_transaction(engine) as conn:
                    conn.execute(
                        text("DELETE FROM casework_meta WHERE key = :key AND value = :value"),
                        {"key": PENDING_KEY, "value": pending[1]},
                    )
            if dialect_of(engine).sqlite:
                return "write-ahead log checkpointed and truncated; deleted content zeroed"
            return f"tables rewritten: {', '.join(TOUCHED_TABLES)} (VACUUM FULL)"

    def rows(
        self, case_id: str | None
    ) -> tuple[list[tuple[Any, ...]], dict[str, dict[str, tuple[str, str]]]]:
        """Each format-2 case (id, customer, contact, attributes, facts, opening event's
        data) and its kept values with their secrets: case id -> field -> (value, secret)."""
        with self.sql.reading() as conn:
            where = " AND c.id = :case_id" if case_id is not None else ""
            params = {"case_id": case_id} if case_id is not None else {}
            cases = [
                (*row[:3], *(_json_or_text(value) for value in row[3:6]))
                for row in conn.execute(
                    text(
                        "SELECT c.id, c.customer, c.contact, c.attributes, c.facts, e.data "
                        "FROM cases c JOIN events e ON e.case_id = c.id AND e.seq = 1 "
                        f"WHERE c.event_format = 2{where} ORDER BY c.id"
                    ),
                    params,
                )
            ]
            values: dict[str, dict[str, tuple[str, str]]] = {}
            for row in conn.execute(
                text(
                    "SELECT p.case_id, p.field, p.value, s.secret FROM personal_data p "
                    "LEFT JOIN subjects s ON s.id = p.subject_id"
                    + (" WHERE p.case_id = :case_id" if case_id is not None else "")
                ),
                params,
            ):
                values.setdefault(row[0], {})[row[1]] = (row[2], row[3] or "")
            return cases, values

    def resting_customers(self, resting: Sequence[str], before: datetime) -> list[str]:
        """Customers all of whose cases are of format 2, rest in one of ``resting`` and had
        their last event before ``before``."""
        with self.sql.reading() as conn:
            if not resting:
                return []
            states = ", ".join(f":s{i}" for i in range(len(resting)))
            rows = conn.execute(
                text(
                    "SELECT customer FROM cases WHERE customer <> :erased GROUP BY customer "
                    "HAVING MIN(event_format) = 2 AND MAX(last_event_at) < :before "
                    f"AND SUM(CASE WHEN state IN ({states}) THEN 0 ELSE 1 END) = 0 "
                    "ORDER BY customer"
                ).bindparams(bindparam("before", type_=UTCDateTime())),
                {
                    "erased": ERASED_TEXT,
                    "before": before,
                    **{f"s{i}": s for i, s in enumerate(resting)},
                },
            )
            return [str(row[0]) for row in rows]


def scrub(value: Any, gone: set[str], *, cases: set[str] | None = None) -> Any | None:
    """``value`` (parsed JSON) with every string that equals one in ``gone`` replaced by
    :data:`ERASED_TEXT`, at any depth; ``None`` if nothing was replaced. A string that
    merely contains an erased value is another customer's, and stays. With ``cases``, a
    case (an object with an ``id`` and a ``customer``) not among them is left whole."""
    changed = False

    def walk(item: Any) -> Any:
        nonlocal changed
        if isinstance(item, str):
            if item in gone:
                changed = True
                return ERASED_TEXT
            return item
        if isinstance(item, list):
            return [walk(i) for i in item]
        if isinstance(item, dict):
            if cases is not None and "customer" in item and item.get("id") not in cases:
                return item  # another case, another customer
            return {k: walk(v) for k, v in item.items()}
        return item

    result = walk(value)
    return result if changed else None


_GLUED_BEFORE = r"(?<![0-9A-Za-z_@+.\-])"
_GLUED_AFTER = r"(?![0-9A-Za-z_@+\-]|\.[0-9A-Za-z])"


def scrub_text(value: str | None, gone: set[str]) -> str | None:
    """Free text (a receiver's answer kept as ``last_error``) with each erased value that
    stands as a word of its own replaced by :data:`ERASED_TEXT` (``CUST-1`` is not
    inside ``CUST-12``, ``12`` not inside ``2026-12-05``); ``None`` if nothing was."""
    if not value or not gone:
        return None
    words = "|".join(re.escape(g) for g in sorted(gone, key=len, reverse=True))
    result = re.sub(f"{_GLUED_BEFORE}(?:{words}){_GLUED_AFTER}", ERASED_TEXT, value)
    return None if result == value else result


def _pending(engine: Engine) -> tuple[datetime, str] | None:
    """Since when a compaction is pending, and the mark as stored."""
    with read_transaction(engine) as conn:
        value = conn.execute(
            text("SELECT value FROM casework_meta WHERE key = :key"), {"key": PENDING_KEY}
        ).scalar()
    if value is None:
        return None
    return as_utc(datetime.fromisoformat(str(value).split(" ", 1)[0])), str(value)


def _compact_sqlite(engine: Engine) -> str | None:
    """Checkpoint and truncate the log; what blocked it, if anything did."""
    with engine.connect() as conn:
        conn.exec_driver_sql(f"PRAGMA busy_timeout={COMPACT_WAIT_MS}")
        try:
            busy, _, _ = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
        finally:
            conn.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    return "a reader holds the write-ahead log" if busy else None


_OLDER_SNAPSHOTS = text(
    "SELECT count(*) FROM ("
    " SELECT backend_xmin AS x FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
    " UNION ALL SELECT backend_xid FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
    " UNION ALL SELECT xmin FROM pg_replication_slots"
    " UNION ALL SELECT transaction FROM pg_prepared_xacts) s "
    "WHERE x IS NOT NULL AND age(x) >= age(CAST(CAST(:erasure % 4294967296 AS text) AS xid))"
)
"""How many snapshots and transactions (sessions of any database, replication slots,
prepared transactions) began before the erasure whose transaction id is ``:erasure``
committed: while one lives, ``VACUUM FULL`` must keep the old row versions, erased
values and all (a session starting up takes a snapshot that counts for every database,
and its oldest running transaction may be one of those)."""


def _compact_postgres(engine: Engine, erasure: int | None) -> str | None:
    """``VACUUM FULL`` each touched table once no snapshot from before the erasure (its
    transaction id ``erasure``) lives, never queueing long for a lock (which would hold
    every other request of the table behind it); what blocked it, if anything did.
    Behind a transaction-pooling bouncer no session setting holds, so a table that is
    locked is skipped (``SKIP_LOCKED``), seen by its file node left as it was."""
    pooled = is_pooled(engine)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if erasure is not None:
            deadline = time.monotonic() + HORIZON_WAIT_S
            while conn.execute(_OLDER_SNAPSHOTS, {"erasure": erasure}).scalar_one():
                if time.monotonic() > deadline:
                    return "a transaction older than the erasure is still open"
                time.sleep(0.02)
        if not pooled:
            conn.exec_driver_sql(f"SET lock_timeout = {COMPACT_WAIT_MS}")
        try:
            for table in TOUCHED_TABLES:
                if pooled:
                    node = text("SELECT pg_relation_filenode(CAST(:t AS regclass))")
                    before = conn.execute(node, {"t": table}).scalar()
                    conn.exec_driver_sql(f"VACUUM (FULL, SKIP_LOCKED) {table}")
                    if conn.execute(node, {"t": table}).scalar() == before:
                        return f"a reader holds the table {table}"
                    continue
                try:
                    conn.exec_driver_sql(f"VACUUM FULL {table}")
                except OperationalError as err:
                    if getattr(err.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                        raise
                    return f"a reader holds the table {table}"
        finally:
            if not pooled and not conn.invalidated:
                conn.exec_driver_sql("RESET lock_timeout")
    return None


def _json_or_text(value: Any) -> Any:
    """A JSON column's value; text that is not JSON as it is (verify names its case)."""
    try:
        return read_json(value)
    except ValueError:
        return value
