"""The API's cost per request against the number of open cases: 10,000 against 1,000,000.

    python -m bench.open_cases [--backend sqlite|postgres|both] [--small 10000]
                               [--large 1000000] [--seconds 5] [--rounds 3]

For each backend two databases are filled alike, one with ``--small`` open complaints
and one with ``--large`` (bulk-loaded copies of one real case with their hash chains and
pending deadlines, :mod:`bench.sla_gen`), each with 64 more cases the clients post
``note`` events to, and served in turn (SQLite: one process; PostgreSQL: ``--workers 2``, as
:mod:`bench.http` serves them). In interleaved rounds (small, large, small, ...), so
that a slow moment of the machine hits both:

- events per second over HTTP from 8 keep-alive connections, as :mod:`bench.http`
  sends them; the target: the large database's rate at least 0.9x the small one's;
- the server processes' CPU time per request over those rounds, and the
  application's own called in-process (no sockets, no clients): a busy machine
  disturbs these far less than it does the rates.

And once per database, what a request does to it: on SQLite each statement of one
request with its plan (``EXPLAIN QUERY PLAN``: a ``SCAN`` of a table that grows with
the cases is a cost that grows with them); on PostgreSQL the sequential scans of
``cases``, ``events`` and ``deadlines`` and the buffers hit or read per request over
the measured requests (``pg_stat_user_tables``, ``pg_stat_database``).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import psycopg
from sqlalchemy import event

from bench.common import backends, report
from bench.http import (
    SHORT,
    _cpu_s,
    _database,
    _over_http,
    _server_cpu_us,
    _serving,
    asgi_note,
    events_of,
)
from bench.scale import _prepared
from casework.storage.database import libpq_url
from casework.workflow import Engine
from casework.workflow.api.app import create_app

TARGET_RATIO = 0.9
GROWING = ("cases", "events", "deadlines")
"""The tables that grow with the cases: a request must not scan them."""


def _sqlite_plans(url: str, token: str, case_id: str) -> list[str]:
    """Each statement one request runs on SQLite, with its plan's steps."""
    statements: list[str] = []
    with Engine.open(url) as engine:
        engine.db.dispose()  # new connections, each traced
        event.listen(engine.db, "connect", lambda raw, _: raw.set_trace_callback(statements.append))
        app = create_app(engine)
        asyncio.run(asgi_note(app, token, case_id, SHORT))  # the token resolved, the cache warm
        statements.clear()
        asyncio.run(asgi_note(app, token, case_id, SHORT))
        ran, lines = list(statements), []
        with engine.db.connect() as conn:
            for statement in ran:
                lines.append(" ".join(statement.split())[:90])
                if statement.lstrip().upper().startswith(("SELECT", "INSERT", "UPDATE")):
                    for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}"):
                        lines.append(f"    {row[-1]}")
    return lines


def _scans(lines: list[str]) -> list[str]:
    """The plan steps that scan a table growing with the cases."""
    return [
        line.strip()
        for line in lines
        if line.startswith("    SCAN ") and line.split()[1] in GROWING
    ]


_PG_SCANS = "SELECT coalesce(sum(seq_scan), 0) FROM pg_stat_user_tables WHERE relname = ANY(%s)"
_PG_BLOCKS = "SELECT blks_hit + blks_read FROM pg_stat_database WHERE datname = current_database()"


class _PgCounters:
    """Sequential scans of the growing tables and buffers hit or read in one database,
    so far, read on one connection of its own (a new one would add its catalog reads)."""

    def __init__(self, url: str) -> None:
        dsn = libpq_url(url)
        self.conn = psycopg.connect(dsn, autocommit=True)  # each read sees fresh figures

    def read(self) -> tuple[int, int]:
        """The figures once the servers' backends have reported theirs (within a second)."""
        time.sleep(1.5)
        scans = self.conn.execute(_PG_SCANS, (list(GROWING),)).fetchone()
        blocks = self.conn.execute(_PG_BLOCKS).fetchone()
        return int(scans[0] if scans else 0), int(blocks[0] if blocks else 0)


@contextmanager
def _databases(backend: str, sizes: dict[str, int]) -> Iterator[dict[str, str]]:
    with ExitStack() as stack:
        yield {label: stack.enter_context(_database(backend)) for label in sizes}


