"""How soon a worker fires a deadline that another process planned (PostgreSQL).

    python -m bench.wake [--cases 80]

A writer process opens ``--cases`` complaints at random gaps of 0.3 to 1.2 s (a worker
between them is idle, asleep until its next poll), each due 300 ms after
it arrives (sooner than the next safety poll, as a back-filled case, a reclassified one
or a shorter target is); a worker in this process (safety poll 1 s, as deployed) fires
them.
Wake latency is the committed breach's ``recorded_at`` less its due instant, measured:

(a) with the poll alone (``Worker(listen=False)``): the worker learns of a new
    deadline at its next poll, up to a second late;
(b) with ``LISTEN/NOTIFY``: the writer's transaction announces the due instant and
    the worker arms for it at once (target p99 < 50 ms).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from bench.common import postgres_available, postgres_url, report
from bench.sla import policy
from bench.stats import percentile
from casework.scheduler import Worker
from casework.storage.tables import events_table
from casework.workflow import Engine

GAP_S = (0.3, 1.2)
DUE_S = 0.3
WRITER = "CASEWORK_BENCH_WAKE_WRITER"
"""Set in the writer process's environment: the database URL and the number of cases."""


def _writer(url: str, cases: int) -> None:
    """The other process: open ``cases`` complaints, :data:`GAP_S` apart."""
    rng = random.Random(7)
    with Engine.open(url, config=policy(DUE_S)) as engine:
        for _ in range(cases):
            engine.open_case(customer="C", channel="phone", category="other", summary="s",
                             actor="agent")  # fmt: skip
            time.sleep(rng.uniform(*GAP_S))


def run(url: str, cases: int, listen: bool) -> list[float]:
    """Wake latencies in milliseconds of ``cases`` deadlines planned by a writer."""
    with Engine.open(url, config=policy(DUE_S)) as engine:
        worker = Worker(engine, poll_s=1.0, listen=listen)
        worker.start()
        try:
            until = time.monotonic() + 10
            while listen and not worker.listening and time.monotonic() < until:
                time.sleep(0.01)
            env = {**os.environ, WRITER: f"{url} {cases}"}
            subprocess.run([sys.executable, "-m", "bench.wake"], env=env, check=True)
            until = time.monotonic() + 60
            while worker.fired < cases and time.monotonic() < until:
                time.sleep(0.05)
        finally:
            worker.stop()
        with engine.db.connect() as conn:
            rows = conn.execute(
                select(events_table.c.occurred_at, events_table.c.recorded_at).where(
                    events_table.c.event == "escalate"
                )
            ).all()
    if len(rows) != cases:
        raise SystemExit(f"{len(rows)} of {cases} deadlines fired")
    return [(r.recorded_at - r.occurred_at).total_seconds() * 1000 for r in rows]


def _figures(latencies: list[float]) -> dict[str, float]:
    return {
        "p50_ms": percentile(latencies, 0.5),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": max(latencies),
    }


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=80)
    args = parser.parse_args()
    if os.environ.get(WRITER):  # the writer process
        url, cases = os.environ[WRITER].rsplit(" ", 1)
        _writer(url, int(cases))
        return
    if not postgres_available():
        print("postgres: skipped, no server answers")
        return
    figures: dict[str, Any] = {"cases": args.cases, "at": datetime.now(UTC).isoformat()}
    for name, listen in (("poll", False), ("listen", True)):
        with postgres_url() as url:
            figures[name] = _figures(run(url, args.cases, listen))
    poll, heard = figures["poll"], figures["listen"]
    rows = [
        ("(a) poll only (1 s)", f"p50 {poll['p50_ms']:.0f} ms, p99 {poll['p99_ms']:.0f} ms, "
                                f"max {poll['max_ms']:.0f} ms"),
        ("(b) LISTEN/NOTIFY", f"p50 {heard['p50_ms']:.1f} ms, p99 {heard['p99_ms']:.1f} ms, "
                              f"max {heard['max_ms']:.1f} ms (target p99 < 50 ms)"),
    ]  # fmt: skip
    report(f"wake latency of {args.cases} deadlines planned by another process", rows, figures)


if __name__ == "__main__":
    main()
