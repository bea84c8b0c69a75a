"""Auditors' tools at scale: export, verify --export, checkpoint, and their memory.

    python -m bench.audit [--backend both] [--events 1000000] [--cases 1000000]

(a) ``casework export`` (JSON Lines) over ``--events`` events of valid generated
    histories, events/s (target >= 100,000); baseline: the same rows from the same
    snapshot written with the csv module alone (no JSON, no digest);
(b) ``casework verify --export`` of that file, events/s (the median of three runs),
    in two processes (the default on two cores) and in one (target >= 100,000);
    baseline: ``casework verify`` of the database itself, which makes the same checks
    and also folds the SLA clocks to compare them with the case rows and deadlines;
(c) ``casework checkpoint`` over ``--cases`` cases, seconds (target < 10 s);
    baseline: the bare ordered scan of (case_id, seq, hash) it reads;
(d) peak memory (max RSS) of the export and verify commands as processes, over a
    quarter of the events and over all of them: flat means a ratio near 1 (SQLite's
    page cache, 32 MB a connection, fills within the first quarter).
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any

from bench.common import backends, postgres_url, report, sqlite_url
from bench.history_gen import generate_history
from bench.sla_gen import add_open_cases
from casework.workflow import Engine, FixedClock
from casework.workflow.audit.checkpoints import make_checkpoint
from casework.workflow.audit.export import write_export
from casework.workflow.audit.export_check import verify_export
from casework.workflow.catalog import installed_registry
from casework.workflow.cli.logs import configure_logging


def _timed(run: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = run()
    return time.perf_counter() - start, result


def _median(run: Any, times: int = 3) -> tuple[float, Any]:
    """The median of ``times`` timed runs (this machine's timings vary run to run)."""
    runs = sorted((_timed(run) for _ in range(times)), key=itemgetter(0))
    return runs[times // 2]


def _export(engine: Engine, path: Path) -> int:
    policies = engine.context.store.deadlines.policies()
    with path.open("w", encoding="utf-8", newline="") as file:
        summary = write_export(engine.context.store, file, policies=policies, now=datetime.now(UTC))
    return summary.events


def _csv_floor(engine: Engine, path: Path) -> int:
    count = 0
    with (
        path.open("w", encoding="utf-8", newline="") as file,
        engine.context.store.audit.snapshot() as s,
    ):
        writer = csv.writer(file)
        for row in s.events:
            writer.writerow(row)
            count += 1
    return count


_LAUNCHER = (
    "import resource, subprocess, sys; "
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, "
    "stderr=subprocess.DEVNULL).returncode; "
    "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)
"""A small process that runs the command and reports its peak RSS: started from this
large process directly, the command would inherit this one's high-water mark."""


def _peak_mb(args: list[str]) -> float:
    """Max RSS in MB of ``python -m casework.workflow.cli ARGS`` as its own process."""
    command = [
        sys.executable,
        "-c",
        _LAUNCHER,
        sys.executable,
        "-m",
        "casework.workflow.cli",
        *args,
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout  # noqa: S603
    code, peak_kib = (int(x) for x in out.split())
    if code not in (0, 1):
        raise SystemExit(f"casework {' '.join(args)} exited {code}")
    return peak_kib / 1024


def exports(url: str, events: int, folder: Path) -> dict[str, float]:
    """(a), (b) and (d) over a generated history of ``events`` events."""
    generate_history(url, events)
    out = folder / "history.jsonl"
    figures: dict[str, float] = {}
    with Engine.open(url) as engine:
        floor_s, _ = _timed(lambda: _csv_floor(engine, folder / "floor.csv"))
        export_s, exported = _timed(lambda: _export(engine, out))
        db_s, db_report = _timed(lambda: engine.verify(workers=2))
    registry = installed_registry()
    two_s, checked = _median(lambda: verify_export(out, registry, workers=2))
    one_s, _ = _median(lambda: verify_export(out, registry, workers=1))
    if not checked.ok or checked.events != exported:
        raise SystemExit(f"the export did not verify: {checked.problems[:3]}")
    figures.update(
        events=exported,
        export_per_s=exported / export_s,
        csv_floor_per_s=exported / floor_s,
        export_ratio=floor_s / export_s,
        verify_export_per_s=exported / two_s,
        verify_export_one_per_s=exported / one_s,
        verify_db_per_s=db_report.events / db_s,
        verify_ratio=db_s / two_s,
    )
    return figures


def memory(backend: str, events: int, folder: Path) -> dict[str, float]:
    """(d): peak RSS of export and verify --export (one process, so that its own maximum
    is all there is) at a quarter of the events and at all of them."""
    figures: dict[str, float] = {}
    urls = sqlite_url if backend == "sqlite" else postgres_url
    for label, size in (("small", max(events // 4, 1000)), ("large", events)):
        with urls() as fresh:
            generate_history(fresh, size)
            out = folder / f"{label}.jsonl"
            export = ["--db", fresh, "export", "--out", str(out)]
            figures[f"export_rss_{label}_mb"] = _peak_mb(export)
            verify = ["verify", "--export", str(out), "--workers", "1"]
            figures[f"verify_rss_{label}_mb"] = _peak_mb(verify)
            out.unlink()
    figures["export_rss_ratio"] = figures["export_rss_large_mb"] / figures["export_rss_small_mb"]
    figures["verify_rss_ratio"] = figures["verify_rss_large_mb"] / figures["verify_rss_small_mb"]
    return figures


def checkpoints(url: str, cases: int) -> dict[str, float]:
    """(c): a signed checkpoint over ``cases`` one-event cases."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    now = datetime.now(UTC)
    with Engine.open(url, clock=FixedClock(now)) as engine:
        template = engine.open_case(
            customer="C", channel="phone", category="other", summary="s", actor="agent",
            received_at=now - timedelta(hours=1),
        ).id  # fmt: skip
        add_open_cases(engine, template, cases - 1, "cp-")
        key = Ed25519PrivateKey.generate()
        floor_s, _ = _timed(lambda: _scan(engine))
        took, checkpoint = _timed(lambda: make_checkpoint(engine.context, key, now))
    assert checkpoint.cases == cases, checkpoint
    return {"checkpoint_cases": cases, "checkpoint_s": took, "scan_floor_s": floor_s,
            "checkpoint_ratio": took / floor_s}  # fmt: skip


def _scan(engine: Engine) -> int:
    raw = engine.db.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SELECT case_id, seq, hash FROM events ORDER BY case_id, seq")
        count = 0
        while batch := cursor.fetchmany(5000):
            count += len(batch)
        return count
    finally:
        raw.rollback()
        raw.close()


def run(backend: str, args: argparse.Namespace) -> dict[str, float]:
    """Every figure for one database."""
    urls = sqlite_url if backend == "sqlite" else postgres_url
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="casework-audit-") as tmp:
        with urls() as url:
            figures.update(exports(url, args.events, Path(tmp)))
        with urls() as url:
            figures.update(checkpoints(url, args.cases))
        figures.update(memory(backend, args.events, Path(tmp)))
    return figures


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--cases", type=int, default=1_000_000)
    args = parser.parse_args()
    configure_logging("warning")
    for backend in backends(args.backend):
        f = run(backend, args)
        rows = [
            ("(a) export, JSON Lines", f"{f['export_per_s']:,.0f} events/s (target >= 100,000)"),
            ("    baseline: rows to csv alone", f"{f['csv_floor_per_s']:,.0f} events/s; "
             f"ratio {f['export_ratio']:.2f}"),
            ("(b) verify --export, 2 processes", f"{f['verify_export_per_s']:,.0f} events/s "
             "(target >= 100,000)"),
            ("    in 1 process", f"{f['verify_export_one_per_s']:,.0f} events/s"),
            ("    baseline: verify the database", f"{f['verify_db_per_s']:,.0f} events/s; "
             f"ratio {f['verify_ratio']:.2f}"),
            ("(c) checkpoint", f"{f['checkpoint_s']:.2f} s over {f['checkpoint_cases']:,.0f} "
             "cases (target < 10 s)"),
            ("    baseline: the bare scan", f"{f['scan_floor_s']:.2f} s; ratio "
             f"{f['checkpoint_ratio']:.2f}"),
            ("(d) export peak RSS", f"{f['export_rss_small_mb']:.0f} MB at a quarter, "
             f"{f['export_rss_large_mb']:.0f} MB at all: ratio {f['export_rss_ratio']:.2f}"),
            ("    verify --export peak RSS", f"{f['verify_rss_small_mb']:.0f} MB, "
             f"{f['verify_rss_large_mb']:.0f} MB: ratio {f['verify_rss_ratio']:.2f}"),
        ]  # fmt: skip
        report(f"Audit tools on {backend}, {f['events']:,.0f} events", rows, f)


if __name__ == "__main__":
    main()
