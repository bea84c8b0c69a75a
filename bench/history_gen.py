"""Writing a large, valid history fast: real machine folds and real hash chains, bulk-loaded."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
from sqlalchemy import insert

from bench.common import T0
from casework.machines import COMPLAINT_V1, CaseRules, opened, step
from casework.machines.sla import DEFAULT_DOCUMENT, policy_from_document
from casework.storage import GENESIS_HASH, canonical_event, canonical_json, chain_hash, iso
from casework.storage.database import libpq_url
from casework.storage.tables import policies_table
from casework.workflow import Engine
from casework.workflow.transitions import sla_json

SCRIPT: list[tuple[str, dict[str, Any]]] = [
    ("contact", {"kind": "call"}),
    ("apologise", {}),
    ("note", {"note": "customer called again"}),
    ("confirm_needs", {}),
    ("resolve", {"solution": "replace the pump"}),
    ("reject_solution", {}),
    ("resolve", {"solution": "refund"}),
    ("follow_up", {"satisfaction": 4}),
    ("note", {"note": "closed"}),
]
"""The nine events after opening of every generated case (ten in all)."""
PROFILE = ("priority", "category", "channel", "branch")

OPENING: dict[str, Any] = {
    "customer": "CUST", "channel": "phone", "category": "service_delayed",
    "summary": "Technician late", "contact": None, "branch": "Guangzhou", "priority": "normal",
    "owner": "agent", "attributes": {},
}  # fmt: skip


POLICY = policy_from_document(DEFAULT_DOCUMENT, COMPLAINT_V1.states)
RULES = CaseRules(COMPLAINT_V1, {POLICY.version: POLICY}, {k: OPENING[k] for k in PROFILE})


def _case(n: int) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    case_id = f"{n:016x}"
    at = T0 + timedelta(minutes=n)
    prev = GENESIS_HASH
    rows: list[tuple[Any, ...]] = []
    opening = {**OPENING, "policy": POLICY.version}
    folded = opened(RULES, "agent", at + timedelta(seconds=1), POLICY.version)
    seq_events: list[tuple[str, str | None, str, dict[str, Any]]] = [
        ("open", None, folded.state, opening)
    ]
    for offset, (event, data) in enumerate(SCRIPT, start=2):
        _, after = step(RULES, folded, event, data, at + timedelta(seconds=offset))
        seq_events.append((event, folded.state, after.state, data))
        folded = after
    for seq, (event, source, target, data) in enumerate(seq_events, start=1):
        when = at + timedelta(seconds=seq)
        digest = chain_hash(
            prev, canonical_event(case_id, seq, event, source, target, "agent", when, when, data)
        )
        rows.append((case_id, seq, event, source, target, "agent", when, when, data, prev, digest))
        prev = digest
    case = {
        "id": case_id, "machine": "complaint", "machine_version": 1, "state": folded.state,
        "version": folded.version, "owner": folded.owner, "branch": "Guangzhou",
        "channel": "phone", "category": "service_delayed", "priority": "normal",
        "customer": "CUST", "contact": None, "summary": "Technician late",
        "received_at": at + timedelta(seconds=1), "opened_at": at + timedelta(seconds=1),
        "last_event_at": at + timedelta(seconds=len(seq_events)), "escalation_level": 0,
        "attributes": {}, "facts": dict(folded.facts), "head_hash": prev,
        "sla_policy": POLICY.version, "sla": sla_json(RULES, folded),
    }  # fmt: skip
    return case, rows


def _batches(events: int, size: int = 5000) -> Iterator[tuple[list[dict[str, Any]], list[Any]]]:
    cases = max(1, events // (len(SCRIPT) + 1))
    for start in range(0, cases, size):
        built = [_case(n) for n in range(start, min(cases, start + size))]
        yield [c for c, _ in built], [row for _, rows in built for row in rows]
        done = min(cases, start + size)
        print(f"\r  generating history: {done:,}/{cases:,} cases", end="", file=sys.stderr)
    print(file=sys.stderr)


def generate_history(url: str, events: int) -> None:
    """Fill an empty database at ``url`` with about ``events`` events in valid chains."""
    with Engine.open(url) as engine, engine.db.begin() as conn:  # schema, and the policy
        conn.execute(
            insert(policies_table).values(
                version=POLICY.version,
                name=POLICY.name,
                document=POLICY.document,
                stored_at=T0,
            )
        )
    if url.startswith("sqlite"):
        _load_sqlite(url.removeprefix("sqlite:///"), events)
    else:
        _load_postgres(libpq_url(url), events)


def _load_sqlite(path: str, events: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    for cases, rows in _batches(events):
        conn.execute("BEGIN")
        conn.executemany(
            f"INSERT INTO cases ({', '.join(cases[0])}) VALUES ({', '.join('?' * len(cases[0]))})",
            [tuple(_sqlite_value(v) for v in c.values()) for c in cases],
        )
        conn.executemany(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [tuple(_sqlite_value(v) for v in row) for row in rows],
        )
        conn.execute("COMMIT")
    conn.close()


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, dict):
        return canonical_json(value)
    if hasattr(value, "tzinfo"):
        return iso(value)
    return value


def _load_postgres(url: str, events: int) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("ALTER TABLE events DISABLE TRIGGER events_append_only")
        for cases, rows in _batches(events):
            columns = list(cases[0])
            with conn.cursor().copy(f"COPY cases ({', '.join(columns)}) FROM STDIN") as copy:
                for case in cases:
                    copy.write_row([_pg_value(v) for v in case.values()])
            with conn.cursor().copy("COPY events FROM STDIN") as copy:
                for row in rows:
                    copy.write_row([_pg_value(v) for v in row])
        conn.execute("ALTER TABLE events ENABLE TRIGGER events_append_only")
        conn.execute("ANALYZE")


def _pg_value(value: Any) -> Any:
    return canonical_json(value) if isinstance(value, dict) else value
