"""Personal data apart from the history: the values of each case and each customer's
secret (``personal_data``, ``subjects``), found, kept and erased inside a transaction
(driver cursor); and leaving no copy of erased values in the database files.

An erasure deletes the values and the secret, overwrites the case row's copies (the
caller's event does that) and every other copy the database holds, in mail and webhook
bodies and kept API answers. Afterwards :func:`expunge` leaves no trace in the files:
SQLite overwrites deleted content with zeros (``secure_delete``, set on every
connection) and its write-ahead log is checkpointed and truncated; PostgreSQL keeps old
row versions in its table pages until they are rewritten, so the tables are rewritten
(``VACUUM FULL``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, text

from casework.storage.chain import canonical_json
from casework.storage.dialect import dialect_of
from casework.storage.timestamps import UTCDateTime
from casework.storage.transition_sql import TransitionSQL, read_json

ERASED_TEXT = "[erased]"
"""What stands where an erased value was."""
TOUCHED_TABLES = ("cases", "personal_data", "subjects", "outbox", "idempotency_keys")
"""The tables an erasure writes to, rewritten afterwards on PostgreSQL."""


class PersonalSQL:
    """The statements of personal data for one engine."""

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
        self, cursor: Any, customer: str, new: tuple[str, str], now: datetime
    ) -> tuple[str, str]:
        """The subject (id, secret) of the customer named ``customer``; ``new`` stored
        as theirs if they have none yet."""
        cursor.execute(self._find, (customer,))
        row = cursor.fetchone()
        if row is not None:
            return str(row[0]), str(row[1])
        cursor.execute(self._subject, (*new, self.sql.dialect.time(now)))
        return new

    def put(self, cursor: Any, case_id: str, subject_id: str, values: Mapping[str, str]) -> None:
        """Keep a case's personal values, by field."""
        cursor.executemany(
            self._value, [(case_id, name, subject_id, value) for name, value in values.items()]
        )

    def _in(self, values: Sequence[Any]) -> str:
        return ", ".join(self.mark for _ in values)

    def subjects_named(self, cursor: Any, customer: str) -> list[str]:
        """Every subject whose cases name the customer ``customer``."""
        cursor.execute(
            "SELECT DISTINCT subject_id FROM personal_data "
            f"WHERE field = 'customer' AND value = {self.mark} ORDER BY subject_id",
            (customer,),
        )
        return [str(row[0]) for row in cursor.fetchall()]

    def values_of(self, cursor: Any, subjects: Sequence[str]) -> dict[str, dict[str, str]]:
        """The personal values of the subjects' cases: case id -> field -> value."""
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

    def erase(self, cursor: Any, subjects: Sequence[str], cases: Sequence[str],
              values: Iterable[str]) -> None:  # fmt: skip
        """Delete the subjects' values and secrets, and put :data:`ERASED_TEXT` for the
        ``values`` wherever mail, webhook bodies (of ``cases``) or kept API answers
        hold them. The case rows are the caller's to update."""
        if not subjects:
            return
        params = tuple(subjects)
        marks = self._in(params)
        cursor.execute(f"DELETE FROM personal_data WHERE subject_id IN ({marks})", params)
        cursor.execute(f"DELETE FROM subjects WHERE id IN ({marks})", params)
        gone = {v for v in values if v}
        if not gone:
            return
        j = self.sql.dialect.json_mark
        if cases:
            cursor.execute(
                f"SELECT id, body FROM outbox WHERE case_id IN ({self._in(cases)})", tuple(cases)
            )
            for row_id, body in cursor.fetchall():
                scrubbed = scrub(read_json(body), gone)
                if scrubbed is not None:
                    cursor.execute(
                        f"UPDATE outbox SET body = {j} WHERE id = {self.mark}",
                        (canonical_json(scrubbed), row_id),
                    )
        cursor.execute("SELECT token_id, key, body FROM idempotency_keys")
        for token_id, key, body in cursor.fetchall():
            scrubbed = scrub(read_json(body), gone)
            if scrubbed is not None:
                cursor.execute(
                    f"UPDATE idempotency_keys SET body = {j} "
                    f"WHERE token_id = {self.mark} AND key = {self.mark}",
                    (canonical_json(scrubbed), token_id, key),
                )


def scrub(value: Any, gone: set[str]) -> Any | None:
    """``value`` with every string in ``gone`` (or containing one) replaced by
    :data:`ERASED_TEXT`, at any depth; ``None`` if nothing was replaced."""
    changed = False

    def walk(item: Any) -> Any:
        nonlocal changed
        if isinstance(item, str):
            if any(g in item for g in gone):
                changed = True
                return ERASED_TEXT
            return item
        if isinstance(item, list):
            return [walk(i) for i in item]
        if isinstance(item, dict):
            return {k: walk(v) for k, v in item.items()}
        return item

    result = walk(value)
    return result if changed else None


def expunge(engine: Engine) -> str:
    """Leave no copy of deleted values in the database files (after an erasure's
    commit); says what was done. SQLite: the write-ahead log checkpointed and truncated
    (deleted content is zeroed as it is deleted). PostgreSQL: the tables an erasure
    writes to rewritten by ``VACUUM FULL`` (each briefly locked)."""
    if dialect_of(engine).sqlite:
        with engine.connect() as conn:
            busy, _, _ = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
        if busy:
            return "the write-ahead log is still in use by another process: run again later"
        return "write-ahead log checkpointed and truncated; deleted content zeroed"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in TOUCHED_TABLES:
            conn.execute(text(f"VACUUM FULL {table}"))
    return f"tables rewritten: {', '.join(TOUCHED_TABLES)} (VACUUM FULL)"


def _json_or_text(value: Any) -> Any:
    """A JSON column's value; text that is not JSON as it is (verify names its case)."""
    try:
        return read_json(value)
    except ValueError:
        return value


def personal_rows(
    conn: Connection, case_id: str | None
) -> tuple[list[tuple[Any, ...]], dict[str, dict[str, tuple[str, str]]]]:
    """Each format-2 case (id, customer, contact, attributes, facts, opening event's
    data) and its kept values with their secrets: case id -> field -> (value, secret)."""
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


def resting_customers(conn: Connection, resting: Sequence[str], before: datetime) -> list[str]:
    """Customers all of whose cases are of format 2, rest in one of ``resting`` and had
    their last event before ``before``."""
    if not resting:
        return []
    states = ", ".join(f":s{i}" for i in range(len(resting)))
    rows = conn.execute(
        text(
            "SELECT customer FROM cases WHERE customer <> :erased GROUP BY customer "
            "HAVING MIN(event_format) = 2 AND MAX(last_event_at) < :before "
            f"AND SUM(CASE WHEN state IN ({states}) THEN 0 ELSE 1 END) = 0 ORDER BY customer"
        ).bindparams(bindparam("before", type_=UTCDateTime())),
        {"erased": ERASED_TEXT, "before": before, **{f"s{i}": s for i, s in enumerate(resting)}},
    )
    return [str(row[0]) for row in rows]
