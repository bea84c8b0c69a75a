"""Breaches fired per second by ``casework worker`` beside ``Engine.process_due`` alone.

    python -m bench.worker [--backend both] [--due 6000] [--rounds 3] [--senders]

Each round builds two databases of ``--due`` due breach deadlines (the first response
of as many open cases, 25 hours old) and, in turns, (a) fires one with
``Engine.process_due`` in a fresh process (the baseline: claim, escalation event, next
level, outbox row, 200 a transaction) and (b) starts a ``casework worker`` process on
the other and waits until it has fired them all. (b)'s rate is read from the breaches'
own ``recorded_at``: every batch of a wake records the instant it began, so the span
from the first batch to the last, over the breaches fired before the last batch, is
the worker's firing rate (its start-up is not counted; ``process_due`` has none).
On PostgreSQL both databases are vacuumed and analyzed once loaded, so that the
server's autovacuum does not work beside one of the two measurements.
The worker runs without its senders (``--no-mail --no-webhooks --no-notify``), which
run on threads of their own; ``--senders`` leaves them on, each with its receiver out
of reach: mail to the default ``smtp://localhost:25`` (where nothing listens, every
mail is tried and put back) and, on both databases, a webhook subscription to every
event at a loopback port nothing listens on (a refused connection).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import select

from bench.common import backends, postgres_url, report, sqlite_url
from bench.sla import _open, policy
from bench.sla_gen import add_open_cases
from casework.storage.database import libpq_url
from casework.storage.tables import deadlines_table, events_table
from casework.workflow import Engine, FixedClock
from casework.workflow.cli.logs import configure_logging
from casework.workflow.webhooks.settings import WebhookSettings
from casework.workflow.webhooks.subscriptions import add

LOOPBACK = WebhookSettings(allowed_hosts=("127.0.0.1",))
"""The bench's webhook subscription goes to loopback, which only this allows."""


def _prepare(url: str, count: int, hook: str | None = None) -> None:
    """``count`` open cases whose first response fell due an hour ago; with ``hook``, a
    webhook subscription to every event at that URL."""
    now = datetime.now(UTC)
    with Engine.open(url, clock=FixedClock(now), config=policy(24 * 3600)) as engine:
        if hook is not None:
            add(engine.context.store, hook, "*", LOOPBACK, now)
        template = _open(engine, now - timedelta(hours=25))
        add_open_cases(engine, template, count - 1, "due-")


def _closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _settle(url: str) -> None:
    """On PostgreSQL, vacuum and analyze the freshly loaded database: the server's
    autovacuum would otherwise set to work on one of the two beside its measurement."""
    if not url.startswith("postgresql"):
        return
    with psycopg.connect(libpq_url(url)) as conn:
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")


def baseline(url: str, count: int) -> float:
    """(a) breaches per second of ``Engine.process_due``, in a fresh process of its own
    as the worker has (not in this one, whose heap the loading filled)."""
    code = (
        "import sys, time\n"
        "from datetime import UTC, datetime\n"
        "from bench.sla import policy\n"
        "from casework.workflow import Engine, FixedClock\n"
        "from casework.workflow.cli.logs import configure_logging\n"
        "configure_logging('warning')\n"
        "now = datetime.now(UTC)\n"
        "with Engine.open(sys.argv[1], clock=FixedClock(now), config=policy(86400)) as e:\n"
        "    start = time.perf_counter()\n"
        "    fired = len(e.process_due(now))\n"
        "    print(fired, time.perf_counter() - start)\n"
    )
    out = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code, url], check=True, capture_output=True, text=True
    ).stdout.split()
    fired, elapsed = int(out[-2]), float(out[-1])
    assert fired == count, (fired, count)
    return count / elapsed


def worker(url: str, count: int, senders: bool, give_up_s: float = 300.0) -> float:
    """(b) breaches per second of a ``casework worker`` process, from their records."""
    env = {**os.environ, "CASEWORK_DATABASE_URL": url}
    flags = [] if senders else ["--no-mail", "--no-webhooks", "--no-notify"]
    folder = tempfile.TemporaryDirectory()  # the worker's settings, while it runs
    if senders:  # the webhook subscription's receiver may be on loopback
        config = Path(folder.name) / "worker.toml"
        config.write_text('[webhooks]\nallowed_hosts = ["127.0.0.1"]\n')
        env["CASEWORK_CONFIG"] = str(config)
    command = [sys.executable, "-m", "casework.workflow.cli", "worker", "--poll", "1", *flags]
    now = datetime.now(UTC)
    escalations = select(events_table.c.recorded_at).where(events_table.c.event == "escalate")
    # The level just fired plans the next level a day on: left pending, not due now.
    due = (  # one index entry, not a count: the bench must not load the database
        select(deadlines_table.c.id)
        .where(deadlines_table.c.status == "pending", deadlines_table.c.due_at <= now)
        .limit(1)
    )
    with Engine.open(url, config=policy(24 * 3600)) as engine:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)  # noqa: S603
        try:
            until = time.monotonic() + give_up_s
            while time.monotonic() < until:
                with engine.db.connect() as conn:
                    if conn.execute(due).first() is None:
                        break
                time.sleep(0.25)
            else:
                raise SystemExit("the worker did not fire every deadline in time")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
            folder.cleanup()
        with engine.db.connect() as conn:
            stamps = sorted(r.recorded_at for r in conn.execute(escalations))
    assert len(stamps) == count, (len(stamps), count)
    last = stamps[-1]
    before_last = sum(1 for s in stamps if s < last)
    return float(before_last / (last - stamps[0]).total_seconds())


def run(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    """Interleaved rounds of (a) and (b) on one backend."""
    make_url = sqlite_url if backend == "sqlite" else postgres_url
    alone: list[float] = []
    worked: list[float] = []
    for _ in range(args.rounds):
        with make_url() as a_url, make_url() as b_url:
            hook = f"http://127.0.0.1:{_closed_port()}/hook" if args.senders else None
            _prepare(a_url, args.due, hook)
            _prepare(b_url, args.due, hook)
            _settle(a_url)
            _settle(b_url)
            alone.append(baseline(a_url, args.due))
            worked.append(worker(b_url, args.due, args.senders))
    ratios = [w / a for w, a in zip(worked, alone, strict=True)]
    return {
        "backend": backend,
        "process_due_per_s": statistics.median(alone),
        "worker_per_s": statistics.median(worked),
        "ratio": statistics.median(ratios),
        "ratios": ratios,
        "senders": args.senders,
    }


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--due", type=int, default=6000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--senders", action="store_true")
    args = parser.parse_args()
    configure_logging("warning")
    for backend in backends(args.backend):
        f = run(backend, args)
        rows = [
            ("(a) process_due alone", f"{f['process_due_per_s']:,.0f} breaches/s"),
            ("(b) casework worker", f"{f['worker_per_s']:,.0f} breaches/s"),
            ("(b)/(a), median of rounds", f"{f['ratio']:.2f} (target >= 0.9)"),
        ]
        report(f"Worker against process_due on {backend} ({args.rounds} rounds)", rows, f)


if __name__ == "__main__":
    main()
