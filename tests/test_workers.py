"""Several workers on one database fire every deadline exactly once; the real worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from casework.machines.sla import DEFAULT_DOCUMENT
from casework.scheduler import Worker
from casework.workflow import Engine, FixedClock, Settings
from tests.support import fired_deadlines, open_sample, racers


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


def _quick_policy() -> Settings:
    """A policy whose first response is due two seconds after a case arrives."""
    document = {
        **DEFAULT_DOCUMENT,
        "clocks": {"first_response": {"runs_in": ["received"], "within_s": 2, "warn_at": None}},
    }
    return Settings(sla=document)


@pytest.mark.slow
def test_the_worker_fires_on_time_and_stops_cleanly(db_url: str) -> None:
    """The running worker wakes for the deadline, not a minute later, and stops on request."""
    with Engine.open(db_url, config=_quick_policy()) as engine:
        case_id = open_sample(engine, received_at=datetime.now(UTC) - timedelta(seconds=1))
        worker = Worker(engine, poll_s=5.0)
        worker.start()
        try:
            fired = threading.Event()
            deadline = time.monotonic() + 20
            while not fired.is_set() and time.monotonic() < deadline:
                if engine.get(case_id).escalation_level == 1:
                    fired.set()
                else:
                    fired.wait(0.05)
        finally:
            worker.stop()
        assert fired.is_set()
        breach = next(e for e in engine.history(case_id) if e.event == "escalate")
        assert breach.recorded_at - breach.occurred_at < timedelta(seconds=2)
        assert worker.fired == 1


@pytest.mark.slow
@pytest.mark.postgres
def test_a_worker_hears_a_deadline_another_process_planned_at_once(pg_url: str) -> None:
    """The safety poll is half a minute, yet a deadline planned by another engine (its
    own connection pool, as another process) fires on time: the worker heard it."""
    with Engine.open(pg_url, config=_quick_policy()) as engine:
        worker = Worker(engine, poll_s=30.0)
        worker.start()
        try:
            deadline = time.monotonic() + 10
            while not worker.listening and time.monotonic() < deadline:
                time.sleep(0.02)
            assert worker.listening
            with Engine.open(pg_url, config=_quick_policy()) as other:
                case_id = open_sample(other)  # due two seconds from now
            while engine.get(case_id).escalation_level == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            worker.stop()
        breach = next(e for e in engine.history(case_id) if e.event == "escalate")
        assert breach.recorded_at - breach.occurred_at < timedelta(seconds=1)


@pytest.mark.slow
def test_the_worker_command_stops_on_sigterm(tmp_path: Path) -> None:
    """``casework worker`` exits 0 on SIGTERM, having logged its start and stop."""
    env = {**os.environ, "CASEWORK_DATABASE_URL": f"sqlite:///{tmp_path}/w.db"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "casework.workflow.cli", "--log-level", "info", "worker",
         "--poll", "0.2"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        started = time.monotonic()
        assert proc.stderr is not None
        line = ""
        while "worker_started" not in line and time.monotonic() - started < 30:
            line = proc.stderr.readline()
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "worker_started" in line
    assert proc.returncode == 0
    assert "worker_stopped" in rest


@pytest.mark.postgres
def test_behind_a_bouncer_a_worker_listens_on_the_server_itself_or_polls(
    pg_url: str, bouncer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transaction-pooling bouncer cannot keep a LISTEN: the worker polls, unless
    CASEWORK_LISTEN_DATABASE_URL names the server itself."""
    pooled = bouncer.url(pg_url.rsplit("/", 1)[1])
    with Engine.open(pooled) as engine:
        assert engine.store.listen(lambda _: None, lambda _: None) is None
        monkeypatch.setenv("CASEWORK_LISTEN_DATABASE_URL", pg_url)
        listener = engine.store.listen(lambda _: None, lambda _: None)
        assert listener is not None
        try:
            deadline = time.monotonic() + 10
            while not listener.listening.is_set() and time.monotonic() < deadline:
                time.sleep(0.02)
            assert listener.listening.is_set()
        finally:
            listener.stop()
