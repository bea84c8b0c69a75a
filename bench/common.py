"""Shared pieces of the benchmarks: throwaway databases, timing, reporting."""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

PG_ADMIN = os.environ.get("CASEWORK_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
T0 = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)


@dataclass
class Figure:
    """One measured figure."""

    name: str
    value: float
    unit: str


def rate(count: int, run: Callable[[], None]) -> float:
    """Operations per second of ``run``, which performs ``count`` operations."""
    start = time.perf_counter()
    run()
    return count / (time.perf_counter() - start)


@contextmanager
def sqlite_url() -> Iterator[str]:
    """A SQLite file in a fresh temporary folder."""
    with tempfile.TemporaryDirectory(prefix="casework-bench-") as tmp:
        yield f"sqlite:///{Path(tmp) / 'bench.db'}"


def postgres_available() -> bool:
    """Whether the PostgreSQL server answers."""
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


@contextmanager
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL database, dropped afterwards."""
    name = f"casework_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def clock_start() -> datetime:
    """A start instant safely in the past, so simulated time never runs into the future."""
    return datetime.now(UTC) - timedelta(days=400)


def report(title: str, rows: list[tuple[str, str]], document: dict[str, Any]) -> None:
    """Print a small table and the figures as one JSON line."""
    print(f"\n{title}")
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"  {key.ljust(width)}  {value}")
    print("json: " + json.dumps(document, sort_keys=True))


def verdict(value: float, target: float, *, at_most: bool = False) -> str:
    """``target >= 0.8: met`` (or ``<=`` where ``at_most``), ``not met`` when it is not."""
    met = value <= target if at_most else value >= target
    return f"target {'<=' if at_most else '>='} {target:,g}: {'met' if met else 'NOT MET'}"


def backends(choice: str) -> Iterator[str]:
    """The backends a ``--backend`` choice names; PostgreSQL is skipped, with a line
    saying so, where no server answers."""
    for backend in ["sqlite", "postgres"] if choice == "both" else [choice]:
        if backend == "postgres" and not postgres_available():
            print("postgres: skipped, no server answers")
            continue
        yield backend
