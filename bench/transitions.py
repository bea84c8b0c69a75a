"""Transitions per second through ``Engine.fire`` against the floor, eventsourcing and verify.

    python -m bench.transitions [--fires 3000] [--verify-events 1000000] [--backend both]

(a) persisted single-event transitions per second through ``Engine.fire``;
(b) the floor: one transaction updating a case row and appending an event row of the
    same shape with plain SQL on the bare driver, same database settings;
(b2) on SQLite, the least a fire does in Python: the statements of (a) on the bare
    driver (the case row read, the event inserted, the row updated, the webhook
    subscriptions read) with only the row's JSON decoded and encoded again, the step
    looked up in the machine's rules, and the event's canonical bytes hashed; no input
    checks, clocks, records, notifications or log line. (a)/(b2) is what the engine's
    own work costs, (b2)/(b) what its statements and their least Python cost;
(c) the ``eventsourcing`` library's load-change-save of one aggregate (SQLite, WAL,
    synchronous=FULL like ours), on short aggregates (the fires spread over 200 cases)
    and on one aggregate already 1,000 and 10,000 events long, where (a) fires on a case
    of the same length; eventsourcing as configured by default (every event replayed on
    load) and, for information, with a snapshot every 100 events;
(d) ``Engine.verify`` throughput in events per second over a generated history, in
    one process and in two;
(e) the floor of (d): every event row read from one snapshot as verify reads them, and
    a SHA-256 of each row, in one process, measured before and after (d) one process.
(a), (b) and (c) run in interleaved rounds on their own database files, so a slow
moment of the disk hits all three alike; ratios are taken within the run.

Targets, each printed as met or not: (a)/(b) at least 0.8 on SQLite and 0.9 on
PostgreSQL; (a)/(c) at least 1.5 at 1,000 and at 10,000 events an aggregate; (d) one
process at least 100,000 events/s and at least half of (e).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from functools import cache, partial
from typing import Any

import orjson
import psycopg

from bench.common import T0, backends, clock_start, postgres_url, report, sqlite_url, verdict
from bench.history_gen import generate_history
from casework.machines import COMPLAINT_V1
from casework.storage import canonical_event, chain_hash, iso
from casework.storage.database import libpq_url
from casework.workflow import Engine, FixedClock

CASES = 200
LONG_HISTORIES = (1_000, 10_000)
LONG_FIRES = {1_000: 300, 10_000: 60}
"""Fires per subject on an aggregate of each length (eventsourcing replays it per load)."""
SNAPSHOT_EVERY = 100
ROUNDS = 6
FIRE_VS_FLOOR = {"sqlite": 0.8, "postgres": 0.9}
FIRE_VS_EVENTSOURCING = 1.5
VERIFY_RATE = 100_000
VERIFY_VS_FLOOR = 0.5
Step = Callable[[int], None]
"""Performs the next ``n`` transitions of a subject."""


def _open_cases(url: str) -> list[str]:
    with Engine.open(url, clock=FixedClock(clock_start())) as engine:
        return [
            engine.open_case(
                customer="C", channel="phone", category="other", summary="s", actor="a"
            ).id
            for _ in range(CASES)
        ]


def engine_subject(url: str, stack: ExitStack, history: int = 0) -> Step:
    """(a) ``Engine.fire``, round-robin over open cases; with ``history``, on one case
    that already holds that many events."""
    ids = _open_cases(url)[:1] if history else _open_cases(url)
    engine = stack.enter_context(Engine.open(url, clock=FixedClock(clock_start())))
    if history:
        for _ in range(history - 1):
            engine.fire(ids[0], "contact", actor="agent", data={"kind": "call"})
    counter = iter(range(10**9))

    def step(n: int) -> None:
        for _ in range(n):
            engine.fire(
                ids[next(counter) % len(ids)], "contact", actor="agent", data={"kind": "call"}
            )

    return step


def _floor_events(ids: list[str]) -> Iterator[tuple[Any, ...]]:
    """The next event of each case, round-robin, with real chain hashes."""
    versions = dict.fromkeys(ids, 1)
    prev = dict.fromkeys(ids, "0" * 64)
    n = 0
    while True:
        case_id = ids[n % CASES]
        n += 1
        seq = versions[case_id] + 1
        data = {"kind": "call"}
        digest = chain_hash(
            prev[case_id],
            canonical_event(case_id, seq, "contact", "received", "received", "a", T0, T0, data),
        )
        yield (case_id, seq, "contact", "received", "received", "a", T0, T0,
               json.dumps(data), prev[case_id], digest)  # fmt: skip
        versions[case_id] = seq
        prev[case_id] = digest


UPDATE = (
    "UPDATE cases SET state = {m}, version = {m}, owner = {m}, facts = {j}, "
    "escalation_level = {m}, last_event_at = {m}, head_hash = {m} WHERE id = {m} AND version = {m}"
)
INSERT = (
    "INSERT INTO events (case_id, seq, event, from_state, to_state, actor, occurred_at, "
    "recorded_at, data, prev_hash, hash) VALUES ({m}, {m}, {m}, {m}, {m}, {m}, {m}, {m}, {j}, "
    "{m}, {m})"
)


def _bare_sqlite(url: str, stack: ExitStack) -> sqlite3.Connection:
    """A bare sqlite3 connection on ``url`` with the engine's settings, closed with ``stack``."""
    conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    stack.callback(conn.close)
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON"):
        conn.execute(f"PRAGMA {pragma}")
    return conn


