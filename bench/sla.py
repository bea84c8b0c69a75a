"""SLA deadline processing: breach rate, scaling with open cases, latency, worker memory.

    python -m bench.sla [--backend both] [--open 1000000] [--due 10000] [--latency 1000]

(a) breaches processed per second by ``Engine.process_due`` (claim, escalation event,
    next level planned, outbox row), target >= 1,000/s;
(b) time to process ``--due`` due deadlines among as many open cases, and among
    ``--open`` open cases: the ratio must stay under 1.5 (the due query reads the
    ``(status, due_at)`` index, never the open cases);
(c) breach latency with the real worker: ``--latency`` deadlines falling due within
    30 seconds, from due_at to the committed breach event: p50, p99, max (target p99
    under 1 s);
(d) peak memory of a ``casework worker`` process on the database of (b) with
    ``--open`` open cases (target under 200 MB).
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from bench.common import backends, postgres_url, report, sqlite_url
from bench.sla_gen import add_open_cases
from bench.stats import percentile
from casework.machines.sla import DEFAULT_DOCUMENT
from casework.scheduler import Worker
from casework.storage.tables import events_table
from casework.workflow import Engine, FixedClock, Settings
from casework.workflow.cli.logs import configure_logging


def policy(within_s: float) -> Settings:
    """One clock, the first response, with no warning: every deadline is a breach."""
    clocks = {"first_response": {"runs_in": ["received"], "within_s": within_s, "warn_at": None}}
    return Settings(sla={**DEFAULT_DOCUMENT, "clocks": clocks})


def _open(engine: Engine, received_at: datetime) -> str:
    return engine.open_case(
        customer="C", channel="phone", category="other", summary="s", actor="agent",
        received_at=received_at,
    ).id  # fmt: skip


def breach_rate(url: str, count: int) -> float:
    """(a) breaches per second over ``count`` due breach deadlines."""
    now = datetime.now(UTC)
    with Engine.open(url, clock=FixedClock(now), config=policy(24 * 3600)) as engine:
        template = _open(engine, now - timedelta(hours=25))
        add_open_cases(engine, template, count - 1, "due-")
        start = time.perf_counter()
        fired = engine.process_due(now)
        elapsed = time.perf_counter() - start
    assert len(fired) == count, (len(fired), count)
    return count / elapsed


def due_time(url: str, due: int, open_cases: int) -> float:
    """(b) seconds to process ``due`` due deadlines among ``open_cases`` open cases."""
    now = datetime.now(UTC)
    with Engine.open(url, clock=FixedClock(now), config=policy(24 * 3600)) as engine:
        template = _open(engine, now - timedelta(hours=25))
        add_open_cases(engine, template, due - 1, "due-")
        if open_cases > due:
            waiting = _open(engine, now - timedelta(hours=1))
            add_open_cases(engine, waiting, open_cases - due - 1, "open-")
        start = time.perf_counter()
        fired = engine.process_due(now)
        elapsed = time.perf_counter() - start
    assert len(fired) == due, (len(fired), due)
    return elapsed


def latency(url: str, count: int, window_s: float = 30.0) -> dict[str, float]:
    """(c) due-to-committed latency of ``count`` breaches falling due within ``window_s``."""
    within = 60
    with Engine.open(url, config=policy(within)) as engine:
        now = datetime.now(UTC)
        first_due = now + timedelta(seconds=5)
        for n in range(count):
            due = first_due + timedelta(seconds=window_s * n / count)
            _open(engine, due - timedelta(seconds=within))
        worker = Worker(engine, poll_s=1.0)
        worker.start()
        try:
            give_up = time.monotonic() + window_s + 60
            while worker.fired < count and time.monotonic() < give_up:
                time.sleep(0.2)
        finally:
            worker.stop()
        query = select(events_table.c.occurred_at, events_table.c.recorded_at).where(
            events_table.c.event == "escalate"
        )
        with engine.db.connect() as conn:
            lags = sorted(
                (r.recorded_at - r.occurred_at).total_seconds() for r in conn.execute(query)
            )
    if len(lags) < count:
        raise SystemExit(f"only {len(lags)} of {count} breaches fired")
    return {
        "p50_s": percentile(lags, 0.5),
        "p99_s": percentile(lags, 0.99),
        "max_s": lags[-1],
        "count": float(len(lags)),
    }


def worker_memory(url: str, extra_due: int, run_s: float = 8.0) -> float:
    """(d) peak RSS in MB of a worker process that fires ``extra_due`` breaches."""
    now = datetime.now(UTC)
    with Engine.open(url, clock=FixedClock(now), config=policy(24 * 3600)) as engine:
        template = _open(engine, now - timedelta(hours=25))
        add_open_cases(engine, template, extra_due - 1, "late-")
    env = {**os.environ, "CASEWORK_DATABASE_URL": url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "casework.workflow.cli", "worker", "--poll", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(run_s)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def run(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    """Every figure for one database."""
    make_url = sqlite_url if backend == "sqlite" else postgres_url
    figures: dict[str, Any] = {"backend": backend}
    with make_url() as url:
        figures["breaches_per_s"] = breach_rate(url, args.rate_cases)
    with make_url() as url:
        figures["due_small_s"] = due_time(url, args.due, args.due)
    with make_url() as url:
        figures["due_large_s"] = due_time(url, args.due, args.open)
        if backend == "sqlite" or args.memory_on_postgres:
            figures["worker_peak_mb"] = worker_memory(url, 2000)
    figures["due_ratio"] = figures["due_large_s"] / figures["due_small_s"]
    with make_url() as url:
        figures.update({f"latency_{k}": v for k, v in latency(url, args.latency).items()})
    return figures


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--rate-cases", type=int, default=3000)
    parser.add_argument("--due", type=int, default=10_000)
    parser.add_argument("--open", type=int, default=1_000_000)
    parser.add_argument("--latency", type=int, default=1000)
    parser.add_argument("--memory-on-postgres", action="store_true")
    args = parser.parse_args()
    configure_logging("warning")
    for backend in backends(args.backend):
        f = run(backend, args)
        rows = [
            ("(a) breach processing", f"{f['breaches_per_s']:,.0f} breaches/s (target >= 1,000)"),
            ("(b) due with few open", f"{f['due_small_s']:.2f} s for {args.due:,} due"),
            ("(b) due with many open", f"{f['due_large_s']:.2f} s among {args.open:,} open"),
            ("(b) ratio", f"{f['due_ratio']:.2f} (target < 1.5)"),
            ("(c) breach latency", f"p50 {f['latency_p50_s'] * 1000:.0f} ms, p99 "
             f"{f['latency_p99_s'] * 1000:.0f} ms, max {f['latency_max_s'] * 1000:.0f} ms "
             f"over {f['latency_count']:,.0f} (target p99 < 1 s)"),
        ]  # fmt: skip
        if "worker_peak_mb" in f:
            rows.append(("(d) worker peak RSS", f"{f['worker_peak_mb']:.0f} MB (target < 200)"))
        report(f"SLA deadlines on {backend}", rows, f)


if __name__ == "__main__":
    main()