def run(backend: str, sizes: dict[str, int], seconds: float, rounds: int) -> dict[str, Any]:
    """Measure one backend at each size; its figures (rates: medians of the rounds)."""
    with _databases(backend, sizes) as urls:
        prepared = {label: _prepared(urls[label], count) for label, count in sizes.items()}
        workers = 1 if backend == "sqlite" else 2
        found: dict[str, dict[str, Any]] = {label: {"open": sizes[label]} for label in sizes}
        rates: dict[str, list[float]] = {label: [] for label in sizes}
        cpu: dict[str, list[float]] = {label: [] for label in sizes}
        pg = {label: _PgCounters(url) for label, url in urls.items()} if workers > 1 else {}
        requests, used = dict.fromkeys(sizes, 0), dict.fromkeys(sizes, 0.0)
        scans, buffers = dict.fromkeys(sizes, 0), dict.fromkeys(sizes, 0)
        for _ in range(rounds):
            for label, url in urls.items():  # one server at a time: its connections only
                token, targets = prepared[label]
                with _serving(url, workers) as (base, pid):
                    _over_http(base, token, targets, 1.0)  # warm up
                    events = events_of(url, targets)
                    before = pg[label].read() if pg else (0, 0)
                    cpu_s = _cpu_s(pid)
                    rates[label].append(_over_http(base, token, targets, seconds))
                    used[label] += _cpu_s(pid) - cpu_s
                    after = pg[label].read() if pg else (0, 0)
                    scans[label] += after[0] - before[0]
                    buffers[label] += after[1] - before[1]
                    requests[label] += events_of(url, targets) - events
                cpu[label].append(_server_cpu_us(url, token, targets, SHORT))
        for label, url in urls.items():
            token, targets = prepared[label]
            figures = found[label]
            figures["http_per_s"] = round(statistics.median(rates[label]), 1)
            figures["server_cpu_us"] = round(used[label] / requests[label] * 1e6, 1)
            figures["app_cpu_us"] = round(statistics.median(cpu[label]), 1)
            if pg:
                figures["growing_table_scans"] = scans[label]
                figures["buffers_per_request"] = round(buffers[label] / requests[label], 1)
                pg[label].conn.close()
            else:
                plans = _sqlite_plans(url, token, targets[0])
                figures["statements"] = plans
                figures["growing_table_scans"] = len(_scans(plans))
    return found


def _rows(backend: str, found: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    small, large = found["small"], found["large"]
    ratio = large["http_per_s"] / small["http_per_s"]
    met = "met" if ratio >= TARGET_RATIO else "NOT met"
    rows = [
        (f"{backend}: HTTP events/s, {small['open']:,} / {large['open']:,} open",
         f"{small['http_per_s']:,.0f} / {large['http_per_s']:,.0f} = {ratio:.2f}x "
         f"(target >= {TARGET_RATIO}: {met})"),
        (f"{backend}: server CPU per request, small / large",
         f"{small['server_cpu_us']:,.0f} / {large['server_cpu_us']:,.0f} us "
         f"= {large['server_cpu_us'] / small['server_cpu_us']:.2f}x"),
        (f"{backend}: application CPU per request in-process, small / large",
         f"{small['app_cpu_us']:,.0f} / {large['app_cpu_us']:,.0f} us "
         f"= {large['app_cpu_us'] / small['app_cpu_us']:.2f}x"),
        (f"{backend}: scans of cases/events/deadlines, small / large",
         f"{small['growing_table_scans']} / {large['growing_table_scans']}"),
    ]  # fmt: skip
    if "buffers_per_request" in large:
        buffers = f"{small['buffers_per_request']} / {large['buffers_per_request']}"
        rows.append((f"{backend}: buffers hit or read per request, small / large", buffers))
    return rows


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=5.0, help="per round and size")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    document: dict[str, Any] = {}
    rows: list[tuple[str, str]] = []
    for backend in backends(args.backend):
        found = run(backend, {"small": args.small, "large": args.large}, args.seconds, args.rounds)
        document[backend] = found
        rows += _rows(backend, found)
        if "statements" in found["large"]:
            print(f"\n{backend}: one request's statements at {args.large:,} open cases")
            print("\n".join(f"  {line}" for line in found["large"]["statements"]))
    report("casework HTTP API: cost per request against open cases", rows, document)


if __name__ == "__main__":
    main()