def sqlite_floor_subject(url: str, stack: ExitStack) -> Step:
    """(b) on SQLite: BEGIN IMMEDIATE; UPDATE case; INSERT event; COMMIT on bare sqlite3."""
    events = _floor_events(_open_cases(url))
    conn = _bare_sqlite(url, stack)
    update, insert = UPDATE.format(m="?", j="?"), INSERT.format(m="?", j="?")

    def step(n: int) -> None:
        for _ in range(n):
            e = list(next(events))
            e[6] = e[7] = iso(T0)
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(update, ("received", e[1], "a", "{}", 0, e[6], e[10], e[0], e[1] - 1))
            conn.execute(insert, e)
            conn.execute("COMMIT")

    return step


def postgres_floor_subject(url: str, stack: ExitStack) -> Step:
    """(b) on PostgreSQL: the same transaction (with the row lock) on bare psycopg."""
    events = _floor_events(_open_cases(url))
    conn = psycopg.connect(libpq_url(url))
    stack.callback(conn.close)
    update, insert = UPDATE.format(m="%s", j="%s::json"), INSERT.format(m="%s", j="%s::json")

    def step(n: int) -> None:
        for _ in range(n):
            e = next(events)
            with conn.transaction():
                conn.execute("SELECT version FROM cases WHERE id = %s FOR UPDATE", (e[0],))
                conn.execute(update, ("received", e[1], "a", "{}", 0, T0, e[10], e[0], e[1] - 1))
                conn.execute(insert, e)

    return step


LEAST_READ = (
    "SELECT state, version, owner, facts, sla, last_event_at, head_hash, escalation_level "
    "FROM cases WHERE id = ?"
)
LEAST_UPDATE = (
    "UPDATE cases SET state = ?, version = ?, owner = ?, facts = ?, escalation_level = ?, "
    "last_event_at = ?, head_hash = ?, sla = ? WHERE id = ? AND version = ?"
)
WEBHOOKS = "SELECT id, url, events, branch FROM webhooks WHERE removed_at IS NULL ORDER BY id"


