"""Transitions per second through ``Engine.fire`` against the floor, eventsourcing and verify.

    python -m bench.transitions [--fires 3000] [--verify-events 1000000] [--backend both]

(a) persisted single-event transitions per second through ``Engine.fire``;
(b) the floor: one transaction updating a case row and appending an event row of the
    same shape with plain SQL on the bare driver, same database settings;
(c) the ``eventsourcing`` library's load-change-save of one aggregate (SQLite);
(d) ``Engine.verify`` throughput in events per second over a generated history.
Ratios are computed within the run, so the machine's disk speed cancels out.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from typing import Any

import psycopg

from bench.common import T0, clock_start, postgres_available, postgres_url, rate, report, sqlite_url
from bench.history_gen import generate_history
from storage import canonical_event, chain_hash, iso
from workflow import Engine, FixedClock

CASES = 200


def fire_rate(url: str, fires: int) -> float:
    """(a) ``Engine.fire`` transitions per second, round-robin over open cases."""
    clock = FixedClock(clock_start())
    with Engine.open(url, clock=clock) as engine:
        ids = [
            engine.open_case(
                customer="C", channel="phone", category="other", summary="s", actor="a"
            ).id
            for _ in range(CASES)
        ]

        def run() -> None:
            for n in range(fires):
                engine.fire(ids[n % CASES], "contact", actor="agent", data={"kind": "call"})

        return rate(fires, run)


def _event_params(case_id: str, seq: int, prev: str) -> tuple[Any, ...]:
    data = {"kind": "call"}
    digest = chain_hash(
        prev, canonical_event(case_id, seq, "contact", "received", "received", "a", T0, T0, data)
    )
    return (case_id, seq, "contact", "received", "received", "a", iso(T0), iso(T0),
            json.dumps(data), prev, digest)  # fmt: skip


def floor_rate_sqlite(url: str, fires: int) -> float:
    """(b) on SQLite: BEGIN IMMEDIATE; UPDATE case; INSERT event; COMMIT on bare sqlite3."""
    clock = FixedClock(clock_start())
    with Engine.open(url, clock=clock) as engine:
        ids = [
            engine.open_case(
                customer="C", channel="phone", category="other", summary="s", actor="a"
            ).id
            for _ in range(CASES)
        ]
    conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    versions = dict.fromkeys(ids, 1)
    prev = dict.fromkeys(ids, "0" * 64)

    def run() -> None:
        for n in range(fires):
            case_id = ids[n % CASES]
            seq = versions[case_id] + 1
            params = _event_params(case_id, seq, prev[case_id])
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "UPDATE cases SET state = ?, version = ?, owner = ?, facts = ?, "
                "escalation_level = ?, last_event_at = ?, head_hash = ? "
                "WHERE id = ? AND version = ?",
                ("received", seq, "a", "{}", 0, iso(T0), params[-1], case_id, seq - 1),
            )
            conn.execute(
                "INSERT INTO events (case_id, seq, event, from_state, to_state, actor, "
                "occurred_at, recorded_at, data, prev_hash, hash) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                params,
            )
            conn.execute("COMMIT")
            versions[case_id] = seq
            prev[case_id] = params[-1]

    try:
        return rate(fires, run)
    finally:
        conn.close()


def floor_rate_postgres(url: str, fires: int) -> float:
    """(b) on PostgreSQL: the same transaction on bare psycopg."""
    with Engine.open(url, clock=FixedClock(clock_start())) as engine:
        ids = [
            engine.open_case(
                customer="C", channel="phone", category="other", summary="s", actor="a"
            ).id
            for _ in range(CASES)
        ]
    conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
    versions = dict.fromkeys(ids, 1)
    prev = dict.fromkeys(ids, "0" * 64)

    def run() -> None:
        for n in range(fires):
            case_id = ids[n % CASES]
            seq = versions[case_id] + 1
            params = list(_event_params(case_id, seq, prev[case_id]))
            params[6] = params[7] = T0
            with conn.transaction():
                conn.execute("SELECT version FROM cases WHERE id = %s FOR UPDATE", (case_id,))
                conn.execute(
                    "UPDATE cases SET state = %s, version = %s, owner = %s, facts = %s::json, "
                    "escalation_level = %s, last_event_at = %s, head_hash = %s "
                    "WHERE id = %s AND version = %s",
                    ("received", seq, "a", "{}", 0, T0, params[-1], case_id, seq - 1),
                )
                conn.execute(
                    "INSERT INTO events (case_id, seq, event, from_state, to_state, actor, "
                    "occurred_at, recorded_at, data, prev_hash, hash) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::json, %s, %s)",
                    params,
                )
            versions[case_id] = seq
            prev[case_id] = params[-1]

    try:
        return rate(fires, run)
    finally:
        conn.close()


def eventsourcing_rate(directory: str, fires: int) -> float:
    """(c) eventsourcing: repository.get, one domain event, save; SQLite, same settings."""
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate, event

    class Complaint(Aggregate):  # type: ignore[misc]
        @event("Opened")
        def __init__(self, customer: str) -> None:
            self.customer = customer
            self.contacts: list[str] = []

        @event("Contacted")
        def contact(self, kind: str) -> None:
            self.contacts.append(kind)

    class Complaints(Application):  # type: ignore[misc]
        pass

    app = Complaints(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": f"{directory}/es.db"}
    )
    ids = []
    for _ in range(CASES):
        aggregate = Complaint(customer="C")
        app.save(aggregate)
        ids.append(aggregate.id)

    def run() -> None:
        for n in range(fires):
            aggregate = app.repository.get(ids[n % CASES])
            aggregate.contact(kind="call")
            app.save(aggregate)

    return rate(fires, run)


def verify_rate(url: str, events: int) -> tuple[float, int]:
    """(d) events per second of ``Engine.verify`` over a generated, valid history."""
    generate_history(url, events)
    with Engine.open(url) as engine:
        start = time.perf_counter()
        result = engine.verify()
        elapsed = time.perf_counter() - start
    if not result.ok:
        raise SystemExit(f"generated history failed verification: {result.problems[:3]}")
    return result.events / elapsed, result.events


def run_backend(name: str, fires: int, verify_events: int, with_es: bool) -> dict[str, Any]:
    """Every figure for one database."""
    figures: dict[str, Any] = {"backend": name}
    if name == "sqlite":
        with sqlite_url() as url:
            figures["fire_per_s"] = fire_rate(url, fires)
        with sqlite_url() as url:
            figures["floor_per_s"] = floor_rate_sqlite(url, fires)
        if with_es:
            with sqlite_url() as url:
                folder = url.removeprefix("sqlite:///").rsplit("/", 1)[0]
                figures["eventsourcing_per_s"] = eventsourcing_rate(folder, fires)
        with sqlite_url() as url:
            figures["verify_events_per_s"], figures["verify_events"] = verify_rate(
                url, verify_events
            )
    else:
        with postgres_url() as url:
            figures["fire_per_s"] = fire_rate(url, fires)
        with postgres_url() as url:
            figures["floor_per_s"] = floor_rate_postgres(url, fires)
        with postgres_url() as url:
            figures["verify_events_per_s"], figures["verify_events"] = verify_rate(
                url, verify_events
            )
    figures["fire_vs_floor"] = figures["fire_per_s"] / figures["floor_per_s"]
    if "eventsourcing_per_s" in figures:
        figures["fire_vs_eventsourcing"] = figures["fire_per_s"] / figures["eventsourcing_per_s"]
    return figures


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fires", type=int, default=3000, help="transitions per measurement")
    parser.add_argument("--verify-events", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--no-eventsourcing", action="store_true")
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    for backend in backends:
        if backend == "postgres" and not postgres_available():
            print("postgres: skipped, no server answers")
            continue
        figures = run_backend(backend, args.fires, args.verify_events, not args.no_eventsourcing)
        rows = [
            ("(a) Engine.fire", f"{figures['fire_per_s']:,.0f} transitions/s"),
            ("(b) floor, plain SQL", f"{figures['floor_per_s']:,.0f} transactions/s"),
            ("(a)/(b)", f"{figures['fire_vs_floor']:.2f} (target >= 0.60)"),
        ]
        if "eventsourcing_per_s" in figures:
            rows += [
                ("(c) eventsourcing", f"{figures['eventsourcing_per_s']:,.0f} load-change-save/s"),
                ("(a)/(c)", f"{figures['fire_vs_eventsourcing']:.2f} (target >= 1.5)"),
            ]
        rows.append(
            (
                "(d) verify",
                f"{figures['verify_events_per_s']:,.0f} events/s over "
                f"{figures['verify_events']:,} events (target >= 50,000)",
            )
        )
        report(f"transitions on {backend}", rows, figures)


if __name__ == "__main__":
    main()
