"""Several workers on one database fire every deadline exactly once; the real worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from casework.machines.sla import DEFAULT_DOCUMENT
from casework.scheduler import Worker
from casework.workflow import Engine, FixedClock, Settings
from tests.support import fired_deadlines, open_sample, racers, wait_until


def _fired_exactly_once(engine: Engine, cases: int) -> None:
    statuses, mails, seen = fired_deadlines(engine)
    assert statuses.get("fired") == 2 * cases  # a warning and a breach per case
    assert mails == 2 * cases
    assert len(seen) == 2 * cases
    assert set(seen.values()) == {1}
    assert engine.verify().ok


@pytest.mark.slow
@pytest.mark.parametrize("workers", [2, pytest.param(4, marks=pytest.mark.postgres)])
def test_workers_in_parallel_fire_each_deadline_once(db_url: str, workers: int) -> None:
    """Thousands of due deadlines, several worker processes: each fired exactly once."""
    if workers == 4 and db_url.startswith("sqlite"):
        pytest.skip("four workers are measured on PostgreSQL; SQLite serialises writers")
    now = datetime.now(UTC)
    cases = 1000
    with Engine.open(db_url, clock=FixedClock(now)) as engine:
        received = now - timedelta(hours=25)
        for _ in range(cases):
            open_sample(engine, received_at=received)
    counts = racers.race(workers, racers.process_due_until_done, db_url, now.isoformat())
    assert sum(counts) == 2 * cases
    with Engine.open(db_url) as engine:
        _fired_exactly_once(engine, cases)


HOUR_S = 3600.0
"""A safety poll that never comes within a test: what fires, fired because it was due."""


def _quick_policy() -> Settings:
    """A policy whose first response is due two seconds after a case arrives."""
    document = {
        **DEFAULT_DOCUMENT,
        "clocks": {"first_response": {"runs_in": ["received"], "within_s": 2, "warn_at": None}},
    }
    return Settings(sla=document)


@pytest.mark.slow
def test_the_worker_fires_on_time_and_stops_cleanly(db_url: str) -> None:
    """The running worker wakes for the deadline, not at its safety poll, and stops on
    request. The poll is an hour: a breach recorded at all within the wait (generous,
    for a busy machine) was fired because the worker woke for its deadline."""
    with Engine.open(db_url, config=_quick_policy()) as engine:
        case_id = open_sample(engine, received_at=datetime.now(UTC) - timedelta(seconds=1))
        worker = Worker(engine, poll_s=HOUR_S)
        worker.start()
        try:
            wait_until(lambda: engine.get(case_id).escalation_level == 1, what="the breach")
        finally:
            worker.stop()
        breach = next(e for e in engine.history(case_id) if e.event == "escalate")
        assert breach.recorded_at >= breach.occurred_at  # fired at its due instant, not before
        assert worker.fired == 1


@pytest.mark.slow
@pytest.mark.postgres
def test_a_worker_hears_a_deadline_another_process_planned_at_once(pg_url: str) -> None:
    """The safety poll is an hour, yet a deadline planned by another engine (its own
    connection pool, as another process) fires within the wait: the worker heard it."""
    with Engine.open(pg_url, config=_quick_policy()) as engine:
        worker = Worker(engine, poll_s=HOUR_S)
        worker.start()
        try:
            wait_until(lambda: worker.listening, what="the worker to listen")
            with Engine.open(pg_url, config=_quick_policy()) as other:
                case_id = open_sample(other)  # due two seconds from now
            wait_until(lambda: engine.get(case_id).escalation_level == 1, what="the breach")
        finally:
            worker.stop()
        assert worker.fired == 1


@pytest.mark.slow
def test_the_worker_command_stops_on_sigterm(tmp_path: Path) -> None:
    """``casework worker`` exits 0 on SIGTERM, having logged its start and stop."""
    env = {**os.environ, "CASEWORK_DATABASE_URL": f"sqlite:///{tmp_path}/w.db"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "casework.workflow.cli", "--log-level", "info", "worker",
         "--poll", "0.2"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr or ()), daemon=True)
    reader.start()  # the log, read as it comes, so that no wait blocks on the pipe
    try:
        started = lambda: any("worker_started" in line for line in lines)  # noqa: E731
        wait_until(lambda: started() or proc.poll() is not None, what="the worker to start")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        reader.join(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    log = "".join(lines)
    assert "worker_started" in log
    assert proc.returncode == 0, log
    assert "worker_stopped" in log.split("worker_started", 1)[1]


@pytest.mark.postgres
def test_behind_a_bouncer_a_worker_listens_on_the_server_itself_or_polls(
    pg_url: str, bouncer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transaction-pooling bouncer cannot keep a LISTEN: the worker polls, unless
    CASEWORK_LISTEN_DATABASE_URL names the server itself."""
    pooled = bouncer.url(pg_url.rsplit("/", 1)[1])
    with Engine.open(pooled) as engine:
        assert engine.context.store.deadlines.listen(lambda _: None, lambda _: None) is None
        monkeypatch.setenv("CASEWORK_LISTEN_DATABASE_URL", pg_url)
        listener = engine.context.store.deadlines.listen(lambda _: None, lambda _: None)
        assert listener is not None
        try:
            assert listener.listening.wait(60), "the listener on the server itself listens"
        finally:
            listener.stop()