def least_fire_subject(url: str, stack: ExitStack) -> Step:
    """(b2) on SQLite: a fire's statements on bare sqlite3 with the least Python between
    them (module docstring)."""
    ids = _open_cases(url)
    conn = _bare_sqlite(url, stack)
    insert = INSERT.format(m="?", j="?")
    rules = COMPLAINT_V1.rules
    counter = iter(range(10**9))

    def step(n: int) -> None:
        for _ in range(n):
            case_id = ids[next(counter) % CASES]
            data = json.dumps({"kind": "call"})
            conn.execute("BEGIN IMMEDIATE")
            state, version, owner, facts, sla, _, head, level = conn.execute(
                LEAST_READ, (case_id,)
            ).fetchone()
            facts, sla = orjson.loads(facts), orjson.loads(sla)
            target = rules[(state, "contact")][0].allowed.target
            at, seq = iso(T0), version + 1
            canonical = canonical_event(
                case_id, seq, "contact", state, target, "agent", at, at, data
            )
            digest = chain_hash(head, canonical)
            conn.execute(
                insert, (case_id, seq, "contact", state, target, "agent", at, at, data, head,
                         digest),
            )  # fmt: skip
            conn.execute(
                LEAST_UPDATE,
                (target, seq, owner, orjson.dumps(facts).decode(), level, at, digest,
                 orjson.dumps(sla).decode(), case_id, version),
            )  # fmt: skip
            conn.execute(WEBHOOKS).fetchall()
            conn.execute("COMMIT")

    return step


@cache
def _complaint_aggregate() -> Any:
    """eventsourcing's aggregate for (c), made once: the library registers it by name."""
    from eventsourcing.domain import Aggregate, event

    class Complaint(Aggregate):  # type: ignore[misc]
        @event("Opened")
        def __init__(self, customer: str) -> None:
            self.customer = customer
            self.contacts = 0

        @event("Contacted")
        def contact(self, kind: str) -> None:
            self.contacts += 1

    return Complaint


