"""Several workers and API processes on one PostgreSQL primary, against one of each.

    python -m bench.scale [--open 1000000] [--due 100000] [--seconds 15]

A database with ``--open`` open complaints is given ``--due`` more whose breach
deadlines are due before each measurement of ``--seconds``: ``casework worker``
processes fire the due breaches and/or ``wrk`` posts events to ``casework serve``
processes (8 keep-alive connections, split between them). Each comparison runs one
process against several:

- workers alone: 1 worker against 4;
- the API alone: 1 ``serve --workers 1`` against 2;
- both at once: 1 worker and 1 serve against 4 workers and 2 serves.

It prints breaches fired per second and transitions (API events) per second, and the
ratio of several processes to one. On this project's 2-core machine the primary, the load
generator and every casework process share two cores: the ratios say what more
processes buy when the primary is the limit.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from bench.common import postgres_available, postgres_url, report
from bench.http import _over_http, _serve
from bench.sla import _open, policy
from bench.sla_gen import add_open_cases
from casework.storage.tables import events_table
from casework.workflow import Engine
from casework.workflow.access.tokens import issue


def _prepared(url: str, open_cases: int) -> tuple[str, list[str]]:
    """Fill the database with open cases; an agent token and cases to post events to."""
    now = datetime.now(UTC)
    with Engine.open(url, config=policy(24 * 3600)) as engine:
        template = _open(engine, now)
        add_open_cases(engine, template, open_cases - 1, "open-")
        token = issue(engine.context.store, "li.na", "agent", None, now).token
        targets = [_open(engine, now) for _ in range(64)]
    return token, targets


def _make_due(url: str, due: int, prefix: str) -> None:
    """``due`` more cases whose breach deadline is due now."""
    with Engine.open(url, config=policy(24 * 3600)) as engine:
        late = _open(engine, datetime.now(UTC) - timedelta(hours=25))
        add_open_cases(engine, late, due - 1, prefix)
        with engine.db.connect() as conn:
            conn.exec_driver_sql("ANALYZE")


@contextmanager
def _workers(url: str, count: int) -> Iterator[None]:
    env = {**os.environ, "CASEWORK_DATABASE_URL": url}
    command = [sys.executable, "-m", "casework.workflow.cli", "worker", "--poll", "1", "--no-mail",
               "--no-webhooks"]  # fmt: skip
    out = subprocess.DEVNULL
    children = [
        subprocess.Popen(command, env=env, stdout=out, stderr=out)  # noqa: S603
        for _ in range(count)
    ]
    try:
        yield
    finally:
        for child in children:
            child.send_signal(signal.SIGTERM)
        for child in children:
            child.wait(60)


def _fired(url: str) -> int:
    with Engine.open(url) as engine, engine.db.connect() as conn:
        return int(conn.execute(
            select(func.count()).select_from(events_table).where(events_table.c.event == "escalate")
        ).scalar_one())  # fmt: skip


def measure(url: str, workers: int, servers: int, seconds: float, token: str,
            targets: list[str]) -> dict[str, float]:  # fmt: skip
    """Breaches/s of ``workers`` worker processes and API transitions/s of ``servers``
    serve processes, side by side for ``seconds`` (once every process has started)."""
    with ExitStack() as stack:
        bases = [stack.enter_context(_serve(url, 1)) for _ in range(servers)]
        stack.enter_context(_workers(url, workers))
        time.sleep(3 if workers else 0)  # the workers' start-up is not theirs to count
        before, start = _fired(url), time.perf_counter()
        rates: list[float] = []

        def load(base: str, cases: list[str]) -> None:
            rates.append(_over_http(base, token, cases, seconds))

        share = max(1, len(targets) // max(servers, 1))
        threads = [threading.Thread(target=load, args=(b, targets[i * share:(i + 1) * share]))
                   for i, b in enumerate(bases)]  # fmt: skip
        for thread in threads:
            thread.start()
        if not threads:
            time.sleep(seconds)
        for thread in threads:
            thread.join()
        fired = _fired(url) - before
        elapsed = time.perf_counter() - start
    return {"breaches_per_s": fired / elapsed, "transitions_per_s": sum(rates)}


RUNS = (
    ("workers alone", 1, 0, 4, 0),
    ("API alone", 0, 1, 0, 2),
    ("both", 1, 1, 4, 2),
)
"""Each comparison: its name, then (workers, serves) for one process each and for several."""


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--open", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    if not postgres_available():
        print("postgres: skipped, no server answers")
        return
    figures: dict[str, Any] = {"open": args.open, "due": args.due, "seconds": args.seconds}
    rows = []
    with postgres_url() as raw:
        url = raw.replace("postgresql://", "postgresql+psycopg://")
        token, targets = _prepared(url, args.open)
        for n, (name, w1, s1, w2, s2) in enumerate(RUNS):
            found = {}
            for label, workers, servers in (("one", w1, s1), ("several", w2, s2)):
                if workers:
                    _make_due(url, args.due, f"due{n}{label[0]}-")
                found[label] = measure(url, workers, servers, args.seconds, token, targets)
            figures[name] = found
            one, several = found["one"], found["several"]
            for key, unit in (("breaches_per_s", "breaches/s"),
                              ("transitions_per_s", "transitions/s")):  # fmt: skip
                if one[key]:
                    change = f"{w1}w+{s1}s -> {w2}w+{s2}s, x{several[key] / one[key]:.2f}"
                    rows.append((f"{name}: {unit}",
                                 f"{one[key]:,.0f} -> {several[key]:,.0f} ({change})"))  # fmt: skip
    report(f"scale on PostgreSQL, {args.open:,} open cases", rows, figures)


if __name__ == "__main__":
    main()
