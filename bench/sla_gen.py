"""Bulk-loading open cases for the SLA benchmark: copies of one real case, re-chained."""

from __future__ import annotations

import sqlite3
import sys
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy import select

from casework.storage import canonical_event, canonical_json, chain_hash, iso
from casework.storage.chain import EVENT_FORMAT, parse_json
from casework.storage.tables import (
    cases_table,
    deadlines_table,
    events_table,
    personal_table,
    subjects_table,
)
from casework.storage.transition_sql import CASE_COLUMNS, EVENT_COLUMNS, JSON_COLUMNS, TIME_COLUMNS
from casework.workflow import Engine
from casework.workflow.privacy.commitments import commit, with_fields

BATCH = 10_000


def add_open_cases(engine: Engine, template_id: str, count: int, prefix: str) -> None:
    """Insert ``count`` copies of case ``template_id`` (its row, opening event, personal
    values and pending deadlines) under new ids, each with a correct hash chain, in bulk:
    ``verify`` finds every copy whole."""
    with engine.db.connect() as conn:
        case = dict(
            conn.execute(select(cases_table).where(cases_table.c.id == template_id)).one()._mapping
        )
        event = dict(
            conn.execute(select(events_table).where(events_table.c.case_id == template_id))
            .one()
            ._mapping
        )
        deadlines = [
            dict(r._mapping)
            for r in conn.execute(
                select(deadlines_table).where(deadlines_table.c.case_id == template_id)
            )
        ]
        personal = [
            (r.field, r.subject_id, r.value, r.secret)
            for r in conn.execute(
                select(personal_table, subjects_table.c.secret)
                .join(subjects_table, subjects_table.c.id == personal_table.c.subject_id)
                .where(personal_table.c.case_id == template_id)
            )
        ]
    url = engine.db.url
    sqlite = url.get_backend_name() == "sqlite"
    if sqlite:
        target: Any = sqlite3.connect(url.database or "", isolation_level=None)
        target.execute("PRAGMA synchronous=OFF")
    else:
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        target = psycopg.connect(dsn)
    try:
        for start in range(0, count, BATCH):
            ids = [f"{prefix}{n:012d}" for n in range(start, min(count, start + BATCH))]
            _write(target, sqlite, case, event, (deadlines, personal), ids)
            print(f"\r  open cases loaded: {start + len(ids):,}/{count:,}", end="", file=sys.stderr)
        print(file=sys.stderr)
        # Measure the steady state, not the aftermath of a bulk load: settle the
        # statistics, hint bits and the write-ahead log before anything is timed.
        if sqlite:
            target.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            target.commit()
            target.autocommit = True
            target.execute("VACUUM ANALYZE")
            target.execute("CHECKPOINT")
    finally:
        target.close()


def _value(column: str, value: Any, sqlite: bool) -> Any:
    if value is None:
        return None
    if column in JSON_COLUMNS and not isinstance(value, str):
        return canonical_json(value)
    return _time(value, sqlite) if column in TIME_COLUMNS else value


def _time(value: Any, sqlite: bool) -> Any:
    """A time as the engine stores it: canonical text on SQLite."""
    return iso(value) if sqlite and isinstance(value, datetime) else value


def _write(
    target: Any,
    sqlite: bool,
    case: dict[str, Any],
    event: dict[str, Any],
    rows_of_case: tuple[list[dict[str, Any]], list[tuple[str, str, str, str]]],
    ids: list[str],
) -> None:
    deadlines, personal = rows_of_case
    case_rows, event_rows, deadline_rows, personal_rows = [], [], [], []
    opening = event["data"]
    opening = parse_json(opening) if isinstance(opening, str) else opening
    form = opening.get("format", EVENT_FORMAT)
    for case_id in ids:
        # the commitments to the personal values name the case they belong to
        commitments = {f: commit(secret, case_id, f, v) for f, _, v, secret in personal}
        data = with_fields(opening, commitments) if commitments else opening
        canonical = canonical_event(
            case_id, 1, event["event"], None, event["to_state"], event["actor"],
            event["occurred_at"], event["recorded_at"], data, form,
        )  # fmt: skip
        digest = chain_hash(event["prev_hash"], canonical)
        row = {**case, "id": case_id, "head_hash": digest}
        case_rows.append(tuple(_value(c, row[c], sqlite) for c in CASE_COLUMNS))
        ev = {**event, "case_id": case_id, "hash": digest, "data": data}
        event_rows.append(tuple(_value(c, ev[c], sqlite) for c in EVENT_COLUMNS))
        for d in deadlines:
            deadline_rows.append(
                (case_id, d["clock"], d["cycle"], d["level"], _time(d["due_at"], sqlite),
                 d["status"])
            )  # fmt: skip
        personal_rows += [(case_id, f, subject, v) for f, subject, v, _ in personal]
    deadline_columns = ("case_id", "clock", "cycle", "level", "due_at", "status")
    personal_columns = ("case_id", "field", "subject_id", "value")
    if sqlite:
        target.execute("BEGIN")
        target.executemany(_insert("cases", CASE_COLUMNS), case_rows)
        target.executemany(_insert("events", EVENT_COLUMNS), event_rows)
        target.executemany(_insert("deadlines", deadline_columns), deadline_rows)
        target.executemany(_insert("personal_data", personal_columns), personal_rows)
        target.execute("COMMIT")
        return
    with target.cursor() as cur:
        for table, columns, rows in (
            ("cases", CASE_COLUMNS, case_rows),
            ("events", EVENT_COLUMNS, event_rows),
            ("deadlines", deadline_columns, deadline_rows),
            ("personal_data", personal_columns, personal_rows),
        ):
            with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
    target.commit()


def _insert(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