def eventsourcing_subject(
    url: str, stack: ExitStack, history: int = 0, snapshot_every: int | None = None
) -> Step:
    """(c) eventsourcing on SQLite: repository.get, one domain event, save; with
    ``history``, on one aggregate that already holds that many events, and with
    ``snapshot_every``, a snapshot taken each time the aggregate reaches a multiple."""
    from eventsourcing.application import Application

    Complaint = _complaint_aggregate()

    class Complaints(Application):  # type: ignore[misc]
        snapshotting_intervals = {Complaint: snapshot_every} if snapshot_every else None

    path = url.removeprefix("sqlite:///")
    app = Complaints(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": path})
    stack.callback(app.close)
    ids = []
    for _ in range(1 if history else CASES):
        aggregate = Complaint(customer="C")
        for _ in range(history - 1):
            aggregate.contact(kind="call")
        app.save(aggregate)  # a snapshot is taken here too when the length is a multiple
        ids.append(aggregate.id)
    with sqlite3.connect(path) as check:
        mode = check.execute("PRAGMA journal_mode").fetchone()[0]
        sync = check.execute("PRAGMA synchronous").fetchone()[0]
    if (mode, sync) != ("wal", 2):
        raise SystemExit(f"eventsourcing's database runs {mode}/{sync}, not wal/FULL")
    counter = iter(range(10**9))

    def step(n: int) -> None:
        for _ in range(n):
            aggregate = app.repository.get(ids[next(counter) % len(ids)])
            aggregate.contact(kind="call")
            app.save(aggregate)

    return step


def interleaved(steps: dict[str, Step], fires: int) -> dict[str, float]:
    """Transitions per second of each subject, measured in alternating rounds."""
    per_round = max(1, fires // ROUNDS)
    spent = dict.fromkeys(steps, 0.0)
    for step in steps.values():
        step(20)  # warm up
    for _ in range(ROUNDS):
        for name, step in steps.items():
            start = time.perf_counter()
            step(per_round)
            spent[name] += time.perf_counter() - start
    return {name: per_round * ROUNDS / seconds for name, seconds in spent.items()}


def floor_rate(engine: Engine) -> float:
    """(e) events per second of reading every event row from one snapshot, as verify
    reads them, and hashing each row with SHA-256: what any check of the history pays."""
    start = time.perf_counter()
    count = 0
    with engine.context.store.audit.snapshot() as streams:
        for row in streams.events:
            hashlib.sha256("\x1f".join(map(str, row)).encode()).hexdigest()
            count += 1
    return count / (time.perf_counter() - start)


def verify_rate(url: str, events: int) -> dict[str, Any]:
    """(d) events per second of ``Engine.verify`` over a generated, valid history, in one
    process and in two, and (e) its floor, before and after the one-process run."""
    generate_history(url, events)
    rates = []
    with Engine.open(url) as engine:
        floors = [floor_rate(engine)]
        for workers in (1, 2):
            start = time.perf_counter()
            result = engine.verify(workers=workers)
            rates.append(result.events / (time.perf_counter() - start))
            if not result.ok:
                raise SystemExit(f"generated history failed verification: {result.problems[:3]}")
            if workers == 1:
                floors.append(floor_rate(engine))
    floor = sum(floors) / len(floors)
    return {
        "verify_events_per_s": rates[0],
        "verify_two_processes_per_s": rates[1],
        "verify_events": result.events,
        "verify_floor_per_s": floor,
        "verify_vs_floor": rates[0] / floor,
    }


def long_histories(lengths: tuple[int, ...]) -> dict[str, float]:
    """(a) against (c) on one aggregate of each length, by default and with snapshots."""
    figures = {}
    for length in lengths:
        subjects: dict[str, Step] = {}
        with ExitStack() as stack:
            for key, make in (
                ("fire", partial(engine_subject, history=length)),
                ("eventsourcing", partial(eventsourcing_subject, history=length)),
                ("snapshots", partial(eventsourcing_subject, history=length,
                                      snapshot_every=SNAPSHOT_EVERY)),
            ):  # fmt: skip
                subjects[key] = make(stack.enter_context(sqlite_url()), stack)
            rates = interleaved(subjects, LONG_FIRES.get(length, 300))
        for key, value in rates.items():
            figures[f"{key}_per_s_at_{length}"] = value
        figures[f"fire_vs_eventsourcing_at_{length}"] = rates["fire"] / rates["eventsourcing"]
        figures[f"fire_vs_snapshots_at_{length}"] = rates["fire"] / rates["snapshots"]
    return figures


def run_backend(
    name: str, fires: int, verify_events: int, with_es: bool, lengths: tuple[int, ...] = ()
) -> dict[str, Any]:
    """Every figure for one database."""
    make_url = sqlite_url if name == "sqlite" else postgres_url
    subjects: dict[str, Callable[[str, ExitStack], Step]] = {"fire": engine_subject}
    subjects["floor"] = sqlite_floor_subject if name == "sqlite" else postgres_floor_subject
    if name == "sqlite":
        subjects["least_fire"] = least_fire_subject
    if with_es and name == "sqlite":
        subjects["eventsourcing"] = eventsourcing_subject
    with ExitStack() as stack:
        steps = {
            key: make(stack.enter_context(make_url()), stack) for key, make in subjects.items()
        }
        rates = interleaved(steps, fires)
    figures: dict[str, Any] = {"backend": name, "fires": fires}
    figures.update({f"{key}_per_s": value for key, value in rates.items()})
    figures["fire_vs_floor"] = rates["fire"] / rates["floor"]
    if "least_fire" in rates:
        figures["fire_vs_least_fire"] = rates["fire"] / rates["least_fire"]
        figures["least_fire_vs_floor"] = rates["least_fire"] / rates["floor"]
    if "eventsourcing" in rates:
        figures["fire_vs_eventsourcing"] = rates["fire"] / rates["eventsourcing"]
        figures.update(long_histories(lengths))
    if verify_events:
        with make_url() as url:
            figures.update(verify_rate(url, verify_events))
    return figures


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--fires", type=int, default=3000, help="transitions per subject")
    parser.add_argument("--verify-events", type=int, default=1_000_000, help="0 to skip (d)")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--no-eventsourcing", action="store_true")
    parser.add_argument(
        "--long-histories",
        default=",".join(map(str, LONG_HISTORIES)),
        help="aggregate lengths for (a) against (c), comma-separated; empty to skip",
    )
    args = parser.parse_args()
    lengths = tuple(int(n) for n in args.long_histories.split(",") if n.strip())
    for backend in backends(args.backend):
        figures = run_backend(
            backend, args.fires, args.verify_events, not args.no_eventsourcing, lengths
        )
        floor_target = FIRE_VS_FLOOR[backend]
        rows = [
            ("(a) Engine.fire", f"{figures['fire_per_s']:,.0f} transitions/s"),
            ("(b) floor, plain SQL", f"{figures['floor_per_s']:,.0f} transactions/s"),
            ("(a)/(b)", f"{figures['fire_vs_floor']:.2f} "
                        f"({verdict(figures['fire_vs_floor'], floor_target)})"),
        ]  # fmt: skip
        if "least_fire_per_s" in figures:
            rows += [
                ("(b2) the least a fire does in Python",
                 f"{figures['least_fire_per_s']:,.0f} transitions/s"),
                ("(b2)/(b), (a)/(b2)", f"{figures['least_fire_vs_floor']:.2f}, "
                                       f"{figures['fire_vs_least_fire']:.2f}"),
            ]  # fmt: skip
        if "eventsourcing_per_s" in figures:
            ratio = figures["fire_vs_eventsourcing"]
            rows += [
                ("(c) eventsourcing", f"{figures['eventsourcing_per_s']:,.0f} load-change-save/s"),
                ("(a)/(c), aggregates of ~15 events", f"{ratio:.2f}"),
            ]
            for length in lengths:
                at = f"_at_{length}"
                ratio = figures[f"fire_vs_eventsourcing{at}"]
                rows += [
                    (f"at {length:,} events: (a)", f"{figures['fire_per_s' + at]:,.0f}/s"),
                    (f"at {length:,} events: (c)",
                     f"{figures['eventsourcing_per_s' + at]:,.0f}/s; with a snapshot every "
                     f"{SNAPSHOT_EVERY}: {figures['snapshots_per_s' + at]:,.0f}/s"),
                    (f"at {length:,} events: (a)/(c)",
                     f"{ratio:.2f} ({verdict(ratio, FIRE_VS_EVENTSOURCING)}); against "
                     f"snapshots {figures['fire_vs_snapshots' + at]:.2f}"),
                ]  # fmt: skip
        if "verify_events_per_s" in figures:
            one, vs_floor = figures["verify_events_per_s"], figures["verify_vs_floor"]
            rows += [
                ("(d) verify, one process",
                 f"{one:,.0f} events/s over {figures['verify_events']:,} events "
                 f"({verdict(one, VERIFY_RATE)})"),
                ("(d) verify, two processes",
                 f"{figures['verify_two_processes_per_s']:,.0f} events/s "
                 "(casework verify's default on two cores)"),
                ("(e) floor: read every row, SHA-256 it",
                 f"{figures['verify_floor_per_s']:,.0f} events/s"),
                ("(d)/(e), one process", f"{vs_floor:.2f} ({verdict(vs_floor, VERIFY_VS_FLOOR)})"),
            ]  # fmt: skip
        for key, target in (("fire_vs_floor", floor_target),
                            *((f"fire_vs_eventsourcing_at_{n}", FIRE_VS_EVENTSOURCING)
                              for n in lengths),
                            ("verify_events_per_s", VERIFY_RATE),
                            ("verify_vs_floor", VERIFY_VS_FLOOR)):  # fmt: skip
            if key in figures:
                figures[f"{key}_target_met"] = figures[key] >= target
        report(f"transitions on {backend}", rows, figures)


if __name__ == "__main__":
    main()
